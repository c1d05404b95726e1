"""Updates of stored rows read one row per key whatever the statistics say (issue 13).

The update path's reads of stored rows (the rollups' locking snapshots and re-reads, the merge and
fix UPDATEs' probes, the duplicate marking's parents and children, the scores' traces) give the
project as an InitPlan parameter, which the planner prices as an average project. When the
statistics were taken while the table held about one row per project — here 20,000 small tenants of
one trace and one call each, which a retention run then deleted, leaving their dead rows and index
entries until autovacuum — every index leading with project_id is believed to return one row, the
costs tie exactly, and the planner took the narrowest index and filtered the whole project for each
key: 396,020 rows read to rename 20 traces and 456,040 to update 20 calls beside 3,000 stored.
tests/ingest/test_update_path_cost.py covers a project grown since an ANALYZE of a single tenant.
"""

from datetime import timedelta

import pytest
from django.db import connections, transaction

from ingest import writer
from monitoring.models import HourlyRollup
from scores.models import Score
from tenancy.regions import region_database
from tests.ingest.test_duplicate_marking_cost import STORED, T0, _calls
from tests.ingest.test_update_path_cost import UPDATED, _rows_read, _stored_ids, _totals
from traces.models import Observation, Trace

# Tens of thousands of rows, gone by TRUNCATE (rolled back, they would stay as dead pages in the
# next tests' statistics).
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

TENANTS = 20_000
# Copies of one stored row, one per tenant (project ids derived from the tenant number).
_COPY = """
INSERT INTO {table}
SELECT p.*
FROM (SELECT * FROM {table} WHERE project_id = %s AND id = %s) AS r, generate_series(1, %s) AS g,
LATERAL jsonb_populate_record(NULL::{table}, to_jsonb(r) || jsonb_build_object(
    'project_id', md5('tenant-' || g)::uuid, 'id', 'tenant-' || g{extra})) AS p
"""


def _small_tenants_then_retention(project, other_project):
    """The statistics of a region holding one trace and one call per project, then a retention run
    deleting those tenants' rows (dead rows and index entries until a vacuum), then this project's
    thousands of calls in 600 traces."""
    writer.write_records(project=other_project, traces=[], observations=_calls("seed", 1, per_trace=1), scores=[])
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # a loaded machine: these bulk statements take seconds
        cursor.execute(_COPY.format(table="traces_trace", extra=""), [other_project.id, "seed-trace-0", TENANTS])
        cursor.execute(
            _COPY.format(table="traces_observation", extra=", 'trace_id', 'tenant-' || g"),
            [other_project.id, "seed-0-0", TENANTS],
        )
        cursor.execute("ANALYZE traces_trace, traces_observation")
        cursor.execute("DELETE FROM traces_trace WHERE id LIKE 'tenant-%%'")
        cursor.execute("DELETE FROM traces_observation WHERE id LIKE 'tenant-%%'")
        cursor.execute("RESET statement_timeout")
    for start in range(0, STORED, 500):
        batch = _calls(f"old{start}", 100, start=T0 - timedelta(hours=1))
        writer.write_records(project=project, traces=[], observations=batch, scores=[])


def test_call_updates_read_one_row_per_key_on_stale_statistics(project, other_project):
    _small_tenants_then_retention(project, other_project)
    calls_before, output_before = _totals(project)
    updates = [
        {"id": oid, "trace_id": tid, "output_tokens": 50, "end_time": T0 + timedelta(seconds=30)}
        for oid, tid in _stored_ids(project)
    ]
    before = _rows_read(project)
    writer.write_records(project=project, traces=[], observations=updates, scores=[])
    read = _rows_read(project) - before
    # About 14 rows per updated call (see test_update_path_cost); 456,040 on the whole-project plans.
    assert read <= 20 * UPDATED, f"{read} rows read to update {UPDATED} calls beside {STORED} stored ones"
    stored = Observation.objects.for_project(project).filter(id__in=[u["id"] for u in updates])
    assert {(o.output_tokens, o.total_tokens) for o in stored} == {(50, 150)}
    # The first child of each updated call is no longer the same call: unmarked and counted again.
    assert _totals(project) == (calls_before + UPDATED, output_before + (40 + 10) * UPDATED)


def test_trace_renames_read_one_row_per_key_on_stale_statistics(project, other_project):
    _small_tenants_then_retention(project, other_project)
    traces = [{"id": tid, "name": "renamed", "user_id": "u-1"} for _, tid in _stored_ids(project)]
    before = _rows_read(project)
    writer.write_records(project=project, traces=traces, observations=[], scores=[])
    read = _rows_read(project) - before
    # About 13 rows per renamed trace; 396,020 (≈ 19,800 a trace) on the whole-project plans.
    assert read <= 20 * UPDATED, f"{read} rows read to rename {UPDATED} traces beside {STORED} stored calls"
    assert Trace.objects.for_project(project).filter(name="renamed").count() == UPDATED
    renamed = HourlyRollup.objects.for_project(project).filter(trace_name="renamed")
    assert sum(renamed.values_list("calls", flat=True)) == 4 * UPDATED  # 5 calls a trace, 1 marked duplicate


def test_scores_of_stored_traces_read_one_row_per_key_on_stale_statistics(project, other_project):
    _small_tenants_then_retention(project, other_project)
    scores = [
        {"id": f"score-{n}", "trace_id": tid, "name": "quality", "value": 1}
        for n, (_, tid) in enumerate(_stored_ids(project))
    ]
    writer.write_records(project=project, traces=[], observations=[], scores=scores)
    before = _rows_read(project)
    # Scores sent again with a new value, and their traces renamed in the same batch: the scores'
    # traces, the snapshot of the stored scores and the move of the traces' calls and scores.
    traces = [{"id": s["trace_id"], "name": "renamed"} for s in scores]
    writer.write_records(project=project, traces=traces, observations=[], scores=[{**s, "value": 0} for s in scores])
    read = _rows_read(project) - before
    assert read <= 20 * UPDATED, f"{read} rows read to rescore and rename {UPDATED} traces beside {STORED} calls"
    assert set(Score.objects.for_project(project).filter(id__startswith="score-").values_list("value", flat=True)) == {0}


def test_a_write_inside_a_callers_transaction_leaves_its_planner_settings(project):
    """The key-probe settings are SET LOCAL for the write's own transaction; inside a caller's
    transaction the writer puts them back, so the caller's next statements plan as before."""
    database = region_database(project.region)
    with transaction.atomic(using=database), connections[database].cursor() as cursor:
        writer.write_records(
            project=project,
            traces=[{"id": "t-1", "name": "n"}],
            observations=_calls("c", 1),
            scores=[{"id": "s-1", "trace_id": "t-1", "name": "quality", "value": 1}],
        )
        cursor.execute(
            "SELECT current_setting('enable_seqscan'), current_setting('enable_bitmapscan'), "
            "current_setting('enable_sort'), current_setting('enable_incremental_sort')"
        )
        assert cursor.fetchone() == ("on", "on", "on", "on")
    assert Trace.objects.for_project(project).filter(id="t-1").exists()
