"""`ingest.timing` (CPU per ingest stage, printed by `make bench-ingest`) and `writer.rows_as_stored`
(the rows its bare-PostgreSQL baseline upserts): the benchmark's figures are only as good as these."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ingest import pipeline, timing, writer
from ingest.adapters.otel.services import export_traces
from ingest.adapters.otel.testing import make_request, make_span
from traces.models import Observation, Trace


@pytest.fixture
def timed():
    timing.reset()
    timing.enabled = True
    yield timing.totals
    timing.enabled = False
    timing.reset()


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_nested_stages_are_counted_once(timed):
    with timing.stage("write"):
        _burn(0.02)
        with timing.stage("price"):
            _burn(0.03)
    assert timed["price"] == pytest.approx(0.03, abs=0.01)
    assert timed["write"] == pytest.approx(0.02, abs=0.01)  # its own CPU, the nested price left out


def test_off_by_default_it_records_nothing():
    timing.reset()
    with timing.stage("write"):
        _burn(0.005)
    assert timing.totals == {}


def test_an_export_is_split_into_every_stage(timed, project):
    trace_id = uuid.uuid4().hex
    spans = [
        make_span(trace_id=trace_id, span_id=uuid.uuid4().hex[:16], name="chat",
                  attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                              "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2})
    ]
    export_traces(project=project, body=make_request(spans).SerializeToString(), protobuf=True)
    assert {"decode", "map", *(stage.name for stage in pipeline.STAGES)} <= timed.keys()
    assert timed["price"] > 0  # the catalog lookup inside the writer is counted as price, not write


def test_rows_as_stored_are_the_rows_the_writer_inserts(project):
    start = datetime(2026, 11, 26, 19, 42, tzinfo=UTC)
    traces = [{"id": "t1", "name": "turn", "user_id": "u1", "tags": ["b", "a"], "metadata": {"k": 1}}]
    observations = [
        {"id": "o1", "trace_id": "t1", "type": "GENERATION", "model": "gpt-4o", "start_time": start,
         "end_time": start + timedelta(seconds=2), "input_tokens": 100, "output_tokens": 10,
         "input": [{"role": "user", "content": "hi"}], "metadata": {"a": {"b": 2}}},
        {"id": "o2", "trace_id": "t2", "type": "SPAN", "start_time": start, "parent_observation_id": "o1"},
    ]
    trace_rows, obs_rows = writer.rows_as_stored(project=project, traces=traces, observations=observations)
    writer.write_records(project=project, traces=traces, observations=observations, scores=[])

    skip = {"created_at", "updated_at"}  # stamped at write time
    for rows, model in ((trace_rows, Trace), (obs_rows, Observation)):
        stored = {o.id: o for o in model.objects.for_project(project)}
        assert {row["id"] for row in rows} == set(stored)
        for row in rows:
            for column, value in row.items():
                if column in skip:
                    continue
                got = getattr(stored[row["id"]], model._meta.get_field(column).attname
                              if column != "id" else "id")
                if column == "timestamp" and row.get("timestamp_is_placeholder"):
                    continue
                assert got == value or (got is not None and value is not None and float(got) == float(value)), (
                    model.__name__, row["id"], column, got, value)
