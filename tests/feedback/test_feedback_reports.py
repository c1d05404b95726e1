"""The feedback reports: thumbs-down list and daily thumbs-down rate, in the management API and the
console, checked against figures computed by hand."""

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from feedback import ratelimit
from ingest.stages import price as costs
from ingest.writer import write_records
from tenancy.models import Role


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


def at(day, hour=12, minute=0, second=0):
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def thumb(
    score_id,
    when,
    value,
    *,
    name="user_feedback",
    comment="",
    trace="t-other",
    source="USER",
    data_type="BOOLEAN",
):
    return {
        "id": score_id,
        "trace_id": trace,
        "name": name,
        "value": value,
        "data_type": data_type,
        "source": source,
        "comment": comment,
        "timestamp": when,
        "string_value": ("True" if value else "False") if data_type == "BOOLEAN" else "",
    }


@pytest.fixture
def feedback_data(project, other_project):
    write_records(
        project=project,
        traces=[{"id": "t-slow", "name": "slow answer", "user_id": "alice", "timestamp": at(20, 9)}],
        observations=[],
        scores=[
            # 20 Nov: user_feedback up, down, down; "helpful" down → 4 thumbs, 3 down
            thumb("a1", at(20, 0, 0, 0), 1),
            thumb("a2", at(20, 8), 0, comment="too slow", trace="t-slow"),
            thumb("a3", at(20, 9), 0, comment="wrong answer"),
            thumb("a4", at(20, 10), 0, name="helpful", comment="not helpful"),
            # 21 Nov: nothing
            # 22 Nov: up, up, up, down → 4 thumbs, 1 down
            thumb("c1", at(22, 1), 1),
            thumb("c2", at(22, 2), 1),
            thumb("c3", at(22, 3), 1),
            thumb("c4", at(22, 23, 59, 59), 0, comment="late night"),
            # never thumbs: a numeric rating of 0, a non-user boolean 0
            thumb("n1", at(22, 5), 0, data_type="NUMERIC"),
            thumb("n2", at(22, 6), 0, source="API"),
            # 23 Nov, outside a window ending on the 23rd
            thumb("d1", at(23, 0, 0, 0), 0, comment="newest"),
        ],
    )
    write_records(
        project=other_project,
        traces=[],
        observations=[],
        scores=[thumb("x1", at(22, 4), 0, comment="globex secret complaint")],
    )


def base(project):
    return f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/feedback"


@pytest.fixture
def viewer_client(organization, member_of):
    client = APIClient()
    client.force_login(member_of(organization, Role.VIEWER))
    return client


def test_daily_rate_matches_the_hand_computed_figures(viewer_client, project, feedback_data):
    response = viewer_client.get(f"{base(project)}/daily", {"from": "2026-11-20", "to": "2026-11-23"})
    assert response.status_code == 200
    body = response.json()
    assert body["days"] == [
        {"date": "2026-11-20", "total": 4, "up": 1, "down": 3, "thumbsDownRate": 0.75},
        {"date": "2026-11-21", "total": 0, "up": 0, "down": 0, "thumbsDownRate": None},
        {"date": "2026-11-22", "total": 4, "up": 3, "down": 1, "thumbsDownRate": 0.25},
    ]
    assert (body["total"], body["down"], body["thumbsDownRate"]) == (8, 4, 0.5)

    named = viewer_client.get(
        f"{base(project)}/daily", {"from": "2026-11-20", "to": "2026-11-21", "name": "user_feedback"}
    ).json()
    assert named["days"] == [{"date": "2026-11-20", "total": 3, "up": 1, "down": 2, "thumbsDownRate": 2 / 3}]


def test_thumbs_down_list_is_newest_first_with_comments(viewer_client, project, feedback_data):
    response = viewer_client.get(f"{base(project)}/thumbs-down")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    assert [item["scoreId"] for item in body["results"]] == ["d1", "c4", "a4", "a3", "a2"]
    by_id = {item["scoreId"]: item for item in body["results"]}
    assert by_id["a2"]["comment"] == "too slow"
    assert by_id["a2"]["trace"] == {
        "name": "slow answer",
        "userId": "alice",
        "sessionId": None,
        "timestamp": "2026-11-20T09:00:00Z",
        "environment": "default",
    }
    assert by_id["a3"]["trace"] is None  # the trace has not arrived
    assert "globex" not in response.content.decode()

    page = viewer_client.get(
        f"{base(project)}/thumbs-down",
        {"limit": 2, "offset": 1, "from": "2026-11-20T00:00:00Z", "to": "2026-11-23T00:00:00Z"},
    )
    assert [item["scoreId"] for item in page.json()["results"]] == ["a4", "a3"]
    assert page.json()["count"] == 4
    named = viewer_client.get(f"{base(project)}/thumbs-down", {"name": "helpful"}).json()
    assert [item["scoreId"] for item in named["results"]] == ["a4"]


