"""The OTLP/HTTP endpoint: encodings, compression, partial success, errors, auth, isolation, regions."""

import gzip

import orjson
import pytest
from django.db import OperationalError
from django.utils import timezone
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import otlp_views as views
from ingest import writer
from ingest.adapters.otel.testing import TRACE_ID, make_request, make_span, to_otlp_json
from ingest.writer import StorageUnavailable
from scores.models import Score
from traces.models import Observation, Trace

LANGFUSE_URL = "/api/public/otel/v1/traces"
OTLP_URL = "/v1/traces"
PROTOBUF = "application/x-protobuf"
CHILD = "1111111111111111"


def _request(**resource):
    return make_request(
        [
            make_span(
                name="agent",
                attributes={
                    "openinference.span.kind": "AGENT",
                    "session.id": "s-1",
                    "user.id": "u-1",
                    "input.value": "plan a trip",
                },
            ),
            make_span(
                span_id=CHILD,
                parent_span_id="eee19b7ec3c1b174",
                name="chat gpt-4o-mini",
                kind=3,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 120,
                    "gen_ai.usage.cache_read.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 9,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
                    "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"yo"}]}]',
                },
            ),
        ],
        resource=resource or {"service.name": "trip-planner", "deployment.environment.name": "prod"},
    )


def _post(client, body, *, url=LANGFUSE_URL, content_type=PROTOBUF, auth=None, **headers):
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = auth
    return client.post(url, data=body, content_type=content_type, **headers)


def _status(response) -> status_pb2.Status:
    assert response["Content-Type"] == PROTOBUF
    status = status_pb2.Status()
    status.ParseFromString(response.content)
    return status


def _assert_stored(project):
    trace = Trace.objects.for_project(project).get(id=TRACE_ID)
    assert (trace.name, trace.session_id, trace.user_id, trace.environment) == ("agent", "s-1", "u-1", "prod")
    assert trace.input == "plan a trip"
    root = Observation.objects.for_project(project).get(id="eee19b7ec3c1b174")
    assert root.type == "AGENT" and root.parent_observation_id == ""
    chat = Observation.objects.for_project(project).get(id=CHILD)
    assert (chat.type, chat.model, chat.trace_id, chat.parent_observation_id) == (
        "GENERATION",
        "gpt-4o-mini",
        TRACE_ID,
        "eee19b7ec3c1b174",
    )
    assert (chat.input_tokens, chat.cached_input_tokens, chat.output_tokens, chat.total_tokens) == (
        20,
        100,
        9,
        129,
    )
    assert chat.input == [{"role": "user", "content": "hi"}]
    assert chat.output == {"role": "assistant", "content": "yo"}
    assert (chat.status, chat.finish_reason, chat.environment) == ("success", "stop", "prod")
    assert chat.metadata["otel"]["resource"]["service.name"] == "trip-planner"


def test_it_stores_a_protobuf_export_and_answers_an_empty_protobuf_response(client, project, api_key):
    response = _post(client, _request().SerializeToString(), auth=api_key.basic)
    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success")
    _assert_stored(project)


