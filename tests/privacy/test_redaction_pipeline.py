"""PII redaction before storage, on every ingest path: Langfuse batches, OTLP (both routes, both
encodings) and the scores API.

Stored rows are read back raw from the region database (SQL through `data_connection`), so what is
checked is what is on disk: never the raw value, the mask or pseudonym instead, and the counts in
`redactions`. A project without an enabled policy stores what it is sent; a record the redactor
fails on is rejected with a clear error while the others are stored, and nothing of it is kept.
"""

from __future__ import annotations

import orjson
import pytest
from django.db import OperationalError, connections
from django.test.utils import CaptureQueriesContext
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest.adapters.otel.testing import TRACE_ID, make_request, make_span, to_otlp_json
from ingest.stages import price as costs
from privacy import engine
from privacy.services import redaction_policy_update
from tenancy.dataplane import data_connection

EMAIL = "maria.lopez@gmail.com"
PHONE = "+1 415 555 2671"
CARD = "4111 1111 1111 1111"
OPENAI_KEY = "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2"
PASSWORD = "correct-horse-battery"
RAW_VALUES = (EMAIL, PHONE, CARD, OPENAI_KEY, PASSWORD)

INGESTION = "/api/public/ingestion"
SCORES = "/api/public/scores"
OTLP_ROUTES = ("/api/public/otel/v1/traces", "/v1/traces")
PROTOBUF = "application/x-protobuf"

TRACE = "t-pii"
GEN = "g-pii"
GEN_OK = "g-clean"
SPAN_CHILD = "1111111111111111"
SPAN_OTHER = "2222222222222222"


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


@pytest.fixture
def policy_on(project, owner):
    return redaction_policy_update(project=project, actor=owner)


# --- reading what is on disk ------------------------------------------------------------------------

TABLES = {"trace": "traces_trace", "observation": "traces_observation", "score": "feedback_score"}


def stored(project, kind: str) -> dict[str, dict]:
    """{id: row as JSON} straight from the project's region database."""
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f"SELECT id, row_to_json(t)::text FROM {TABLES[kind]} AS t WHERE t.project_id = %s", [project.id]
        )
        return {row_id: orjson.loads(text) for row_id, text in cursor.fetchall()}


def occurrences(project, value: str) -> int:
    """Rows of the project, in any table, whose text holds `value` anywhere."""
    total = 0
    with data_connection(project).cursor() as cursor:
        for table in TABLES.values():
            cursor.execute(
                f"SELECT count(*) FROM {table} AS t WHERE t.project_id = %s AND strpos(row_to_json(t)::text, %s) > 0",
                [project.id, value],
            )
            total += cursor.fetchone()[0]
    return total


def assert_no_raw_values(project):
    for value in RAW_VALUES:
        assert occurrences(project, value) == 0, f"{value!r} was stored"


def fail_for(monkeypatch, record_id: str):
    """The redactor raises for one record (by id), as a bug in a detector would."""
    original = engine.Redactor.redact_record

    def flaky(self, record, fields):
        if record.get("id") == record_id:
            raise RuntimeError(f"detector crashed on {record.get('input')!r}")
        return original(self, record, fields)

    monkeypatch.setattr(engine.Redactor, "redact_record", flaky)


# --- Langfuse batch ---------------------------------------------------------------------------------


def ts(second: int) -> str:
    return f"2026-11-26T19:42:{second:02d}.000000Z"


def langfuse_batch() -> dict:
    return {
        "batch": [
            {"id": "e-trace", "type": "trace-create", "timestamp": ts(1), "body": {
                "id": TRACE, "name": "support", "userId": "u-1", "timestamp": ts(1),
                "input": f"Hi, I am {EMAIL}", "metadata": {"password": PASSWORD, "plan": "pro"},
            }},
            {"id": "e-gen", "type": "generation-create", "timestamp": ts(2), "body": {
                "id": GEN, "traceId": TRACE, "name": "chat", "model": "gpt-4o-mini", "startTime": ts(2),
                "input": [{"role": "user", "content": f"Call me at {PHONE}, card {CARD}"}],
                "usage": {"input": 12, "output": 3},
            }},
            {"id": "e-gen-update", "type": "generation-update", "timestamp": ts(3), "body": {
                "id": GEN, "traceId": TRACE, "endTime": ts(3),
                "output": {"role": "assistant", "content": f"Your key {OPENAI_KEY} was revoked"},
                "statusMessage": f"mailed {EMAIL}",
            }},
            {"id": "e-gen-ok", "type": "generation-create", "timestamp": ts(4), "body": {
                "id": GEN_OK, "traceId": TRACE, "name": "summary", "startTime": ts(4), "input": "no pii here",
            }},
            {"id": "e-score", "type": "score-create", "timestamp": ts(5), "body": {
                "id": "s-pii", "traceId": TRACE, "name": "helpful", "value": 1,
                "comment": f"customer {EMAIL} was happy",
            }},
        ]
    }


