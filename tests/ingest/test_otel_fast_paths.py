"""The OTLP adapter's fast paths give exactly what its general paths give (values, types and key
order, since the stored JSON keeps the order): on the benchmark's own OpenInference and GenAI spans
and on the edge shapes next to each fast path's condition."""

import base64
import json
import math
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from bench import bench_ingest
from ingest.adapters.otel import messages as msg
from ingest.adapters.otel.decode import MAX_UNIX_NANOS, decode_json, decode_protobuf
from ingest.adapters.otel.testing import T0_NANOS, make_request, make_span, to_otlp_json
from ingest.adapters.otel.values import to_tags
from ingest.rules import messages as rules_messages
from ingest.rules.values import nanos_to_datetime


def _ordered(value):
    """`value` with every dict as its list of items: equal only with the same key order."""
    if isinstance(value, dict):
        return [(key, _ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def _bench_spans(profile):
    turns = bench_ingest._turns(random.Random(3), 4, datetime(2026, 12, 1, tzinfo=UTC))
    build = bench_ingest.openinference_spans if profile == "openinference" else bench_ingest.genai_spans
    return [span for turn in turns for span in build(turn)]


def test_plain_openinference_messages_are_the_general_paths_on_the_bench_spans():
    batch = decode_protobuf(make_request(_bench_spans("openinference")).SerializeToString())
    messages = []
    for span in batch.spans:
        for prefix in ("llm.input_messages.", "llm.output_messages."):
            messages += msg.pop_indexed(dict(span.attributes), prefix)
    assert len(messages) > 20
    assert any("message.tool_calls.0.tool_call.id" in m for m in messages)  # the general path is here too
    for fields in messages:
        assert _ordered(msg.oi_message(fields)) == _ordered(msg._oi_message(fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"message.role": "user", "message.content": "hi"},
        {"message.content": "hi", "message.role": "user"},
        {"message.role": "assistant"},
        {},
        {"message.role": "user", "message.content": "hi", "message.name": "bob", "role": "other"},
        {"message.role": "assistant", "message.function_call_name": "f", "message.function_call_arguments_json": "{}"},
        {"message.role": "assistant", "message.function_call_arguments_json": None, "message.content": None},
        {"message.role": "user", "message.contents": "not a list", "message.tool_calls": []},
        {"message.role": "user", "message.contents.0.message_content.text": "hi"},
        {"message.role": "user", "message.contents.x.message_content.text": "hi"},
        {"message.role": "assistant", "message.tool_calls.0.tool_call.id": "c1"},
        # Tool calls and content parts interleaved: `oi_message` finds both lists' keys in one pass.
        {
            "message.contents.1.message_content.text": "b",
            "message.tool_calls.1.tool_call.id": "c2",
            "message.role": "assistant",
            "message.contents.0.message_content.type": "text",
            "message.tool_calls.0.tool_call.function.name": "f",
            "message.contents.0.message_content.text": "a",
            "message.tool_calls.0.tool_call.id": "c1",
            "message.tool_calls.1.tool_call.function.arguments": "{}",
            "message.name": "bob",
        },
        {"message.tool_calls.0.tool_call.id": "c1", "message.tool_calls.00.tool_call.id": "c0"},
        {"message.contents.0.message_content.image.image.url": "u", "message.tool_calls.x": 1},
    ],
)
def test_plain_openinference_messages_are_the_general_paths(fields):
    assert _ordered(msg.oi_message(fields)) == _ordered(msg._oi_message(fields))
    assert fields == dict(fields)  # the caller's fields are left as they were


def test_one_text_part_genai_messages_are_the_general_paths_on_the_bench_spans():
    batch = decode_protobuf(make_request(_bench_spans("genai")).SerializeToString())
    raws = [
        raw
        for span in batch.spans
        for key in ("gen_ai.input.messages", "gen_ai.output.messages")
        if key in span.attributes
        for raw in json.loads(span.attributes[key])
    ]
    assert sum(len(raw["parts"]) == 1 and raw["parts"][0]["type"] == "text" for raw in raws) > 10
    for raw in raws:
        assert _ordered(msg.genai_message(raw)) == _ordered(msg._genai_message(raw))


@pytest.mark.parametrize(
    "raw",
    [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
        {"parts": [{"content": "hi", "type": "text"}], "role": "user", "name": "bob"},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}], "content": "ignored", "role2": 1},
        {"role": "user", "parts": [{"type": "text", "content": ["a", "b"]}]},
        {"role": "user", "parts": [{"type": "text", "content": {"x": 1}}]},
        {"role": "user", "parts": [{"type": "text", "content": None}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi", "extra": 1}]},
        {"role": "user", "parts": [{"type": "text"}]},
        {"role": "user", "parts": [{"type": "uri", "content": "hi"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "ok"}]},
        {"role": "user", "parts": ["bare string"]},
        {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
        {"role": "user", "parts": "text"},
        {"role": "user", "content": "chat-shaped"},
    ],
)
def test_one_text_part_genai_messages_are_the_general_paths(raw):
    assert _ordered(msg.genai_message(raw)) == _ordered(msg._genai_message(raw))


def test_empty_and_zero_protobuf_values_keep_their_kind():
    """A non-empty string skips the kind lookup; an empty `string_value` is any kind's default."""
    span = make_span(attributes={"s": "x", "array": ["a", "", False, 0, 0.0, None, ["b", ""]]})
    for key, value in (
        ("empty", AnyValue(string_value="")),
        ("false", AnyValue(bool_value=False)),
        ("zero", AnyValue(int_value=0)),
        ("zero_float", AnyValue(double_value=0.0)),
        ("no_bytes", AnyValue(bytes_value=b"")),
        ("unset", AnyValue()),
    ):
        span.attributes.append(KeyValue(key=key, value=value))
    request = make_request([span])
    attributes = decode_protobuf(request.SerializeToString()).spans[0].attributes
    expected = {"s": "x", "array": ["a", "", False, 0, 0.0, None, ["b", ""]], "empty": "", "false": False, "zero": 0, "zero_float": 0.0, "no_bytes": "", "unset": None}
    assert _ordered(attributes) == _ordered(expected)
    assert [type(v) for v in attributes.values()] == [type(v) for v in expected.values()]
    assert [type(v) for v in attributes["array"]] == [str, str, bool, int, float, type(None), list]
    assert decode_json(orjson.dumps(to_otlp_json(request))).spans[0].attributes == attributes


def test_protobuf_ids_and_times_at_the_edges():
    root = make_span()
    root.parent_span_id = bytes(8)  # all zeros: no parent (OTLP)
    zero_trace = make_span(span_id="0011223344556677")
    zero_trace.trace_id = bytes(16)
    zero_span = make_span(span_id="0011223344556678")
    zero_span.span_id = bytes(8)
    short_parent = make_span(span_id="0011223344556679")
    short_parent.parent_span_id = b"\x01"
    late = make_span(span_id="001122334455667a")
    late.end_time_unix_nano = MAX_UNIX_NANOS + 1
    at_limit = make_span(span_id="001122334455667b")
    at_limit.end_time_unix_nano = MAX_UNIX_NANOS
    batch = decode_protobuf(
        make_request([root, zero_trace, zero_span, short_parent, late, at_limit]).SerializeToString()
    )
    assert [(s.span_id, s.parent_span_id) for s in batch.spans] == [
        ("eee19b7ec3c1b174", ""),
        ("001122334455667b", ""),
    ]
    assert batch.spans[1].end_time_unix_nano == MAX_UNIX_NANOS
    assert batch.rejected == [
        "span 0011223344556677: trace_id is all zeros, which OTLP defines as invalid",
        "span 0000000000000000: span_id is all zeros, which OTLP defines as invalid",
        "span 0011223344556679: parent_span_id must be 8 bytes, got 1",
        f"span 001122334455667a: end_time_unix_nano {MAX_UNIX_NANOS + 1} is out of range",
    ]


def test_tags_from_a_list_skip_empty_items_and_encode_the_others():
    assert to_tags([" a ", None, "", 1, {"k": 1}, "  ", ("x",)]) == ["a", "1", '{"k":1}', '["x"]']
    assert to_tags(("b",)) == ["b"]


def _reference_value(value):
    """An AnyValue by its `WhichOneof` kind alone: the rule `_pb_value`'s shortcuts stand for."""
    which = value.WhichOneof("value")
    if which == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if which == "array_value":
        return [_reference_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _reference_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None if which is None else getattr(value, which)


def test_protobuf_values_are_their_oneof_kind():
    """A non-zero `int_value` is taken without asking the oneof's kind: every other kind, and the
    zero of each, still comes out as its own kind."""
    values = [
        AnyValue(int_value=7), AnyValue(int_value=-1), AnyValue(int_value=2**63 - 1), AnyValue(int_value=-(2**63)),
        AnyValue(int_value=0), AnyValue(bool_value=True), AnyValue(bool_value=False),
        AnyValue(double_value=1.0), AnyValue(double_value=-0.0), AnyValue(double_value=float("nan")),
        AnyValue(double_value=float("-inf")), AnyValue(double_value=0.0), AnyValue(string_value=""),
        AnyValue(string_value="7"), AnyValue(bytes_value=b"\x07"), AnyValue(bytes_value=b""), AnyValue(),
    ]
    values.append(AnyValue(array_value=ArrayValue(values=values)))
    values.append(AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=str(i), value=v) for i, v in enumerate(values)])))
    values.append(AnyValue(array_value=ArrayValue()))
    span = make_span()
    span.attributes.extend(KeyValue(key=str(i), value=v) for i, v in enumerate(values))
    decoded = decode_protobuf(make_request([span]).SerializeToString()).spans[0].attributes
    expected = {str(i): _reference_value(v) for i, v in enumerate(values)}
    assert _ordered(_typed(decoded)) == _ordered(_typed(expected))


