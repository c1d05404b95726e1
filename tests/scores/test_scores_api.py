"""`/api/public/scores`: create one or many (SDK v5), list and fetch in Langfuse's shapes."""

import base64

import orjson
import pytest
from django.db import OperationalError

from ingest import writer
from ingest.stages import price as costs
from ingest.writer import write_records
from scores.models import Score

URL = "/api/public/scores"

V5_BATCH = [
    {
        "id": "02954dacb3ffe450",
        "traceId": "ad9684a6a34370ca4cbe8363d1fd933a",
        "observationId": "fa5b018a9183e180",
        "name": "quality",
        "value": 0.9,
        "comment": "good",
        "environment": "staging",
        "timestamp": "2026-11-26T19:41:58.705726Z",
    },
    {
        "id": "b150f29d8b56cdfb",
        "traceId": "ad9684a6a34370ca4cbe8363d1fd933a",
        "name": "thumbs",
        "value": "up",
        "environment": "staging",
        "dataType": "CATEGORICAL",
        "timestamp": "2026-11-26T19:41:58.705928Z",
    },
    {
        "id": "57a2b876f082e984",
        "traceId": "ad9684a6a34370ca4cbe8363d1fd933a",
        "name": "correct",
        "value": 1.0,
        "environment": "staging",
        "dataType": "BOOLEAN",
        "timestamp": "2026-11-26T19:41:58.706104Z",
    },
]


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


def post(client, payload, auth):
    return client.post(
        URL, data=orjson.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=auth
    )


def scores_of(project):
    return {s.id: s for s in Score.objects.for_project(project)}


def test_a_v5_array_is_accepted_with_202_and_stored(client, project, api_key):
    response = post(client, V5_BATCH, api_key.basic)
    assert (response.status_code, response.json()) == (202, {"message": "Accepted"})
    stored = scores_of(project)
    quality = stored["02954dacb3ffe450"]
    assert (quality.name, quality.value, quality.comment, quality.data_type, quality.source) == (
        "quality",
        0.9,
        "good",
        "NUMERIC",
        "API",
    )
    assert (quality.trace_id, quality.observation_id, quality.environment) == (
        "ad9684a6a34370ca4cbe8363d1fd933a",
        "fa5b018a9183e180",
        "staging",
    )
    assert quality.timestamp.isoformat() == "2026-11-26T19:41:58.705726+00:00"
    assert (stored["b150f29d8b56cdfb"].string_value, stored["b150f29d8b56cdfb"].data_type) == (
        "up",
        "CATEGORICAL",
    )
    assert (stored["57a2b876f082e984"].value, stored["57a2b876f082e984"].string_value) == (1.0, "True")


def test_a_partly_bad_array_answers_207_and_stores_the_good_scores(client, project, api_key):
    bad = {"traceId": "t", "name": "", "value": 1}
    response = post(
        client,
        [V5_BATCH[0], bad, {"traceId": "t", "name": "x", "value": "up", "dataType": "NUMERIC"}],
        api_key.basic,
    )
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert len(body["errors"]) == 2 and all(e["message"] for e in body["errors"])
    assert set(scores_of(project)) == {"02954dacb3ffe450"}


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_an_empty_array_is_a_400_not_an_accepted_batch(client, project, api_key, auth):
    """202 means "every score accepted": for no scores at all that is a lie the SDK cannot notice."""
    response = post(client, [], getattr(api_key, auth))
    assert response.status_code == 400, response.content
    assert response.json()["message"] == "Invalid request data"
    assert "empty" in response.json()["error"]


def test_a_single_object_answers_200_with_its_id(client, project, api_key):
    response = post(client, {"traceId": "t1", "name": "helpful", "value": 3}, api_key.basic)
    assert response.status_code == 200
    score_id = response.json()["id"]
    assert scores_of(project)[score_id].value == 3.0
    response = post(client, {"id": "mine", "traceId": "t1", "name": "helpful", "value": 4}, api_key.basic)
    assert response.json() == {"id": "mine"}