def ingest(client, api_key, payload):
    return client.post(
        INGESTION, data=orjson.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )


def test_langfuse_batches_are_redacted_before_storage(client, api_key, project, policy_on):
    response = ingest(client, api_key, langfuse_batch())
    assert response.status_code == 207
    assert response.json()["errors"] == [] and len(response.json()["successes"]) == 5

    trace = stored(project, "trace")[TRACE]
    assert trace["input"] == "Hi, I am [EMAIL]"
    assert trace["metadata"] == {"password": "[SECRET]", "plan": "pro"}
    assert trace["redactions"] == {"input": {"email": 1}, "metadata": {"secret_field": 1}}
    assert trace["user_id"] == "u-1"

    observations = stored(project, "observation")
    gen = observations[GEN]
    assert gen["input"] == [{"role": "user", "content": "Call me at [PHONE], card [CREDIT_CARD]"}]
    assert gen["output"] == {"role": "assistant", "content": "Your key [OPENAI_KEY] was revoked"}
    assert gen["status_message"] == "mailed [EMAIL]"
    # Counts from the create and the update event, deep-merged by the writer.
    assert gen["redactions"] == {
        "input": {"phone": 1, "credit_card": 1}, "output": {"openai_key": 1}, "status_message": {"email": 1},
    }
    assert gen["model"] == "gpt-4o-mini" and gen["input_tokens"] == 12
    assert observations[GEN_OK]["input"] == "no pii here" and observations[GEN_OK]["redactions"] == {}

    score = stored(project, "score")["s-pii"]
    assert score["comment"] == "customer [EMAIL] was happy" and score["redactions"] == {"comment": {"email": 1}}
    assert_no_raw_values(project)


def test_counts_from_separate_requests_are_merged_into_the_stored_row(client, api_key, project, policy_on):
    """The create and the update of an observation arrive in two requests: the second merges into
    the stored row in SQL, and the counts of both stay (deep merge per field)."""
    events = langfuse_batch()["batch"]
    create = [e for e in events if e["id"] in ("e-trace", "e-gen")]
    update = [e for e in events if e["id"] == "e-gen-update"]
    assert ingest(client, api_key, {"batch": create}).json()["errors"] == []
    assert stored(project, "observation")[GEN]["redactions"] == {"input": {"phone": 1, "credit_card": 1}}
    assert ingest(client, api_key, {"batch": update}).json()["errors"] == []
    assert stored(project, "observation")[GEN]["redactions"] == {
        "input": {"phone": 1, "credit_card": 1}, "output": {"openai_key": 1}, "status_message": {"email": 1},
    }
    assert_no_raw_values(project)


def test_pseudonyms_are_stable_within_the_project(client, api_key, project, owner):
    redaction_policy_update(project=project, actor=owner, detector_modes={"email": "pseudonymize"})
    ingest(client, api_key, langfuse_batch())
    trace = stored(project, "trace")[TRACE]
    score = stored(project, "score")["s-pii"]
    token = trace["input"].removeprefix("Hi, I am ")
    assert token.startswith("[EMAIL:") and len(token) == len("[EMAIL:12345678]")
    assert score["comment"] == f"customer {token} was happy"
    assert_no_raw_values(project)


