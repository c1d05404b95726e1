"""Recompute every trace's cost (`Trace.cost`, `Trace.cost_calls`) from its observations.

For a deployment upgrading past `traces.0013_trace_cost_columns` (traces stored before it have no
cost until this runs: the explorer's cost sort and cost filters read the column), and the repair for
any doubt. Works in chunks of `--chunk` traces, one short transaction each under the project's rollup
lock, so ingestion into the project goes on between chunks; a stopped run can simply be run again
(only traces whose values differ are written). `--project ID` (repeatable) limits it to those
projects.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from ingest import rollups
from tenancy.models import Project
from tenancy.regions import served_regions


class Command(BaseCommand):
    help = "Recompute the per-trace cost columns of every project this node serves (or --project ID)."

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", default=[], help="a project id (repeatable)")
        parser.add_argument("--chunk", type=int, default=2000, help="traces per transaction")

    def handle(self, *args, project: list[str], chunk: int, **options):
        projects = Project.objects.filter(region__in=served_regions()).order_by("id")
        if project:
            projects = projects.filter(id__in=project)
        for item in projects:
            started = time.monotonic()
            reported = [started]

            def progress(examined: int, fixed: int, item=item, reported=reported) -> None:
                if time.monotonic() - reported[0] >= 30:
                    reported[0] = time.monotonic()
                    self.stdout.write(f"  {item.id}: {examined} traces, {fixed} fixed")

            examined, fixed = rollups.rebuild_trace_costs(project=item, chunk=chunk, progress=progress)
            self.stdout.write(
                f"{item.id} ({item.region}): {examined} traces, {fixed} fixed in {time.monotonic() - started:.0f} s"
            )
