"""`POST /api/v1/feedback`: end-user ratings as USER scores, one per (trace, user, name), with history."""

import uuid

import orjson
import pytest
from django.db import connections
from django.urls import URLPattern, URLResolver, get_resolver

from feedback import ratelimit
from feedback.models import FeedbackEvent
from feedback.services import feedback_score_id, feedback_settings_update
from ingest import writer
from ingest.stages import price as costs
from privacy.services import redaction_policy_update
from scores.models import Score
from traces.models import Trace

URL = "/api/v1/feedback"


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    # Counters live in the run's real Redis; each test counts in its own namespace.
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


def send(client, body, auth, **headers):
    return client.post(
        URL, data=orjson.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth, **headers
    )


def pk(api_key) -> str:
    return f"Bearer {api_key.public}"


def scores(project):
    return list(Score.objects.for_project(project).order_by("created_at"))


def history(project):
    return list(FeedbackEvent.objects.for_project(project).order_by("created_at", "id"))


# --- the rating --------------------------------------------------------------------------------


def test_a_thumbs_up_with_the_public_key_is_stored_as_a_user_boolean_score(client, project, api_key):
    response = send(
        client, {"trace_id": "t1", "rating": "up", "user_id": "u-7", "comment": "great"}, pk(api_key)
    )
    assert response.status_code == 201
    body = response.json()
    [score] = scores(project)
    assert body["id"] == score.id
    assert (body["name"], body["dataType"], body["value"], body["created"]) == (
        "user_feedback",
        "BOOLEAN",
        1.0,
        True,
    )
    assert (score.trace_id, score.name, score.data_type, score.value, score.string_value, score.source) == (
        "t1",
        "user_feedback",
        "BOOLEAN",
        1.0,
        "True",
        "USER",
    )
    assert (score.comment, score.author_user_id) == ("great", "u-7")