def test_a_project_whose_policy_is_off_stores_what_it_is_sent(client, api_key, project, owner, monkeypatch):
    redaction_policy_update(project=project, actor=owner, enabled=False)
    fail_for(monkeypatch, GEN)  # would reject the generation if redaction ran at all
    response = ingest(client, api_key, langfuse_batch())
    assert response.status_code == 207 and response.json()["errors"] == []
    assert stored(project, "trace")[TRACE]["input"] == f"Hi, I am {EMAIL}"
    gen = stored(project, "observation")[GEN]
    assert gen["input"][0]["content"] == f"Call me at {PHONE}, card {CARD}" and gen["redactions"] == {}
    assert stored(project, "score")["s-pii"]["comment"] == f"customer {EMAIL} was happy"


def test_a_project_without_a_policy_skips_redaction_entirely(client, api_key, project, monkeypatch):
    def must_not_run(**kwargs):
        raise AssertionError("redact_records ran for a project without a policy")

    monkeypatch.setattr(engine, "redact_records", must_not_run)
    response = ingest(client, api_key, langfuse_batch())
    assert response.status_code == 207 and response.json()["errors"] == []
    # As sent: the trace's input, the generation's status message and the score's comment.
    assert occurrences(project, EMAIL) == 3


def test_a_langfuse_event_that_cannot_be_redacted_is_rejected_and_the_others_are_stored(
    client, api_key, project, policy_on, monkeypatch
):
    fail_for(monkeypatch, GEN)
    response = ingest(client, api_key, langfuse_batch())
    assert response.status_code == 207
    body = response.json()
    errors = {e["id"]: e for e in body["errors"]}
    # Both events of the generation carry its content, so both are refused.
    assert set(errors) == {"e-gen", "e-gen-update"}
    assert all(e["status"] == 422 and "redaction failed" in e["error"] for e in errors.values())
    assert {s["id"] for s in body["successes"]} == {"e-trace", "e-gen-ok", "e-score"}
    assert GEN not in stored(project, "observation")
    assert stored(project, "observation")[GEN_OK]["input"] == "no pii here"
    assert stored(project, "trace")[TRACE]["input"] == "Hi, I am [EMAIL]"
    for value in (PHONE, CARD, OPENAI_KEY):  # the failed record's content: nowhere
        assert occurrences(project, value) == 0
    assert_no_raw_values(project)
    assert "detector crashed" not in response.content.decode()


def test_a_failing_trace_record_is_rejected_while_its_observations_are_stored(
    client, api_key, project, policy_on, monkeypatch
):
    fail_for(monkeypatch, TRACE)
    body = ingest(client, api_key, langfuse_batch()).json()
    assert [e["id"] for e in body["errors"]] == ["e-trace"]
    # The observations still get the placeholder trace the writer makes for a missing one, with
    # nothing of the trace-create's content.
    trace = stored(project, "trace")[TRACE]
    assert trace["input"] is None and trace["metadata"] == {} and trace["name"] == ""
    assert_no_raw_values(project)


def test_an_unreadable_policy_refuses_the_batch_instead_of_storing_it_unredacted(
    client, api_key, project, policy_on, monkeypatch
):
    def down(project):
        raise OperationalError("control plane unavailable")

    monkeypatch.setattr(engine, "get_policy", down)
    response = ingest(client, api_key, langfuse_batch())
    assert response.status_code == 503 and response["Retry-After"]
    assert stored(project, "trace") == {} and stored(project, "observation") == {}


def test_an_enabled_policy_costs_no_database_query_once_cached(client, api_key, project, policy_on):
    ingest(client, api_key, langfuse_batch())  # warms the policy cache
    with CaptureQueriesContext(connections["default"]) as queries:
        ingest(client, api_key, langfuse_batch())
    assert not [q for q in queries.captured_queries if "redactionpolicy" in q["sql"]]


# --- OTLP ---------------------------------------------------------------------------------------------


def otlp_request():
    return make_request(
        [
            make_span(
                name="agent",
                attributes={"openinference.span.kind": "AGENT", "input.value": f"plan a trip for {EMAIL}",
                            "output.value": "done"},
            ),
            make_span(
                span_id=SPAN_CHILD,
                parent_span_id="eee19b7ec3c1b174",
                name="chat gpt-4o-mini",
                kind=3,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.input.messages": orjson.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": f"card {CARD}, phone {PHONE}"}]}]
                    ).decode(),
                    "gen_ai.output.messages": orjson.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": f"use {OPENAI_KEY}"}]}]
                    ).decode(),
                },
                events=[("gen_ai.evaluation.result", 1_795_722_118_804_042_614, {
                    "gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.5,
                    "gen_ai.evaluation.explanation": f"asked {EMAIL} for feedback",
                })],
            ),
            make_span(
                span_id=SPAN_OTHER, parent_span_id="eee19b7ec3c1b174", name="tool",
                attributes={"openinference.span.kind": "TOOL", "input.value": "weather in Paris"},
            ),
        ]
    )


