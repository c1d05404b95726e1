"""CORS for browser feedback: per-project allowed origins on `/api/v1/feedback` and `/api/public/scores`,
exercised the way a browser does it (preflight, then the real request)."""

import uuid

import orjson
import pytest

from feedback import ratelimit
from feedback.models import FeedbackSettings
from feedback.services import feedback_settings_update
from ingest.stages import price as costs
from scores.models import Score

APP = "https://app.acme.example"
EVIL = "https://evil.example"
GLOBEX = "https://globex.example"
FEEDBACK = "/api/v1/feedback"
SCORES = "/api/public/scores"


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


@pytest.fixture
def origins(project, other_project):
    feedback_settings_update(project=project, actor=None, allowed_origins=[APP + "/"])
    feedback_settings_update(project=other_project, actor=None, allowed_origins=[GLOBEX])


def preflight(client, url, origin, method="POST", headers="authorization, content-type"):
    return client.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def browser_post(client, url, body, api_key, origin):
    return client.post(
        url,
        data=orjson.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
        HTTP_ORIGIN=origin,
    )


def cors_headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("url", [FEEDBACK, SCORES])
def test_a_browser_on_an_allowed_origin_gets_through_preflight_and_post(
    client, project, api_key, origins, url
):
    response = preflight(client, url, APP)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Access-Control-Allow-Methods"] == "POST"
    allowed_headers = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response

    body = (
        {"trace_id": "t1", "rating": "up"}
        if url == FEEDBACK
        else {"traceId": "t1", "name": "thumbs", "value": 1}
    )
    response = browser_post(client, url, body, api_key, APP)
    assert response.status_code in (200, 201), response.content
    assert response["Access-Control-Allow-Origin"] == APP
    assert "Origin" in response["Vary"]
    assert Score.objects.for_project(project).count() == 1


@pytest.mark.parametrize("url", [FEEDBACK, SCORES])
def test_a_disallowed_origin_gets_no_cors_headers_and_its_post_is_refused(
    client, project, api_key, origins, url
):
    response = preflight(client, url, EVIL)
    assert response.status_code == 204
    assert cors_headers(response) == {}

    body = (
        {"trace_id": "t1", "rating": "down"}
        if url == FEEDBACK
        else {"traceId": "t1", "name": "x", "value": 0}
    )
    response = browser_post(client, url, body, api_key, EVIL)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert EVIL in response.json()["message"]
    assert cors_headers(response) == {}
    assert not Score.objects.for_project(project).exists()


def test_an_origin_allowed_by_another_project_cannot_write_to_this_one(client, project, api_key, origins):
    # The preflight passes (some project allows Globex: a preflight cannot know the project) …
    assert preflight(client, FEEDBACK, GLOBEX)["Access-Control-Allow-Origin"] == GLOBEX
    # … but the real request is checked against the key's own project.
    response = browser_post(client, FEEDBACK, {"trace_id": "t1", "rating": "down"}, api_key, GLOBEX)
    assert response.status_code == 403
    assert cors_headers(response) == {}
    assert not Score.objects.for_project(project).exists()


def test_a_preflight_with_the_public_key_is_answered_for_that_project_only(
    client, api_key, other_api_key, origins
):
    assert preflight(client, f"{FEEDBACK}?pk={api_key.public}", APP)["Access-Control-Allow-Origin"] == APP
    assert cors_headers(preflight(client, f"{FEEDBACK}?pk={api_key.public}", GLOBEX)) == {}
    assert (
        preflight(client, f"{FEEDBACK}?pk={other_api_key.public}", GLOBEX)["Access-Control-Allow-Origin"]
        == GLOBEX
    )
    assert cors_headers(preflight(client, f"{FEEDBACK}?pk=pk-lg-unknown", APP)) == {}


def test_a_preflight_for_another_method_or_without_origin_gets_no_cors_headers(client, origins):
    assert cors_headers(preflight(client, FEEDBACK, APP, method="DELETE")) == {}
    plain = client.options(FEEDBACK)
    assert plain.status_code == 204 and cors_headers(plain) == {}
    assert "POST" in plain["Allow"]


def test_star_allows_any_page_but_never_the_null_origin(client, project, api_key):
    feedback_settings_update(project=project, actor=None, allowed_origins=["*"])
    response = preflight(client, FEEDBACK, "https://anything.example:8443")
    assert response["Access-Control-Allow-Origin"] == "https://anything.example:8443"
    ok = browser_post(
        client, FEEDBACK, {"trace_id": "t1", "rating": "up"}, api_key, "https://anything.example:8443"
    )
    assert ok.status_code == 201 and ok["Access-Control-Allow-Origin"] == "https://anything.example:8443"
    assert cors_headers(preflight(client, FEEDBACK, "null")) == {}
    assert (
        browser_post(client, FEEDBACK, {"trace_id": "t1", "rating": "up"}, api_key, "null").status_code == 403
    )


def test_a_disabled_projects_origins_are_not_preapproved(client, project, origins):
    feedback_settings_update(project=project, actor=None, enabled=False)
    assert cors_headers(preflight(client, FEEDBACK, APP)) == {}


def test_requests_without_origin_are_server_side_and_need_no_cors_settings(client, project, api_key):
    response = client.post(
        FEEDBACK,
        data=orjson.dumps({"trace_id": "t1", "rating": "up"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
    )
    assert response.status_code == 201
    assert cors_headers(response) == {}


def test_scores_reads_never_get_cors_headers(client, api_key, origins):
    response = client.get(SCORES, HTTP_AUTHORIZATION=api_key.basic, HTTP_ORIGIN=APP)
    assert response.status_code == 200
    assert cors_headers(response) == {}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://App.Example.com/", "https://app.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
    ],
)
def test_origins_are_normalised(project, given, stored):
    settings_row = feedback_settings_update(project=project, actor=None, allowed_origins=[given, given])
    assert FeedbackSettings.objects.get(pk=settings_row.pk).allowed_origins == [stored]


@pytest.mark.parametrize(
    "bad",
    [
        "app.example.com",
        "https://app.example.com/path",
        "ftp://x.example",
        "https://*.example.com",
        "https://x.example?q=1",
    ],
)
def test_malformed_origins_are_refused(project, bad):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        feedback_settings_update(project=project, actor=None, allowed_origins=[bad])
    assert "allowed_origins" in info.value.message_dict
    assert not FeedbackSettings.objects.filter(project=project).exists()


def test_settings_changes_are_audited(project):
    from tenancy.models import AuditLogEntry

    feedback_settings_update(project=project, actor=None, allowed_origins=[APP])
    entry = AuditLogEntry.objects.get(
        organization_id=project.organization_id, action="feedback_settings.updated"
    )
    assert entry.data["changes"]["allowed_origins"] == [[], [APP]]
