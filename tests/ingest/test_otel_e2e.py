"""End to end against a running server: the real OpenTelemetry SDK exporter (protobuf, gzip), OTLP/JSON
from the SDK's own encoder, the plain OTEL_EXPORTER_OTLP_ENDPOINT setup, and the Langfuse v5 SDK."""

import sys
from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from ingest.adapters.otel.testing import to_otlp_json
from tests.clients import run_sdk_script
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _record_agent_run(provider: TracerProvider) -> str:
    tracer = provider.get_tracer("e2e.instrumentation", "1.2.3")
    with tracer.start_as_current_span(
        "support-agent",
        attributes={
            "openinference.span.kind": "AGENT",
            "session.id": "sess-e2e",
            "user.id": "user-e2e",
            "input.value": "Where is my order?",
            "tag.tags": ["e2e"],
        },
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.request.temperature": 0.1,
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.finish_reasons": ["tool_calls"],
                "gen_ai.usage.input_tokens": 250,
                "gen_ai.usage.cache_read.input_tokens": 200,
                "gen_ai.usage.output_tokens": 20,
                "gen_ai.input.messages": orjson.dumps(
                    [
                        {"role": "system", "parts": [{"type": "text", "content": "You help with orders."}]},
                        {"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]},
                    ]
                ).decode(),
                "gen_ai.output.messages": orjson.dumps(
                    [
                        {
                            "role": "assistant",
                            "finish_reason": "tool_calls",
                            "parts": [
                                {
                                    "type": "tool_call",
                                    "id": "call_7",
                                    "name": "lookup_order",
                                    "arguments": {"order": 42},
                                }
                            ],
                        }
                    ]
                ).decode(),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool lookup_order",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_order",
                "gen_ai.tool.call.id": "call_7",
                "gen_ai.tool.call.arguments": '{"order": 42}',
            },
        ) as tool:
            try:
                raise TimeoutError("orders service timed out")
            except TimeoutError as exc:
                tool.record_exception(exc)
                tool.set_status(Status(StatusCode.ERROR, "orders service timed out"))
        root.set_attribute("output.value", "Sorry, try again later.")
        return format(root.get_span_context().trace_id, "032x")


def _assert_agent_run_stored(project, trace_id):
    trace = Trace.objects.for_project(project).get(id=trace_id)
    assert (trace.name, trace.session_id, trace.user_id, trace.tags) == (
        "support-agent",
        "sess-e2e",
        "user-e2e",
        ["e2e"],
    )
    assert (trace.input, trace.output) == ("Where is my order?", "Sorry, try again later.")
    assert trace.environment == "e2e"
    observations = {o.name: o for o in Observation.objects.for_project(project).filter(trace_id=trace_id)}
    assert set(observations) == {"support-agent", "chat gpt-4o-mini", "execute_tool lookup_order"}
    root = observations["support-agent"]
    chat = observations["chat gpt-4o-mini"]
    tool = observations["execute_tool lookup_order"]
    assert root.type == "AGENT" and chat.parent_observation_id == root.id == tool.parent_observation_id
    assert (chat.type, chat.model, chat.response_model) == (
        "GENERATION",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    )
    assert chat.input[0] == {"role": "system", "content": "You help with orders."}
    assert chat.tool_calls == [{"id": "call_7", "name": "lookup_order", "arguments": {"order": 42}}]
    assert (chat.input_tokens, chat.cached_input_tokens, chat.output_tokens, chat.total_tokens) == (
        50,
        200,
        20,
        270,
    )
    assert chat.model_parameters == {"temperature": 0.1}
    assert (chat.finish_reason, chat.status) == ("tool_calls", "success")
    assert chat.end_time >= chat.start_time >= root.start_time
    assert (tool.type, tool.tool_name, tool.tool_call_id, tool.input) == (
        "TOOL",
        "lookup_order",
        "call_7",
        {"order": 42},
    )
    assert (tool.status, tool.level, tool.error_type) == ("error", "ERROR", "TimeoutError")
    assert tool.error_message == "orders service timed out" and "Traceback" in tool.error_stack
    assert chat.metadata["otel"]["scope"] == {"name": "e2e.instrumentation", "version": "1.2.3"}
    assert chat.metadata["otel"]["resource"]["service.name"] == "e2e-service"


def _provider():
    return TracerProvider(
        resource=Resource.create({"service.name": "e2e-service", "deployment.environment.name": "e2e"})
    )


