"""One write path (issue 9): every source runs the same pipeline stages, so the same data is stored the
same way whichever wire it came over.

- parity: one LLM call sent as a Langfuse batch, as OTLP with `langfuse.*` attributes, with
  OpenInference attributes and with OTel GenAI attributes is stored as the same observation and trace
  rows (every column compared; the few that legitimately differ are listed with their reason);
- score configs apply to every source (a NUMERIC 0–1 `relevance` of 7 used to be stored when it came as
  an OpenInference annotation over OTLP);
- the refusal signals are one list (`prohibited_content` used to be `success` from a Langfuse batch
  and `refused` over OTLP).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from feedback import ratelimit
from ingest import pipeline
from ingest.adapters.otel.testing import T0_NANOS, make_request, make_span
from scores.models import Score
from scores.services import score_config_create
from traces.models import Observation, Trace

INGESTION = "/api/public/ingestion"
SCORES = "/api/public/scores"
FEEDBACK = "/api/v1/feedback"
OTLP = "/api/public/otel/v1/traces"
OTLP_PLAIN = "/v1/traces"

START = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=T0_NANOS // 1000)
END_NS = T0_NANOS + 1_500_000_000
FIRST_TOKEN_NS = T0_NANOS + 400_000_000
SYSTEM, USER = "You are terse.", "Weather in Paris?"
ARGUMENTS = '{"city": "Paris"}'
MODEL = "gpt-4o-mini"
PROMPT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
ANSWER = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGUMENTS}}
    ],
}
# OpenAI chat usage: 120 prompt tokens of which 100 read from the cache, 30 completion tokens of
# which 10 reasoning. Stored as disjoint kinds: 20 fresh input, 100 cached, 20 output, 10 reasoning.
OPENAI_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 10},
}


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")


@pytest.fixture
def catalog_price(project):
    """A project price for the model, in force long before the call (the catalog prices by start time)."""
    from pricing.models import ModelPrice

    return ModelPrice.objects.create(
        project=project,
        provider="openai",
        model_name=MODEL,
        match_pattern=f"^{MODEL}$",
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        input_price=Decimal("2.5"),
        cached_input_price=Decimal("1.25"),
        output_price=Decimal(10),
        reasoning_price=Decimal(12),
    )


@pytest.fixture
def relevance(project):
    return score_config_create(
        project=project, actor=None, name="relevance", data_type="NUMERIC", min_value=0, max_value=1
    )


def _ids() -> tuple[str, str]:
    return uuid.uuid4().hex, uuid.uuid4().hex[:16]


def _langfuse(client, api_key, events):
    body = {"batch": events}
    return client.post(
        INGESTION, data=orjson.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )


def _otlp(client, api_key, spans, *, url=OTLP, scope="tests", resource=None):
    request = make_request(
        spans,
        scope_name=scope,
        resource=resource or {"service.name": "svc", "deployment.environment.name": "production"},
    )
    return client.post(
        url,
        data=request.SerializeToString(),
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=api_key.basic,
    )


def _event(event_type: str, body: dict) -> dict:
    return {"id": uuid.uuid4().hex, "type": event_type, "timestamp": START.isoformat(), "body": body}


# --- the same call, four ways -----------------------------------------------------------------------


def send_langfuse_batch(client, api_key, trace_id, span_id):
    end = START + timedelta(milliseconds=1500)
    response = _langfuse(
        client,
        api_key,
        [
            _event(
                "trace-create",
                {
                    "id": trace_id,
                    "name": "chat",
                    "userId": "user-7",
                    "sessionId": "sess-42",
                    "environment": "production",
                    "input": PROMPT,
                    "output": ANSWER,
                },
            ),
            _event(
                "generation-create",
                {
                    "id": span_id,
                    "traceId": trace_id,
                    "name": "chat",
                    "startTime": START.isoformat(),
                    "endTime": end.isoformat(),
                    "completionStartTime": (START + timedelta(milliseconds=400)).isoformat(),
                    "model": MODEL,
                    "modelParameters": {"temperature": 0.2},
                    "environment": "production",
                    "input": PROMPT,
                    "output": ANSWER,
                    "usageDetails": OPENAI_USAGE,
                },
            ),
            _event(
                "score-create",
                {
                    "traceId": trace_id,
                    "observationId": span_id,
                    "name": "relevance",
                    "value": 0.9,
                    "source": "EVAL",
                    "timestamp": START.isoformat(),
                    "environment": "production",
                },
            ),
        ],
    )
    assert response.status_code == 207 and response.json()["errors"] == [], response.content


def send_otlp_langfuse(client, api_key, trace_id, span_id):
    attributes = {
        "langfuse.observation.type": "generation",
        "langfuse.trace.name": "chat",
        "langfuse.user.id": "user-7",
        "langfuse.session.id": "sess-42",
        "langfuse.environment": "production",
        "langfuse.observation.model.name": MODEL,
        "langfuse.observation.model.parameters": json.dumps({"temperature": 0.2}),
        "langfuse.observation.completion_start_time": (START + timedelta(milliseconds=400)).isoformat(),
        "langfuse.observation.input": json.dumps(PROMPT),
        "langfuse.observation.output": json.dumps(ANSWER),
        "langfuse.observation.usage_details": json.dumps(OPENAI_USAGE),
    }
    span = make_span(
        trace_id=trace_id,
        span_id=span_id,
        name="chat",
        start_ns=T0_NANOS,
        end_ns=END_NS,
        attributes=attributes,
    )
    response = _otlp(client, api_key, [span], scope="langfuse-sdk", resource={"service.name": "svc"})
    assert response.status_code == 200, response.content
    # The OTel-based Langfuse SDKs (v3+) send scores over the REST endpoint.
    score = {
        "traceId": trace_id,
        "observationId": span_id,
        "name": "relevance",
        "value": 0.9,
        "source": "EVAL",
        "timestamp": START.isoformat(),
        "environment": "production",
    }
    response = client.post(
        SCORES, data=orjson.dumps(score), content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )
    assert response.status_code == 200, response.content


def send_otlp_openinference(client, api_key, trace_id, span_id):
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.model_name": MODEL,
        "llm.invocation_parameters": json.dumps({"temperature": 0.2}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": USER,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": ARGUMENTS,
        "llm.token_count.prompt": 120,
        "llm.token_count.completion": 30,
        "llm.token_count.total": 150,
        "llm.token_count.prompt_details.cache_read": 100,
        "llm.token_count.completion_details.reasoning": 10,
        "session.id": "sess-42",
        "user.id": "user-7",
        "annotations.0.annotation.name": "relevance",
        "annotations.0.annotation.score": 0.9,
        "annotations.0.annotation.annotator_kind": "LLM",
    }
    span = make_span(
        trace_id=trace_id,
        span_id=span_id,
        name="chat",
        start_ns=T0_NANOS,
        end_ns=END_NS,
        attributes=attributes,
        events=[("First Token Stream Event", FIRST_TOKEN_NS, {})],
    )
    response = _otlp(client, api_key, [span], url=OTLP_PLAIN)
    assert response.status_code == 200, response.content


def send_otlp_genai(client, api_key, trace_id, span_id):
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
                {"role": "user", "parts": [{"type": "text", "content": USER}]},
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
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
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.reasoning.output_tokens": 10,
        "gen_ai.conversation.id": "sess-42",
        "user.id": "user-7",
        "gen_ai.response.time_to_first_chunk": 0.4,
    }
    evaluation = (
        "gen_ai.evaluation.result",
        T0_NANOS,
        {
            "gen_ai.evaluation.name": "relevance",
            "gen_ai.evaluation.score.value": 0.9,
        },
    )
    span = make_span(
        trace_id=trace_id,
        span_id=span_id,
        name="chat",
        kind=3,
        start_ns=T0_NANOS,
        end_ns=END_NS,
        attributes=attributes,
        events=[evaluation],
    )
    response = _otlp(client, api_key, [span])
    assert response.status_code == 200, response.content


SOURCES = {
    "langfuse batch": send_langfuse_batch,
    "otlp langfuse.*": send_otlp_langfuse,
    "otlp openinference": send_otlp_openinference,
    "otlp genai": send_otlp_genai,
}

# Columns that name the row or record when it was written, not the call.
IDENTITY = {"project", "id", "trace", "trace_id", "created_at", "updated_at"}
# Columns that legitimately differ by source, and why. Everything else must be equal.
OBSERVATION_EXCEPTIONS = {
    # (usage_details are compared: every wire stores our token kinds in Langfuse's keys, issue 10; the
    # usage as each convention names it is in metadata.usage_raw over OTLP.)
    # OTLP keeps what no column took (span kind, leftover attributes, resource, scope) under
    # metadata.otel; a batch event has no such envelope.
    "metadata": "the OTLP envelope (span kind, resource, scope, leftover attributes)",
    # The output as sent: GenAI's message schema spells tool-call arguments as an object where the
    # OpenAI form (Langfuse, OpenInference) has a JSON string. Compared after reading the arguments.
    "output": "tool-call arguments as an object (GenAI) or a JSON string (OpenAI form)",
    # `gen_ai.operation.name` tells a GenAI span is a chat; the others carry nothing left over.
}
SCORE_EXCEPTIONS = {
    # OpenInference keeps the annotator kind (`LLM`) in metadata; the others have no such field.
    "metadata": "OpenInference's annotator kind",
}
SCORE_IDENTITY = {"observation_id"}  # the observation's id, which differs by source like the ids above
TRACE_EXCEPTIONS = {
    "metadata": "the OTLP envelope of the root span",
    "output": "the root span's output, as above",
}


def _row(instance, exclude) -> dict:
    return {
        field.name: getattr(instance, field.attname)
        for field in type(instance)._meta.concrete_fields
        if field.name not in IDENTITY and field.name not in exclude
    }


def _arguments_read(output):
    """An output with every tool call's arguments as JSON values (the OTLP GenAI exception above)."""
    if isinstance(output, dict):
        out = {k: _arguments_read(v) for k, v in output.items()}
        if isinstance(out.get("arguments"), str):
            try:
                out["arguments"] = json.loads(out["arguments"])
            except ValueError:
                pass
        return out
    if isinstance(output, list):
        return [_arguments_read(item) for item in output]
    return output


