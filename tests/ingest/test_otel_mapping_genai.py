"""OTel GenAI spans (`gen_ai.*`, current and deprecated names, span events) → records."""

import json
from datetime import timedelta

import pytest

from ingest.adapters.otel.mapping import map_request
from ingest.adapters.otel.testing import T0_NANOS, TRACE_ID, make_request, make_span

GENAI_SCOPE = {"scope_name": "opentelemetry.util.genai.handler", "scope_version": "0.1b0"}


def _batch(attributes, **span):
    batch = map_request(make_request([make_span(attributes=attributes, **span)], **GENAI_SCOPE))
    assert batch.rejected == []
    return batch


def _one(attributes, **span):
    return _batch(attributes, **span).observations[0]


def test_the_openai_v2_chat_span_as_observed():
    # openai-v2 2.4b0, gen_ai_latest_experimental + SPAN_ONLY (reference notes §2.4).
    obs = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 50,
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": "chatcmpl-123",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": 11,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.input.messages": '[{"role":"system","parts":[{"content":"be brief","type":"text"}]},'
            '{"role":"user","parts":[{"content":"hello","type":"text"}]}]',
            "gen_ai.output.messages": '[{"role":"assistant","parts":[{"content":"echo: hello","type":"text"}],'
            '"finish_reason":"stop"}]',
            "server.address": "api.openai.com",
        },
        name="chat gpt-4o-mini",
        kind=3,
    )
    assert obs["type"] == "GENERATION"
    assert obs["input"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert obs["output"] == {"role": "assistant", "content": "echo: hello", "finish_reason": "stop"}
    assert (obs["model"], obs["response_model"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert obs["model_parameters"] == {"temperature": 0.2, "max_tokens": 50}
    assert (obs["input_tokens"], obs["output_tokens"]) == (11, 5)
    assert "total_tokens" not in obs  # not sent: the writer sums the token kinds
    assert obs["finish_reason"] == "stop"
    otel = obs["metadata"]["otel"]
    assert otel["span_kind"] == "CLIENT"
    assert otel["attributes"]["gen_ai.response.id"] == "chatcmpl-123"
    assert otel["attributes"]["gen_ai.operation.name"] == "chat"
    assert otel["attributes"]["server.address"] == "api.openai.com"


def test_tool_call_parts_in_the_output_become_tool_calls():
    obs = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "finish_reason": "tool_calls",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "call_1",
                                "name": "get_weather",
                                "arguments": {"city": "Paris"},
                            }
                        ],
                    }
                ]
            ),
        }
    )
    assert obs["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert obs["output"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }


def test_tool_responses_system_instructions_and_structured_values():
    # Structured AnyValues (kvlist/array), as the spec allows on spans and requires on events.
    obs = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system_instructions": [{"type": "text", "content": "You are terse."}],
            "gen_ai.input.messages": [
                {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
                {
                    "role": "assistant",
                    "parts": [{"type": "tool_call", "id": "c1", "name": "w", "arguments": {"q": 1}}],
                },
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
                {
                    "role": "user",
                    "parts": [
                        {"type": "text", "content": "and this?"},
                        {"type": "uri", "modality": "image", "uri": "https://x/cat.png"},
                        {"type": "blob", "modality": "audio", "content": "AAA"},
                    ],
                },
            ],
        }
    )
    assert obs["input"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": {"q": 1}}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and this?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                {"type": "blob", "modality": "audio", "content": "AAA"},
            ],
        },
    ]
    # Input messages are the prompt; tool calls are what the model asked for in its output.
    assert "tool_calls" not in obs


def test_cached_and_reasoning_tokens_are_taken_out_of_input_and_output():
    obs = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.cache_read.input_tokens": 800,
            "gen_ai.usage.cache_creation.input_tokens": 100,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.reasoning.output_tokens": 200,
        }
    )
    assert (obs["input_tokens"], obs["cached_input_tokens"], obs["cache_write_tokens"]) == (100, 800, 100)
    assert (obs["output_tokens"], obs["reasoning_tokens"]) == (100, 200)
    assert obs["metadata"]["usage_raw"]["gen_ai.usage.input_tokens"] == 1000
    assert "gen_ai.usage.input_tokens" not in obs["usage_details"]


def test_a_sender_that_already_excludes_cache_is_not_subtracted_twice():
    obs = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 50,
            "gen_ai.usage.cache_read_input_tokens": 800,
            "gen_ai.usage.output_tokens": 10,
        }
    )
    assert (obs["input_tokens"], obs["cached_input_tokens"]) == (50, 800)


