"""Score configs through the management API (`/api/v1/…/score-configs/`), for people: the console's
roles (viewer reads, admin writes, nobody deletes), audited, enforced on the scores that follow, and
isolated from a neighbour organization in the same region and one in the other region."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from scores.models import ScoreConfig
from scores.services import score_config_create
from tenancy.models import AuditAction, AuditLogEntry, Role


def base(organization, project) -> str:
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/score-configs/"


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_an_admin_declares_a_config_and_public_scores_are_held_to_it(
    client, organization, project, api_key, member_of
):
    admin = member_of(organization, Role.ADMIN)
    response = person(admin).post(
        base(organization, project),
        {"name": "quality", "data_type": "NUMERIC", "min_value": 0, "max_value": 1, "description": "0–1"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "quality" and body["project_id"] == str(project.id)
    assert (body["min_value"], body["max_value"], body["is_archived"]) == (0.0, 1.0, False)

    entry = AuditLogEntry.objects.get(organization_id=organization.id, action=AuditAction.SCORE_CONFIG_CREATED)
    assert entry.actor_id == admin.id and entry.target_id == body["id"]

    # The Langfuse route sees the same config, and scores are checked against it.
    listed = client.get("/api/public/score-configs", HTTP_AUTHORIZATION=api_key.basic).json()
    assert [c["id"] for c in listed["data"]] == [body["id"]]
    refused = client.post(
        "/api/public/scores", {"name": "quality", "value": 3, "traceId": "t"}, content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert refused.status_code == 400 and "between 0 and 1" in refused.json()["error"]


def test_categorical_and_boolean_configs(organization, project, owner):
    client = person(owner)
    categorical = client.post(
        base(organization, project),
        {"name": "tone", "data_type": "CATEGORICAL", "categories": [{"label": "ok", "value": 1}]},
        format="json",
    )
    assert categorical.status_code == 201, categorical.content
    assert categorical.json()["categories"] == [{"label": "ok", "value": 1}]
    boolean = client.post(base(organization, project), {"name": "correct", "data_type": "BOOLEAN"}, format="json")
    assert boolean.status_code == 201
    assert {c["label"] for c in boolean.json()["categories"]} == {"True", "False"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad/name", "data_type": "NUMERIC"}, "name"),
        ({"name": "x", "data_type": "FLOAT"}, "data_type"),
        ({"name": "x", "data_type": "NUMERIC", "min_value": 2, "max_value": 1}, "max_value"),
        ({"name": "x", "data_type": "CATEGORICAL"}, "categories"),
        ({"name": "x", "data_type": "CATEGORICAL", "categories": [{"label": "a", "value": "one"}]}, "categories"),
        ({"name": "x", "data_type": "NUMERIC", "isArchived": True}, "isArchived"),
        ({"data_type": "NUMERIC"}, "name"),
    ],
)
def test_bad_definitions_are_a_400_naming_the_field(organization, project, owner, body, field):
    response = person(owner).post(base(organization, project), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not ScoreConfig.objects.filter(project=project).exists()


def test_a_live_name_is_unique_and_archiving_frees_it(organization, project, owner):
    client = person(owner)
    first = client.post(base(organization, project), {"name": "q", "data_type": "NUMERIC"}, format="json").json()
    duplicate = client.post(base(organization, project), {"name": "q", "data_type": "TEXT"}, format="json")
    assert duplicate.status_code in (400, 409), duplicate.content
    archived = client.patch(f"{base(organization, project)}{first['id']}/", {"is_archived": True}, format="json")
    assert archived.status_code == 200 and archived.json()["is_archived"] is True
    again = client.post(base(organization, project), {"name": "q", "data_type": "TEXT"}, format="json")
    assert again.status_code == 201
    entry = AuditLogEntry.objects.get(action=AuditAction.SCORE_CONFIG_UPDATED, target_id=first["id"])
    assert entry.data["changes"] == {"is_archived": [False, True]}


def test_the_data_type_is_fixed_and_configs_are_archived_not_deleted(organization, project, owner):
    config = score_config_create(project=project, actor=None, name="q", data_type="NUMERIC")
    client = person(owner)
    detail = f"{base(organization, project)}{config.id}/"
    changed = client.patch(detail, {"data_type": "TEXT"}, format="json")
    assert changed.status_code == 400 and "data_type" in changed.json()
    assert client.delete(detail).status_code == 405
    assert client.put(detail, {"name": "q"}, format="json").status_code == 405
    config.refresh_from_db()
    assert config.data_type == "NUMERIC"


def test_list_filters(organization, project, owner):
    score_config_create(project=project, actor=None, name="alpha", data_type="NUMERIC")
    beta = score_config_create(project=project, actor=None, name="beta", data_type="TEXT")
    client = person(owner)
    client.patch(f"{base(organization, project)}{beta.id}/", {"is_archived": True}, format="json")
    names = lambda params: [c["name"] for c in client.get(base(organization, project), params).json()["results"]]  # noqa: E731
    assert names({}) == ["alpha", "beta"]
    assert names({"data_type": "TEXT"}) == ["beta"]
    assert names({"is_archived": "false"}) == ["alpha"]
    assert names({"name": "ALP"}) == ["alpha"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_below_admin_reads_but_cannot_write(organization, project, member_of, role):
    config = score_config_create(project=project, actor=None, name="q", data_type="NUMERIC")
    client = person(member_of(organization, role))
    assert client.get(base(organization, project)).status_code == 200
    assert client.get(f"{base(organization, project)}{config.id}/").status_code == 200
    created = client.post(base(organization, project), {"name": "z", "data_type": "NUMERIC"}, format="json")
    assert created.status_code == 403
    patched = client.patch(f"{base(organization, project)}{config.id}/", {"is_archived": True}, format="json")
    assert patched.status_code == 403
    config.refresh_from_db()
    assert not config.is_archived and ScoreConfig.objects.filter(project=project).count() == 1


# --- isolation ---------------------------------------------------------------------------------------


@pytest.fixture
def configs(project, other_project, far_project):
    return {p.id: score_config_create(project=p, actor=None, name="q", data_type="NUMERIC") for p in
            (project, other_project, far_project)}


def _snapshot():
    return sorted(ScoreConfig.objects.values_list("id", "project_id", "name", "is_archived"), key=str)


@pytest.mark.parametrize("neighbour", ["other", "far"])
def test_another_organization_cannot_see_or_change_our_configs(
    request, organization, project, configs, neighbour
):
    stranger = request.getfixturevalue(f"{neighbour}_owner")
    their_org = request.getfixturevalue(f"{neighbour}_organization")
    their_project = request.getfixturevalue(f"{neighbour}_project")
    ours = configs[project.id]
    client = person(stranger)
    before = _snapshot()
    for collection in (base(organization, project), base(their_org, project)):
        assert client.get(collection).status_code == 404
        assert client.post(collection, {"name": "z", "data_type": "NUMERIC"}, format="json").status_code == 404
    # Our config's id, under our path, under their own org with our project, and under their own project.
    for collection in (base(organization, project), base(their_org, project), base(their_org, their_project)):
        detail = f"{collection}{ours.id}/"
        assert client.get(detail).status_code == 404, detail
        assert client.patch(detail, {"is_archived": True}, format="json").status_code == 404, detail
    own_list = client.get(base(their_org, their_project)).json()["results"]
    assert [c["id"] for c in own_list] == [str(configs[their_project.id].id)]
    assert _snapshot() == before


def test_api_keys_cannot_use_the_management_route(client, organization, project, api_key, configs):
    for header in (api_key.basic, api_key.bearer):
        response = client.get(base(organization, project), HTTP_AUTHORIZATION=header)
        assert response.status_code in (401, 404), (header, response.status_code)
