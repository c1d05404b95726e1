"""Updates of stored calls read only the rows they change, whatever the project holds (issue 13).

The same exposure as duplicate-call marking (tests/ingest/test_duplicate_marking_cost.py), on the
update path: on a project grown since its last ANALYZE the planner believes the project holds a row or
two, so the writer's merge UPDATE, its fix UPDATE (re-derived totals, status and catalog cost) and the
rollups' locking snapshot of the rows about to change (`id = ANY(…) FOR UPDATE`) may each go through
any index leading with project_id and read the whole project: 9,380 rows read to update 20 calls.
These tests count the rows the update reads from the observations and traces tables.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connections

from ingest import writer
from monitoring.models import HourlyRollup
from scores.models import Score
from tenancy.regions import region_database
from tests.ingest.test_duplicate_marking_cost import STORED, T0, _calls
from traces.models import Observation, Trace

UPDATED = 20


def _rows_read(project) -> int:
    """Rows of the observations and traces tables read so far in this transaction (sequential and by index)."""
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(sum(COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0)), 0) "
            "FROM pg_stat_xact_user_tables WHERE relname IN ('traces_observation', 'traces_trace')"
        )
        return int(cursor.fetchone()[0])


def _fill(project, other_project):
    """A neighbour's calls, both tables' statistics taken then (ANALYZE), and only then this project's
    thousands of calls in 600 traces: a project grown since its last ANALYZE, which the planner
    believes holds a row or two."""
    writer.write_records(project=other_project, traces=[], observations=_calls("neighbour", 20), scores=[])
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("ANALYZE traces_observation, traces_trace")
    for start in range(0, STORED, 500):
        batch = _calls(f"old{start}", 100, start=T0 - timedelta(hours=1))
        writer.write_records(project=project, traces=[], observations=batch, scores=[])


def _stored_ids(project):
    """One root call of each of `UPDATED` stored traces (written by `_fill`, an hour before T0)."""
    return [(f"old{500 * (t // 100)}-{t % 100}-0", f"old{500 * (t // 100)}-trace-{t % 100}") for t in range(UPDATED)]


def _totals(project):
    row = HourlyRollup.objects.for_project(project).values_list("calls", "output_tokens")
    return (sum(r[0] for r in row), sum(r[1] for r in row))


def test_updates_of_stored_calls_read_a_bounded_number_of_rows(project, other_project):
    _fill(project, other_project)
    calls_before, output_before = _totals(project)
    # Each update changes the token counts (so the total is re-derived by the fix UPDATE)
    # and the end time, and names no parent (the stored row has it).
    updates = [
        {"id": oid, "trace_id": tid, "output_tokens": 50, "end_time": T0 + timedelta(seconds=30)}
        for oid, tid in _stored_ids(project)
    ]
    before = _rows_read(project)
    writer.write_records(project=project, traces=[], observations=updates, scores=[])
    read = _rows_read(project) - before
    # Per updated call: its trace (locked, then re-read), the call (locked, merged, fixed, re-read with
    # its trace), its 4 stored children (duplicate marks) — about 14 rows, whatever the project holds
    # (the statements on a whole-project path read 9,000-11,000 here).
    assert read <= 20 * UPDATED, f"{read} rows read to update {UPDATED} calls beside {STORED} stored ones"

    stored = {o.id: o for o in Observation.objects.for_project(project).filter(id__in=[u["id"] for u in updates])}
    assert len(stored) == UPDATED
    assert {(o.output_tokens, o.total_tokens) for o in stored.values()} == {(50, 150)}
    # The rollups moved by exactly the change: 40 more output tokens per updated call, and its first
    # child, no longer the same call as its parent (10 output tokens), unmarked and counted again.
    assert _totals(project) == (calls_before + UPDATED, output_before + (40 + 10) * UPDATED)
    counted = Observation.objects.for_project(project).filter(duplicate_of="")
    assert _totals(project) == (counted.count(), sum(counted.values_list("output_tokens", flat=True)))


def test_trace_updates_read_a_bounded_number_of_rows(project, other_project):
    _fill(project, other_project)
    traces = [{"id": tid, "name": "renamed", "user_id": "u-1"} for _, tid in _stored_ids(project)]
    before = _rows_read(project)
    writer.write_records(project=project, traces=traces, observations=[], scores=[])
    read = _rows_read(project) - before
    # Renaming a trace moves its 5 stored calls in the rollups: the trace is locked, merged and re-read,
    # its calls found by trace and locked by key — about 13 rows a trace (4,800 on a whole-project path).
    assert read <= 20 * UPDATED, f"{read} rows read to update {UPDATED} traces beside {STORED} stored calls"
    assert Trace.objects.for_project(project).filter(name="renamed").count() == UPDATED
    names = set(HourlyRollup.objects.for_project(project).filter(calls__gt=0).values_list("trace_name", flat=True))
    assert "renamed" in names


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_concurrent_merges_into_rows_not_locked_beforehand_lose_nothing(project):
    """Scores are merged without an earlier lock, so their UPDATE must not join by physical address as
    the (locked) traces and observations now do: a row another writer updated after the statement's
    snapshot has an address that snapshot cannot see, and the merge was skipped (this test lost a
    writer's field when scores took that form too)."""
    errors = []
    ids = [f"s{i}" for i in range(20)]

    def work(n):
        try:
            for round_ in range(5):
                order = ids if n % 2 else ids[::-1]
                scores = [
                    {"id": i, "trace_id": "t-shared", "name": "quality", "value": 1, "metadata": {f"w{n}": round_}}
                    for i in order
                ]
                writer.write_records(project=project, traces=[], observations=[], scores=scores)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = Score.objects.for_project(project).filter(id__in=ids)
    assert stored.count() == len(ids)
    for score in stored:
        assert score.metadata == {"w0": 4, "w1": 4, "w2": 4, "w3": 4}