def _typed(value):
    """`value` with every leaf as (type, value), so that True and 1, 0.0 and 0 differ."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, repr(value))


def _as_dict(span):
    fields = {name: getattr(span, name) for name in span.__slots__}
    fields["events"] = [{name: getattr(e, name) for name in e.__slots__} for e in span.events]
    fields["scope"] = {name: getattr(span.scope, name) for name in span.scope.__slots__}
    return _ordered(_typed(fields))


@pytest.mark.parametrize("profile", ["openinference", "genai"])
def test_protobuf_and_json_give_the_same_spans_on_the_bench_spans(profile):
    """The protobuf path reads each field once and builds `SpanData` positionally: every field lands
    where the OTLP/JSON path (keyword arguments) puts it, for the benchmark's spans and for a span
    with every optional part (events, links, trace state, dropped counts, status)."""
    full = make_span(
        span_id="0011223344556677", parent_span_id="eee19b7ec3c1b174", name="full", kind=3,
        attributes={"a": "b", "n": 3}, events=[("e1", T0_NANOS + 1, {"x": 1}), ("e2", T0_NANOS + 2, {})],
        status=(2, "boom"), links=[("ab" * 16, "cd" * 8, {"l": "x"}), ("ab" * 16, "ce" * 8, {})],
    )
    full.trace_state, full.links[0].trace_state = "k=v", "l=w"
    full.events[0].dropped_attributes_count = 2
    full.dropped_attributes_count, full.dropped_events_count, full.dropped_links_count = 1, 2, 3
    only_links = make_span(span_id="0011223344556678")
    only_links.dropped_links_count = 4
    request = make_request([*_bench_spans(profile), full, only_links], resource={"service.name": "svc"},
                           scope_attributes={"s": "t"})
    from_protobuf = decode_protobuf(request.SerializeToString())
    from_json = decode_json(orjson.dumps(to_otlp_json(request)))
    assert from_protobuf.rejected == from_json.rejected == []
    assert [_as_dict(s) for s in from_protobuf.spans] == [_as_dict(s) for s in from_json.spans]
    full_span, links_span = from_protobuf.spans[-2:]
    assert full_span.dropped == {"attributes": 1, "events": 2, "links": 3} and links_span.dropped == {"links": 4}
    assert full_span.events[0].dropped_attributes_count == 2 and full_span.links[0]["trace_state"] == "l=w"
    assert full_span.trace_state == "k=v" and full_span.status_message == "boom" and full_span.kind == 3


def test_a_protobuf_span_with_several_faults_is_refused_for_the_first_in_the_old_order():
    """Event times are checked before ids, ids before span times: the reason names the first."""
    late = MAX_UNIX_NANOS + 1
    event_and_id = make_span(events=[("e", late, {})])
    event_and_id.trace_id = bytes(16)
    id_and_time = make_span(start_ns=late, end_ns=late)
    id_and_time.parent_span_id = b"\x01"
    start_and_end = make_span(start_ns=late, end_ns=late)
    batch = decode_protobuf(make_request([event_and_id, id_and_time, start_and_end]).SerializeToString())
    assert batch.spans == []
    assert batch.rejected == [
        f"span eee19b7ec3c1b174: event time {late} is out of range",
        "span eee19b7ec3c1b174: parent_span_id must be 8 bytes, got 1",
        f"span eee19b7ec3c1b174: start_time_unix_nano {late} is out of range",
    ]


@pytest.mark.parametrize("seed", range(3))
def test_nanos_to_datetime_is_the_timedelta_it_stands_for(seed):
    """A microsecond times the count: the datetime `EPOCH + timedelta(microseconds=nanos // 1000)` is."""
    rng = random.Random(seed)
    edges = [0, 1, 999, 1000, 1001, 10**9 - 1, 10**9, T0_NANOS, T0_NANOS + 999_999_999, MAX_UNIX_NANOS]
    for nanos in edges + [rng.randrange(MAX_UNIX_NANOS) for _ in range(3000)]:
        got = nanos_to_datetime(nanos)
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanos // 1000)
        assert (got, type(got), got.tzinfo, got.fold) == (expected, datetime, expected.tzinfo, 0)


@pytest.mark.parametrize("refusal", [None, "", " ", "I can't", 0, 1, True, ["no"], {"a": 1}])
@pytest.mark.parametrize("at", [0, 1])
def test_a_refusal_is_a_message_with_a_nonempty_refusal_string(refusal, at):
    """`_refused` (a loop) answers what any(isinstance(m.get("refusal"), str) and m["refusal"]) does."""
    output = [{"role": "assistant", "content": "x"}, {"role": "assistant", "content": "y"}]
    output[at]["refusal"] = refusal
    expected = any(isinstance(m.get("refusal"), str) and m["refusal"] for m in output)
    assert rules_messages.refusal_of(output) is expected
    assert rules_messages.pick_finish_reason([], output) == ("refusal" if expected else None)