def test_one_call_over_every_wire_is_stored_as_the_same_row(
    client, project, api_key, catalog_price, relevance
):
    stored = {}
    for source, send in SOURCES.items():
        trace_id, span_id = _ids()
        send(client, api_key, trace_id, span_id)
        observation = Observation.objects.for_project(project).get(id=span_id)
        trace = Trace.objects.for_project(project).get(id=trace_id)
        [score] = Score.objects.for_project(project).filter(trace_id=trace_id)
        assert observation.trace_id == trace_id and score.observation_id == span_id
        stored[source] = (observation, trace, score)

    reference, reference_trace, reference_score = stored["langfuse batch"]
    # What the call is, as captured (a sanity check that the comparison compares something).
    assert (reference.model, reference.type, reference.status, reference.environment) == (
        MODEL,
        "GENERATION",
        "success",
        "production",
    )
    assert (
        reference.input_tokens,
        reference.cached_input_tokens,
        reference.output_tokens,
        reference.reasoning_tokens,
        reference.total_tokens,
    ) == (20, 100, 20, 10, 150)
    assert reference.cost_source == "catalog" and reference.total_cost > 0
    assert reference.input == PROMPT
    assert reference.tool_calls == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert reference.completion_start_time == START + timedelta(milliseconds=400)
    assert (reference_trace.user_id, reference_trace.session_id) == ("user-7", "sess-42")
    # The evaluation's score, brought under the project's score config on every path.
    assert (reference_score.name, reference_score.value, reference_score.config_id) == (
        "relevance",
        0.9,
        str(relevance.id),
    )

    expected = _row(reference, OBSERVATION_EXCEPTIONS)
    expected_trace = _row(reference_trace, TRACE_EXCEPTIONS)
    expected_score = _row(reference_score, {**SCORE_EXCEPTIONS, **dict.fromkeys(SCORE_IDENTITY)})
    for source, (observation, trace, score) in stored.items():
        assert _row(score, {**SCORE_EXCEPTIONS, **dict.fromkeys(SCORE_IDENTITY)}) == expected_score, source
        assert _row(observation, OBSERVATION_EXCEPTIONS) == expected, source
        assert _arguments_read(observation.output) == _arguments_read(reference.output), source
        assert _row(trace, TRACE_EXCEPTIONS) == expected_trace, source
        assert _arguments_read(trace.output) == _arguments_read(reference_trace.output), source


