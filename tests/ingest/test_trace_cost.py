"""The trace's own cost (`Trace.cost`, `Trace.cost_calls`, issue 16): kept by the writer from the same
per-call (new − old) deltas as the monitoring rollups (`ingest.rollups`), so it always equals what
the readers summed before — `total_cost` of the trace's counted observations (any type, not the
duplicate of its parent's call), NULL when none has a cost — through creates, updates, replays,
observations that arrive before their trace, duplicate marking, re-pricing, both wire formats, and
`manage.py rebuild_trace_costs` for rows stored before the columns existed."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.models import Count, Sum

from ingest.adapters.otel.testing import T0_NANOS, make_request, make_span
from ingest.services import ingest_langfuse_batch
from tenancy.regions import region_database
from traces.models import Observation, Trace

OTLP = "/api/public/otel/v1/traces"
START = datetime(2026, 3, 1, 12, tzinfo=UTC)
SONNET = "claude-sonnet-4-6"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(kind: str, body: dict) -> dict:
    return {"id": uuid.uuid4().hex, "type": kind, "timestamp": iso(START), "body": body}


def send(project, *events) -> None:
    result = ingest_langfuse_batch(project=project, payload={"batch": list(events)})
    assert not result.errors, result.errors


def summed(project) -> dict[str, tuple]:
    """What the readers sum: {trace id: (cost, calls with a cost)} of the counted observations."""
    rows = (
        Observation.objects.for_project(project).filter(duplicate_of="").order_by().values("trace_id")
        .annotate(cost=Sum("total_cost"), calls=Count("total_cost"))
    )
    return {row["trace_id"]: (row["cost"], row["calls"]) for row in rows}


def stored(project) -> dict[str, tuple]:
    return {t.id: (t.cost, t.cost_calls) for t in Trace.objects.for_project(project)}


def assert_exact(project) -> dict[str, tuple]:
    expected = summed(project)
    columns = stored(project)
    assert columns == {tid: expected.get(tid, (None, 0)) for tid in columns}
    return columns


def generation(gen_id: str, trace_id: str, cost=None, **extra) -> dict:
    body = {"id": gen_id, "traceId": trace_id, "name": "llm", "startTime": iso(START),
            "endTime": iso(START + timedelta(seconds=1)), "model": "gpt-4o-mini", **extra}
    if cost is not None:
        body["costDetails"] = {"total": cost}
    return body


def test_creates_updates_and_replays_keep_the_cost_exact(project, other_project):
    batch = [
        event("trace-create", {"id": "t1", "name": "chat", "timestamp": iso(START)}),
        event("generation-create", generation("g1", "t1", 0.002)),
        event("generation-create", generation("g2", "t1", 0.0005)),
        # No price and no client cost: unknown, left out of the sum (not zero) and of the calls.
        event("generation-create", generation("g3", "t1", model="no-such-model", usageDetails={"input": 5})),
        event("span-create", {"id": "s1", "traceId": "t1", "name": "tool", "startTime": iso(START)}),
        event("trace-create", {"id": "t-empty", "name": "nothing", "timestamp": iso(START)}),
    ]
    send(project, *batch)
    send(other_project, event("generation-create", generation("g1", "t1", 7)))
    assert assert_exact(project) == {"t1": (Decimal("0.0025"), 2), "t-empty": (None, 0)}

    send(project, *batch)  # a replay: new − old = 0
    assert assert_exact(project)["t1"] == (Decimal("0.0025"), 2)

    send(project, event("generation-update", {"id": "g1", "traceId": "t1", "costDetails": {"total": 0.01}}))
    assert assert_exact(project)["t1"] == (Decimal("0.0105"), 2)
    # Another tenant's trace of the same id keeps its own cost.
    assert stored(other_project) == {"t1": (Decimal(7), 1)}


def test_observations_before_their_trace_and_a_late_trace_create(project):
    send(project, event("generation-create", generation("g1", "late", 0.003)))
    assert Trace.objects.for_project(project).get(id="late").timestamp_is_placeholder
    assert assert_exact(project) == {"late": (Decimal("0.003"), 1)}
    # The trace's own create replaces the placeholder's fields, never its cost.
    send(project, event("trace-create", {"id": "late", "name": "chat", "timestamp": iso(START - timedelta(hours=1)),
                                         "metadata": {"k": "v"}}))
    send(project, event("trace-create", {"id": "late", "userId": "u1"}), event("generation-create", generation("g2", "late", 0.001)))
    trace = Trace.objects.for_project(project).get(id="late")
    assert (trace.name, trace.user_id, trace.timestamp_is_placeholder) == ("chat", "u1", False)
    assert assert_exact(project) == {"late": (Decimal("0.004"), 2)}


@pytest.fixture
def sonnet_price(project):
    from pricing.models import ModelPrice

    return ModelPrice.objects.create(
        project=project, provider="anthropic", model_name=SONNET, match_pattern=f"^{SONNET}$",
        effective_from=datetime(1960, 1, 1, tzinfo=UTC), input_price=Decimal(3), cached_input_price=Decimal("0.3"),
        cache_write_price=Decimal("3.75"), output_price=Decimal(15), reasoning_price=Decimal(15),
    )


def test_a_call_marked_as_its_parents_duplicate_leaves_the_cost_and_comes_back_when_unmarked(project, sonnet_price):
    base = {"traceId": "t1", "model": SONNET, "usageDetails": {"input": 10, "output": 5}}
    outer = {"id": "outer", **base, "startTime": iso(START), "endTime": iso(START + timedelta(seconds=2))}
    inner = {"id": "inner", **base, "parentObservationId": "outer", "startTime": iso(START + timedelta(seconds=0.5)),
             "endTime": iso(START + timedelta(seconds=1))}
    # The inner call first (alone it counts), then its parent: it is marked, and leaves the sum.
    send(project, event("generation-create", inner))
    assert assert_exact(project)["t1"][1] == 1
    send(project, event("generation-create", outer))
    assert Observation.objects.for_project(project).get(id="inner").duplicate_of == "outer"
    one = assert_exact(project)["t1"]
    assert one[1] == 1 and one[0] > 0
    # An update that makes them differ unmarks it: both count.
    send(project, event("generation-update", {"id": "inner", "traceId": "t1", "usageDetails": {"input": 99, "output": 5}}))
    assert Observation.objects.for_project(project).get(id="inner").duplicate_of == ""
    assert assert_exact(project)["t1"][1] == 2


def _openinference(trace_id: str, span_id: str, parent: str | None, cost: float, *, end_s: float) -> object:
    return make_span(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="llm", start_ns=T0_NANOS,
        end_ns=T0_NANOS + int(end_s * 10**9),
        attributes={"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.token_count.prompt": 10,
                    "llm.token_count.completion": 5, "llm.cost.total": cost},
    )


def test_otlp_spans_in_several_exports_and_a_replay(client, project, api_key):
    trace_id = uuid.uuid4().hex
    root, child_a, child_b = (uuid.uuid4().hex[:16] for _ in range(3))

    def export(*spans):
        request = make_request(list(spans), scope_name="openinference.instrumentation.openai")
        response = client.post(OTLP, data=request.SerializeToString(), content_type="application/x-protobuf",
                               HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 200, response.content

    # Children end (and are exported) before their root, whose trace does not exist yet.
    export(_openinference(trace_id, child_a, root, 0.25, end_s=1))
    export(_openinference(trace_id, child_b, root, 0.5, end_s=2))
    export(make_span(trace_id=trace_id, span_id=root, name="agent", start_ns=T0_NANOS, end_ns=T0_NANOS + 3 * 10**9,
                     attributes={"openinference.span.kind": "AGENT", "input.value": "hi"}))
    assert assert_exact(project) == {trace_id: (Decimal("0.75"), 2)}
    export(_openinference(trace_id, child_a, root, 0.25, end_s=1), _openinference(trace_id, child_b, root, 0.5, end_s=2))
    assert assert_exact(project) == {trace_id: (Decimal("0.75"), 2)}


def test_re_pricing_stored_calls_moves_their_traces_cost(project, monkeypatch):
    """Re-pricing (`manage.py reprice`) locks calls, not their traces: the traces' cost moves by a
    join that re-reads a trace changed concurrently, in the same statement as the rollups."""
    from ingest import writer
    from ingest.stages import price as costs

    usage = {"usageDetails": {"input": 1000, "output": 1000}}
    send(project, event("generation-create", generation("g1", "t1", model="house-model", **usage)),
         event("generation-create", generation("g2", "t1", 0.5)))
    assert assert_exact(project) == {"t1": (Decimal("0.5"), 1)}
    monkeypatch.setattr(costs, "catalog_costs", lambda *, project_id, items: [
        {"input_cost": Decimal("0.3"), "output_cost": None, "total_cost": Decimal("0.3"), "cost_details": {"input": 0.3}}
        for _ in items
    ])
    report = writer.reprice_observations(project=project, since=START - timedelta(days=1), until=START + timedelta(days=1))
    assert report.repriced == 1
    assert assert_exact(project) == {"t1": (Decimal("0.8"), 2)}


def test_rebuild_trace_costs_recomputes_rows_stored_without_them(project, other_project):
    for i in range(7):
        send(project, event("generation-create", generation(f"g{i}", f"t{i}", 0.001 * (i + 1))),
             event("generation-create", generation(f"h{i}", f"t{i}", None if i % 2 else 0.5)))
    send(project, event("trace-create", {"id": "t-empty", "timestamp": iso(START)}))
    send(other_project, event("generation-create", generation("g0", "t0", 9)))
    exact = assert_exact(project)
    # As a database migrated past the columns holds its older traces: no cost at all. And one drifted.
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("UPDATE traces_trace SET cost = NULL, cost_calls = 0 WHERE project_id = %s", [project.id])
        cursor.execute("UPDATE traces_trace SET cost = 42, cost_calls = 5 WHERE project_id = %s AND id = 't-empty'",
                       [project.id])
    assert stored(project) != exact
    out = io.StringIO()
    call_command("rebuild_trace_costs", project=[str(project.id)], chunk=3, stdout=out)
    assert f"{project.id} (" in out.getvalue() and "8 traces, 8 fixed" in out.getvalue()
    assert assert_exact(project) == exact
    assert stored(other_project) == {"t0": (Decimal(9), 1)}
    # Run again: nothing differs, nothing is written.
    out = io.StringIO()
    call_command("rebuild_trace_costs", project=[str(project.id)], stdout=out)
    assert "8 traces, 0 fixed" in out.getvalue()


def test_the_cost_rides_in_the_rollups_statement(project):
    """No extra round trip when the batch also moves rollups (every LLM call does)."""
    from django.test.utils import CaptureQueriesContext

    database = region_database(project.region)
    send(project, event("trace-create", {"id": "t1", "timestamp": iso(START)}))
    with CaptureQueriesContext(connections[database]) as captured:
        send(project, event("generation-create", generation("g1", "t1", 0.002)))
    updates = [q["sql"] for q in captured if 'UPDATE "traces_trace"' in q["sql"]]
    assert len(updates) == 1 and "monitoring_hourlyrollup" in updates[0], updates
    assert assert_exact(project)["t1"] == (Decimal("0.002"), 1)


def test_a_new_trace_is_stored_with_its_calls_cost_and_no_update(project, sonnet_price):
    """With the cost indexed, an UPDATE of a trace is a new entry in each of its indexes (the
    full-text one included): a trace created with its calls carries their cost in its INSERT."""
    from django.test.utils import CaptureQueriesContext

    database = region_database(project.region)
    with CaptureQueriesContext(connections[database]) as captured:
        send(project, event("trace-create", {"id": "t1", "timestamp": iso(START)}),
             event("generation-create", generation("g1", "t1", 0.002)),
             event("generation-create", generation("g2", "t1", 0.003)))
    assert not [q["sql"] for q in captured if 'UPDATE "traces_trace"' in q["sql"]]
    assert assert_exact(project) == {"t1": (Decimal("0.005"), 2)}
    # A call marked as its parent's duplicate in the same batch: the INSERT's cost is corrected.
    base = {"traceId": "t2", "model": SONNET, "usageDetails": {"input": 10, "output": 5}}
    send(project,
         event("generation-create", {"id": "inner", **base, "parentObservationId": "outer",
                                     "startTime": iso(START + timedelta(seconds=0.5)),
                                     "endTime": iso(START + timedelta(seconds=1))}),
         event("generation-create", {"id": "outer", **base, "startTime": iso(START),
                                     "endTime": iso(START + timedelta(seconds=2))}))
    assert Observation.objects.for_project(project).get(id="inner").duplicate_of == "outer"
    assert assert_exact(project)["t2"][1] == 1
