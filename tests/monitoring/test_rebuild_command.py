"""`manage.py rebuild_rollups`: the score and thumbs rollups of scores stored before those tables
existed (simulated by emptying them) come back equal to what the writer keeps, for every project."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from django.db import connections

from ingest import writer
from monitoring.models import DailyUserScoreRollup, HourlyRollup, HourlyScoreRollup
from tenancy.regions import region_database

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def _state(project):
    return (
        sorted(HourlyRollup.objects.for_project(project).values_list("hour", "feature", "calls", "cost")),
        sorted(HourlyScoreRollup.objects.for_project(project).values_list(
            "hour", "name", "feature", "scores", "value_sum", "thumbs_up", "thumbs_down")),
        sorted(DailyUserScoreRollup.objects.for_project(project).values_list(
            "day", "user_id", "name", "scores", "thumbs_down")),
    )


def test_the_command_restores_score_rollups_for_every_project(project, other_project):
    for target in (project, other_project):
        writer.write_records(
            project=target,
            traces=[{"id": "t1", "name": "chat", "user_id": "u1", "metadata": {"feature": "support"}}],
            observations=[{"id": "g1", "trace_id": "t1", "type": "GENERATION", "start_time": T0,
                           "end_time": T0 + timedelta(seconds=1), "model": "gpt-4o"}],
            scores=[{"id": f"s{i}", "trace_id": "t1", "name": "thumbs", "value": i % 2, "data_type": "BOOLEAN",
                     "source": "USER", "timestamp": T0 + timedelta(minutes=i)} for i in range(5)],
        )
    before = {p.id: _state(p) for p in (project, other_project)}
    assert before[project.id][1] and before[project.id][2]
    for target in (project, other_project):
        with connections[region_database(target.region)].cursor() as cursor:
            for table in ("monitoring_hourlyscorerollup", "monitoring_dailyuserscorerollup"):
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s", [target.id])
    out = io.StringIO()
    call_command("rebuild_rollups", stdout=out)
    assert {p.id: _state(p) for p in (project, other_project)} == before
    assert "rebuilt" in out.getvalue()