# --- score configs on every path ----------------------------------------------------------------------


def _send_score(client, api_key, source: str, value, trace_id: str, span_id: str):
    """Send a `relevance` score of `value` for a trace over one source; returns the response."""
    if source == "rest":
        body = {"traceId": trace_id, "name": "relevance", "value": value}
        return client.post(
            SCORES, data=orjson.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
        )
    if source == "langfuse batch":
        return _langfuse(
            client,
            api_key,
            [_event("score-create", {"traceId": trace_id, "name": "relevance", "value": value})],
        )
    if source == "otlp openinference annotation":
        attributes = {
            "openinference.span.kind": "LLM",
            "annotations.0.annotation.name": "relevance",
            "annotations.0.annotation.score": value,
            "annotations.0.annotation.annotator_kind": "LLM",
        }
        return _otlp(client, api_key, [make_span(trace_id=trace_id, span_id=span_id, attributes=attributes)])
    if source == "otlp genai evaluation":
        event = (
            "gen_ai.evaluation.result",
            T0_NANOS,
            {
                "gen_ai.evaluation.name": "relevance",
                "gen_ai.evaluation.score.value": value,
            },
        )
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL}
        return _otlp(
            client,
            api_key,
            [make_span(trace_id=trace_id, span_id=span_id, attributes=attributes, events=[event])],
        )
    if source == "browser feedback":
        body = {"trace_id": trace_id, "name": "relevance", "rating": value}
        return client.post(
            FEEDBACK,
            data=orjson.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
        )
    raise AssertionError(source)


