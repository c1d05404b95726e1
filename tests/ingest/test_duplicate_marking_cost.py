"""Duplicate-call marking (issue 10) reads only what a batch can pair with (issue 13).

The write-time check that a nested generation is the same call as its parent once planned its pairs
through project-wide index scans or a hash join over the project's observations, so a batch cost
more the more the project had stored (`make bench-ingest` fell from ~6,600 to ~1,800 spans/s). These
tests count the rows the write reads from the observations table, on a project that already holds
thousands of calls: the count must stay bounded by the batch, not by the table.
"""

from datetime import UTC, datetime, timedelta

from django.db import connections

from ingest import writer
from tenancy.regions import region_database
from traces.models import Observation

T0 = datetime(2026, 11, 26, 19, 42, 27, tzinfo=UTC)
STORED = 3000
CALL = {"type": "GENERATION", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 10}


def _calls(prefix, traces, per_trace=5, *, start=T0):
    """`traces` traces of `per_trace` generations each, the others nested under the first."""
    out = []
    for t in range(traces):
        root = f"{prefix}-{t}-0"
        for i in range(per_trace):
            out.append(
                {
                    **CALL,
                    "id": f"{prefix}-{t}-{i}",
                    "trace_id": f"{prefix}-trace-{t}",
                    "parent_observation_id": root if i else None,
                    "start_time": start + timedelta(seconds=i),
                    "end_time": start + timedelta(seconds=10 - i),
                    "input_tokens": 100 + (i > 1),  # the first child is the same call as its parent
                }
            )
    return out


def _rows_read(project) -> int:
    """Rows of the observations table read so far in this transaction (sequential and by index)."""
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = 'traces_observation'"
        )
        return cursor.fetchone()[0]


def _fill(project, other_project):
    """A neighbour's calls, the table's statistics taken then (ANALYZE), and only then this project's
    thousands: the state of a project grown since its last ANALYZE, for which the planner guesses
    a row or two."""
    writer.write_records(project=other_project, traces=[], observations=_calls("neighbour", 20), scores=[])
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("ANALYZE traces_observation")
    for start in range(0, STORED, 500):
        batch = _calls(f"old{start}", 100, start=T0 - timedelta(hours=1))
        writer.write_records(project=project, traces=[], observations=batch, scores=[])


def test_a_batch_reads_a_bounded_number_of_rows_whatever_the_project_holds(project, other_project):
    _fill(project, other_project)
    batch = _calls("new", 20)  # 100 calls, each trace whole in the batch (as OTLP exporters send them)
    before = _rows_read(project)
    writer.write_records(project=project, traces=[], observations=batch, scores=[])
    read = _rows_read(project) - before
    assert read <= 2 * len(batch), f"{read} rows read to write {len(batch)} calls beside {STORED} stored ones"
    marked = dict(Observation.objects.for_project(project).filter(id__startswith="new-").values_list("id", "duplicate_of"))
    assert marked["new-0-1"] == "new-0-0" and marked["new-0-2"] == "" and marked["new-0-0"] == ""


def test_pairs_across_batches_are_found_by_key_and_stay_bounded(project, other_project):
    _fill(project, other_project)
    # The inner calls first (they end first), their parents in a later batch, and the reverse.
    calls = _calls("split", 20)
    roots = [c for c in calls if c["parent_observation_id"] is None]
    inner = [c for c in calls if c["parent_observation_id"] is not None]
    before = _rows_read(project)
    writer.write_records(project=project, traces=[], observations=inner, scores=[])
    writer.write_records(project=project, traces=[], observations=roots, scores=[])
    read = _rows_read(project) - before
    assert read <= 3 * len(calls), f"{read} rows read to write {len(calls)} calls beside {STORED} stored ones"
    marked = dict(Observation.objects.for_project(project).filter(id__startswith="split-").values_list("id", "duplicate_of"))
    assert [marked[f"split-{t}-1"] for t in range(20)] == [f"split-{t}-0" for t in range(20)]
    assert {marked[f"split-{t}-{i}"] for t in range(20) for i in (0, 2, 3, 4)} == {""}

    # An update of the inner calls alone (no parent id repeated) unmarks them: the parent is found
    # through the stored row. (The cost of updates in general is not this test's subject.)
    updates = [{"id": f"split-{t}-1", "trace_id": f"split-trace-{t}", "output_tokens": 11} for t in range(20)]
    writer.write_records(project=project, traces=[], observations=updates, scores=[])
    assert not Observation.objects.for_project(project).filter(id__startswith="split-").exclude(duplicate_of="").exists()


def test_a_batch_of_new_traces_pairs_its_calls_without_probing_stored_ones(project):
    """A trace the batch creates holds no stored call (every call is stored with its trace), so its
    calls are paired within the batch: no statement looks for their stored parents or children."""
    from django.test.utils import CaptureQueriesContext

    batch = _calls("fresh", 20)
    for call in batch[5:10]:  # a trace whose parent comes in a later batch
        call["parent_observation_id"] = "fresh-1-later" if call["parent_observation_id"] else None
    with CaptureQueriesContext(connections[region_database(project.region)]) as queries:
        writer.write_records(project=project, traces=[], observations=batch, scores=[])
    probes = [q["sql"] for q in queries if "parent_observation_id" in q["sql"] and q["sql"].lstrip().startswith("SELECT")]
    assert probes == [], probes
    marked = dict(Observation.objects.for_project(project).filter(id__startswith="fresh-").values_list("id", "duplicate_of"))
    assert [marked[f"fresh-{t}-1"] for t in range(20) if t != 1] == [f"fresh-{t}-0" for t in range(20) if t != 1]
    assert {marked[f"fresh-{t}-{i}"] for t in range(20) for i in (0, 2, 3, 4)} | {marked["fresh-1-1"]} == {""}

    # The parent arrives later: its trace is stored now, so its stored children are found and marked.
    parent = {**CALL, "id": "fresh-1-later", "trace_id": "fresh-trace-1", "parent_observation_id": None,
              "start_time": T0, "end_time": T0 + timedelta(seconds=10)}
    writer.write_records(project=project, traces=[], observations=[parent], scores=[])
    marked = dict(Observation.objects.for_project(project).filter(trace_id="fresh-trace-1").values_list("id", "duplicate_of"))
    assert marked["fresh-1-1"] == "fresh-1-later" and marked["fresh-1-later"] == ""
