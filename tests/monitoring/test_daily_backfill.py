"""The migration that fills the daily rollup from the hourly one (for calls stored before the daily
table existed) gives exactly the rows the writer writes, and leaves a project that already has daily
rows as it is (a re-run never counts twice)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connections

from ingest import writer
from monitoring.models import DailyRollup
from tenancy.regions import region_database

backfill = importlib.import_module("monitoring.migrations.0006_backfill_daily_rollup")
T0 = datetime(2026, 11, 18, 21, 10, tzinfo=UTC)


def _calls(prefix: str) -> list[dict]:
    return [
        {"id": f"{prefix}-{i}", "trace_id": f"{prefix}-t{i % 3}", "type": "GENERATION", "model": ["a", "b"][i % 2],
         "start_time": T0 + timedelta(hours=2 * i), "end_time": T0 + timedelta(hours=2 * i, milliseconds=300 + i),
         "completion_start_time": T0 + timedelta(hours=2 * i, milliseconds=40), "input_tokens": 10 + i,
         "total_cost": Decimal(i) / 7, "status": "error" if i % 4 == 0 else "ok"}
        for i in range(16)  # 30 hours from 21:10: three UTC days
    ]


def _daily(project) -> dict:
    fields = [f.attname for f in DailyRollup._meta.concrete_fields if f.attname != "project_id"]
    return {tuple(getattr(r, f) for f in ("day", "feature", "model")): {f: getattr(r, f) for f in fields}
            for r in DailyRollup.objects.for_project(project)}


def test_the_backfill_rebuilds_the_daily_rows_from_the_hourly_ones(project, other_project):
    traces = [{"id": f"{p}-t{i}", "name": "flow", "metadata": {"feature": f"f{i}"}} for p in ("x", "y") for i in range(3)]
    writer.write_records(project=project, traces=traces[:3], observations=_calls("x"), scores=[])
    writer.write_records(project=other_project, traces=traces[3:], observations=_calls("y"), scores=[])
    written, neighbour = _daily(project), _daily(other_project)
    assert len({key[0] for key in written}) == 3

    database = region_database(project.region)
    with connections[database].cursor() as cursor:
        # The state before the daily table existed, for this project only.
        cursor.execute("DELETE FROM monitoring_dailyrollup WHERE project_id = %s", [project.id])
        cursor.execute(backfill.FORWARD)
    assert _daily(project) == written
    assert _daily(other_project) == neighbour  # already had daily rows: not added to
    with connections[database].cursor() as cursor:
        cursor.execute(backfill.FORWARD)  # a re-run changes nothing
    assert _daily(project) == written and _daily(other_project) == neighbour
