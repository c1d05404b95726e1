"""jsonb gives a float such as 1e20 back as the integer 100000000000000000000, which orjson refuses to
write: reading such a stored score or observation answered 500. Found by tests/fuzz/test_fuzz_ingestion.py
and tests/fuzz/test_fuzz_otel.py."""

import json


def _ingest(client, api_key, batch):
    response = client.post(
        "/api/public/ingestion",
        json.dumps({"batch": batch}),
        content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207, response.content
    assert not response.json()["errors"], response.content


def test_a_score_holding_a_huge_number_reads_back(client, api_key):
    _ingest(
        client,
        api_key,
        [
            {
                "id": "e1",
                "type": "score-create",
                "timestamp": "2026-11-26T19:42:27Z",
                "body": {"id": "s-big", "traceId": "t1", "name": "q", "value": 1, "metadata": {"n": 1e20}},
            }
        ],
    )
    detail = client.get("/api/public/scores/s-big", HTTP_AUTHORIZATION=api_key.basic)
    assert detail.status_code == 200, detail.content
    assert detail.json()["metadata"] == {"n": 10**20}
    listing = client.get("/api/public/scores", HTTP_AUTHORIZATION=api_key.basic)
    assert listing.status_code == 200


def test_an_observation_holding_huge_numbers_reads_back(client, api_key):
    _ingest(
        client,
        api_key,
        [
            {
                "id": "e1",
                "type": "generation-create",
                "timestamp": "2026-11-26T19:42:27Z",
                "body": {
                    "id": "o-big",
                    "traceId": "t1",
                    "input": {"n": 1e20},
                    "modelParameters": {"seed": 1e20, "nested": {"n": 1e25}},
                    "metadata": {"big": [1e30]},
                },
            }
        ],
    )
    for path in (
        "/api/public/observations/o-big",
        "/api/public/traces/t1",
        "/api/public/observations",
        "/api/public/v2/observations?fields=core,basic,io,metadata,model",
        "/api/public/traces",
    ):
        response = client.get(path, HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 200, (path, response.content[:300])
    observation = client.get("/api/public/observations/o-big", HTTP_AUTHORIZATION=api_key.basic).json()
    assert observation["modelParameters"]["seed"] == 10**20
