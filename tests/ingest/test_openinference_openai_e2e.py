"""End to end: the OpenInference instrumentor drives the real `openai` client against a local fake
OpenAI server, the real OpenTelemetry SDK exporter sends the spans over OTLP/HTTP to a running
Lookglass, and what was stored is checked field by field against what was sent and answered.

The spans are also kept in memory so stored timestamps can be compared with the ones the SDK
recorded (to the microsecond the database keeps), not just checked for order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import openai
import pytest
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai import OpenAIInstrumentor
from openinference.semconv.trace import (
    OpenInferenceMimeTypeValues,
    OpenInferenceSpanKindValues,
    SpanAttributes,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.fake_openai import FakeOpenAI, Reply, ToolCall
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

REQUESTED_MODEL = "gpt-4o-mini"
ANSWERED_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM = "You are a terse weather assistant."
QUESTION = "What is the weather in Paris?"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(nanos: int) -> datetime:
    return EPOCH + timedelta(microseconds=nanos // 1000)


class _RecordingExporter(SpanExporter):
    """SimpleSpanProcessor only logs a failed export; remembering the results lets a test fail on
    the real cause (a rejected export) instead of on missing rows."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass
class Pipeline:
    provider: TracerProvider
    memory: InMemorySpanExporter
    exporter: _RecordingExporter
    fake: FakeOpenAI
    client: openai.OpenAI

    def finished(self) -> dict[str, ReadableSpan]:
        """Spans finished so far, by hex span id, after checking every export reached the server."""
        assert self.provider.force_flush(10_000)
        assert self.exporter.results and all(r is SpanExportResult.SUCCESS for r in self.exporter.results)
        return {format(s.context.span_id, "016x"): s for s in self.memory.get_finished_spans()}

    def only_llm_span(self) -> ReadableSpan:
        spans = [s for s in self.finished().values() if s.name == "ChatCompletion"]
        assert len(spans) == 1
        return spans[0]


@pytest.fixture
def pipeline(live_server, api_key):
    # A provider of the test's own, never the global one, so nothing leaks into other tests.
    provider = TracerProvider(resource=Resource.create({"service.name": "oi-openai-e2e"}))
    exporter = _RecordingExporter(
        OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces", headers={"Authorization": api_key.bearer})
    )
    memory = InMemorySpanExporter()
    # Simple (synchronous) processors: a span is stored before the call that ended it returns.
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with FakeOpenAI() as fake:
            # No retries: an error answer must reach the caller (and the span) exactly once.
            client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake-test", max_retries=0)
            yield Pipeline(provider=provider, memory=memory, exporter=exporter, fake=fake, client=client)
            client.close()
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert not instrumentor.is_instrumented_by_opentelemetry  # the client is unpatched for later tests


def _stored(project, span: ReadableSpan) -> Observation:
    return Observation.objects.for_project(project).get(id=format(span.context.span_id, "016x"))