def test_the_opentelemetry_sdk_exporter_stores_an_agent_run(live_server, project, api_key, other_project):
    provider = _provider()
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/api/public/otel/v1/traces",
        headers={"Authorization": api_key.basic},
        compression=Compression.Gzip,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace_id = _record_agent_run(provider)
    assert provider.force_flush(10_000)
    provider.shutdown()
    _assert_agent_run_stored(project, trace_id)
    assert not Trace.objects.for_project(other_project).exists()


def test_a_plain_otel_exporter_endpoint_setting_reaches_v1_traces(live_server, project, api_key, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", live_server.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization={api_key.bearer.replace(' ', '%20')}")
    exporter = OTLPSpanExporter()
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = _record_agent_run(provider)
    provider.shutdown()
    _assert_agent_run_stored(project, trace_id)


def test_otlp_json_encoded_from_the_sdks_own_spans(live_server, project, api_key):
    # The Python exporter speaks protobuf only; JS/Go exporters send OTLP/JSON, built here the same way.
    memory = InMemorySpanExporter()
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace_id = _record_agent_run(provider)
    body = orjson.dumps(to_otlp_json(encode_spans(memory.get_finished_spans())))
    assert trace_id.encode() in body  # hex ids on the wire, as OTLP/JSON requires
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=body,
        timeout=10,
        headers={"Content-Type": "application/json", "Authorization": api_key.bearer},
    )
    assert response.status_code == 200 and response.json() == {}
    _assert_agent_run_stored(project, trace_id)


LANGFUSE_V5_SCRIPT = """
import os
from langfuse import Langfuse, propagate_attributes

lf = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], base_url=os.environ["HOST"],
              environment="staging", release="rel-1.2.3")
with lf.start_as_current_observation(as_type="span", name="root-span", input={"q": "hi"}) as root:
    with propagate_attributes(user_id="user-42", session_id="sess-7", tags=["t1", "t2"], trace_name="my-trace",
                              metadata={"tenant": "acme"}):
        with lf.start_as_current_observation(
            as_type="generation", name="llm-call", model="gpt-4o-mini", input=[{"role": "user", "content": "hi"}],
            model_parameters={"temperature": 0.7}, usage_details={"input": 10, "output": 5, "cache_read_input_tokens": 2},
            cost_details={"input": 0.0001, "output": 0.0002},
        ) as generation:
            generation.update(output={"role": "assistant", "content": "hello"})
        with lf.start_as_current_observation(as_type="tool", name="search-tool", input={"query": "x"}) as tool:
            tool.update(output=["r1"], level="WARNING", status_message="slow")
    root.update(output={"a": "done"})
    print(root.trace_id)
lf.flush()
lf.shutdown()
"""


def test_the_langfuse_v5_sdk(live_server, project, api_key):
    stdout = run_sdk_script(
        Path(sys.executable),
        LANGFUSE_V5_SCRIPT,
        timeout=60,
        env={"PK": api_key.public, "SK": api_key.secret, "HOST": live_server.url},
    )
    trace_id = stdout.strip().splitlines()[-1]
    trace = Trace.objects.for_project(project).get(id=trace_id)
    assert (trace.name, trace.user_id, trace.session_id, trace.tags) == (
        "my-trace",
        "user-42",
        "sess-7",
        ["t1", "t2"],
    )
    assert (trace.environment, trace.release, trace.metadata) == ("staging", "rel-1.2.3", {"tenant": "acme"})
    assert (trace.input, trace.output) == ({"q": "hi"}, {"a": "done"})
    observations = {o.name: o for o in Observation.objects.for_project(project).filter(trace_id=trace_id)}
    generation = observations["llm-call"]
    assert (generation.type, generation.model, generation.prompt_name) == ("GENERATION", "gpt-4o-mini", "")
    assert (generation.input_tokens, generation.cached_input_tokens, generation.output_tokens) == (10, 2, 5)
    assert generation.output == {"role": "assistant", "content": "hello"}
    assert generation.cost_source == "client" and float(generation.total_cost) == pytest.approx(0.0003)
    tool = observations["search-tool"]
    assert (tool.type, tool.level, tool.status_message, tool.output) == ("TOOL", "WARNING", "slow", ["r1"])
    assert observations["root-span"].parent_observation_id == ""
