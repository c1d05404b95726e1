"""OpenInference spans (flattened `llm.*`, `input.value`, `tool.*` …) → records."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.adapters.otel.mapping import map_request
from ingest.adapters.otel.testing import T0_NANOS, TRACE_ID, make_request, make_span

OI_SCOPE = {"scope_name": "openinference.instrumentation.openai", "scope_version": "0.1.66"}


def _one(attributes, **span):
    batch = map_request(make_request([make_span(attributes=attributes, **span)], **OI_SCOPE))
    assert batch.rejected == []
    return batch.observations[0]


def _at(nanos):
    return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=nanos // 1000)


CHAT = {
    "openinference.span.kind": "LLM",
    "llm.system": "openai",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.invocation_parameters": '{"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50}',
    "input.value": '{"messages": [{"role": "system", "content": "be brief"}], "model": "gpt-4o-mini"}',
    "input.mime_type": "application/json",
    "output.value": '{"id": "chatcmpl-1", "choices": []}',
    "output.mime_type": "application/json",
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "be brief",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.content": "weather in Paris?",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"city": "Paris"}',
    "llm.output_messages.0.message.tool_calls.1.tool_call.id": "call_2",
    "llm.output_messages.0.message.tool_calls.1.tool_call.function.name": "broken",
    "llm.output_messages.0.message.tool_calls.1.tool_call.function.arguments": "{not json",
    "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "get_weather"}}',
    "llm.finish_reason": "tool_calls",
    "llm.token_count.prompt": 120,
    "llm.token_count.completion": 30,
    "llm.token_count.total": 150,
    "llm.token_count.prompt_details.cache_read": 100,
    "llm.token_count.completion_details.reasoning": 10,
    "session.id": "sess-42",
    "user.id": "user-7",
    "metadata": '{"env": "test", "n": 1}',
    "tag.tags": ["demo"],
}


def test_an_llm_span_becomes_a_generation_with_messages_tools_and_tokens():
    batch = map_request(make_request([make_span(name="ChatCompletion", attributes=CHAT)], **OI_SCOPE))
    obs = batch.observations[0]
    assert obs["type"] == "GENERATION" and obs["name"] == "ChatCompletion"
    # The prompt as sent: system message included, in order.
    assert obs["input"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather in Paris?"},
    ]
    assert obs["output"]["role"] == "assistant"
    assert obs["output"]["tool_calls"][0] == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    assert obs["tool_calls"] == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"id": "call_2", "name": "broken", "arguments": "{not json"},  # kept as sent when not JSON
    ]
    assert obs["finish_reason"] == "tool_calls" and "status" not in obs
    # Requested model from the invocation parameters, answered model from llm.model_name.
    assert (obs["model"], obs["response_model"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert obs["model_parameters"] == {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50}
    # prompt includes cache reads and completion includes reasoning in OpenInference: subtracted.
    assert (
        obs["input_tokens"],
        obs["cached_input_tokens"],
        obs["output_tokens"],
        obs["reasoning_tokens"],
        obs["total_tokens"],
    ) == (20, 100, 20, 10, 150)
    # usageDetails hold our kinds once, in Langfuse's keys; the attributes as sent are in metadata.
    assert obs["usage_details"] == {
        "input": 20, "input_cached_tokens": 100, "output": 20, "output_reasoning_tokens": 10, "total": 150
    }
    assert obs["metadata"]["usage_raw"]["llm.token_count.prompt"] == 120
    assert obs["metadata"]["env"] == "test" and obs["metadata"]["n"] == 1
    assert obs["metadata"]["tools"] == [{"type": "function", "function": {"name": "get_weather"}}]
    leftover = obs["metadata"]["otel"]["attributes"]
    # The raw request/response bodies lost to the structured messages are kept, not dropped.
    assert leftover["input.value"].startswith('{"messages"') and leftover["llm.system"] == "openai"
    trace = batch.traces[0]
    assert (trace["session_id"], trace["user_id"], trace["tags"]) == ("sess-42", "user-7", ["demo"])
    assert trace["input"] == obs["input"]


def test_multimodal_contents_and_tool_result_messages():
    obs = _one(
        {
            "openinference.span.kind": "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.contents.0.message_content.type": "text",
            "llm.input_messages.0.message.contents.0.message_content.text": "what is this?",
            "llm.input_messages.0.message.contents.1.message_content.type": "image",
            "llm.input_messages.0.message.contents.1.message_content.image.image.url": "data:image/png;base64,AAA",
            "llm.input_messages.1.message.role": "tool",
            "llm.input_messages.1.message.tool_call_id": "call_1",
            "llm.input_messages.1.message.name": "get_weather",
            "llm.input_messages.1.message.content": "sunny",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "A cat.",
        }
    )
    assert obs["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1", "name": "get_weather"},
    ]
    assert obs["output"] == {"role": "assistant", "content": "A cat."}
    assert "tool_calls" not in obs


def test_a_tool_span_keeps_name_call_id_arguments_and_result():
    obs = _one(
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "get_weather",
            "tool.id": "call_1",
            "tool.description": "Weather by city",
            "tool.parameters": '{"type": "object"}',
            "input.value": '{"city": "Paris"}',
            "input.mime_type": "application/json",
            "output.value": "sunny, 21°C",
            "output.mime_type": "text/plain",
        },
        name="get_weather",
    )
    assert (obs["type"], obs["tool_name"], obs["tool_call_id"]) == ("TOOL", "get_weather", "call_1")
    assert obs["input"] == {"city": "Paris"}
    assert obs["output"] == "sunny, 21°C"
    assert obs["metadata"]["otel"]["attributes"]["tool.description"] == "Weather by city"


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("CHAIN", "CHAIN"),
        ("RETRIEVER", "RETRIEVER"),
        ("EMBEDDING", "EMBEDDING"),
        ("AGENT", "AGENT"),
        ("EVALUATOR", "EVALUATOR"),
        ("GUARDRAIL", "GUARDRAIL"),
        ("llm", "GENERATION"),
        ("RERANKER", "SPAN"),
        ("PROMPT", "SPAN"),
        ("UNKNOWN", "SPAN"),
    ],
)
def test_span_kinds(kind, expected):
    obs = _one({"openinference.span.kind": kind})
    assert obs["type"] == expected
    if expected == "SPAN":  # no observation type says it, so the kind stays visible in metadata
        assert obs["metadata"]["otel"]["attributes"]["openinference.span.kind"] == kind


def test_plain_text_input_and_json_without_a_mime_type():
    obs = _one({"openinference.span.kind": "CHAIN", "input.value": "hello", "output.value": '{"a": [1]}'})
    assert (obs["input"], obs["output"]) == ("hello", {"a": [1]})
    obs = _one({"input.value": '{"a": 1}', "input.mime_type": "text/plain"})
    assert obs["input"] == '{"a": 1}'


def test_the_first_token_event_sets_completion_start():
    obs = _one(
        {"openinference.span.kind": "LLM"}, events=[("First Token Stream Event", T0_NANOS + 40_000_000, {})]
    )
    assert obs["completion_start_time"] == _at(T0_NANOS + 40_000_000)
    assert "events" not in obs["metadata"]["otel"]


def test_prompt_template_is_kept_and_linked_when_a_prompt_id_names_it():
    obs = _one(
        {
            "openinference.span.kind": "LLM",
            "llm.prompt_template.template": "Weather for {city}",
            "llm.prompt_template.variables": '{"city": "Paris"}',
            "llm.prompt_template.version": "v2",
            "prompt.id": "weather-prompt",
        }
    )
    assert obs["metadata"]["prompt_template"] == {
        "template": "Weather for {city}",
        "variables": {"city": "Paris"},
        "version": "v2",
    }
    assert (obs["prompt_name"], obs["prompt_version"]) == ("weather-prompt", 2)
    unnamed = _one({"openinference.span.kind": "LLM", "llm.prompt_template.version": "3"})
    assert "prompt_name" not in unnamed and "prompt_version" not in unnamed
    assert unnamed["metadata"]["prompt_template"] == {"version": "3"}


def test_an_exception_event_fills_the_error_fields():
    obs = _one(
        {"openinference.span.kind": "TOOL", "tool.name": "calc"},
        events=[
            (
                "exception",
                T0_NANOS + 1,
                {
                    "exception.type": "ZeroDivisionError",
                    "exception.message": "division by zero",
                    "exception.stacktrace": "Traceback (most recent call last): ...",
                    "exception.escaped": "False",
                },
            )
        ],
        status=(2, "ZeroDivisionError: division by zero"),
    )
    assert (obs["error_type"], obs["error_message"]) == ("ZeroDivisionError", "division by zero")
    assert obs["error_stack"].startswith("Traceback")
    assert (obs["status"], obs["level"]) == ("error", "ERROR")
    assert obs["status_message"] == "ZeroDivisionError: division by zero"
    assert obs["metadata"]["otel"]["status"] == {
        "code": "ERROR",
        "message": "ZeroDivisionError: division by zero",
    }


def test_a_content_filter_finish_reason_is_a_refusal():
    obs = _one(
        {
            "openinference.span.kind": "LLM",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.finish_reason": "content_filter",
        }
    )
    assert (obs["status"], obs["finish_reason"]) == ("refused", "content_filter")


def test_embedding_spans_and_costs():
    obs = _one(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "embedding.invocation_parameters": '{"dimensions": 256}',
            "llm.token_count.prompt": 8,
            "llm.token_count.total": 8,
            "embedding.embeddings.0.embedding.text": "hello",
            "llm.cost.prompt": 0.00001,
            "llm.cost.completion": 0.0,
            "llm.cost.total": 0.00001,
            "llm.cost.prompt_details.input": 0.00001,
        }
    )
    assert (obs["type"], obs["model"], obs["input_tokens"], obs["total_tokens"]) == (
        "EMBEDDING",
        "text-embedding-3-small",
        8,
        8,
    )
    assert obs["model_parameters"] == {"dimensions": 256}
    assert obs["cost_source"] == "client"
    assert (obs["input_cost"], obs["output_cost"], obs["total_cost"]) == (
        Decimal("0.00001"),
        Decimal("0.0"),
        Decimal("0.00001"),
    )
    assert obs["metadata"]["cost_raw"]["prompt_details.input"] == 0.00001
    assert obs["cost_details"] == {"input": 0.00001, "output": 0.0, "total": 0.00001}
    assert obs["metadata"]["otel"]["attributes"]["embedding.embeddings.0.embedding.text"] == "hello"


def test_annotations_on_spans_become_scores():
    batch = map_request(
        make_request(
            [
                make_span(
                    attributes={
                        "openinference.span.kind": "LLM",
                        "session.id": "s-1",
                        "annotations.0.annotation.name": "relevance",
                        "annotations.0.annotation.score": 0.8,
                        "annotations.0.annotation.explanation": "on topic",
                        "annotations.0.annotation.annotator_kind": "LLM",
                        "annotations.1.annotation.name": "tone",
                        "annotations.1.annotation.label": "friendly",
                        "annotations.1.annotation.annotator_kind": "HUMAN",
                        "trace.annotations.0.annotation.name": "resolved",
                        "trace.annotations.0.annotation.score": 1,
                        "session.annotations.0.annotation.name": "csat",
                        "session.annotations.0.annotation.label": "happy",
                    }
                )
            ]
        )
    )
    scores = {s["name"]: s for s in batch.scores}
    assert scores["relevance"]["value"] == 0.8 and scores["relevance"]["data_type"] == "NUMERIC"
    assert scores["relevance"]["observation_id"] == "eee19b7ec3c1b174"
    assert scores["relevance"]["comment"] == "on topic" and scores["relevance"]["source"] == "EVAL"
    assert scores["tone"]["string_value"] == "friendly" and scores["tone"]["data_type"] == "CATEGORICAL"
    assert scores["tone"]["source"] == "ANNOTATION"
    assert scores["resolved"]["trace_id"] == TRACE_ID and "observation_id" not in scores["resolved"]
    assert scores["csat"]["session_id"] == "s-1" and "trace_id" not in scores["csat"]
    # Deterministic ids: a re-sent span updates its scores instead of duplicating them.
    again = map_request(
        make_request(
            [
                make_span(
                    attributes={
                        "annotations.0.annotation.name": "relevance",
                        "annotations.0.annotation.score": 0.8,
                    }
                )
            ]
        )
    )
    assert again.scores[0]["id"] == scores["relevance"]["id"]


def test_what_the_openai_instrumentor_sends_for_a_streamed_reply():
    # As captured from openinference-instrumentation-openai 0.1.66 (reference notes §1.14).
    obs = _one(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini", "stream": True}),
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "hello",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "echo: hello",
            "llm.token_count.prompt": 9,
            "llm.token_count.completion": 3,
            "llm.token_count.total": 12,
        },
        events=[("First Token Stream Event", T0_NANOS + 7_000_000, {})],
    )
    assert obs["output"] == {"role": "assistant", "content": "echo: hello"}
    assert obs["model_parameters"]["stream"] is True
    assert (obs["input_tokens"], obs["output_tokens"], obs["total_tokens"]) == (9, 3, 12)
    assert obs["completion_start_time"] - obs["start_time"] == timedelta(milliseconds=7)
    assert obs["trace_id"] == TRACE_ID