SCORE_SOURCES = (
    "rest",
    "langfuse batch",
    "otlp openinference annotation",
    "otlp genai evaluation",
    "browser feedback",
)


@pytest.mark.parametrize("source", SCORE_SOURCES)
def test_a_score_breaking_its_config_is_refused_on_every_path(client, project, api_key, relevance, source):
    trace_id, span_id = _ids()
    response = _send_score(client, api_key, source, 7, trace_id, span_id)
    assert not Score.objects.for_project(project).filter(name="relevance").exists(), source
    message = "score 'relevance' must be between 0 and 1 (its score config), got 7"
    if source == "langfuse batch":
        assert response.status_code == 207
        [error] = response.json()["errors"]
        assert (error["status"], error["error"]) == (400, message)
    elif source.startswith("otlp"):
        # The span is stored; the score is reported in the partial success, not counted as a span.
        assert response.status_code == 200
        assert Observation.objects.for_project(project).filter(id=span_id).exists()
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        answer = ExportTraceServiceResponse.FromString(response.content)
        assert answer.partial_success.rejected_spans == 0
        assert message in answer.partial_success.error_message
    else:
        assert response.status_code == 400
        body = response.json()
        assert message in (body["error"], body["message"])  # the REST score shape, the feedback shape


@pytest.mark.parametrize("source", SCORE_SOURCES)
def test_a_score_keeping_its_config_is_stored_on_every_path(client, project, api_key, relevance, source):
    trace_id, span_id = _ids()
    response = _send_score(client, api_key, source, 1, trace_id, span_id)
    assert response.status_code in (200, 201, 207), response.content
    [score] = Score.objects.for_project(project).filter(name="relevance")
    assert (score.value, score.data_type, score.config_id, score.trace_id) == (
        1.0,
        "NUMERIC",
        str(relevance.id),
        trace_id,
    )


# --- one list of refusal signals ------------------------------------------------------------------------


def test_prohibited_content_is_a_refusal_whichever_the_wire(client, project, api_key):
    batch_trace, batch_span = _ids()
    response = _langfuse(
        client,
        api_key,
        [
            _event(
                "generation-create",
                {
                    "id": batch_span,
                    "traceId": batch_trace,
                    "model": "gemini-2.0-flash",
                    "output": {"role": "assistant", "content": "", "finish_reason": "prohibited_content"},
                },
            )
        ],
    )
    assert response.status_code == 207 and response.json()["errors"] == []
    otlp_trace, otlp_span = _ids()
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gemini-2.0-flash",
        "gen_ai.response.finish_reasons": ["prohibited_content"],
    }
    assert (
        _otlp(
            client, api_key, [make_span(trace_id=otlp_trace, span_id=otlp_span, attributes=attributes)]
        ).status_code
        == 200
    )
    rows = dict(Observation.objects.for_project(project).values_list("id", "status"))
    assert rows == {batch_span: "refused", otlp_span: "refused"}
    stored = dict(Observation.objects.for_project(project).values_list("id", "finish_reason"))
    assert stored == {batch_span: "prohibited_content", otlp_span: "prohibited_content"}


# --- the pipeline itself -------------------------------------------------------------------------------


def test_the_stages_are_declared_once_in_order_with_their_slots():
    assert [(stage.name, stage.slot) for stage in pipeline.STAGES] == [
        ("quota", False),  # billing (issue 15)
        ("normalize", False),
        ("redact", False),
        ("conform_scores", False),
        ("price", False),
        ("sampling", False),  # monitoring: the client sample rate (issue 12)
        ("write", False),
        ("rollups", False),  # billing's usage counter; monitoring rollups later
    ]


def _code_without_docstrings(source: str) -> str:
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [
                n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
            ] or [ast.Pass()]
    return ast.unparse(tree)


def test_only_the_writer_writes_the_telemetry_tables():
    """traces, observations and scores are written by `ingest/writer.py` alone (ORM writes and SQL)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sql = re.compile(
        r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(traces_trace|traces_observation|feedback_score)\b",
        re.IGNORECASE,
    )
    orm = re.compile(
        r"\b(Trace|Observation|Score)\.objects\b[^\n]*\.(create|update|delete|bulk_create|bulk_update|"
        r"get_or_create|update_or_create)\("
    )
    offenders = []
    for path in root.glob("*/**/*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in ("tests", "bench", ".venv", ".data") or "/migrations/" in relative:
            continue
        if relative == "ingest/writer.py":
            continue
        text = _code_without_docstrings(path.read_text())
        offenders += [f"{relative}: {m.group(0)}" for m in (*sql.finditer(text), *orm.finditer(text))]
    assert offenders == []
