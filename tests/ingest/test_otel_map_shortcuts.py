"""The OTLP mapper's shortcuts answer what the rules they stand for answer: a span's tags deduplicated
without a rebuild when none repeats, usage read only beside a count of the table, a family's keys handed
out as learned while all are there, finish reasons read only beside an output that can hold them or a
reason attribute, and tool calls found without visiting scalars. (The gates that skip a field's reader
when none of its keys is there are pinned with the narrowed probes in test_otel_mapping_candidates.)"""

import random
from datetime import UTC, datetime

from ingest.adapters.otel import mapping, usage
from ingest.adapters.otel.decode import Scope, SpanData
from ingest.rules import messages as rules_messages
from tests.ingest.test_otel_mapping_candidates import ALL_KEYS


def _with(index: int, attributes: dict) -> SpanData:
    return SpanData(
        trace_id=f"{1:032x}", span_id=f"{index + 1:016x}", parent_span_id="", name=f"span {index}", kind=1,
        start_time_unix_nano=1_764_590_400_000_000_000, end_time_unix_nano=1_764_590_410_000_000_000,
        attributes=attributes, events=[], links=[], status_code=0, status_message="",
        resource={"service.name": "s"}, scope=Scope(name="x", version=""),
    )


def test_a_span_tags_are_deduplicated_in_their_order():
    for sent, expected in [
        ({"tag.tags": ["a", "b", "a"]}, ["a", "b"]),
        ({"tag.tags": ["b", "a"]}, ["b", "a"]),
        ({"tag.tags": ["a"]}, ["a"]),
        ({"tag.tags": "a, b ,a"}, ["a", "b"]),
        ({"langfuse.trace.tags": ["x", "a"], "tag.tags": ["a", "y"]}, ["x", "a", "y"]),
        ({"langfuse.trace.tags": ["a"], "langfuse.tags": '["a"]', "tag.tags": ["a"]}, ["a"]),
    ]:
        span = _with(0, dict(sent))
        result = mapping.map_span(span, received_at=datetime(2026, 12, 1, 13, tzinfo=UTC))
        assert result.trace["tags"] == expected, sent


def test_usage_is_read_only_beside_a_count_of_the_table():
    # An OpenInference sub-count alone is no usage (it is a part of a count): left in the attributes.
    attrs = {"llm.token_count.prompt_details.audio": 3}
    assert usage.extract_usage(attrs, ["llm.token_count.prompt_details.audio"], ()) == {}
    assert attrs == {"llm.token_count.prompt_details.audio": 3}
    assert usage.extract_usage(dict(attrs)) == {}
    # Beside a count it is kept with the usage as sent.
    attrs = {"llm.token_count.prompt_details.audio": 3, "llm.token_count.prompt": 5}
    found = usage.extract_usage(attrs, list(attrs), ("llm.token_count.prompt",))
    assert found["input_tokens"] == 5 and found["usage_raw"] == {
        "llm.token_count.prompt": 5, "llm.token_count.prompt_details.audio": 3}
    assert attrs == {}
    # Every key of the table, alone, as the narrowed caller passes it and as the default finds it.
    for key in (k for k in ALL_KEYS if k in usage.USAGE_KEYS[1:]):
        narrowed, default = {key: 7}, {key: 7}
        assert usage.extract_usage(narrowed, [], (key,)) == usage.extract_usage(default) != {}


def test_a_trace_seen_through_children_starts_at_its_earliest_span():
    starts = [30, 10, 20, 10, 40]
    spans = []
    for index, second in enumerate(starts):
        span = _with(index, {})
        span.parent_span_id = f"{index + 100:016x}"
        span.start_time_unix_nano = 1_764_590_400_000_000_000 + second * 10**9
        spans.append(span)
    batch = mapping.map_spans(spans, received_at=datetime(2026, 12, 1, 13, tzinfo=UTC))
    assert [trace["timestamp"] for trace in batch.traces] == [min(o["start_time"] for o in batch.observations)]


def test_take_answers_the_keys_of_a_family_still_there_in_their_order():
    rng = random.Random(3)
    prefixes = ["llm.input_messages.", "llm.tools.", "llm.token_count.", "gen_ai.request."]
    for _ in range(300):
        keys = [f"{rng.choice(prefixes)}{rng.randint(0, 3)}.{rng.choice('abc')}" for _ in range(rng.randint(0, 12))]
        attrs = {key: 1 for key in keys + rng.sample(ALL_KEYS, 5)}
        families = mapping._families_of(attrs)
        for key in rng.sample(sorted(attrs), rng.randint(0, len(attrs))):
            del attrs[key]
        for prefix in prefixes:
            expected = [key for key in attrs if key.startswith(prefix)]
            assert list(families.take(attrs, prefix)) == expected


