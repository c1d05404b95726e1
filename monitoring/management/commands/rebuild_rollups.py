"""Recompute every project's rollups (calls, daily, per user, scores and thumbs) from its raw rows.

For a deployment upgrading past the migration that added the score rollups: scores stored before it
are counted only once their project's rollups are rebuilt (the daily call rollup is filled by its
own migration). Also the repair for any doubt about a project's numbers. Each project is rebuilt in
one transaction holding its rollup lock, so ingestion into that project waits for it; run it when
traffic is low. `--project ID` (repeatable) limits it to those projects.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ingest import rollups
from monitoring import selectors
from tenancy.models import Project
from tenancy.regions import served_regions


class Command(BaseCommand):
    help = "Recompute the rollups of every project this node serves (or --project ID) from the raw rows."

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", default=[], help="a project id (repeatable)")

    def handle(self, *args, project: list[str], **options):
        projects = Project.objects.filter(region__in=served_regions()).order_by("id")
        if project:
            projects = projects.filter(id__in=project)
        total = 0
        for item in projects:
            calls = rollups.rebuild(project=item, rule=selectors.feature_rule(project=item))
            total += calls
            self.stdout.write(f"{item.id} ({item.region}): {calls} calls")
        self.stdout.write(f"rebuilt {projects.count()} projects, {total} calls")
