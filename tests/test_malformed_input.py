"""Client mistakes never produce a 500: every public write endpoint answers malformed bodies with 4xx."""

import pytest

ENDPOINTS = [
    "/api/public/ingestion",
    "/api/public/scores",
    "/api/public/score-configs",
    "/api/public/v2/prompts",
    "/api/public/v2/prompts/greeting/compile",
    "/api/public/redact",
    "/api/public/otel/v1/traces",
    "/v1/traces",
    "/api/v1/feedback",
]

BODIES = [
    b"{not json",
    b"[]",
    b'"a string"',
    b"null",
    b"123",
    b'{"batch": "nope"}',
    b'{"batch": [null, 1, "x", {"type": 5}]}',
    b'{"name": {"a": 1}, "prompt": ["x"], "traceId": 5, "value": "high", "rating": {}, "text": 7}',
    b"\xff\xfe\x00garbage",
    b"[" * 5000 + b"]" * 5000,
]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_malformed_bodies_get_a_client_error(client, api_key, path, body):
    response = client.generic(
        "POST", path, body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )
    assert response.status_code < 500, (path, body[:40], response.status_code, response.content[:300])


@pytest.mark.parametrize("path", ["/v1/traces", "/api/public/otel/v1/traces"])
def test_garbage_protobuf_gets_a_client_error(client, api_key, path):
    response = client.generic(
        "POST", path, b"\x0a\xff\xff\xff\xff\x0f", content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 400


GETS = [
    "/api/public/traces", "/api/public/observations", "/api/public/v2/observations", "/api/public/sessions",
    "/api/public/scores", "/api/public/score-configs", "/api/public/v2/prompts", "/api/public/v2/prompts/greeting",
    "/api/public/v2/prompts/greeting/metrics",
]
PARAMS = [
    "page=-1&limit=abc", "limit=99999999999999999999", "fromTimestamp=yesterday&toTimestamp=%00",
    "version=abc&label=%00", "from=not-a-date&to=2026-13-45", "cursor=%%%&fields=x,y", "filter=%5B%7B",
    "minCost=NaN&minLatencyMs=inf&status=weird", "userId=%00&tags=%00",
]


@pytest.mark.parametrize("path", GETS)
@pytest.mark.parametrize("query", PARAMS, ids=range(len(PARAMS)))
def test_malformed_query_parameters_get_a_client_error(client, api_key, path, query):
    response = client.get(f"{path}?{query}", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code < 500, (path, query, response.status_code, response.content[:300])