def _trace_id(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def _assert_times_match(obs: Observation, span: ReadableSpan) -> None:
    assert (obs.start_time, obs.end_time) == (_at(span.start_time), _at(span.end_time))
    assert obs.latency_ms == (obs.end_time - obs.start_time).total_seconds() * 1000
    assert obs.latency_ms > 0


def test_a_plain_chat_completion_is_stored_field_by_field(pipeline, project, other_project):
    pipeline.fake.script(
        Reply(
            content="Sunny, 21 degrees.",
            prompt_tokens=30,
            cached_tokens=20,
            completion_tokens=7,
            reasoning_tokens=3,
        )
    )
    answer = pipeline.client.chat.completions.create(
        model=REQUESTED_MODEL, messages=MESSAGES, temperature=0.2
    )
    assert answer.choices[0].message.content == "Sunny, 21 degrees."

    span = pipeline.only_llm_span()
    obs = _stored(project, span)
    assert (obs.trace_id, obs.parent_observation_id) == (_trace_id(span), "")
    assert (obs.type, obs.name) == ("GENERATION", "ChatCompletion")
    assert obs.input == pipeline.fake.requests[0]["messages"] == MESSAGES  # system + user, as sent
    assert obs.output == {"role": "assistant", "content": "Sunny, 21 degrees."}
    assert obs.tool_calls == []
    # OpenAI's prompt_tokens include the cached ones and completion_tokens the reasoning ones.
    assert (
        obs.input_tokens,
        obs.cached_input_tokens,
        obs.cache_write_tokens,
        obs.output_tokens,
        obs.reasoning_tokens,
        obs.total_tokens,
    ) == (10, 20, None, 4, 3, 37)
    assert obs.metadata["usage_raw"]["llm.token_count.prompt"] == 30
    assert obs.model_parameters["temperature"] == 0.2
    assert (obs.finish_reason, obs.status, obs.level) == ("stop", "success", "DEFAULT")
    assert (obs.error_type, obs.error_message, obs.status_message) == ("", "", "")
    _assert_times_match(obs, span)
    assert obs.completion_start_time is None  # not streamed: the instrumentation records no first token
    assert obs.metadata["otel"]["scope"]["name"] == "openinference.instrumentation.openai"
    assert obs.metadata["otel"]["resource"]["service.name"] == "oi-openai-e2e"

    trace = Trace.objects.for_project(project).get(id=obs.trace_id)
    assert (trace.name, trace.input, trace.output) == ("ChatCompletion", obs.input, obs.output)
    assert trace.timestamp == obs.start_time
    assert not Trace.objects.for_project(other_project).exists()


def test_a_streamed_completion_keeps_its_usage_and_time_to_first_token(pipeline, project):
    pipeline.fake.script(
        Reply(content="Light rain this evening.", prompt_tokens=30, cached_tokens=10, completion_tokens=5)
    )
    stream = pipeline.client.chat.completions.create(
        model=REQUESTED_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Light rain this evening."
    assert pipeline.fake.requests[0]["stream_options"] == {"include_usage": True}

    span = pipeline.only_llm_span()
    obs = _stored(project, span)
    assert obs.type == "GENERATION"
    assert obs.input == MESSAGES
    assert obs.output == {"role": "assistant", "content": "Light rain this evening."}  # chunks joined
    assert (
        obs.input_tokens,
        obs.cached_input_tokens,
        obs.output_tokens,
        obs.reasoning_tokens,
        obs.total_tokens,
    ) == (20, 10, 5, None, 35)
    assert (obs.finish_reason, obs.status) == ("stop", "success")
    _assert_times_match(obs, span)
    # OpenInference marks the first chunk with a "First Token Stream Event".
    (first_token,) = [e for e in span.events if e.name == "First Token Stream Event"]
    assert obs.completion_start_time == _at(first_token.timestamp)
    assert obs.start_time < obs.completion_start_time < obs.end_time
    assert 0 < obs.time_to_first_token_ms < obs.latency_ms
    assert "events" not in obs.metadata["otel"]  # the event became the field, not a leftover


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_tool_calling_agent_run_stores_the_call_the_tool_and_the_answer(pipeline, project, stream):
    arguments = {"city": "Paris", "unit": "celsius"}
    weather = {"city": "Paris", "temperature": 21, "sky": "sunny"}
    pipeline.fake.script(
        Reply(
            tool_calls=[ToolCall("call_w1", "get_weather", json.dumps(arguments))],
            finish_reason="tool_calls",
            prompt_tokens=80,
            completion_tokens=18,
        ),
        Reply(content="It is sunny and 21 degrees in Paris.", prompt_tokens=120, completion_tokens=11),
    )
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}

    def ask(messages):
        response = pipeline.client.chat.completions.create(
            model=REQUESTED_MODEL, messages=messages, tools=[WEATHER_TOOL], **extra
        )
        if not stream:
            answer = response.choices[0].message
            message = {"role": "assistant", "content": answer.content}
            if answer.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments},
                    }
                    for c in answer.tool_calls
                ]
            return message
        # Rebuild the assistant message from the deltas, as an application would.
        content, calls = "", {}
        for chunk in response:
            for choice in chunk.choices:
                content += choice.delta.content or ""
                for delta in choice.delta.tool_calls or []:
                    call = calls.setdefault(delta.index, {"type": "function", "function": {"arguments": ""}})
                    if delta.id:
                        call["id"] = delta.id
                    if delta.function.name:
                        call["function"]["name"] = delta.function.name
                    call["function"]["arguments"] += delta.function.arguments or ""
        message = {"role": "assistant", "content": content or None}
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        return message

    tracer = pipeline.provider.get_tracer("weather-agent", "0.1.0")
    with (
        using_attributes(session_id="sess-weather", user_id="user-9"),
        tracer.start_as_current_span(
            "weather-agent",
            attributes={
                SpanAttributes.OPENINFERENCE_SPAN_KIND: OpenInferenceSpanKindValues.AGENT.value,
                SpanAttributes.INPUT_VALUE: QUESTION,
            },
        ) as root,
    ):
        messages = list(MESSAGES)
        asked = ask(messages)
        (call,) = asked["tool_calls"]
        with tracer.start_as_current_span(
            "get_weather",
            attributes={
                SpanAttributes.OPENINFERENCE_SPAN_KIND: OpenInferenceSpanKindValues.TOOL.value,
                SpanAttributes.TOOL_NAME: call["function"]["name"],
                SpanAttributes.TOOL_ID: call["id"],
                SpanAttributes.INPUT_VALUE: call["function"]["arguments"],
                SpanAttributes.INPUT_MIME_TYPE: OpenInferenceMimeTypeValues.JSON.value,
            },
        ) as tool_span:
            assert json.loads(call["function"]["arguments"]) == arguments
            result = json.dumps(weather)
            tool_span.set_attribute(SpanAttributes.OUTPUT_VALUE, result)
            tool_span.set_attribute(SpanAttributes.OUTPUT_MIME_TYPE, OpenInferenceMimeTypeValues.JSON.value)
        messages += [asked, {"role": "tool", "tool_call_id": call["id"], "content": result}]
        final = ask(messages)
        root.set_attribute(SpanAttributes.OUTPUT_VALUE, final["content"])

    spans = pipeline.finished()
    assert len(spans) == 4
    trace_id = _trace_id(root)
    observations = {o.id: o for o in Observation.objects.for_project(project).filter(trace_id=trace_id)}
    assert set(observations) == set(spans)
    root_id = format(root.context.span_id, "016x")
    agent = observations[root_id]
    tool = observations[format(tool_span.context.span_id, "016x")]
    first, second = sorted(
        (o for o in observations.values() if o.type == "GENERATION"), key=lambda o: o.start_time
    )
    assert (agent.type, agent.parent_observation_id) == ("AGENT", "")
    assert (
        first.parent_observation_id == tool.parent_observation_id == second.parent_observation_id == root_id
    )
    assert first.end_time <= tool.start_time <= tool.end_time <= second.start_time

    # The model's tool call: name, call id, parsed arguments.
    assert first.tool_calls == [{"id": "call_w1", "name": "get_weather", "arguments": arguments}]
    assert first.output["tool_calls"] == [
        {
            "id": "call_w1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(arguments)},
        }
    ]
    assert (first.finish_reason, first.status) == ("tool_calls", "success")
    assert first.input == pipeline.fake.requests[0]["messages"] == MESSAGES
    assert (first.input_tokens, first.output_tokens, first.total_tokens) == (80, 18, 98)
    assert first.metadata["tools"] == [WEATHER_TOOL]

    # The tool execution, as the test code recorded it.
    assert (tool.type, tool.name, tool.tool_name, tool.tool_call_id) == (
        "TOOL",
        "get_weather",
        "get_weather",
        "call_w1",
    )
    assert (tool.input, tool.output, tool.status) == (arguments, weather, "success")
    _assert_times_match(tool, spans[tool.id])

    # The follow-up call carries the assistant's tool call and the tool result, as sent.
    assert second.input == pipeline.fake.requests[1]["messages"]
    assert second.input[2]["tool_calls"][0]["id"] == "call_w1"
    assert second.input[3] == {"role": "tool", "tool_call_id": "call_w1", "content": json.dumps(weather)}
    assert second.output == {"role": "assistant", "content": "It is sunny and 21 degrees in Paris."}
    assert second.tool_calls == []  # calls in the prompt are history, not this generation's
    assert (second.input_tokens, second.output_tokens, second.total_tokens) == (120, 11, 131)
    assert (second.finish_reason, second.status) == ("stop", "success")
    if stream:
        assert first.start_time < first.completion_start_time < first.end_time
        assert second.start_time < second.completion_start_time < second.end_time

    trace = Trace.objects.for_project(project).get(id=trace_id)
    assert (trace.name, trace.session_id, trace.user_id) == ("weather-agent", "sess-weather", "user-9")
    assert (trace.input, trace.output) == (QUESTION, "It is sunny and 21 degrees in Paris.")


