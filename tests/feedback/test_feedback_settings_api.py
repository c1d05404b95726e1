"""Feedback settings through the management API (`/api/v1/…/feedback/settings`): what the console
configures (allowed browser origins, the on/off switch, the comment limit), with the console's roles,
audited, and isolated from a neighbour organization in the same region and one in the other region."""

from __future__ import annotations

import uuid

import orjson
import pytest
from rest_framework.test import APIClient

from feedback import ratelimit
from feedback.models import DEFAULT_COMMENT_LENGTH, FeedbackSettings
from feedback.services import feedback_settings_update
from tenancy.models import AuditAction, AuditLogEntry, Role

APP = "https://app.acme.example"


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")


def url(organization, project) -> str:
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/feedback/settings"


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def browser_feedback(client, api_key, origin, comment=""):
    return client.post(
        "/api/v1/feedback",
        data=orjson.dumps({"trace_id": "t-1", "rating": "down", "comment": comment, "user_id": "u1"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
        HTTP_ORIGIN=origin,
    )


def test_a_project_without_settings_reads_as_the_defaults(organization, project, member_of):
    response = person(member_of(organization, Role.VIEWER)).get(url(organization, project))
    assert response.status_code == 200
    assert response.json() == {
        "project_id": str(project.id),
        "configured": False,
        "enabled": True,
        "allowed_origins": [],
        "comment_max_length": DEFAULT_COMMENT_LENGTH,
        "updated_at": None,
    }


def test_an_automated_setup_lets_its_web_app_send_feedback(client, organization, project, api_key, member_of):
    """The issue's case: without the console, a script allows the app's origin, and the page's feedback
    is then accepted (it was refused with 403 before)."""
    assert browser_feedback(client, api_key, APP).status_code == 403

    admin = member_of(organization, Role.ADMIN)
    response = person(admin).patch(
        url(organization, project), {"allowed_origins": ["HTTPS://App.Acme.example/"]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["allowed_origins"] == [APP] and body["configured"] is True and body["enabled"] is True

    accepted = browser_feedback(client, api_key, APP)
    assert accepted.status_code == 201, accepted.content
    assert accepted["Access-Control-Allow-Origin"] == APP

    entry = AuditLogEntry.objects.get(
        organization_id=organization.id, action=AuditAction.FEEDBACK_SETTINGS_UPDATED
    )
    assert entry.actor_id == admin.id and entry.target_id == str(project.id)
    assert entry.data["changes"]["allowed_origins"] == [[], [APP]]


def test_patch_changes_only_what_it_names_and_put_replaces(organization, project, member_of):
    client = person(member_of(organization, Role.ADMIN))
    client.put(
        url(organization, project),
        {"allowed_origins": [APP], "comment_max_length": 300, "enabled": False},
        format="json",
    )
    patched = client.patch(url(organization, project), {"comment_max_length": 50}, format="json").json()
    assert (patched["allowed_origins"], patched["enabled"], patched["comment_max_length"]) == ([APP], False, 50)

    replaced = client.put(url(organization, project), {"comment_max_length": 80}, format="json").json()
    assert (replaced["allowed_origins"], replaced["enabled"], replaced["comment_max_length"]) == ([], True, 80)
    row = FeedbackSettings.objects.get(project=project)
    assert (row.allowed_origins, row.enabled, row.comment_max_length) == ([], True, 80)


def test_the_comment_limit_set_through_the_api_applies_to_browser_feedback(
    client, organization, project, api_key, member_of
):
    person(member_of(organization, Role.ADMIN)).put(
        url(organization, project), {"allowed_origins": [APP], "comment_max_length": 10}, format="json"
    )
    assert browser_feedback(client, api_key, APP, comment="x" * 11).status_code in (400, 413)
    assert browser_feedback(client, api_key, APP, comment="x" * 10).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"allowed_origins": ["https://app.example.com/path"]}, "allowed_origins"),
        ({"allowed_origins": ["ftp://app.example.com"]}, "allowed_origins"),
        ({"allowed_origins": "https://app.example.com"}, "allowed_origins"),
        ({"comment_max_length": 0}, "comment_max_length"),
        ({"comment_max_length": 10_001}, "comment_max_length"),
        ({"enabled": "maybe"}, "enabled"),
        ({"allowedOrigins": [APP]}, "allowedOrigins"),
    ],
)
def test_bad_settings_are_a_400_naming_the_field_and_change_nothing(organization, project, member_of, body, field):
    response = person(member_of(organization, Role.ADMIN)).patch(url(organization, project), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not FeedbackSettings.objects.filter(project=project).exists()
    assert not AuditLogEntry.objects.filter(action=AuditAction.FEEDBACK_SETTINGS_UPDATED).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_below_admin_reads_but_cannot_change(organization, project, member_of, role):
    client = person(member_of(organization, role))
    assert client.get(url(organization, project)).status_code == 200
    for method in ("put", "patch"):
        response = getattr(client, method)(url(organization, project), {"allowed_origins": ["*"]}, format="json")
        assert response.status_code == 403, (method, response.content)
    assert not FeedbackSettings.objects.filter(project=project).exists()


def test_the_audit_log_can_be_filtered_by_the_settings_action(organization, project, owner):
    client = person(owner)
    client.patch(url(organization, project), {"enabled": False}, format="json")
    response = client.get(
        f"/api/v1/organizations/{organization.id}/audit-log/", {"action": "feedback_settings.updated"}
    )
    assert response.status_code == 200, response.content
    assert [e["action"] for e in response.json()["results"]] == ["feedback_settings.updated"]


# --- isolation ---------------------------------------------------------------------------------------


@pytest.fixture
def guarded(project, other_project, far_project):
    """Every project has settings a takeover would change."""
    for p in (project, other_project, far_project):
        feedback_settings_update(project=p, actor=None, allowed_origins=[f"https://{p.name}.example"])


def _snapshot():
    return sorted(
        FeedbackSettings.objects.values_list("project_id", "enabled", "allowed_origins", "comment_max_length"),
        key=str,
    )


@pytest.mark.parametrize("neighbour", ["other", "far"])
def test_another_organization_gets_404_for_every_method(request, organization, project, guarded, neighbour):
    stranger = request.getfixturevalue(f"{neighbour}_owner")
    their_org = request.getfixturevalue(f"{neighbour}_organization")
    client = person(stranger)
    before = _snapshot()
    # Our project under our organization, and our project under their own organization.
    for target in (url(organization, project), url(their_org, project)):
        assert client.get(target).status_code == 404
        for method in ("put", "patch"):
            response = getattr(client, method)(target, {"allowed_origins": ["*"]}, format="json")
            assert response.status_code == 404, (target, method)
            assert project.name not in response.content.decode()
    assert _snapshot() == before


def test_a_neighbour_in_the_same_region_reads_and_writes_only_its_own(
    organization, project, other_organization, other_project, other_owner, guarded
):
    client = person(other_owner)
    own = client.patch(url(other_organization, other_project), {"comment_max_length": 42}, format="json")
    assert own.status_code == 200 and own.json()["project_id"] == str(other_project.id)
    ours = FeedbackSettings.objects.get(project=project)
    assert ours.comment_max_length == DEFAULT_COMMENT_LENGTH
    assert ours.allowed_origins == [f"https://{project.name}.example"]


def test_api_keys_cannot_use_the_settings_endpoint(client, organization, project, api_key, guarded):
    for header in (api_key.basic, api_key.bearer, f"Bearer {api_key.public}"):
        response = client.patch(
            url(organization, project), {"allowed_origins": ["*"]}, content_type="application/json",
            HTTP_AUTHORIZATION=header,
        )
        assert response.status_code in (401, 404), (header, response.status_code)
    assert FeedbackSettings.objects.get(project=project).allowed_origins == [f"https://{project.name}.example"]
