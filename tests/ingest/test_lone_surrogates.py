"""A lone UTF-16 surrogate escape in a JSON body (what Python's json module writes for a cut emoji)
is one odd string, not a malformed request: it becomes U+FFFD and the rest of the batch is stored.
Found by tests/fuzz/test_fuzz_ingestion.py; before, orjson refused the whole body with 400."""

import json

from ingest.adapters.otel.testing import make_request, make_span, to_otlp_json
from scores.models import Score
from traces.models import Observation, Trace


def test_ingestion_stores_a_batch_holding_a_lone_surrogate(client, project, api_key):
    batch = [
        {
            "id": "e1",
            "type": "trace-create",
            "timestamp": "2026-11-26T19:42:27Z",
            "body": {"id": "t-cut", "name": "cut \ud83d emoji", "metadata": {"k\udc00": "\ud800"}},
        },
        {
            "id": "e2",
            "type": "trace-create",
            "timestamp": "2026-11-26T19:42:27Z",
            "body": {"id": "t-fine", "name": "fine \U0001f600", "input": "a\\ud800 literal"},
        },
        {"id": "e3", "type": "span-create", "timestamp": "2026-11-26T19:42:27Z", "body": {"id": 5}},
    ]
    response = client.post(
        "/api/public/ingestion",
        json.dumps({"batch": batch}),
        content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207, response.content
    assert {s["id"] for s in response.json()["successes"]} == {"e1", "e2", "e3"}
    traces = Trace.objects.for_project(project)
    cut = traces.get(id="t-cut")
    assert cut.name == "cut \ufffd emoji"
    assert cut.metadata == {"k\ufffd": "\ufffd"}
    fine = traces.get(id="t-fine")
    assert fine.name == "fine \U0001f600"  # a real pair is untouched
    assert fine.input == "a\\ud800 literal"  # an escaped backslash is not an escape
    assert client.get("/api/public/traces/t-cut", HTTP_AUTHORIZATION=api_key.basic).status_code == 200


def test_scores_accept_a_lone_surrogate(client, project, api_key):
    body = json.dumps({"id": "s-cut", "traceId": "t1", "name": "q", "value": 1, "comment": "ok \udfff"})
    response = client.post(
        "/api/public/scores", body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )
    assert response.status_code == 200, response.content
    assert Score.objects.for_project(project).get(id="s-cut").comment == "ok \ufffd"


def test_otlp_json_stores_a_span_holding_a_lone_surrogate(client, project, api_key):
    document = to_otlp_json(make_request([make_span(name="cut", attributes={"input.value": "x"})]))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0]["value"] = {
        "stringValue": "x \ud83d"
    }
    response = client.post(
        "/v1/traces", json.dumps(document), content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )
    assert response.status_code == 200, response.content
    assert "partialSuccess" not in response.json()
    span = Observation.objects.for_project(project).get(id="eee19b7ec3c1b174")
    assert span.input == "x \ufffd"