def test_a_bad_single_object_answers_400(client, project, api_key):
    for body in (
        {"traceId": "t", "value": 1},
        {"name": "n", "value": 1},
        {"traceId": "t", "name": "n"},
        {"traceId": "t", "name": "n", "value": 0.5, "dataType": "BOOLEAN"},
        "just a string",
    ):
        response = post(client, body, api_key.basic)
        assert response.status_code == 400, body
        assert response.json()["message"] == "Invalid request data"
    assert not Score.objects.for_project(project).exists()


def test_resending_a_score_updates_it(client, project, api_key):
    post(client, [V5_BATCH[0]], api_key.basic)
    post(client, [{**V5_BATCH[0], "value": 0.1, "comment": "worse"}], api_key.basic)
    score = scores_of(project)["02954dacb3ffe450"]
    assert (score.value, score.comment) == (0.1, "worse")


def test_public_key_bearer_may_create_browser_feedback_only(client, project, api_key):
    auth = f"Bearer {api_key.public}"
    post(client, [V5_BATCH[0]], api_key.basic)
    response = post(
        client,
        {"id": "02954dacb3ffe450", "traceId": "t", "name": "thumbs", "value": 1, "source": "EVAL"},
        auth,
    )
    assert response.status_code == 200
    new_id = response.json()["id"]
    assert new_id != "02954dacb3ffe450"
    stored = scores_of(project)
    assert stored["02954dacb3ffe450"].value == 0.9  # not overwritten through the public key
    assert stored[new_id].source == "USER"
    for method in (client.get,):
        assert method(URL, HTTP_AUTHORIZATION=auth).status_code == 401
    assert client.get(f"{URL}/{new_id}", HTTP_AUTHORIZATION=auth).status_code == 401


def test_wrong_credentials_get_401(client, api_key):
    wrong = "Basic " + base64.b64encode(f"{api_key.public}:sk-lg-nope".encode()).decode()
    for auth in (wrong, "", "Bearer pk-lg-unknown"):
        response = post(client, V5_BATCH, auth)
        assert response.status_code == 401
        assert response.json()["message"]


def test_a_database_outage_answers_503(client, api_key, monkeypatch):
    class Dead:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(writer, "data_connection", lambda project: Dead())
    response = post(client, V5_BATCH, api_key.basic)
    assert response.status_code == 503
    assert response["Retry-After"]


# --- reads ----------------------------------------------------------------------------------


@pytest.fixture
def stored(project):
    write_records(
        project=project,
        traces=[
            {"id": "t1", "user_id": "alice", "tags": ["prod", "web"], "environment": "staging"},
            {"id": "t2", "user_id": "bob", "tags": ["web"]},
        ],
        observations=[],
        scores=[
            {
                "id": "s1",
                "trace_id": "t1",
                "name": "quality",
                "value": 0.9,
                "data_type": "NUMERIC",
                "comment": "good",
                "environment": "staging",
            },
            {
                "id": "s2",
                "trace_id": "t1",
                "name": "thumbs",
                "string_value": "up",
                "data_type": "CATEGORICAL",
            },
            {"id": "s3", "trace_id": "t2", "name": "quality", "value": 0.2, "data_type": "NUMERIC"},
            {
                "id": "s4",
                "trace_id": "t2",
                "observation_id": "o1",
                "name": "correct",
                "value": 1,
                "string_value": "True",
                "data_type": "BOOLEAN",
                "source": "EVAL",
            },
        ],
    )


def get(client, auth, path=URL, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=auth)


