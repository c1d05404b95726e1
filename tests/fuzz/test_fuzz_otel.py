"""Property-based fuzzing of OTLP/HTTP trace export (`/v1/traces`, `/api/public/otel/v1/traces`), in
OTLP/JSON and protobuf, with langfuse.*, OpenInference and GenAI attributes.

Properties, per request: never a 500 (always 200 with an OTLP response); every span accounted for
exactly once, stored (readable at `/api/public/observations/{spanId}`) or counted in
`partialSuccess.rejectedSpans`; a valid span stored, an invalid one rejected alone; the read API still
answers afterwards.
"""

from __future__ import annotations

import os
import uuid

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest.adapters.otel.testing import T0_NANOS, make_request, make_span, to_otlp_json
from tests.fuzz_support import (
    EITHER,
    OK,
    REJECT,
    CountingClient,
    combine,
    describe_known,
    encode,
    fuzz_settings,
    known,
    v,
)

# Real transactions, as in production: each request commits or fails on its own (inside one test-wide
# transaction, a database error that a view turns into a 4xx would poison every later request).
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


EXAMPLES = int(os.environ.get("FUZZ_N", "800"))  # FUZZ_N: fewer examples while working
MIN_REQUESTS = 2600  # ~3.5 per example; ≥ 10,000 with the other fuzz tests

# --- attribute values: (python value for protobuf, OTLP/JSON AnyValue, expectation) ---------------