def export(client, api_key, url, *, protobuf: bool):
    request = otlp_request()
    if protobuf:
        body, content_type = request.SerializeToString(), PROTOBUF
    else:
        body, content_type = orjson.dumps(to_otlp_json(request)), "application/json"
    return client.post(url, data=body, content_type=content_type, HTTP_AUTHORIZATION=api_key.basic)


def partial_success(response, *, protobuf: bool) -> tuple[int, str]:
    if protobuf:
        answer = ExportTraceServiceResponse.FromString(response.content)
        return answer.partial_success.rejected_spans, answer.partial_success.error_message
    partial = response.json().get("partialSuccess", {})
    return int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", "")


@pytest.mark.parametrize("url", OTLP_ROUTES)
@pytest.mark.parametrize("protobuf", [True, False], ids=["protobuf", "json"])
def test_otlp_spans_are_redacted_before_storage(client, api_key, project, policy_on, url, protobuf):
    response = export(client, api_key, url, protobuf=protobuf)
    assert response.status_code == 200
    assert partial_success(response, protobuf=protobuf) == (0, "")

    observations = stored(project, "observation")
    root = observations["eee19b7ec3c1b174"]
    assert root["input"] == "plan a trip for [EMAIL]" and root["redactions"] == {"input": {"email": 1}}
    chat = observations[SPAN_CHILD]
    text = orjson.dumps([chat["input"], chat["output"]]).decode()
    assert "[CREDIT_CARD]" in text and "[PHONE]" in text and "[OPENAI_KEY]" in text
    assert chat["redactions"] == {"input": {"credit_card": 1, "phone": 1}, "output": {"openai_key": 1}}
    assert observations[SPAN_OTHER]["redactions"] == {}
    trace = stored(project, "trace")[TRACE_ID]
    assert trace["input"] == "plan a trip for [EMAIL]" and trace["redactions"] == {"input": {"email": 1}}
    (score,) = stored(project, "score").values()
    assert score["comment"] == "asked [EMAIL] for feedback" and score["redactions"] == {"comment": {"email": 1}}
    assert_no_raw_values(project)


def test_otlp_without_an_enabled_policy_stores_spans_as_sent(client, api_key, project):
    response = export(client, api_key, OTLP_ROUTES[1], protobuf=True)
    assert response.status_code == 200
    assert stored(project, "observation")["eee19b7ec3c1b174"]["input"] == f"plan a trip for {EMAIL}"
    assert occurrences(project, CARD) == 1


@pytest.mark.parametrize("protobuf", [True, False], ids=["protobuf", "json"])
def test_an_otlp_span_that_cannot_be_redacted_is_rejected_and_the_others_are_stored(
    client, api_key, project, policy_on, monkeypatch, protobuf
):
    fail_for(monkeypatch, SPAN_CHILD)
    response = export(client, api_key, OTLP_ROUTES[0], protobuf=protobuf)
    assert response.status_code == 200
    rejected, message = partial_success(response, protobuf=protobuf)
    assert rejected == 1
    assert f"span {SPAN_CHILD}" in message and "redaction failed" in message
    observations = stored(project, "observation")
    assert set(observations) == {"eee19b7ec3c1b174", SPAN_OTHER}
    # The evaluation score rides on the rejected span: it is not stored either.
    assert stored(project, "score") == {}
    for value in (CARD, PHONE, OPENAI_KEY, EMAIL):
        assert occurrences(project, value) == 0