def _calls_by_definition(node, depth=0, calls=None):
    """The walk `extract_tool_calls` makes, as first written: every node visited, every key tested."""
    calls = [] if calls is None else calls
    if depth > 4 or len(calls) >= 128:
        return calls
    if isinstance(node, list):
        for item in node[:64]:
            _calls_by_definition(item, depth + 1, calls)
        return calls
    if not isinstance(node, dict):
        return calls
    kind = node.get("type")
    if kind == "tool_use" and "name" in node:
        calls.append({"id": node.get("id"), "name": node.get("name"), "arguments": node.get("input")})
        return calls
    if kind == "function_call" and "name" in node:
        arguments = node.get("arguments")
        calls.append({"id": node.get("call_id") or node.get("id"), "name": node["name"],
                      "arguments": rules_messages._json_maybe(arguments)})
        return calls
    if isinstance(node.get("tool_calls"), list):
        for call in node["tool_calls"]:
            if isinstance(call, dict):
                function = call.get("function") if isinstance(call.get("function"), dict) else call
                calls.append({"id": call.get("id"), "name": function.get("name"),
                              "arguments": rules_messages._json_maybe(function.get("arguments"))})
    if isinstance(node.get("function_call"), dict) and "name" in node["function_call"]:
        calls.append({"id": None, "name": node["function_call"]["name"],
                      "arguments": rules_messages._json_maybe(node["function_call"].get("arguments"))})
    for key in ("content", "choices", "message", "output"):
        if isinstance(node.get(key), (list, dict)):
            _calls_by_definition(node[key], depth + 1, calls)
    return calls


def _output(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 6 or roll < 0.25:
        return rng.choice([None, "text", 0, 1.5, True, "", '{"a": 1}', b"x"])
    if roll < 0.45:
        return [_output(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 3, 70] if depth == 0 else [0, 1, 2, 3]))]
    node = {}
    for key in rng.sample(["type", "name", "id", "call_id", "input", "arguments", "tool_calls", "function_call",
                           "function", "content", "choices", "message", "output", "role"], rng.randint(0, 7)):
        if key == "type":
            node[key] = rng.choice(["tool_use", "function_call", "text", None])
        elif key in ("name", "id", "call_id"):
            node[key] = rng.choice(["f", "", None, 3])
        elif key == "arguments":
            node[key] = rng.choice(['{"x": 1}', "not json", {"x": 1}, None])
        elif key in ("tool_calls", "function_call", "function"):
            node[key] = rng.choice([None, "x", {"name": "g", "arguments": "{}"}, [{"function": {"name": "h"}}, "x",
                                    {"name": "i", "id": "c"}], _output(rng, depth + 1)])
        else:
            node[key] = _output(rng, depth + 1)
    return node


def test_tool_calls_are_what_visiting_every_node_and_key_finds():
    rng = random.Random(8)
    outputs = [_output(rng) for _ in range(3000)]
    outputs += [["x"] * 63 + [{"tool_calls": [{"function": {"name": "late"}}]}], ["x"] * 64 + [{"tool_calls": [
        {"function": {"name": "too late"}}]}], [{"tool_calls": [{"name": f"n{i}"} for i in range(200)]}]]
    assert sum(bool(_calls_by_definition(output)) for output in outputs) > 300
    for output in outputs:
        expected = [call for call in _calls_by_definition(output) if call.get("name")]
        assert rules_messages.extract_tool_calls(output) == expected, output


def test_finish_reasons_and_refusals_are_read_beside_any_output_and_only_there():
    cases = [
        # A text output (or none) holds no reason, but a reason attribute still counts.
        ({"output.value": "sorry", "output.mime_type": "text/plain", "llm.finish_reason": "content_filter"},
         "content_filter", "refused"),
        ({"gen_ai.response.finish_reasons": ["stop"]}, "stop", None),
        ({"output.value": "plain text"}, None, None),
        ({}, None, None),
        # Messages in a list or a dict, a chat completion's choices, a refusal without a reason.
        ({"output.value": '[{"role": "assistant", "finish_reason": "length"}]'}, "length", None),
        ({"output.value": '{"role": "assistant", "stop_reason": "refusal"}'}, "refusal", "refused"),
        ({"output.value": '{"choices": [{"finish_reason": "stop"}]}'}, "stop", None),
        ({"output.value": '{"content": null, "refusal": "I cannot"}'}, "refusal", "refused"),
        ({"output.value": '["a", "b"]'}, None, None),
    ]
    for attributes, reason, status in cases:
        span = _with(0, dict(attributes))
        observation = mapping.map_span(span, received_at=datetime(2026, 12, 1, 13, tzinfo=UTC)).observation
        assert observation.get("finish_reason") == reason, attributes
        assert observation.get("status") == status, attributes
        assert not set(attributes) & {"llm.finish_reason", "gen_ai.response.finish_reasons"} & set(
            observation["metadata"]["otel"].get("attributes", {})), attributes