def test_changing_ones_mind_updates_the_one_score_and_keeps_both_submissions(client, project, api_key):
    first = send(client, {"trace_id": "t1", "rating": "up", "user_id": "u-7"}, pk(api_key))
    second = send(
        client, {"trace_id": "t1", "rating": "down", "user_id": "u-7", "comment": "wrong"}, pk(api_key)
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert (second.json()["created"], second.json()["previousValue"]) == (False, 1.0)
    [score] = scores(project)
    assert (score.value, score.string_value, score.comment) == (0.0, "False", "wrong")
    events = history(project)
    assert [(e.value, e.is_update, e.previous_value, e.comment) for e in events] == [
        (1.0, False, None, ""),
        (0.0, True, 1.0, "wrong"),
    ]
    assert {e.score_id for e in events} == {score.id}


def test_nul_in_a_comment_or_metadata_is_stored_as_the_replacement_character(client, project, api_key):
    """As every write stores it (`ingest.rules.values.strip_nul`); the feedback path answered 400 with
    PostgreSQL's own error text, a line of SQL included."""
    body = {"trace_id": "t1", "rating": "up", "user_id": "u-7", "comment": "so\x00so",
            "metadata": {"page\x00": "/chat\x00"}}
    response = send(client, body, pk(api_key))
    assert response.status_code == 201, response.content
    [score] = scores(project)
    assert (score.comment, score.metadata) == ("so\ufffdso", {"page\ufffd": "/chat\ufffd"})
    [event] = history(project)
    assert (event.comment, event.metadata) == ("so\ufffdso", {"page\ufffd": "/chat\ufffd"})


def test_the_score_id_is_derived_from_project_trace_observation_user_and_name(client, project, api_key):
    response = send(
        client,
        {"traceId": "t1", "observationId": "o1", "rating": 4, "userId": "u-1", "name": "stars"},
        pk(api_key),
    )
    expected = feedback_score_id(
        project_id=project.id, trace_id="t1", observation_id="o1", user_id="u-1", name="stars"
    )
    assert response.json()["id"] == expected
    [score] = scores(project)
    assert (score.id, score.observation_id, score.data_type, score.value) == (expected, "o1", "NUMERIC", 4.0)
    # Each part of the key separates ratings: another user, observation or name is another score.
    for variant in ({"userId": "u-2"}, {"observationId": "o2"}, {"name": "helpful"}):
        send(
            client,
            {
                "traceId": "t1",
                "observationId": "o1",
                "rating": 4,
                "userId": "u-1",
                "name": "stars",
                **variant,
            },
            pk(api_key),
        )
    assert len(scores(project)) == 4


def test_anonymous_feedback_is_a_rating_of_its_own_each_time(client, project, api_key):
    for rating in ("up", "down", "down"):
        assert send(client, {"trace_id": "t1", "rating": rating}, pk(api_key)).status_code == 201
    stored = scores(project)
    assert len(stored) == 3 and len({s.id for s in stored}) == 3
    assert sorted(s.value for s in stored) == [0.0, 0.0, 1.0]
    assert all(not e.is_update for e in history(project))


def test_the_secret_key_works_too(client, project, api_key):
    for auth in (api_key.basic, api_key.bearer):
        assert send(client, {"trace_id": "t1", "rating": "down", "user_id": "srv"}, auth).status_code in (
            200,
            201,
        )
    assert len(scores(project)) == 1 and len(history(project)) == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"rating": "up"}, "trace_id"),
        ({"trace_id": "t1"}, "rating"),
        ({"trace_id": "t1", "rating": "meh"}, "rating"),
        ({"trace_id": "t1", "rating": True}, "rating"),
        ({"trace_id": "t1", "rating": "up", "comment": 5}, "comment"),
        ({"trace_id": "t1", "rating": "up", "metadata": [1]}, "metadata"),
        ({"trace_id": "t1", "rating": "up", "score": 1}, "unknown field"),
        ({"trace_id": "t1", "traceId": "t2", "rating": "up"}, "twice"),
        ({"trace_id": "x" * 201, "rating": "up"}, "trace_id"),
        (["not", "an", "object"], "object"),
    ],
)
def test_bad_bodies_get_a_400_naming_the_problem(client, project, api_key, body, fragment):
    response = send(client, body, pk(api_key))
    assert response.status_code == 400, response.content
    assert fragment in response.json()["message"]
    assert scores(project) == [] and history(project) == []


def test_invalid_json_and_empty_bodies_get_400(client, api_key):
    for raw in (b"{nope", b""):
        response = client.post(URL, data=raw, content_type="application/json", HTTP_AUTHORIZATION=pk(api_key))
        assert response.status_code == 400
        assert response.json()["message"]


def test_a_comment_over_the_projects_limit_is_refused_with_413(client, project, api_key):
    feedback_settings_update(project=project, actor=None, comment_max_length=50)
    response = send(client, {"trace_id": "t1", "rating": "down", "comment": "x" * 51}, pk(api_key))
    assert response.status_code == 413
    assert "at most 50" in response.json()["message"]
    assert (
        send(client, {"trace_id": "t1", "rating": "down", "comment": "x" * 50}, pk(api_key)).status_code
        == 201
    )


def test_a_body_over_the_limit_is_refused_with_413(client, project, api_key, settings):
    settings.FEEDBACK_MAX_BODY_BYTES = 2048
    response = send(
        client, {"trace_id": "t1", "rating": "down", "metadata": {"pad": "x" * 3000}}, pk(api_key)
    )
    assert response.status_code == 413
    assert "2048" in response.json()["message"]
    assert scores(project) == []


def test_wrong_methods_and_credentials(client, api_key):
    assert client.get(URL, HTTP_AUTHORIZATION=pk(api_key)).status_code == 405
    for auth in ("", "Bearer pk-lg-unknown", "Bearer nonsense", f"Basic {api_key.public}"):
        response = send(client, {"trace_id": "t1", "rating": "up"}, auth)
        assert response.status_code == 401
        assert response.json()["message"]


