"""Client mistakes get the status each endpoint promises, never a 500 and never a silent success:
every public write endpoint answers each malformed body, and every read endpoint each malformed query
parameter, with exactly the expected status."""

import orjson
import pytest

from prompts.services import PromptInput, prompt_create_version

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

# Per endpoint, the status for each body above. Where it is not 400 the body is not malformed *for that
# endpoint*: ingestion reports each bad event of a batch in a 207 (checked below); OTLP/JSON receivers
# must ignore fields they do not know (OTLP spec), so an object of unknown fields is an empty export;
# compile takes only optional keys (variables, label, version), so those objects compile with none.
EXPECTED = {
    "/api/public/ingestion": [400, 400, 400, 400, 400, 400, 207, 400, 400, 400],
    "/api/public/scores": [400] * 10,  # `[]` included: an empty array of scores is not "all accepted"
    "/api/public/score-configs": [400] * 10,
    "/api/public/v2/prompts": [400] * 10,
    "/api/public/v2/prompts/greeting/compile": [400, 400, 400, 400, 400, 200, 200, 200, 400, 400],
    "/api/public/redact": [400] * 10,
    "/api/public/otel/v1/traces": [400, 400, 400, 400, 400, 200, 200, 200, 400, 400],
    "/v1/traces": [400, 400, 400, 400, 400, 200, 200, 200, 400, 400],
    "/api/v1/feedback": [400] * 10,
}


@pytest.fixture
def greeting(project, owner):
    """The prompt the compile and prompt read routes name, so they answer about the input, not a 404."""
    prompt_create_version(
        project=project,
        actor=owner,
        data=PromptInput(name="greeting", type="text", text="Hi {{name}}", messages=None, config={},
                         labels=["production"], tags=None, commit_message=None),
    )


def test_every_endpoint_and_body_has_an_expected_status():
    assert set(EXPECTED) == set(ENDPOINTS)
    assert all(len(statuses) == len(BODIES) for statuses in EXPECTED.values())


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("index", range(len(BODIES)))
def test_malformed_bodies_get_a_client_error(client, api_key, greeting, path, index):
    body = BODIES[index]
    response = client.generic(
        "POST", path, body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )
    expected = EXPECTED[path][index]
    assert response.status_code == expected, (path, body[:40], response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    if expected == 400:
        assert response.content.strip(), "a 400 says what is wrong"
    if expected == 207:
        result = orjson.loads(response.content)
        assert result["successes"] == []
        assert [error["status"] for error in result["errors"]] == [400, 400, 400, 400]


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

# Per endpoint, the PARAMS (by index) it takes and must refuse with a 400. The others name parameters
# the endpoint does not have, which are ignored (as Langfuse does): 200.
REFUSED = {
    "/api/public/traces": {0, 1, 2, 3, 5, 6, 7, 8},
    "/api/public/observations": {0, 1, 2, 3, 6, 7, 8},
    "/api/public/v2/observations": {0, 1, 2, 3, 5, 6, 7, 8},
    "/api/public/sessions": {0, 1, 2, 3, 8},
    "/api/public/scores": {0, 1, 2, 8},
    "/api/public/score-configs": {0, 1},
    "/api/public/v2/prompts": {0, 1, 3},
    "/api/public/v2/prompts/greeting": {3},
    "/api/public/v2/prompts/greeting/metrics": {4},
}


@pytest.mark.parametrize("path", GETS)
@pytest.mark.parametrize("index", range(len(PARAMS)))
def test_malformed_query_parameters_get_a_client_error(client, api_key, greeting, path, index):
    query = PARAMS[index]
    response = client.get(f"{path}?{query}", HTTP_AUTHORIZATION=api_key.basic)
    expected = 400 if index in REFUSED[path] else 200
    assert response.status_code == expected, (path, query, response.status_code, response.content[:300])