def test_it_stores_an_otlp_json_export_at_v1_traces_with_a_bearer_secret(client, project, api_key):
    body = orjson.dumps(to_otlp_json(_request()))
    response = _post(
        client, body, url=OTLP_URL, content_type="application/json; charset=utf-8", auth=api_key.bearer
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    _assert_stored(project)


def test_it_inflates_gzip_bodies_as_the_v4_and_v5_sdks_send_them(client, project, api_key):
    response = _post(
        client,
        gzip.compress(_request().SerializeToString()),
        auth=api_key.basic,
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_X_LANGFUSE_INGESTION_VERSION="4",
    )
    assert response.status_code == 200
    _assert_stored(project)


def test_an_empty_export_is_fine(client, project, api_key):
    # The test client drops Content-Type for an empty body; real exporters always send it.
    assert _post(client, b"", auth=api_key.basic, CONTENT_TYPE=PROTOBUF).status_code == 200
    assert _post(client, b"{}", content_type="application/json", auth=api_key.basic).json() == {}
    assert not Trace.objects.for_project(project).exists()


def test_invalid_spans_are_rejected_while_the_others_are_stored(client, project, api_key):
    request = _request()
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.CopyFrom(make_span(span_id="2222222222222222"))
    bad.trace_id = b"\x01\x02"
    response = _post(client, request.SerializeToString(), auth=api_key.basic)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "span 2222222222222222: trace_id must be 16 bytes, got 2" in answer.partial_success.error_message
    _assert_stored(project)
    assert Observation.objects.for_project(project).count() == 2


def test_json_partial_success_uses_the_otlp_json_shape(client, project, api_key):
    document = to_otlp_json(_request())
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "nothex!"
    response = _post(client, orjson.dumps(document), content_type="application/json", auth=api_key.basic)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "spanId" in partial["errorMessage"]
    assert Observation.objects.for_project(project).count() == 1


def test_undecodable_bodies_are_400_with_a_status_body(client, project, api_key):
    response = _post(client, b"\xff\xff\xff\xffnot protobuf", auth=api_key.basic)
    assert response.status_code == 400
    assert _status(response).code == code_pb2.INVALID_ARGUMENT
    response = _post(client, b"{not json", content_type="application/json", auth=api_key.basic)
    assert response.status_code == 400
    assert response.json()["code"] == code_pb2.INVALID_ARGUMENT and "JSON" in response.json()["message"]
    response = _post(client, b"not gzip at all", auth=api_key.basic, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert not Trace.objects.for_project(project).exists()


def test_unsupported_content_types_encodings_and_methods(client, api_key):
    response = _post(client, b"x", content_type="text/plain", auth=api_key.basic)
    assert response.status_code == 415 and "application/x-protobuf" in response.json()["message"]
    response = _post(client, b"x", auth=api_key.basic, HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415
    response = client.get(OTLP_URL, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_bodies_over_the_limit_are_413_also_after_decompression(client, api_key, settings):
    settings.OTLP_MAX_BODY_BYTES = 10_000
    response = _post(client, b"\x00" * 10_001, auth=api_key.basic)
    assert response.status_code == 413
    bomb = gzip.compress(b"\x00" * 5_000_000)
    assert len(bomb) < 10_000
    response = _post(client, bomb, auth=api_key.basic, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert _status(response).code == code_pb2.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("version, status", [("4", 200), ("3", 200), ("5", 400), ("four", 400)])
def test_the_langfuse_ingestion_version_header(client, api_key, version, status):
    response = _post(
        client, _request().SerializeToString(), auth=api_key.basic, HTTP_X_LANGFUSE_INGESTION_VERSION=version
    )
    assert response.status_code == status
    if status == 400:
        assert 'Maximum supported: "4"' in _status(response).message


@pytest.mark.parametrize("auth", [None, "Basic bm90OmtleXM=", "Bearer sk-lg-wrong", "Token abc"])
def test_it_refuses_missing_or_wrong_credentials(client, auth):
    response = _post(client, _request().SerializeToString(), auth=auth)
    assert response.status_code == 401
    assert _status(response).code == code_pb2.UNAUTHENTICATED
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not Trace.objects.dangerously_in_region("eu").exists()


def test_a_public_key_alone_is_refused(client, api_key):
    response = _post(
        client,
        orjson.dumps(to_otlp_json(_request())),
        content_type="application/json",
        auth=f"Bearer {api_key.public}",
    )
    assert response.status_code == 401
    assert "public key alone" in response.json()["message"]


def test_a_revoked_key_is_refused(client, api_key):
    api_key.key.revoked_at = timezone.now()
    api_key.key.save(update_fields=["revoked_at"])
    assert _post(client, _request().SerializeToString(), auth=api_key.basic).status_code == 401


def test_a_key_writes_only_its_own_project_and_region(client, project, api_key, far_project, far_api_key):
    assert project.region == "eu" and far_project.region == "us"
    assert _post(client, _request().SerializeToString(), auth=api_key.basic).status_code == 200
    assert not Trace.objects.for_project(far_project).exists()
    assert not Trace.objects.dangerously_in_region("us").exists()
    assert not Observation.objects.dangerously_in_region("us").exists()
    assert {o.project_id for o in Observation.objects.dangerously_in_region("eu")} == {project.id}

    # The other tenant sends the same trace id: it gets its own trace, in its own region.
    other = _request(**{"service.name": "globex", "deployment.environment.name": "dev"})
    other.resource_spans[0].scope_spans[0].spans[0].name = "globex-agent"
    assert _post(client, other.SerializeToString(), auth=far_api_key.basic).status_code == 200
    assert Trace.objects.for_project(project).get(id=TRACE_ID).name == "agent"
    theirs = Trace.objects.for_project(far_project).get(id=TRACE_ID)
    assert (theirs.name, theirs.environment) == ("globex-agent", "dev")
    assert {t.project_id for t in Trace.objects.dangerously_in_region("us")} == {far_project.id}
    assert {t.project_id for t in Trace.objects.dangerously_in_region("eu")} == {project.id}


def test_sending_the_same_export_twice_stores_it_once(client, project, api_key):
    body = _request().SerializeToString()
    for _ in range(2):
        assert _post(client, body, auth=api_key.basic).status_code == 200
    assert Observation.objects.for_project(project).count() == 2
    assert Trace.objects.for_project(project).count() == 1
    _assert_stored(project)


def test_scores_carried_on_spans_are_stored(client, project, api_key):
    request = make_request(
        [
            make_span(
                attributes={"annotations.0.annotation.name": "helpful", "annotations.0.annotation.score": 0.5}
            )
        ]
    )
    assert _post(client, request.SerializeToString(), auth=api_key.basic).status_code == 200
    score = Score.objects.for_project(project).get()
    assert (score.name, score.value, score.trace_id, score.observation_id) == (
        "helpful",
        0.5,
        TRACE_ID,
        "eee19b7ec3c1b174",
    )


def test_an_unavailable_region_database_is_503_with_retry_after(client, api_key, monkeypatch):
    def down(**kwargs):
        raise StorageUnavailable("the eu data region is unavailable; retry later")

    monkeypatch.setattr(writer, "write_records", down)
    response = _post(client, _request().SerializeToString(), auth=api_key.basic)
    assert response.status_code == 503
    assert response["Retry-After"] == str(StorageUnavailable.retry_after)
    status = _status(response)
    assert status.code == code_pb2.UNAVAILABLE
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == StorageUnavailable.retry_after
    response = _post(
        client, orjson.dumps(to_otlp_json(_request())), content_type="application/json", auth=api_key.basic
    )
    assert response.status_code == 503 and response.json()["code"] == code_pb2.UNAVAILABLE


def test_an_unavailable_control_plane_database_is_503_not_500(client, api_key, monkeypatch):
    def down(header, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(views, "authenticate_header", down)
    response = _post(client, _request().SerializeToString(), auth=api_key.basic)
    assert response.status_code == 503 and response["Retry-After"]


def test_the_number_of_queries_does_not_grow_with_the_batch(client, project, api_key, queries_everywhere):
    def batch(n, prefix):
        return make_request(
            [
                make_span(
                    trace_id=f"{prefix}{i:030x}",
                    span_id=f"{prefix}{i + 1:014x}",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 10,
                        "gen_ai.usage.output_tokens": 2,
                        "user.id": f"user-{i % 3}",
                    },
                )
                for i in range(n)
            ]
        ).SerializeToString()

    _post(client, batch(1, "aa"), auth=api_key.basic)  # warm caches (key last-used, price catalog)
    with queries_everywhere() as small:
        assert _post(client, batch(5, "bb"), auth=api_key.basic).status_code == 200
    with queries_everywhere() as large:
        assert _post(client, batch(300, "cc"), auth=api_key.basic).status_code == 200
    # Region writes included: a constant number of statements per request, whatever the batch size
    # (the control plane may add at most one, a key's last-used stamp that is due once a minute).
    region = [q for q in small if "traces_" in q["sql"] or "feedback_" in q["sql"]]
    assert 0 < len(region) <= 12
    assert len(large) <= len(small) + 1
    assert Observation.objects.for_project(project).count() == 306