def test_a_project_can_turn_browser_feedback_off(client, project, api_key):
    feedback_settings_update(project=project, actor=None, enabled=False)
    response = send(client, {"trace_id": "t1", "rating": "up"}, pk(api_key))
    assert response.status_code == 403
    assert "turned off" in response.json()["message"]
    # The project's own servers keep their access.
    assert send(client, {"trace_id": "t1", "rating": "up"}, api_key.basic).status_code == 201


# --- arrival order, read API, admin ----------------------------------------------------------------


def test_feedback_before_its_trace_shows_once_the_trace_lands(client, project, api_key, owner):
    response = send(
        client, {"trace_id": "late-trace", "rating": "down", "user_id": "u1", "comment": "slow"}, pk(api_key)
    )
    assert response.status_code == 201
    assert not Trace.objects.for_project(project).filter(id="late-trace").exists()

    batch = {
        "batch": [
            {
                "id": "e1",
                "type": "trace-create",
                "timestamp": "2026-11-26T10:00:00Z",
                "body": {"id": "late-trace", "name": "chat", "userId": "u1"},
            }
        ]
    }
    ingest = client.post(
        "/api/public/ingestion",
        data=orjson.dumps(batch),
        content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert ingest.status_code == 207 and not ingest.json()["errors"]

    trace = client.get("/api/public/traces/late-trace", HTTP_AUTHORIZATION=api_key.basic).json()
    [score] = trace["scores"]
    assert (score["name"], score["value"], score["endUserFeedback"], score["comment"]) == (
        "user_feedback",
        0.0,
        True,
        "slow",
    )
    listed = client.get(
        "/api/public/scores", {"traceId": "late-trace"}, HTTP_AUTHORIZATION=api_key.basic
    ).json()
    assert [item["id"] for item in listed["data"]] == [response.json()["id"]]
    assert listed["data"][0]["trace"]["userId"] == "u1"

    client.force_login(owner)
    page = client.get(f"/admin/traces/{project.id}/late-trace/")
    assert page.status_code == 200
    assert b"slow" in page.content and b"USER" in page.content and b"user_feedback" in page.content


# --- isolation -----------------------------------------------------------------------------------


def test_a_public_key_writes_only_to_its_own_project(client, project, api_key, other_project, other_api_key):
    Trace.objects.for_project(other_project).create(id="their-trace", name="theirs")
    response = send(client, {"trace_id": "their-trace", "rating": "down", "comment": "spam"}, pk(api_key))
    assert response.status_code == 201
    # It simply lands in the key's own project, as feedback on a trace id that project does not have.
    [score] = scores(project)
    assert score.trace_id == "their-trace"
    assert scores(other_project) == [] and history(other_project) == []
    theirs = client.get("/api/public/traces/their-trace", HTTP_AUTHORIZATION=other_api_key.basic).json()
    assert theirs["scores"] == []
    listed = client.get("/api/public/scores", HTTP_AUTHORIZATION=other_api_key.basic).json()
    assert listed["data"] == []


def _public_paths() -> set[str]:
    """Every route under /api/public/, discovered from the resolver, with real ids filled in."""
    from django.utils.regex_helper import normalize

    paths = set()

    def walk(patterns, prefix):
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
            elif isinstance(pattern, URLPattern):
                template, params = normalize(regex)[0]
                if template.startswith("api/public/"):
                    values = {
                        p: {"trace_id": "t1", "suffix": "versions/1", "version": "1"}.get(p, "x1")
                        for p in params
                    }
                    paths.add("/" + template % values)

    walk(get_resolver("config.urls").url_patterns, "")
    return paths


# The catch-all answers every unimplemented Langfuse route with a JSON 404 (it holds nothing).
NO_AUTH = {"/api/public/health", "/api/public/ready", "/api/public/"}
PUBLIC_KEY_MAY_POST = {"/api/public/scores", "/api/public/v2/scores"}


def test_a_public_key_alone_reads_nothing_and_ingests_nothing(client, project, api_key):
    Trace.objects.for_project(project).create(id="t1", name="secret stuff")
    # Routes whose fixed suffix is a regex group get it spelled out (the resolver walk fills one value).
    extra = {"/v1/traces", "/api/public/v2/prompts/x1/compile", "/api/public/v2/prompts/x1/metrics"}
    paths = sorted(_public_paths() | extra)
    assert "/api/public/traces" in paths and "/api/public/score-configs" in paths and len(paths) >= 15
    for path in paths:
        if path in NO_AUTH:
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if method == "post" and path in PUBLIC_KEY_MAY_POST:
                continue
            if method == "get":
                response = client.get(path, HTTP_AUTHORIZATION=pk(api_key))
            else:
                response = getattr(client, method)(
                    path, data=b"{}", content_type="application/json", HTTP_AUTHORIZATION=pk(api_key)
                )
            assert response.status_code in (401, 405), (
                f"{method.upper()} {path} answered {response.status_code}"
            )
            assert b"secret stuff" not in response.content
    assert not Score.objects.for_project(project).exists()


# --- regions -------------------------------------------------------------------------------------


def _rows(alias, table):
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT project_id::text, count(*) FROM {table} GROUP BY 1")
        return dict(cursor.fetchall())


def test_feedback_is_stored_in_the_projects_region_only(
    client, project, api_key, far_project, far_api_key
):
    send(client, {"trace_id": "t1", "rating": "up", "user_id": "a"}, pk(api_key))
    send(client, {"trace_id": "t2", "rating": "down", "user_id": "b"}, pk(far_api_key))
    for table in ("feedback_score", "feedback_feedbackevent"):
        assert _rows("region_eu", table) == {str(project.id): 1}
        assert _rows("region_us", table) == {str(far_project.id): 1}
    assert "feedback_feedbackevent" not in connections["default"].introspection.table_names()


def test_history_rows_cannot_be_rewritten(client, project, api_key):
    send(client, {"trace_id": "t1", "rating": "up", "user_id": "a"}, pk(api_key))
    from django.db import transaction
    from django.db.utils import InternalError, ProgrammingError

    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(using="region_eu"):
        FeedbackEvent.objects.for_project(project).update(value=0)
    [event] = history(project)
    assert event.value == 1.0


# --- redaction -----------------------------------------------------------------------------------


def test_comments_go_through_the_projects_redaction_policy(client, project, api_key):
    redaction_policy_update(project=project, actor=None, enabled=True)
    response = send(
        client,
        {
            "trace_id": "t1",
            "rating": "down",
            "user_id": "u",
            "comment": "call me at jane.doe@example.com please",
        },
        pk(api_key),
    )
    assert response.status_code == 201
    [score] = scores(project)
    assert "jane.doe@example.com" not in score.comment and "please" in score.comment
    assert score.redactions
    [event] = history(project)
    assert "jane.doe@example.com" not in event.comment


def test_feedback_is_rejected_when_redaction_fails(client, project, api_key, monkeypatch):
    redaction_policy_update(project=project, actor=None, enabled=True)

    def broken(*args, **kwargs):
        raise RuntimeError("detector crashed")

    monkeypatch.setattr("privacy.engine.redact_records", broken)
    response = send(
        client, {"trace_id": "t1", "rating": "down", "comment": "my card is 4111 1111 1111 1111"}, pk(api_key)
    )
    assert response.status_code == 422
    assert "not stored" in response.json()["message"]
    assert scores(project) == [] and history(project) == []
    # Without a comment or metadata there is nothing to redact, and nothing to refuse.
    assert send(client, {"trace_id": "t1", "rating": "up"}, pk(api_key)).status_code == 201


def test_a_region_outage_answers_503_and_stores_nothing(client, project, api_key, monkeypatch):
    from django.db import OperationalError

    class Dead:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(writer, "data_connection", lambda project: Dead())
    response = send(client, {"trace_id": "t1", "rating": "up"}, pk(api_key))
    assert response.status_code == 503
    assert response["Retry-After"]