def test_a_changed_mind_moves_between_the_lists(viewer_client, project, api_key):
    def send(rating):
        return viewer_client.post(
            "/api/v1/feedback",
            data=orjson.dumps({"trace_id": "t9", "rating": rating, "user_id": "bob", "comment": "hmm"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
        )

    assert send("down").status_code == 201
    assert viewer_client.get(f"{base(project)}/thumbs-down").json()["count"] == 1
    assert send("up").status_code == 200
    assert viewer_client.get(f"{base(project)}/thumbs-down").json()["count"] == 0
    today = viewer_client.get(f"{base(project)}/daily").json()
    assert (today["total"], today["down"]) == (1, 0)  # one person, one thumb: up


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("daily", {"from": "2026-11-23", "to": "2026-11-20"}),
        ("daily", {"from": "yesterday"}),
        ("daily", {"from": "2024-01-01", "to": "2026-01-01"}),
        ("thumbs-down", {"limit": "1000"}),
        ("thumbs-down", {"offset": "-1"}),
        ("thumbs-down", {"from": "nope"}),
    ],
)
def test_bad_parameters_get_400(viewer_client, project, path, params):
    response = viewer_client.get(f"{base(project)}/{path}", params)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_the_list_costs_the_same_queries_for_any_page(viewer_client, project):
    write_records(
        project=project,
        traces=[{"id": f"t{i}", "name": f"trace {i}"} for i in range(40)],
        observations=[],
        scores=[thumb(f"s{i}", at(10, 0, i), 0, trace=f"t{i}", comment=f"c{i}") for i in range(40)],
    )
    counts = []
    for limit in (5, 40):
        with CaptureQueriesContext(connections["region_eu"]) as region:
            response = viewer_client.get(f"{base(project)}/thumbs-down", {"limit": limit})
        assert len(response.json()["results"]) == limit
        counts.append(len(region.captured_queries))
    assert counts[0] == counts[1] <= 3


def test_reports_are_for_members_only(client, project, other_project, other_owner, api_key, feedback_data):
    anonymous = APIClient()
    assert anonymous.get(f"{base(project)}/daily").status_code == 401
    stranger = APIClient()
    stranger.force_login(other_owner)
    for path in ("daily", "thumbs-down"):
        response = stranger.get(f"{base(project)}/{path}")
        assert response.status_code == 404
        assert "too slow" not in response.content.decode()
    # The other tenant's own report shows only its own complaint.
    theirs = stranger.get(f"{base(other_project)}/thumbs-down").json()
    assert [item["comment"] for item in theirs["results"]] == ["globex secret complaint"]
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=api_key.basic)
    assert keyed.get(f"{base(project)}/daily").status_code == 404  # the management API is for people


# --- the console ---------------------------------------------------------------------------------------


def test_the_console_page_shows_the_thumbs_down_and_the_daily_rate(
    client, organization, project, member_of, feedback_data, monkeypatch
):
    from feedback import admin as feedback_admin

    monkeypatch.setattr(feedback_admin, "REPORT_DAYS", 30)
    monkeypatch.setattr("django.utils.timezone.now", lambda: at(22, 18))
    client.force_login(member_of(organization, Role.VIEWER))
    response = client.get("/admin/feedback/overview/", {"project": str(project.id)})
    assert response.status_code == 200
    content = response.content.decode()
    for comment in ("too slow", "wrong answer", "late night", "newest"):
        assert comment in content
    assert "globex secret complaint" not in content
    assert (response.context["period_total"], response.context["period_down"]) == (8, 4)
    assert response.context["period_rate"] == 0.5
    assert f"/admin/traces/{project.id}/t-slow/" in content
    index = client.get("/admin/")
    assert "/admin/feedback/overview/" in index.content.decode()


def test_the_console_page_refuses_another_organizations_project(
    client, organization, project, other_project, member_of, feedback_data
):
    client.force_login(member_of(organization, Role.VIEWER))
    response = client.get("/admin/feedback/overview/", {"project": str(other_project.id)})
    missing = client.get("/admin/feedback/overview/", {"project": "00000000-0000-0000-0000-000000000000"})
    assert response.status_code == missing.status_code == 404
    assert "globex secret complaint" not in response.content.decode()


def test_feedback_settings_and_configs_are_editable_by_admins_in_the_console(
    client, organization, project, member_of
):
    from feedback.models import FeedbackSettings
    from scores.models import ScoreConfig

    viewer = member_of(organization, Role.VIEWER)
    client.force_login(viewer)
    assert client.get("/admin/feedback/feedbacksettings/add/").status_code == 403
    admin_user = member_of(organization, Role.ADMIN)
    client.force_login(admin_user)
    response = client.post(
        "/admin/feedback/feedbacksettings/add/",
        {
            "project": str(project.id),
            "enabled": "on",
            "allowed_origins": "https://App.acme.example/",
            "comment_max_length": "500",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = FeedbackSettings.objects.get(project=project)
    assert (saved.allowed_origins, saved.comment_max_length) == (["https://app.acme.example"], 500)
    response = client.post(
        "/admin/scores/scoreconfig/add/",
        {
            "project": str(project.id),
            "name": "stars",
            "data_type": "NUMERIC",
            "min_value": "1",
            "max_value": "5",
            "categories": "[]",
            "description": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ScoreConfig.objects.get(project=project).name == "stars"