def test_a_failing_otlp_trace_record_is_reported_but_no_span_is_counted_rejected(
    client, api_key, project, policy_on, monkeypatch
):
    fail_for(monkeypatch, TRACE_ID)
    response = export(client, api_key, OTLP_ROUTES[1], protobuf=True)
    rejected, message = partial_success(response, protobuf=True)
    assert rejected == 0 and f"trace {TRACE_ID}" in message and "redaction failed" in message
    assert len(stored(project, "observation")) == 3
    assert stored(project, "trace")[TRACE_ID]["input"] is None
    assert_no_raw_values(project)


def test_otlp_answers_503_when_the_policy_cannot_be_read(client, api_key, project, policy_on, monkeypatch):
    def down(project):
        raise OperationalError("control plane unavailable")

    monkeypatch.setattr(engine, "get_policy", down)
    response = export(client, api_key, OTLP_ROUTES[0], protobuf=True)
    assert response.status_code == 503 and response["Retry-After"]
    assert stored(project, "observation") == {}


# --- scores API -----------------------------------------------------------------------------------------


def post_scores(client, api_key, payload):
    return client.post(SCORES, data=orjson.dumps(payload), content_type="application/json",
                       HTTP_AUTHORIZATION=api_key.basic)


def score_body(score_id: str, comment: str, **extra) -> dict:
    return {"id": score_id, "traceId": TRACE, "name": "quality", "value": 0.5, "comment": comment, **extra}


def test_scores_are_redacted_before_storage(client, api_key, project, policy_on):
    single = post_scores(client, api_key, score_body("s-1", f"call {PHONE}", metadata={"api_key": PASSWORD}))
    assert single.status_code == 200 and single.json() == {"id": "s-1"}
    batch = post_scores(client, api_key, [score_body("s-2", f"mail {EMAIL}"), score_body("s-3", "fine")])
    assert batch.status_code == 202
    scores = stored(project, "score")
    assert scores["s-1"]["comment"] == "call [PHONE]" and scores["s-1"]["metadata"] == {"api_key": "[SECRET]"}
    assert scores["s-1"]["redactions"] == {"comment": {"phone": 1}, "metadata": {"secret_field": 1}}
    assert scores["s-2"]["comment"] == "mail [EMAIL]" and scores["s-2"]["redactions"] == {"comment": {"email": 1}}
    assert scores["s-3"]["comment"] == "fine" and scores["s-3"]["redactions"] == {}
    assert_no_raw_values(project)


def test_scores_of_a_project_without_a_policy_are_stored_as_sent(client, api_key, project):
    assert post_scores(client, api_key, score_body("s-1", f"mail {EMAIL}")).status_code == 200
    assert stored(project, "score")["s-1"]["comment"] == f"mail {EMAIL}"


def test_a_score_that_cannot_be_redacted_is_rejected_and_the_others_are_stored(
    client, api_key, project, policy_on, monkeypatch
):
    fail_for(monkeypatch, "s-bad")
    single = post_scores(client, api_key, score_body("s-bad", f"mail {EMAIL}"))
    assert single.status_code == 422
    assert "redaction failed" in single.json()["error"]

    batch = post_scores(client, api_key, [score_body("s-ok", f"call {PHONE}"), score_body("s-bad", f"mail {EMAIL}")])
    assert batch.status_code == 207
    body = batch.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    assert body["errors"][0]["message"].startswith("score 1:") and "redaction failed" in body["errors"][0]["message"]
    assert set(stored(project, "score")) == {"s-ok"}
    assert occurrences(project, EMAIL) == 0 and occurrences(project, PHONE) == 0


def test_scores_answer_503_when_the_policy_cannot_be_read(client, api_key, project, policy_on, monkeypatch):
    def down(project):
        raise OperationalError("control plane unavailable")

    monkeypatch.setattr(engine, "get_policy", down)
    response = post_scores(client, api_key, score_body("s-1", f"mail {EMAIL}"))
    assert response.status_code == 503
    assert stored(project, "score") == {}


def test_redaction_never_crosses_projects(client, api_key, project, policy_on, other_project, other_api_key):
    """One project's policy redacts its own records only; the other tenant (no policy) keeps its data."""
    ingest(client, api_key, langfuse_batch())
    ingest(client, other_api_key, langfuse_batch())
    assert stored(project, "trace")[TRACE]["input"] == "Hi, I am [EMAIL]"
    assert stored(other_project, "trace")[TRACE]["input"] == f"Hi, I am {EMAIL}"