def test_a_content_filter_finish_is_stored_as_refused(pipeline, project):
    pipeline.fake.script(
        Reply(
            content=None,
            refusal="I can't help with that.",
            finish_reason="content_filter",
            prompt_tokens=12,
            completion_tokens=0,
        )
    )
    answer = pipeline.client.chat.completions.create(model=REQUESTED_MODEL, messages=MESSAGES)
    assert answer.choices[0].finish_reason == "content_filter"

    span = pipeline.only_llm_span()
    obs = _stored(project, span)
    assert (obs.type, obs.status, obs.finish_reason, obs.level) == (
        "GENERATION",
        "refused",
        "content_filter",
        "DEFAULT",
    )
    assert obs.error_type == ""
    assert obs.input == MESSAGES
    # The instrumentation puts no refusal text into its output messages; the response body it
    # sent is kept whole in metadata, so the text is not lost.
    assert obs.output == {"role": "assistant", "content": None}
    assert "I can't help with that." in obs.metadata["otel"]["attributes"]["output.value"]
    assert (obs.input_tokens, obs.output_tokens, obs.total_tokens) == (12, 0, 12)


@pytest.mark.parametrize(
    ("status", "error_class", "message", "kind"),
    [
        (500, openai.InternalServerError, "The server had an error processing your request.", "server_error"),
        (
            400,
            openai.BadRequestError,
            "Invalid value for 'temperature': must be <= 2.",
            "invalid_request_error",
        ),
    ],
    ids=["http-500", "http-400"],
)
def test_a_failed_call_is_stored_as_an_error_with_its_exception(
    pipeline, project, status, error_class, message, kind
):
    pipeline.fake.script(Reply(status=status, error_message=message, error_type=kind))
    with pytest.raises(error_class) as raised:
        pipeline.client.chat.completions.create(model=REQUESTED_MODEL, messages=MESSAGES, temperature=0.5)
    assert raised.value.status_code == status
    assert len(pipeline.fake.requests) == 1  # one attempt, one span

    span = pipeline.only_llm_span()
    obs = _stored(project, span)
    assert (obs.type, obs.status, obs.level) == ("GENERATION", "error", "ERROR")
    assert obs.error_type == f"openai.{error_class.__name__}"
    assert obs.error_message == str(raised.value) and message in obs.error_message
    assert obs.status_message == f"{error_class.__name__}: {raised.value}"
    assert obs.error_stack.startswith("Traceback") and error_class.__name__ in obs.error_stack
    assert obs.input == MESSAGES  # what was asked is kept even though nothing came back
    assert (obs.output, obs.tool_calls, obs.finish_reason) == (None, [], "")
    assert (obs.input_tokens, obs.output_tokens, obs.total_tokens) == (None, None, None)
    assert obs.model_parameters["temperature"] == 0.5
    _assert_times_match(obs, span)


def test_the_requested_and_the_answered_model_are_both_kept(pipeline, project):
    pipeline.fake.script(Reply(content="ok", model=ANSWERED_MODEL, prompt_tokens=3, completion_tokens=1))
    pipeline.client.chat.completions.create(model=REQUESTED_MODEL, messages=MESSAGES)
    obs = _stored(project, pipeline.only_llm_span())
    assert (obs.model, obs.response_model) == (REQUESTED_MODEL, ANSWERED_MODEL)