def test_list_returns_langfuse_shapes(client, api_key, stored):
    response = get(client, api_key.basic)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 4, "totalPages": 1}
    items = {item["id"]: item for item in body["data"]}
    s1 = items["s1"]
    assert {
        k: s1[k] for k in ("traceId", "name", "value", "dataType", "source", "comment", "environment")
    } == {
        "traceId": "t1",
        "name": "quality",
        "value": 0.9,
        "dataType": "NUMERIC",
        "source": "API",
        "comment": "good",
        "environment": "staging",
    }
    assert s1["trace"] == {"userId": "alice", "tags": ["prod", "web"], "environment": "staging"}
    for key in ("timestamp", "createdAt", "updatedAt"):
        assert s1[key].endswith("Z")
    assert "stringValue" not in s1
    assert (items["s2"]["stringValue"], items["s2"]["value"]) == ("up", None)
    assert (items["s4"]["stringValue"], items["s4"]["value"], items["s4"]["observationId"]) == (
        "True",
        1.0,
        "o1",
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "quality"}, {"s1", "s3"}),
        ({"userId": "bob"}, {"s3", "s4"}),
        ({"traceTags": "prod"}, {"s1", "s2"}),
        ({"source": "EVAL"}, {"s4"}),
        ({"dataType": "CATEGORICAL"}, {"s2"}),
        ({"traceId": "t2"}, {"s3", "s4"}),
        ({"observationId": "o1"}, {"s4"}),
        ({"operator": ">", "value": "0.5"}, {"s1", "s4"}),
        ({"scoreIds": "s1,s3"}, {"s1", "s3"}),
        ({"environment": "staging"}, {"s1"}),
    ],
)
def test_list_filters(client, api_key, stored, params, expected):
    response = get(client, api_key.basic, **params)
    assert response.status_code == 200
    assert {item["id"] for item in response.json()["data"]} == expected


def test_list_pages(client, api_key, stored):
    first = get(client, api_key.basic, page=1, limit=3).json()
    second = get(client, api_key.basic, page=2, limit=3).json()
    assert first["meta"] == {"page": 1, "limit": 3, "totalItems": 4, "totalPages": 2}
    assert len(first["data"]) == 3 and len(second["data"]) == 1
    assert {i["id"] for i in first["data"] + second["data"]} == {"s1", "s2", "s3", "s4"}


def test_bad_query_parameters_get_400(client, api_key, stored):
    for params in (
        {"limit": "1000"},
        {"page": "0"},
        {"page": "x"},
        {"operator": "~", "value": "1"},
        {"operator": ">"},
        {"fromTimestamp": "yesterday"},
    ):
        assert get(client, api_key.basic, **params).status_code == 400, params


def test_list_queries_do_not_grow_with_the_page(client, api_key, project, queries_everywhere):
    write_records(
        project=project,
        traces=[{"id": f"t{i}"} for i in range(30)],
        observations=[],
        scores=[{"id": f"s{i}", "trace_id": f"t{i}", "name": "q", "value": i} for i in range(30)],
    )
    get(client, api_key.basic, limit=1)  # warm the key cache
    with queries_everywhere() as one:
        assert len(get(client, api_key.basic, limit=1).json()["data"]) == 1
    with queries_everywhere() as thirty:
        response = get(client, api_key.basic, limit=30)
    assert len(response.json()["data"]) == 30
    # Counted in every database: the scores and their traces are read from the region database.
    assert len(thirty) <= len(one) <= 5


def test_get_one_score(client, api_key, stored):
    response = get(client, api_key.basic, f"{URL}/s2")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["stringValue"], body["dataType"]) == (
        "s2",
        "thumbs",
        "up",
        "CATEGORICAL",
    )
    assert get(client, api_key.basic, f"{URL}/missing").status_code == 404
    assert get(client, api_key.basic, "/api/public/v2/scores/s2").json()["id"] == "s2"


def test_another_projects_scores_are_invisible(client, api_key, other_api_key, stored):
    assert get(client, other_api_key.basic).json()["data"] == []
    missing = get(client, other_api_key.basic, f"{URL}/missing")
    foreign = get(client, other_api_key.basic, f"{URL}/s1")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_delete_removes_only_the_own_projects_score(client, project, api_key, other_api_key, stored):
    assert client.delete(f"{URL}/s1", HTTP_AUTHORIZATION=other_api_key.basic).status_code == 404
    assert client.delete(f"{URL}/s1", HTTP_AUTHORIZATION=f"Bearer {api_key.public}").status_code == 401
    assert Score.objects.for_project(project).filter(id="s1").exists()
    assert client.delete(f"{URL}/s1", HTTP_AUTHORIZATION=api_key.basic).status_code == 204
    assert not Score.objects.for_project(project).filter(id="s1").exists()
    assert client.delete(f"{URL}/s1", HTTP_AUTHORIZATION=api_key.basic).status_code == 404
