"""Score configs: the Langfuse-compatible `/api/public/score-configs` API, and scores breaking their
config refused on every path (feedback endpoint, REST scores, `score-create` ingestion events)."""

import uuid

import orjson
import pytest

from feedback import ratelimit
from ingest.stages import price as costs
from scores.models import Score, ScoreConfig
from scores.services import score_config_create
from tenancy.models import AuditLogEntry

URL = "/api/public/score-configs"


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


def call(client, method, url, auth, body=None):
    kwargs = {"HTTP_AUTHORIZATION": auth}
    if body is not None:
        kwargs.update(data=orjson.dumps(body), content_type="application/json")
    return getattr(client, method)(url, **kwargs)


# --- the API ---------------------------------------------------------------------------------------


def test_create_list_get_and_archive_in_langfuse_shapes(client, project, api_key):
    created = call(
        client,
        "post",
        URL,
        api_key.basic,
        {
            "name": "helpfulness",
            "dataType": "NUMERIC",
            "minValue": 1,
            "maxValue": 5,
            "description": "1–5 stars",
        },
    )
    assert created.status_code == 200, created.content
    config = created.json()
    assert {
        k: config[k]
        for k in ("name", "dataType", "minValue", "maxValue", "isArchived", "description", "projectId")
    } == {
        "name": "helpfulness",
        "dataType": "NUMERIC",
        "minValue": 1.0,
        "maxValue": 5.0,
        "isArchived": False,
        "description": "1–5 stars",
        "projectId": str(project.id),
    }
    assert config["createdAt"].endswith("Z") and uuid.UUID(config["id"])

    categorical = call(
        client,
        "post",
        URL,
        api_key.basic,
        {
            "name": "tone",
            "dataType": "CATEGORICAL",
            "categories": [{"label": "rude", "value": 0}, {"label": "polite", "value": 1}],
        },
    ).json()
    boolean = call(client, "post", URL, api_key.bearer, {"name": "correct", "dataType": "BOOLEAN"}).json()
    assert boolean["categories"] == [{"label": "True", "value": 1}, {"label": "False", "value": 0}]

    listed = call(client, "get", f"{URL}?limit=2", api_key.basic).json()
    assert listed["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    assert [c["name"] for c in listed["data"]] == ["helpfulness", "tone"]
    assert (
        call(client, "get", f"{URL}?page=2&limit=2", api_key.basic).json()["data"][0]["id"] == boolean["id"]
    )

    fetched = call(client, "get", f"{URL}/{categorical['id']}", api_key.basic).json()
    assert fetched["categories"] == [{"label": "rude", "value": 0}, {"label": "polite", "value": 1}]

    archived = call(client, "patch", f"{URL}/{config['id']}", api_key.basic, {"isArchived": True})
    assert archived.status_code == 200 and archived.json()["isArchived"] is True
    actions = set(
        AuditLogEntry.objects.filter(organization_id=project.organization_id).values_list("action", flat=True)
    )
    assert {"score_config.created", "score_config.updated"} <= actions


@pytest.mark.parametrize(
    "body",
    [
        {"dataType": "NUMERIC"},
        {"name": "x"},
        {"name": "bad/name", "dataType": "NUMERIC"},
        {"name": "x" * 36, "dataType": "NUMERIC"},
        {"name": "x", "dataType": "STARS"},
        {"name": "x", "dataType": "NUMERIC", "minValue": 5, "maxValue": 1},
        {"name": "x", "dataType": "NUMERIC", "minValue": "low"},
        {"name": "x", "dataType": "CATEGORICAL"},
        {
            "name": "x",
            "dataType": "CATEGORICAL",
            "categories": [{"label": "a", "value": 1}, {"label": "a", "value": 2}],
        },
        {"name": "x", "dataType": "CATEGORICAL", "categories": [{"label": "a"}]},
        {"name": "x", "dataType": "BOOLEAN", "minValue": 0},
        {"name": "x", "dataType": "NUMERIC", "isArchived": True},
        {"name": "x", "dataType": "NUMERIC", "colour": "red"},
        ["not an object"],
    ],
)
def test_bad_configs_get_a_400_with_the_reason(client, project, api_key, body):
    response = call(client, "post", URL, api_key.basic, body)
    assert response.status_code == 400, (body, response.content)
    assert response.json()["message"] == "Invalid request data" and response.json()["error"]
    assert not ScoreConfig.objects.filter(project=project).exists()


def test_a_live_name_is_unique_in_a_project_but_not_across_projects(client, project, api_key, other_api_key):
    body = {"name": "tone", "dataType": "TEXT"}
    first = call(client, "post", URL, api_key.basic, body).json()
    assert call(client, "post", URL, api_key.basic, body).status_code == 400
    assert call(client, "post", URL, other_api_key.basic, body).status_code == 200
    # Once archived, the name is free again; un-archiving the old one would then clash.
    call(client, "patch", f"{URL}/{first['id']}", api_key.basic, {"isArchived": True})
    assert call(client, "post", URL, api_key.basic, body).status_code == 200
    clash = call(client, "patch", f"{URL}/{first['id']}", api_key.basic, {"isArchived": False})
    assert clash.status_code in (400, 409)


def test_the_data_type_cannot_be_patched(client, api_key):
    config = call(client, "post", URL, api_key.basic, {"name": "n", "dataType": "NUMERIC"}).json()
    response = call(client, "patch", f"{URL}/{config['id']}", api_key.basic, {"dataType": "BOOLEAN"})
    assert response.status_code == 400
    assert call(client, "get", f"{URL}/{config['id']}", api_key.basic).json()["dataType"] == "NUMERIC"


def test_another_projects_config_is_a_404_like_a_missing_one(client, project, api_key, other_api_key):
    config = call(client, "post", URL, api_key.basic, {"name": "n", "dataType": "NUMERIC"}).json()
    foreign = call(client, "get", f"{URL}/{config['id']}", other_api_key.basic)
    missing = call(client, "get", f"{URL}/{uuid.uuid4()}", other_api_key.basic)
    malformed = call(client, "get", f"{URL}/not-a-uuid", other_api_key.basic)
    assert foreign.status_code == missing.status_code == malformed.status_code == 404
    assert foreign.json() == missing.json()
    assert (
        call(client, "patch", f"{URL}/{config['id']}", other_api_key.basic, {"isArchived": True}).status_code
        == 404
    )
    assert call(client, "get", URL, other_api_key.basic).json()["data"] == []
    assert ScoreConfig.objects.get(pk=config["id"]).is_archived is False


def test_the_public_key_cannot_read_or_write_configs(client, api_key):
    auth = f"Bearer {api_key.public}"
    assert call(client, "get", URL, auth).status_code == 401
    assert call(client, "post", URL, auth, {"name": "n", "dataType": "NUMERIC"}).status_code == 401
    assert not ScoreConfig.objects.exists()


# --- enforcement on every score path --------------------------------------------------------------


@pytest.fixture
def configs(project):
    return {
        "stars": score_config_create(
            project=project, actor=None, name="stars", data_type="NUMERIC", min_value=1, max_value=5
        ),
        "user_feedback": score_config_create(
            project=project, actor=None, name="user_feedback", data_type="BOOLEAN"
        ),
        "tone": score_config_create(
            project=project,
            actor=None,
            name="tone",
            data_type="CATEGORICAL",
            categories=[{"label": "rude", "value": 0}, {"label": "polite", "value": 1}],
        ),
        "old": score_config_create(project=project, actor=None, name="old", data_type="NUMERIC"),
    }


def _archive(config):
    from scores.services import score_config_update

    return score_config_update(config=config, actor=None, is_archived=True)


def test_the_feedback_endpoint_refuses_scores_breaking_their_config(client, project, api_key, configs):
    def send(body):
        return client.post(
            "/api/v1/feedback",
            data=orjson.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
        )

    out_of_range = send({"trace_id": "t1", "rating": 9, "name": "stars"})
    assert out_of_range.status_code == 400
    assert "between 1 and 5" in out_of_range.json()["message"] and "stars" in out_of_range.json()["message"]
    wrong_type = send({"trace_id": "t1", "rating": 3, "name": "user_feedback"})
    assert wrong_type.status_code == 400 and "BOOLEAN" in wrong_type.json()["message"]
    assert not Score.objects.for_project(project).exists()

    assert send({"trace_id": "t1", "rating": 4, "name": "stars"}).status_code == 201
    assert send({"trace_id": "t1", "rating": "down"}).status_code == 201
    stored = {s.name: s for s in Score.objects.for_project(project)}
    assert stored["stars"].config_id == str(configs["stars"].id)
    assert stored["user_feedback"].config_id == str(configs["user_feedback"].id)


def test_rest_scores_refuse_violations_and_store_the_rest(client, project, api_key, configs):
    _archive(configs["old"])
    batch = [
        {"id": "ok-stars", "traceId": "t1", "name": "stars", "value": 5},
        {"id": "bad-stars", "traceId": "t1", "name": "stars", "value": 0},
        {"id": "bad-tone", "traceId": "t1", "name": "tone", "value": "grumpy"},
        {"id": "ok-tone", "traceId": "t1", "name": "tone", "value": 1},  # the value of category "polite"
        {"id": "bad-type", "traceId": "t1", "name": "user_feedback", "value": 1, "dataType": "NUMERIC"},
        {"id": "ok-bool", "traceId": "t1", "name": "user_feedback", "value": 0},
        {
            "id": "by-id",
            "traceId": "t1",
            "name": "whatever",
            "value": 2,
            "configId": str(configs["stars"].id),
        },
        {"id": "no-such", "traceId": "t1", "name": "x", "value": 2, "configId": str(uuid.uuid4())},
        {"id": "archived", "traceId": "t1", "name": "y", "value": 2, "configId": str(configs["old"].id)},
        {"id": "free", "traceId": "t1", "name": "unconfigured", "value": 42},
    ]
    response = client.post(
        "/api/public/scores",
        data=orjson.dumps(batch),
        content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (5, 5)
    messages = " | ".join(e["message"] for e in body["errors"])
    for fragment in ("between 1 and 5", "'rude', 'polite'", "must be BOOLEAN", "does not exist", "archived"):
        assert fragment in messages
    stored = {s.id: s for s in Score.objects.for_project(project)}
    assert set(stored) == {"ok-stars", "ok-tone", "ok-bool", "by-id", "free"}
    assert (stored["ok-tone"].data_type, stored["ok-tone"].string_value) == ("CATEGORICAL", "polite")
    assert (stored["ok-bool"].data_type, stored["ok-bool"].string_value) == ("BOOLEAN", "False")
    # A config named by id gives the score its name (Langfuse's rule).
    assert (stored["by-id"].name, stored["by-id"].config_id) == ("stars", str(configs["stars"].id))
    assert stored["free"].config_id == ""

    single = client.post(
        "/api/public/scores",
        data=orjson.dumps({"traceId": "t1", "name": "stars", "value": 7}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
    )
    assert single.status_code == 400 and "between 1 and 5" in single.json()["error"]


def test_ingestion_reports_violating_score_events_and_stores_the_others(client, project, api_key, configs):
    def event(env_id, body, kind="score-create"):
        return {"id": env_id, "type": kind, "timestamp": "2026-11-26T10:00:00Z", "body": body}

    payload = {
        "batch": [
            event("e-trace", {"id": "t1", "name": "chat"}, kind="trace-create"),
            event("e-ok", {"id": "s-ok", "traceId": "t1", "name": "stars", "value": 3}),
            event("e-range", {"id": "s-range", "traceId": "t1", "name": "stars", "value": 6}),
            event("e-cat", {"id": "s-cat", "traceId": "t1", "name": "tone", "value": "polite"}),
            event("e-cat-bad", {"id": "s-cat-bad", "traceId": "t1", "name": "tone", "value": "meh"}),
            event("e-bool", {"id": "s-bool", "traceId": "t1", "name": "user_feedback", "value": True}),
            event(
                "e-missing",
                {"id": "s-missing", "traceId": "t1", "name": "n", "value": 1, "configId": str(uuid.uuid4())},
            ),
            event("e-malformed", {"id": "s-malformed", "traceId": "t1", "name": "stars"}),  # no value
        ]
    }
    response = client.post(
        "/api/public/ingestion",
        data=orjson.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207
    body = response.json()
    assert sorted(s["id"] for s in body["successes"]) == ["e-bool", "e-cat", "e-ok", "e-trace"]
    errors = {e["id"]: e for e in body["errors"]}
    assert set(errors) == {"e-range", "e-cat-bad", "e-missing", "e-malformed"}
    assert all(e["status"] == 400 for e in errors.values())
    assert "between 1 and 5" in errors["e-range"]["error"]
    assert "'rude', 'polite'" in errors["e-cat-bad"]["error"]
    assert "does not exist" in errors["e-missing"]["error"]
    assert "value" in errors["e-malformed"]["error"]
    stored = {s.id: s for s in Score.objects.for_project(project)}
    assert set(stored) == {"s-ok", "s-cat", "s-bool"}
    assert stored["s-ok"].config_id == str(configs["stars"].id)
    assert (stored["s-bool"].value, stored["s-bool"].config_id) == (1.0, str(configs["user_feedback"].id))


def test_configs_of_one_project_do_not_bind_another(client, other_project, other_api_key, configs):
    response = client.post(
        "/api/public/scores",
        data=orjson.dumps({"traceId": "t1", "name": "stars", "value": 99}),
        content_type="application/json",
        HTTP_AUTHORIZATION=other_api_key.basic,
    )
    assert response.status_code == 200
    assert Score.objects.for_project(other_project).get().value == 99.0


def test_a_new_config_applies_at_once(client, project, api_key):
    def send(value):
        return client.post(
            "/api/public/scores",
            data=orjson.dumps({"traceId": "t1", "name": "late", "value": value}),
            content_type="application/json",
            HTTP_AUTHORIZATION=api_key.basic,
        )

    assert send(50).status_code == 200  # caches "no configs"
    call(client, "post", URL, api_key.basic, {"name": "late", "dataType": "NUMERIC", "maxValue": 10})
    assert send(50).status_code == 400


def test_ingestion_without_score_events_does_not_look_configs_up(client, api_key, configs):
    payload = {
        "batch": [
            {"id": "e1", "type": "trace-create", "timestamp": "2026-11-26T10:00:00Z", "body": {"id": "t1"}}
        ]
    }
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/public/ingestion",
            data=orjson.dumps(payload),
            content_type="application/json",
            HTTP_AUTHORIZATION=api_key.basic,
        )
    assert response.status_code == 207
    assert not any("feedback_scoreconfig" in q["sql"] for q in queries.captured_queries)