def test_deprecated_names_and_flattened_openllmetry_messages():
    obs = _one(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4",
            "gen_ai.usage.prompt_tokens": "20",
            "gen_ai.usage.completion_tokens": 7,
            "llm.usage.total_tokens": 27,
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "sys",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "hi",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "call_9",
            "gen_ai.completion.0.tool_calls.0.name": "lookup",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"id": 3}',
        }
    )
    assert obs["type"] == "GENERATION"  # no operation name, but a model
    assert obs["input"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    assert obs["tool_calls"] == [{"id": "call_9", "name": "lookup", "arguments": {"id": 3}}]
    assert obs["finish_reason"] == "tool_calls"
    assert (obs["input_tokens"], obs["output_tokens"], obs["total_tokens"]) == (20, 7, 27)
    assert obs["metadata"]["otel"]["attributes"]["gen_ai.system"] == "openai"


def test_legacy_message_events_on_the_span_are_the_prompt_and_the_choice():
    obs = _one(
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"},
        events=[
            ("gen_ai.system.message", T0_NANOS + 1, {"gen_ai.system": "openai", "content": "sys"}),
            ("gen_ai.user.message", T0_NANOS + 2, {"gen_ai.system": "openai", "content": "hi"}),
            (
                "gen_ai.choice",
                T0_NANOS + 3,
                {
                    "gen_ai.system": "openai",
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {"role": "assistant"},
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
            ),
            ("custom.thing", T0_NANOS + 4, {"k": "v"}),
        ],
    )
    assert obs["input"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    assert obs["output"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert obs["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert obs["finish_reason"] == "tool_calls"
    # Events that are not content are kept in metadata.
    assert obs["metadata"]["otel"]["events"] == [
        {"name": "custom.thing", "time": "2026-11-26T19:41:58.704042Z", "attributes": {"k": "v"}}
    ]


def test_the_inference_details_event_supplies_content_and_request_details():
    obs = _one(
        {"gen_ai.operation.name": "chat"},
        events=[
            (
                "gen_ai.client.inference.operation.details",
                T0_NANOS + 9,
                {
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 3,
                    "gen_ai.input.messages": [
                        {"role": "user", "parts": [{"type": "text", "content": "hey"}]}
                    ],
                    "gen_ai.output.messages": [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "yo"}],
                            "finish_reason": "stop",
                        }
                    ],
                },
            )
        ],
    )
    assert obs["input"] == [{"role": "user", "content": "hey"}]
    assert obs["output"]["content"] == "yo"
    assert (obs["model"], obs["input_tokens"]) == ("gpt-4o", 3)
    assert "events" not in obs["metadata"]["otel"]


def test_an_execute_tool_span():
    obs = _one(
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.arguments": '{"city": "Paris"}',
            "gen_ai.tool.call.result": {"temp": 21},
        },
        name="execute_tool get_weather",
    )
    assert (obs["type"], obs["tool_name"], obs["tool_call_id"]) == ("TOOL", "get_weather", "call_1")
    assert (obs["input"], obs["output"]) == ({"city": "Paris"}, {"temp": 21})


@pytest.mark.parametrize(
    "operation, expected",
    [
        ("text_completion", "GENERATION"),
        ("generate_content", "GENERATION"),
        ("embeddings", "EMBEDDING"),
        ("invoke_agent", "AGENT"),
        ("create_agent", "AGENT"),
        ("retrieval", "RETRIEVER"),
        ("invoke_workflow", "CHAIN"),
        ("something_new", "SPAN"),
    ],
)
def test_operation_names(operation, expected):
    assert _one({"gen_ai.operation.name": operation})["type"] == expected


def test_a_tool_call_id_alone_makes_a_tool():
    assert _one({"gen_ai.tool.call.id": "c"})["type"] == "TOOL"


def test_the_conversation_id_is_the_session():
    trace = _batch({"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "conv-1"}).traces[0]
    assert trace["session_id"] == "conv-1"


@pytest.mark.parametrize("reasons", [["content_filter"], ["stop", "content_filter"], "refusal"])
def test_content_filter_and_refusal_finish_reasons_are_refusals(reasons):
    obs = _one({"gen_ai.operation.name": "chat", "gen_ai.response.finish_reasons": reasons})
    assert obs["status"] == "refused"
    assert obs["finish_reason"] in ("content_filter", "refusal")


def test_an_openai_refusal_in_the_output_is_a_refusal():
    obs = _one(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.output": '{"role": "assistant", "content": null, "refusal": "I can\'t."}',
        }
    )
    assert obs["status"] == "refused"


def test_time_to_first_chunk_sets_completion_start():
    obs = _one({"gen_ai.operation.name": "chat", "gen_ai.response.time_to_first_chunk": 0.25})
    assert obs["completion_start_time"] - obs["start_time"] == timedelta(milliseconds=250)


def test_error_type_marks_an_error():
    obs = _one({"gen_ai.operation.name": "chat", "error.type": "openai.RateLimitError"}, status=(2, "429"))
    assert (obs["error_type"], obs["error_message"], obs["status"], obs["level"]) == (
        "openai.RateLimitError",
        "429",
        "error",
        "ERROR",
    )


def test_evaluation_result_events_become_scores():
    batch = _batch(
        {"gen_ai.operation.name": "chat"},
        events=[
            (
                "gen_ai.evaluation.result",
                T0_NANOS + 1,
                {
                    "gen_ai.evaluation.name": "Relevance",
                    "gen_ai.evaluation.score.value": 4.0,
                    "gen_ai.evaluation.score.label": "relevant",
                    "gen_ai.evaluation.explanation": "on topic",
                },
            ),
            (
                "gen_ai.evaluation.result",
                T0_NANOS + 2,
                {"gen_ai.evaluation.name": "Toxicity", "gen_ai.evaluation.score.label": "safe"},
            ),
        ],
    )
    first, second = batch.scores
    assert (first["name"], first["value"], first["data_type"], first["comment"]) == (
        "Relevance",
        4.0,
        "NUMERIC",
        "on topic",
    )
    assert first["metadata"] == {"label": "relevant"}
    assert (first["trace_id"], first["observation_id"], first["source"]) == (
        TRACE_ID,
        "eee19b7ec3c1b174",
        "EVAL",
    )
    assert (second["string_value"], second["data_type"]) == ("safe", "CATEGORICAL")
    assert first["id"] != second["id"]