def any_value(value) -> dict:
    """OTLP/JSON AnyValue for a python value (int64 as a decimal string, as OTLP/JSON encodes it)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(x) for x in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": any_value(x)} for k, x in value.items()]}}
    return {"stringValue": value}


def attr(value, expect=OK, known_label=None, *, raw=None, proto=True):
    """An attribute value; `raw` is a hand-written OTLP/JSON AnyValue, `proto=False` a value protobuf
    cannot carry (the span is then sent as JSON)."""
    return {"v": v(value, expect, known_label), "raw": raw, "proto": proto and raw is None}


def _json_text(node) -> str:
    return encode(node)


json_docs = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
strings = st.one_of(
    st.text(max_size=40).map(attr),  # NUL included
    json_docs.map(lambda d: attr(_json_text(d))),  # JSON-encoded values, as the langfuse SDKs send
    st.sampled_from([10_000, 200_000]).map(lambda n: attr("s" * n)),
    st.text(st.characters(categories=["Cs", "Ll"]), min_size=1, max_size=6).map(
        lambda s: attr(s, proto=False)
    ),
    known(
        st.sampled_from([2_000, 50_000]).map(lambda n: attr("[" * n + "]" * n, EITHER, "deep"))
    ),  # deeply nested JSON strings
)
counts = st.one_of(
    st.integers(0, 10**7).map(attr),
    st.integers(-(10**6), -1).map(lambda n: attr(n, EITHER)),
    st.floats(0, 1e6).map(attr),
    st.text(max_size=6).map(lambda s: attr(s, EITHER)),
    known(st.sampled_from([2**62, 2**63 - 1, -(2**63)]).map(lambda n: attr(n, EITHER, "otlp-int"))),
    known(
        st.sampled_from([2**63, 2**64, 2**64 + 1, 10**30]).map(
            lambda n: attr(n, EITHER, "otlp-int", proto=False)
        )
    ),
)
scalars = st.one_of(
    strings,
    counts,
    st.booleans().map(attr),
    st.floats(allow_nan=False, allow_infinity=False).map(attr),
    st.lists(st.text(max_size=5), max_size=3).map(attr),
    st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3).map(attr),
    known(
        st.dictionaries(st.text(max_size=5), st.integers(2**64, 2**80), min_size=1, max_size=2).map(
            lambda d: attr(d, EITHER, "otlp-int", proto=False)
        )
    ),
)
malformed = st.sampled_from(
    [
        {"intValue": "abc"},
        {"intValue": [1]},
        {"stringValue": 5},
        {"boolValue": "yes"},
        {"doubleValue": "x"},
        {"arrayValue": {"values": 3}},
        7,
        "bare",
    ]
).map(lambda raw: attr(None, REJECT, raw=raw)) | st.just(attr(None, EITHER, raw={"bytesValue": "%%%"}))

KEYS = {
    "langfuse.observation.type": st.one_of(
        st.sampled_from(
            [
                "span",
                "generation",
                "event",
                "agent",
                "tool",
                "chain",
                "retriever",
                "evaluator",
                "embedding",
                "guardrail",
            ]
        ).map(attr),
        strings,
    ),
    "langfuse.observation.input": strings,
    "langfuse.observation.output": strings,
    "langfuse.observation.metadata.key": scalars,
    "langfuse.observation.usage_details": strings,
    "langfuse.observation.cost_details": strings,
    "langfuse.observation.model.name": strings,
    "langfuse.observation.model.parameters": strings,
    "langfuse.observation.level": st.one_of(
        st.sampled_from(["DEBUG", "DEFAULT", "WARNING", "ERROR"]).map(attr), scalars
    ),
    "langfuse.observation.completion_start_time": st.one_of(
        st.just(attr('"2026-11-26T19:41:58.9Z"')), scalars
    ),
    "langfuse.observation.prompt.name": strings,
    "langfuse.observation.prompt.version": counts,
    "langfuse.trace.name": strings,
    "langfuse.trace.tags": scalars,
    "langfuse.trace.metadata": strings,
    "langfuse.user.id": strings,
    "langfuse.session.id": strings,
    "langfuse.environment": strings,
    "openinference.span.kind": st.one_of(
        st.sampled_from(["LLM", "TOOL", "CHAIN", "AGENT", "RETRIEVER", "EMBEDDING", "GUARDRAIL"]).map(attr),
        scalars,
    ),
    "llm.model_name": strings,
    "llm.token_count.prompt": counts,
    "llm.token_count.completion": counts,
    "llm.token_count.total": counts,
    "llm.token_count.prompt_details.cache_read": counts,
    "llm.invocation_parameters": strings,
    "llm.input_messages.0.message.role": strings,
    "llm.input_messages.0.message.content": strings,
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": strings,
    "input.value": strings,
    "output.value": strings,
    "tool.name": strings,
    "session.id": strings,
    "user.id": strings,
    "gen_ai.system": strings,
    "gen_ai.operation.name": st.one_of(
        st.sampled_from(["chat", "execute_tool", "embeddings"]).map(attr), scalars
    ),
    "gen_ai.request.model": strings,
    "gen_ai.response.model": strings,
    "gen_ai.usage.input_tokens": counts,
    "gen_ai.usage.output_tokens": counts,
    "gen_ai.usage.prompt_tokens": counts,
    "gen_ai.usage.cache_read.input_tokens": counts,
    "gen_ai.request.temperature": scalars,
    "gen_ai.input.messages": strings,
    "gen_ai.output.messages": strings,
    "gen_ai.prompt": strings,
    "gen_ai.completion": strings,
    "gen_ai.response.finish_reasons": scalars,
    "gen_ai.tool.call.arguments": strings,
    "weird.key\x00": scalars,
}


class SpanCase:
    def __init__(self, span_id, parts, *, json_span, proto_ok, proto_kwargs):
        self.span_id = span_id
        self.expect, self.known = combine(parts)
        self.json_span = json_span
        self.proto_ok = proto_ok
        self.proto_kwargs = proto_kwargs


@st.composite
def spans(draw, trace_id):
    span_id = uuid.uuid4().hex[:16]
    parts, proto_ok = [], True
    keys = draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=8, unique=True))
    attributes, json_attributes = {}, []
    for key in keys:
        value = draw(st.one_of(KEYS[key], malformed) if draw(st.floats(0, 1)) < 0.1 else KEYS[key])
        parts.append(value["v"])
        proto_ok = proto_ok and value["proto"]
        attributes[key] = value["v"].value
        json_attributes.append(
            {"key": key, "value": value["raw"] if value["raw"] is not None else any_value(value["v"].value)}
        )
    start = draw(
        st.one_of(
            st.integers(T0_NANOS - 10**17, T0_NANOS + 10**17).map(v),  # ±3 years around 2026
            st.sampled_from([0, 1, 2**63 - 1, 2**64 - 1]).map(lambda n: v(n, EITHER)),
        )
    )
    duration = draw(st.one_of(st.integers(0, 10**11), st.integers(-(10**11), -1)))
    end = start.value + duration
    if not 0 <= end < 2**64:
        end = start.value
    parts.append(start)
    name = draw(st.one_of(st.text(max_size=30), st.just("n" * 5000)))
    kwargs = {
        "trace_id": trace_id,
        "span_id": span_id,
        "name": name,
        "start_ns": start.value,
        "end_ns": end,
        "kind": draw(st.integers(0, 5)),
    }
    exception = draw(st.booleans())
    if exception:
        kwargs["events"] = [
            ("exception", start.value, {"exception.type": "ValueError", "exception.message": "boom"})
        ]
        kwargs["status"] = (2, "boom")
    json_span = to_otlp_json(make_request([make_span(**kwargs)]))["resourceSpans"][0]["scopeSpans"][0][
        "spans"
    ][0]
    json_span["attributes"] = json_attributes
    # Ids that are not ids: the span alone is rejected.
    broken = draw(st.integers(0, 19))
    if broken == 0:
        json_span["spanId"] = "0" * 16
        parts.append(v(None, REJECT))
    elif broken == 1:
        json_span["spanId"] = span_id[:10]
        parts.append(v(None, REJECT))
    elif broken == 2:
        json_span["traceId"] = "xyz"
        parts.append(v(None, REJECT))
    elif broken == 3:
        json_span["startTimeUnixNano"] = draw(st.sampled_from(["soon", [1], "1e5", str(2**64 + 5)]))
        parts.append(v(None, REJECT if json_span["startTimeUnixNano"] != str(2**64 + 5) else EITHER))
    if broken <= 3:
        proto_ok = False  # malformed ids and times only exist in JSON
    kwargs["attributes"] = attributes
    return SpanCase(span_id, parts, json_span=json_span, proto_ok=proto_ok, proto_kwargs=kwargs)


@st.composite
def exports(draw):
    trace_id = uuid.uuid4().hex
    cases = draw(st.lists(spans(trace_id), min_size=1, max_size=4))
    protobuf = all(c.proto_ok for c in cases) and draw(st.booleans())
    resource = draw(
        st.sampled_from(
            [{"service.name": "svc"}, {"langfuse.environment": "staging", "langfuse.release": "r1"}, {}]
        )
    )
    scope = draw(st.sampled_from(["langfuse-sdk", "openinference.instrumentation.openai", "tests"]))
    path = draw(st.sampled_from(["/v1/traces", "/api/public/otel/v1/traces"]))
    return cases, protobuf, resource, scope, path


def _fail(message, cases):
    known_labels = frozenset().union(*(c.known for c in cases))
    pytest.fail(f"{message}\n-> {describe_known(known_labels)}", pytrace=False)


@pytest.fixture
def fuzz(api_key):
    client = CountingClient("otel")
    client.defaults["HTTP_AUTHORIZATION"] = api_key.basic
    return client


def test_fuzz_otlp_exports(fuzz):
    start = fuzz.count
    sent = []

    @fuzz_settings(EXAMPLES)
    @given(export=exports())
    def check(export):
        cases, protobuf, resource, scope, path = export
        if protobuf:
            request = make_request(
                [make_span(**c.proto_kwargs) for c in cases], resource=resource, scope_name=scope
            )
            response = fuzz.post(path, request.SerializeToString(), content_type="application/x-protobuf")
        else:
            document = to_otlp_json(make_request([], resource=resource, scope_name=scope))
            document["resourceSpans"][0]["scopeSpans"][0]["spans"] = [c.json_span for c in cases]
            response = fuzz.post(path, encode(document), content_type="application/json")
        if response.status_code != 200:
            _fail(f"export answered {response.status_code}: {response.content[:300]!r}", cases)
        if protobuf:
            rejected = ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans
        else:
            rejected = int(orjson.loads(response.content).get("partialSuccess", {}).get("rejectedSpans", 0))
        stored = 0
        for case in cases:
            read = fuzz.get(f"/api/public/observations/{case.span_id}")
            if read.status_code not in (200, 404):
                _fail(
                    f"span {case.span_id} reads back {read.status_code}: {case.json_span['attributes']!r:.1500}",
                    [case],
                )
            found = read.status_code == 200
            stored += found
            if case.expect == OK and not found:
                _fail(
                    f"valid span not stored: {case.json_span['attributes']!r:.600}\n{response.content[:300]!r}",
                    [case],
                )
            if case.expect == REJECT and found:
                _fail(f"invalid span stored: {case.json_span['attributes']!r:.600}", [case])
        if stored + rejected != len(cases):
            _fail(f"{len(cases)} spans: {stored} stored, {rejected} rejected", cases)
        sent.append(cases)
        if len(sent) % 10 == 0:
            for path in ("/api/public/traces?limit=5&fields=core", "/api/public/v2/observations?limit=5"):
                read = fuzz.get(path)
                if read.status_code != 200:
                    _fail(
                        f"{path} answered {read.status_code}: {read.content[:200]!r}",
                        [c for batch in sent[-10:] for c in batch],
                    )

    check()
    made = fuzz.count - start
    print(f"\nfuzz otel: {made} requests")
    assert made >= MIN_REQUESTS
    assert fuzz.get("/api/public/health").status_code == 200
