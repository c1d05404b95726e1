"""Capture fidelity (issue 10): details that add up, the vendor variants of the conventions, one call
counted once, and a refusal's text kept as the answer.

- costDetails are disjoint and sum to the total (the served `input` used to be the input-cost column,
  which includes the cache reads and writes listed beside it); usageDetails hold our kinds once, the
  raw attribute names (`gen_ai.usage.input_tokens` …) live in `metadata.usage_raw`;
- every alias in `ingest.rules.conventions` lands in its kind (one test per row): the anthropic SDK's
  `gen_ai.usage.cache_write.input_tokens` was lost and counted as fresh input (233 instead of 23), its
  `anthropic.message.stop_reason = "refusal"` was stored as success;
- an SDK span nested under OpenInference's span for the same API call is marked `duplicate_of` and
  counted once in trace totals (read API, console, prompt metrics);
- `{"content": null, "refusal": "I'm sorry…"}` keeps the refusal text as the answer, both wires.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from django.test import Client
from django.urls import reverse

from ingest.adapters.otel.mapping import map_request
from ingest.adapters.otel.testing import T0_NANOS, make_request, make_span
from ingest.rules import conventions
from ingest.rules.conventions import CACHE_WRITE, CACHED_INPUT, INPUT, OUTPUT, REASONING, TOTAL
from ingest.rules.usage import CACHE_READ_KEYS, CACHE_WRITE_KEYS, REASONING_KEYS
from tenancy.models import Role
from traces.models import Observation
from traces.public import render

INGESTION = "/api/public/ingestion"
OTLP = "/api/public/otel/v1/traces"
START = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=T0_NANOS // 1000)
SONNET = "claude-sonnet-4-6"


def _map_one(attributes: dict, *, scope: str = "tests") -> dict:
    batch = map_request(make_request([make_span(attributes=attributes, end_ns=T0_NANOS + 10**9)], scope_name=scope))
    assert batch.rejected == []
    return batch.observations[0]


def _langfuse(client, api_key, events):
    return client.post(
        INGESTION,
        data=orjson.dumps({"batch": events}),
        content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )


def _event(event_type: str, body: dict) -> dict:
    return {"id": uuid.uuid4().hex, "type": event_type, "timestamp": START.isoformat(), "body": body}


def _otlp(client, api_key, spans, *, scope="tests"):
    request = make_request(spans, scope_name=scope, resource={"service.name": "svc"})
    response = client.post(
        OTLP, data=request.SerializeToString(), content_type="application/x-protobuf", HTTP_AUTHORIZATION=api_key.basic
    )
    assert response.status_code == 200, response.content
    return response


def _trace(client, api_key, trace_id):
    response = client.get(f"/api/public/traces/{trace_id}", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def console(organization, member_of):
    browser = Client()
    browser.force_login(member_of(organization, Role.VIEWER))
    return browser


@pytest.fixture
def sonnet_price(project):
    from pricing.models import ModelPrice

    return ModelPrice.objects.create(
        project=project,
        provider="anthropic",
        model_name=SONNET,
        match_pattern=f"^{SONNET}$",
        effective_from=datetime(1960, 1, 1, tzinfo=UTC),
        input_price=Decimal(3),
        cached_input_price=Decimal("0.3"),
        cache_write_price=Decimal("3.75"),
        output_price=Decimal(15),
        reasoning_price=Decimal(15),
    )


# --- 1. details add up ---------------------------------------------------------------------------


def _input_keys_sum(details: dict) -> int:
    """How a Langfuse-compatible consumer counts input: every key containing "input"."""
    return sum(v for k, v in details.items() if "input" in k)


def test_catalog_cost_details_are_disjoint_and_sum_to_the_total(client, project, api_key, sonnet_price):
    trace_id, gen_id = uuid.uuid4().hex, uuid.uuid4().hex
    usage = {"input": 23, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 210, "output": 40}
    body = {"id": gen_id, "traceId": trace_id, "model": SONNET, "startTime": START.isoformat(), "usageDetails": usage}
    assert _langfuse(client, api_key, [_event("generation-create", body)]).status_code == 207

    (obs,) = _trace(client, api_key, trace_id)["observations"]
    details = obs["costDetails"]
    assert details["total"] == pytest.approx(obs["calculatedTotalCost"])
    assert sum(v for k, v in details.items() if k != "total") == pytest.approx(details["total"])
    assert details["input"] == pytest.approx(23 * 3e-6)  # fresh input only, not the input-side column
    assert details["cached_input"] == pytest.approx(1000 * 0.3e-6)
    assert details["cache_write"] == pytest.approx(210 * 3.75e-6)
    # The input-side column is the whole input cost still (Langfuse's calculatedInputCost).
    assert obs["calculatedInputCost"] == pytest.approx(23 * 3e-6 + 1000 * 0.3e-6 + 210 * 3.75e-6)
    # usageDetails: each count once, so "input"-keyed entries add up to the whole input.
    assert _input_keys_sum(obs["usageDetails"]) == 23 + 1000 + 210


def test_genai_usage_details_hold_each_kind_once_and_the_raw_map_moves_to_metadata(client, project, api_key):
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": SONNET,
        "gen_ai.usage.input_tokens": 1233,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_creation.input_tokens": 210,
        "gen_ai.usage.output_tokens": 40,
    }
    _otlp(client, api_key, [make_span(trace_id=trace_id, span_id=span_id, attributes=attributes, end_ns=T0_NANOS + 10**9)])

    (obs,) = _trace(client, api_key, trace_id)["observations"]
    assert obs["usageDetails"] == {
        "input": 23, "input_cached_tokens": 1000, "input_cache_creation": 210, "output": 40, "total": 1273
    }
    assert _input_keys_sum(obs["usageDetails"]) == 1233
    assert obs["metadata"]["usage_raw"]["gen_ai.usage.input_tokens"] == 1233
    stored = Observation.objects.for_project(project).get(id=span_id)
    assert not any("." in key for key in stored.usage_details)


def test_openinference_client_costs_are_stored_disjoint():
    obs = _map_one(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": SONNET,
            "llm.cost.prompt": 0.01,
            "llm.cost.prompt_details.cache_read": 0.002,
            "llm.cost.prompt_details.cache_write": 0.003,
            "llm.cost.completion": 0.02,
            "llm.cost.completion_details.reasoning": 0.005,
            "llm.cost.total": 0.03,
        }
    )
    details = obs["cost_details"]
    assert details == pytest.approx(
        {"input": 0.005, "cached_input": 0.002, "cache_write": 0.003, "output": 0.015, "reasoning": 0.005, "total": 0.03}
    )
    assert sum(v for k, v in details.items() if k != "total") == pytest.approx(details["total"])
    assert (obs["input_cost"], obs["output_cost"]) == (Decimal("0.01"), Decimal("0.02"))
    assert obs["metadata"]["cost_raw"]["prompt"] == 0.01


def test_served_cost_details_do_not_repeat_cache_costs_in_input(project):
    # A row as the catalog stores it: disjoint details; the input column holds the whole input side.
    o = Observation(
        project_id=project.id,
        id="x",
        trace_id="t",
        input_cost=Decimal("0.3"),
        output_cost=Decimal("0.5"),
        total_cost=Decimal("0.8"),
        cost_details={"input": 0.1, "cached_input": 0.2, "output": 0.4, "reasoning": 0.1, "total": 0.8},
        usage_details={"input": 5, "gen_ai.usage.input_tokens": 12, "cache_read_input_tokens": 7},
        input_tokens=5,
        cached_input_tokens=7,
    )
    costs = render.cost_details(o)
    assert costs == pytest.approx({"input": 0.1, "cached_input": 0.2, "output": 0.4, "reasoning": 0.1, "total": 0.8})
    assert render.usage_details(o) == {"input": 5, "input_cached_tokens": 7}


def test_the_read_api_knows_every_usage_spelling_the_write_path_reads():
    for key in (*CACHE_READ_KEYS, *CACHE_WRITE_KEYS, *REASONING_KEYS):
        assert key in render._USAGE_ALIASES, key


# --- 2. vendor variants: one test per row of the table -------------------------------------------

# Beside each alias under test, the whole it is a part of (the conventions are inclusive).
_WHOLE = {CACHED_INPUT: ("gen_ai.usage.input_tokens", 233), CACHE_WRITE: ("gen_ai.usage.input_tokens", 233),
          REASONING: ("gen_ai.usage.output_tokens", 50)}
_EXPECTED = {
    INPUT: {"input_tokens": 233},
    CACHED_INPUT: {"input_tokens": 23, "cached_input_tokens": 210},
    CACHE_WRITE: {"input_tokens": 23, "cache_write_tokens": 210},
    OUTPUT: {"output_tokens": 233},
    REASONING: {"output_tokens": 30, "reasoning_tokens": 20},
    TOTAL: {"total_tokens": 233},
}


@pytest.mark.parametrize(
    ("attribute", "kind"),
    [pytest.param(a, k, id=f"{a} ({who})") for a, k, who in conventions.USAGE_ATTRIBUTES],
)
def test_every_usage_alias_lands_in_its_kind(attribute, kind):
    attributes = {"gen_ai.operation.name": "chat"}
    if kind in _WHOLE:
        whole, count = _WHOLE[kind]
        attributes[whole] = count
        attributes[attribute] = 20 if kind == REASONING else 210
    else:
        attributes[attribute] = 233
    obs = _map_one(attributes)
    assert {k: obs[k] for k in _EXPECTED[kind]} == _EXPECTED[kind]
    assert obs["metadata"]["usage_raw"][attribute] == attributes[attribute]
    assert attribute not in obs["metadata"]["otel"].get("attributes", {})


@pytest.mark.parametrize(("attribute", "who"), conventions.FINISH_REASON_ATTRIBUTES)
def test_every_stop_reason_attribute_is_read(attribute, who):
    obs = _map_one({"gen_ai.operation.name": "chat", attribute: "refusal"})
    assert (obs["status"], obs["finish_reason"]) == ("refused", "refusal")


def _anthropic_sdk_span(trace_id, span_id, parent=None, *, start=T0_NANOS, end=T0_NANOS + 10**9):
    """A cache-hit call as the official anthropic SDK traces itself (its own attribute names)."""
    return make_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=f"chat {SONNET}",
        kind=3,
        start_ns=start,
        end_ns=end,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": SONNET,
            "gen_ai.usage.input_tokens": 233,
            "gen_ai.usage.cache_write.input_tokens": 210,
            "gen_ai.usage.output_tokens": 12,
            "anthropic.message.stop_reason": "refusal",
        },
    )


def test_the_anthropic_sdks_cache_writes_and_refusal_are_stored(client, project, api_key):
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    _otlp(client, api_key, [_anthropic_sdk_span(trace_id, span_id)], scope="anthropic")
    obs = Observation.objects.for_project(project).get(id=span_id)
    assert (obs.input_tokens, obs.cache_write_tokens, obs.output_tokens) == (23, 210, 12)
    assert (obs.status, obs.finish_reason) == ("refused", "refusal")


# --- 3. one call counted once ----------------------------------------------------------------------


def _openinference_span(trace_id, span_id, *, start=T0_NANOS - 10**6, end=T0_NANOS + 2 * 10**9, prompt=233):
    return make_span(
        trace_id=trace_id,
        span_id=span_id,
        name="Messages",
        start_ns=start,
        end_ns=end,
        attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": SONNET,
            "llm.token_count.prompt": prompt,
            "llm.token_count.prompt_details.cache_write": 210,
            "llm.token_count.completion": 12,
            "llm.token_count.total": prompt + 12,
        },
    )


def test_an_sdk_span_nested_in_openinferences_span_is_counted_once(client, project, api_key, sonnet_price, console):
    trace_id, outer, inner = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    # The inner span ends first and is exported on its own, before the outer one (two batches).
    _otlp(client, api_key, [_anthropic_sdk_span(trace_id, inner, outer)], scope="anthropic")
    _otlp(client, api_key, [_openinference_span(trace_id, outer)], scope="openinference.instrumentation.anthropic")

    rows = {o.id: o for o in Observation.objects.for_project(project).filter(trace_id=trace_id)}
    assert rows[inner].duplicate_of == outer and rows[outer].duplicate_of == ""
    one = rows[outer]
    assert one.total_cost is not None and one.total_cost == rows[inner].total_cost

    trace = _trace(client, api_key, trace_id)
    assert trace["totalCost"] == pytest.approx(float(one.total_cost))
    served = {o["id"]: o["duplicateOf"] for o in trace["observations"]}
    assert served == {outer: None, inner: outer}
    listed = client.get("/api/public/traces?limit=50", HTTP_AUTHORIZATION=api_key.basic).json()["data"]
    (row,) = [t for t in listed if t["id"] == trace_id]
    assert row["totalCost"] == pytest.approx(float(one.total_cost))

    (listed_row,) = [r for r in console.get("/admin/traces/").context["rows"] if r.trace.id == trace_id]
    assert (listed_row.total_cost, listed_row.total_tokens) == (one.total_cost, one.total_tokens)

    page = console.get(reverse("admin:traces_trace_detail", args=[project.id, trace_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "same call as Messages" in html and "same call also recorded by anthropic" in html
    summary = page.context["summary"]
    assert (summary["input_tokens"], summary["cache_write_tokens"], summary["output_tokens"]) == (23, 210, 12)
    assert summary["total_cost"] == f"${one.total_cost:.6f}"


def test_both_spans_in_one_batch_are_recognised_too(client, project, api_key):
    trace_id, outer, inner = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    _otlp(client, api_key, [_anthropic_sdk_span(trace_id, inner, outer), _openinference_span(trace_id, outer)])
    rows = {o.id: o for o in Observation.objects.for_project(project).filter(trace_id=trace_id)}
    assert rows[inner].duplicate_of == outer


@pytest.mark.parametrize(
    "outer_kwargs",
    [
        pytest.param({"prompt": 500}, id="different usage"),
        pytest.param({"end": T0_NANOS + 5 * 10**8}, id="child outlasts the parent"),
    ],
)
def test_a_nested_generation_of_another_call_is_counted(client, project, api_key, outer_kwargs):
    trace_id, outer, inner = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    _otlp(client, api_key, [_anthropic_sdk_span(trace_id, inner, outer), _openinference_span(trace_id, outer, **outer_kwargs)])
    rows = {o.id: o for o in Observation.objects.for_project(project).filter(trace_id=trace_id)}
    assert rows[inner].duplicate_of == "" and rows[outer].duplicate_of == ""


def test_a_pair_is_unmarked_when_an_update_makes_them_differ(client, project, api_key):
    trace_id, outer, inner = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    base = {"traceId": trace_id, "model": SONNET, "usageDetails": {"input": 10, "output": 5}}
    events = [
        _event("generation-create", {"id": outer, **base, "startTime": START.isoformat(),
                                     "endTime": (START + timedelta(seconds=2)).isoformat()}),
        _event("generation-create", {"id": inner, **base, "parentObservationId": outer,
                                     "startTime": (START + timedelta(seconds=0.5)).isoformat(),
                                     "endTime": (START + timedelta(seconds=1)).isoformat()}),
    ]
    assert _langfuse(client, api_key, events).status_code == 207
    assert Observation.objects.for_project(project).get(id=inner).duplicate_of == outer
    update = _event("generation-update", {"id": inner, "traceId": trace_id, "usageDetails": {"input": 99, "output": 5}})
    assert _langfuse(client, api_key, [update]).status_code == 207
    assert Observation.objects.for_project(project).get(id=inner).duplicate_of == ""


def test_prompt_metrics_count_the_call_once(client, project, api_key):
    from prompts import selectors as prompt_selectors

    trace_id, outer, inner = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    base = {"traceId": trace_id, "model": SONNET, "usageDetails": {"input": 10, "output": 5},
            "promptName": "greet", "promptVersion": 1}
    events = [
        _event("generation-create", {"id": outer, **base, "startTime": START.isoformat(),
                                     "endTime": (START + timedelta(seconds=2)).isoformat()}),
        _event("generation-create", {"id": inner, **base, "parentObservationId": outer,
                                     "startTime": (START + timedelta(seconds=0.5)).isoformat(),
                                     "endTime": (START + timedelta(seconds=1)).isoformat()}),
    ]
    assert _langfuse(client, api_key, events).status_code == 207
    from prompts.payloads import parse_create
    from prompts.services import prompt_create_version

    prompt, _ = prompt_create_version(project=project, data=parse_create({"name": "greet", "prompt": "hi"}), actor=None)
    # A window of whole days (the rollups) and one within an hour or two (the raw calls).
    day = START.replace(hour=0, minute=0, second=0, microsecond=0)
    for since, until in ((day - timedelta(days=1), day + timedelta(days=2)),
                         (START - timedelta(minutes=7), START + timedelta(minutes=7))):
        (row,) = prompt_selectors.compare_versions(project=project, prompt=prompt, since=since, until=until)
        assert (row.version, row.calls) == (1, 1)


# --- 4. refusal text ---------------------------------------------------------------------------------

REFUSAL = "I'm sorry, but I can't help with that."


def test_a_refusal_from_a_langfuse_batch_is_stored_and_shown_as_the_answer(client, project, api_key, console):
    trace_id, gen_id = uuid.uuid4().hex, uuid.uuid4().hex
    output = {"role": "assistant", "content": None, "refusal": REFUSAL}
    body = {"id": gen_id, "traceId": trace_id, "model": "gpt-4o", "startTime": START.isoformat(), "output": output}
    assert _langfuse(client, api_key, [_event("generation-create", body)]).status_code == 207
    obs = Observation.objects.for_project(project).get(id=gen_id)
    assert obs.output == {"role": "assistant", "content": REFUSAL, "refusal": REFUSAL}
    assert obs.status == "refused"
    html = console.get(reverse("admin:traces_trace_detail", args=[project.id, trace_id])).content.decode()
    assert "I&#x27;m sorry, but I can&#x27;t help with that." in html


def test_a_refusal_in_a_whole_chat_completion_is_the_answer():
    from ingest.rules.messages import with_refusal_as_answer

    response = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": REFUSAL},
                             "finish_reason": "stop"}]}
    assert with_refusal_as_answer(response)["choices"][0]["message"]["content"] == REFUSAL
    answered = {"role": "assistant", "content": "Sure.", "refusal": None}
    assert with_refusal_as_answer(answered) is answered


def test_a_refusal_over_openinference_is_stored_as_the_answer():
    obs = _map_one(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.refusal": REFUSAL,
        }
    )
    assert obs["output"] == {"role": "assistant", "content": REFUSAL, "refusal": REFUSAL}
    assert obs["status"] == "refused"


def test_a_refusal_in_genai_output_messages_is_stored_as_the_answer():
    obs = _map_one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.output.messages": orjson.dumps([{"role": "assistant", "parts": [], "refusal": REFUSAL}]).decode(),
        }
    )
    assert obs["output"]["content"] == REFUSAL and obs["status"] == "refused"
