"""Langfuse SDK v3–v5 spans (attribute sets as captured from the real SDKs) → records."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.adapters.otel.mapping import map_request
from ingest.adapters.otel.testing import T0_NANOS, TRACE_ID, make_request, make_span

ROOT = "fa5b018a9183e180"
GEN = "890e7fb70b6be4a9"
RESOURCE_V5 = {
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.45.2",
    "langfuse.environment": "staging",
    "langfuse.release": "rel-1.2.3",
    "service.name": "unknown_service:python",
}
PROPAGATED_V5 = {
    "user.id": "user-42",
    "session.id": "sess-7",
    "langfuse.trace.metadata.tenant": '"acme"',
    "langfuse.trace.metadata.n": "3",
    "langfuse.version": "v9",
    "langfuse.trace.tags": ["t1", "t2"],
    "langfuse.trace.name": "my-trace",
    "langfuse.environment": "staging",
    "langfuse.release": "rel-1.2.3",
}


def _at(nanos):
    return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=nanos // 1000)


def _v5_request():
    generation = make_span(
        span_id=GEN,
        parent_span_id=ROOT,
        name="llm-call",
        start_ns=T0_NANOS + 1000,
        end_ns=T0_NANOS + 300_000,
        attributes={
            **PROPAGATED_V5,
            "langfuse.observation.input": '[{"role": "user", "content": "hi"}]',
            "langfuse.observation.model.name": "gpt-4o-mini",
            "langfuse.observation.prompt.name": "greeting",
            "langfuse.observation.prompt.version": 3,
            "langfuse.observation.model.parameters": '{"temperature": 0.7, "max_tokens": 100}',
            "langfuse.observation.type": "generation",
            "langfuse.observation.output": '{"role": "assistant", "content": "hello"}',
            "langfuse.observation.usage_details": '{"input": 10, "output": 5, "cache_read_input_tokens": 2}',
            "langfuse.observation.cost_details": '{"input": 0.0001, "output": 0.0002}',
            "langfuse.observation.completion_start_time": '"2026-11-26T19:41:58.704600Z"',
        },
    )
    tool = make_span(
        span_id="a978b45d02418768",
        parent_span_id=ROOT,
        name="search-tool",
        attributes={
            **PROPAGATED_V5,
            "langfuse.observation.input": '{"query": "x"}',
            "langfuse.observation.type": "tool",
            "langfuse.observation.level": "WARNING",
            "langfuse.observation.status_message": "slow",
            "langfuse.observation.output": '["r1"]',
        },
    )
    event = make_span(
        span_id="3fac9b363c431959",
        parent_span_id=ROOT,
        name="my-event",
        start_ns=T0_NANOS + 5,
        end_ns=T0_NANOS + 5,
        attributes={
            **PROPAGATED_V5,
            "langfuse.observation.type": "event",
            "langfuse.observation.input": "ev-in",
            "langfuse.observation.output": "ev-out",
        },
    )
    root = make_span(
        span_id=ROOT,
        name="root-span",
        end_ns=T0_NANOS + 2_000_000,
        attributes={
            **PROPAGATED_V5,
            "langfuse.internal.is_app_root": True,
            "langfuse.observation.input": '{"q": "hi"}',
            "langfuse.observation.metadata.k": '"v"',
            "langfuse.observation.metadata.nested": '{"a":1}',
            "langfuse.observation.output": '{"a": "done"}',
            "langfuse.observation.type": "span",
            "langfuse.trace.public": True,
        },
    )
    return make_request(
        [generation, tool, event, root],
        resource=RESOURCE_V5,
        scope_name="langfuse-sdk",
        scope_version="5.0.4",
        scope_attributes={"public_key": "pk-lf-test"},
    )


def _by_id(batch):
    return {o["id"]: o for o in batch.observations}


def test_a_v5_generation_becomes_a_generation_with_model_usage_cost_and_prompt():
    obs = _by_id(map_request(_v5_request()))[GEN]
    assert obs["type"] == "GENERATION"
    assert obs["trace_id"] == TRACE_ID and obs["parent_observation_id"] == ROOT
    assert obs["name"] == "llm-call"
    assert obs["start_time"] == _at(T0_NANOS + 1000) and obs["end_time"] == _at(T0_NANOS + 300_000)
    assert obs["input"] == [{"role": "user", "content": "hi"}]
    assert obs["output"] == {"role": "assistant", "content": "hello"}
    assert obs["model"] == "gpt-4o-mini"
    assert obs["model_parameters"] == {"temperature": 0.7, "max_tokens": 100}
    assert (obs["prompt_name"], obs["prompt_version"]) == ("greeting", 3)
    # Langfuse's own usage keys already count fresh input apart from cache reads.
    assert obs["usage_details"] == {"input": 10, "output": 5, "cache_read_input_tokens": 2}
    assert (obs["input_tokens"], obs["cached_input_tokens"], obs["output_tokens"]) == (10, 2, 5)
    assert obs["cost_details"] == {"input": 0.0001, "output": 0.0002}
    assert (obs["input_cost"], obs["output_cost"], obs["total_cost"]) == (
        Decimal("0.0001"),
        Decimal("0.0002"),
        Decimal("0.0003"),
    )
    assert obs["cost_source"] == "client"
    assert obs["completion_start_time"] == datetime(2026, 11, 26, 19, 41, 58, 704600, tzinfo=UTC)
    assert obs["environment"] == "staging" and obs["version"] == "v9"
    assert obs["metadata"]["otel"]["scope"] == {
        "name": "langfuse-sdk",
        "version": "5.0.4",
        "attributes": {"public_key": "pk-lf-test"},
    }
    assert obs["metadata"]["otel"]["resource"] == RESOURCE_V5
    # Every langfuse attribute was mapped to a field: nothing is left over.
    assert "attributes" not in obs["metadata"]["otel"]


def test_v5_trace_attributes_build_one_trace_record():
    batch = map_request(_v5_request())
    assert len(batch.traces) == 1
    trace = batch.traces[0]
    assert trace["id"] == TRACE_ID
    assert trace["name"] == "my-trace"
    assert (trace["user_id"], trace["session_id"]) == ("user-42", "sess-7")
    assert trace["tags"] == ["t1", "t2"]
    assert trace["public"] is True
    # v5 JSON-encodes metadata values so that "3" and 3 stay distinct.
    assert trace["metadata"] == {"tenant": "acme", "n": 3}
    assert (trace["release"], trace["version"], trace["environment"]) == ("rel-1.2.3", "v9", "staging")
    # v5 has no trace I/O: the root observation's is the trace's.
    assert (trace["input"], trace["output"]) == ({"q": "hi"}, {"a": "done"})
    assert trace["timestamp"] == _at(T0_NANOS)


def test_v5_observation_metadata_is_json_decoded_and_tool_event_spans_are_typed():
    obs = _by_id(map_request(_v5_request()))
    root = obs[ROOT]
    assert root["type"] == "SPAN" and "parent_observation_id" not in root
    assert root["metadata"]["k"] == "v" and root["metadata"]["nested"] == {"a": 1}
    tool = obs["a978b45d02418768"]
    assert (tool["type"], tool["tool_name"], tool["level"], tool["status_message"]) == (
        "TOOL",
        "search-tool",
        "WARNING",
        "slow",
    )
    assert (tool["input"], tool["output"]) == ({"query": "x"}, ["r1"])
    event = obs["3fac9b363c431959"]
    assert event["type"] == "EVENT"
    assert event["start_time"] == event["end_time"]
    assert (event["input"], event["output"]) == ("ev-in", "ev-out")


def test_v3_trace_io_and_plain_metadata_values():
    root = make_span(
        span_id=ROOT,
        name="root-span",
        attributes={
            "langfuse.observation.type": "span",
            "langfuse.environment": "staging",
            "langfuse.observation.input": '{"q": "hi"}',
            "langfuse.observation.metadata.k": "v",
            "langfuse.observation.metadata.num": "5",
            "langfuse.trace.name": "my-trace",
            "user.id": "user-42",
            "session.id": "sess-7",
            "langfuse.version": "v9",
            "langfuse.trace.input": '{"trace": "in"}',
            "langfuse.trace.output": '{"trace": "out"}',
            "langfuse.trace.tags": ["t1"],
            "langfuse.trace.public": True,
            "langfuse.trace.metadata.tenant": "acme",
        },
    )
    generation = make_span(
        span_id=GEN,
        parent_span_id=ROOT,
        name="llm-call",
        attributes={
            "langfuse.environment": "staging",
            "langfuse.observation.type": "generation",
            "langfuse.observation.prompt.version": "3",
            "langfuse.observation.prompt.name": "greeting",
            "langfuse.observation.usage_details": '{"input": 10, "output": 5}',
            "langfuse.observation.cost_details": '{"total": 0.001}',
        },
    )
    batch = map_request(
        make_request(
            [generation, root],
            resource={"langfuse.release": "rel-1.2.3"},
            scope_name="langfuse-sdk",
            scope_version="3.15.0",
        )
    )
    trace = batch.traces[0]
    assert (trace["input"], trace["output"]) == ({"trace": "in"}, {"trace": "out"})
    assert trace["metadata"] == {"tenant": "acme"}
    assert trace["release"] == "rel-1.2.3"  # v3 sends it on the resource only
    obs = _by_id(batch)
    # Before v5 metadata values are plain strings: "5" stays "5".
    assert obs[ROOT]["metadata"]["k"] == "v" and obs[ROOT]["metadata"]["num"] == "5"
    assert obs[GEN]["prompt_version"] == 3
    assert obs[GEN]["total_cost"] == Decimal("0.001")


def test_a_batch_of_child_spans_gives_a_partial_trace_without_a_made_up_name():
    child = make_span(
        span_id=GEN,
        parent_span_id=ROOT,
        name="llm-call",
        start_ns=T0_NANOS + 10,
        attributes={"user.id": "u1", "langfuse.trace.tags": '["a","b"]'},
    )
    other = make_span(
        span_id="1111111111111111",
        parent_span_id=ROOT,
        name="x",
        start_ns=T0_NANOS + 5,
        attributes={"session.id": "s1", "tag.tags": ["b", "c"]},
    )
    trace = map_request(make_request([child, other])).traces[0]
    assert trace == {
        "id": TRACE_ID,
        "user_id": "u1",
        "session_id": "s1",
        "tags": ["a", "b", "c"],
        "timestamp": _at(T0_NANOS + 5),
    }


def test_an_explicit_trace_name_on_a_child_wins_over_the_root_span_name():
    root = make_span(span_id=ROOT, name="root-span")
    child = make_span(span_id=GEN, parent_span_id=ROOT, attributes={"langfuse.trace.name": "named"})
    assert map_request(make_request([root, child])).traces[0]["name"] == "named"
    assert map_request(make_request([root])).traces[0]["name"] == "root-span"


def test_as_root_makes_a_span_with_a_parent_the_trace_root():
    span = make_span(
        span_id=GEN,
        parent_span_id=ROOT,
        name="forced",
        attributes={"langfuse.internal.as_root": True, "langfuse.observation.input": "in"},
    )
    batch = map_request(make_request([span]))
    assert batch.traces[0]["name"] == "forced" and batch.traces[0]["input"] == "in"
    assert batch.observations[0]["parent_observation_id"] == ROOT


def test_old_sdks_typed_generations_as_spans_with_generation_attributes():
    span = make_span(attributes={"langfuse.observation.type": "span", "langfuse.observation.model.name": "m"})
    assert map_request(make_request([span])).observations[0]["type"] == "GENERATION"


@pytest.mark.parametrize(
    "level, expected, status",
    [
        ("WARN", "WARNING", None),
        ("info", "DEFAULT", None),
        ("FATAL", "ERROR", "error"),
        ("DEBUG", "DEBUG", None),
    ],
)
def test_levels_and_their_aliases(level, expected, status):
    obs = map_request(
        make_request([make_span(attributes={"langfuse.observation.level": level})])
    ).observations[0]
    assert obs["level"] == expected
    assert obs.get("status") == status


def test_openai_shaped_usage_details_are_normalised_to_fresh_input_and_plain_output():
    usage = (
        '{"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150, '
        '"prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 20}}'
    )
    obs = map_request(
        make_request(
            [
                make_span(
                    attributes={
                        "langfuse.observation.type": "generation",
                        "langfuse.observation.usage_details": usage,
                    }
                )
            ]
        )
    ).observations[0]
    assert (obs["input_tokens"], obs["cached_input_tokens"]) == (60, 40)
    assert (obs["output_tokens"], obs["reasoning_tokens"], obs["total_tokens"]) == (30, 20, 150)
    assert obs["metadata"]["usage_raw"]["prompt_tokens_details"] == {"cached_tokens": 40}
    assert "prompt_tokens_details" not in obs["usage_details"]


def test_anthropic_shaped_usage_details_count_input_without_cache():
    usage = '{"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 900, "cache_creation_input_tokens": 50}'
    obs = map_request(
        make_request([make_span(attributes={"langfuse.observation.usage_details": usage})])
    ).observations[0]
    assert (
        obs["input_tokens"],
        obs["cached_input_tokens"],
        obs["cache_write_tokens"],
        obs["output_tokens"],
    ) == (12, 900, 50, 7)


def test_usage_and_cost_that_do_not_fit_the_columns_stay_in_metadata():
    obs = map_request(
        make_request(
            [
                make_span(
                    attributes={
                        "langfuse.observation.usage_details": '{"input": -5, "output": 99999999999999999999999}',
                        "langfuse.observation.cost_details": '{"total": 1e30}',
                        "langfuse.observation.prompt.name": "p",
                        "langfuse.observation.prompt.version": 2**40,
                    }
                )
            ]
        )
    ).observations[0]
    assert "input_tokens" not in obs and "output_tokens" not in obs
    assert "total_cost" not in obs
    assert obs["metadata"]["otel"]["attributes"]["langfuse.observation.cost_details"] == '{"total": 1e30}'
    assert obs["prompt_name"] == "p" and "prompt_version" not in obs


@pytest.mark.parametrize(
    "sent, stored",
    [
        ("Production", "production"),
        ("langfuse-llm-as-a-judge", "llm-as-a-judge"),
        ("my env!", "default"),
    ],
)
def test_environments_are_normalised_like_langfuse(sent, stored):
    obs = map_request(make_request([make_span(attributes={"langfuse.environment": sent})])).observations[0]
    assert obs["environment"] == stored


def test_a_non_object_observation_metadata_is_kept_under_metadata():
    obs = map_request(make_request([make_span(attributes={"langfuse.observation.metadata": '["a", 1]'})]))
    assert obs.observations[0]["metadata"]["metadata"] == ["a", 1]
