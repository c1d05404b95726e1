"""A prompt's labels through the management API (`/api/v1/…/prompts/{name}/labels`): what the console's
prompt page does — move a label to a version, take it off — with the console's roles (viewer reads,
member and up write), recorded in the label history and the audit log, served fresh by the SDK route,
and isolated from a neighbour organization in the same region and one in the other region."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from prompts.models import PromptLabel, PromptLabelEvent
from prompts.payloads import parse_create
from prompts.services import prompt_create_version
from tenancy.models import AuditAction, AuditLogEntry, Role

NAME = "support/reply"


def make(project, name, text, **extra):
    return prompt_create_version(project=project, data=parse_create({"name": name, "prompt": text, **extra}), actor=None)


def labels_url(organization, project, name=NAME) -> str:
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/prompts/{quote(name, safe='/')}/labels"


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def prompts(project, other_project, far_project):
    make(project, NAME, "v1", labels=["production"])
    make(project, NAME, "v2")
    for neighbour in (other_project, far_project):
        make(neighbour, NAME, "theirs v1", labels=["production"])
        make(neighbour, NAME, "theirs v2")


def _labels(project, name=NAME) -> dict:
    from prompts.selectors import prompt_by_name, prompt_labels

    return dict(prompt_labels(project=project, prompt=prompt_by_name(project=project, name=name)))


def test_a_viewer_reads_the_labels(organization, project, member_of, prompts):
    response = person(member_of(organization, Role.VIEWER)).get(labels_url(organization, project))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "name": NAME,
        "labels": [{"label": "latest", "version": 2}, {"label": "production", "version": 1}],
    }


def test_a_member_moves_production_and_the_sdk_route_serves_it(client, organization, project, api_key, member_of,
                                                                 prompts):
    member = member_of(organization, Role.MEMBER)
    moved = person(member).put(f"{labels_url(organization, project)}/production", {"version": 2}, format="json")
    assert moved.status_code == 200, moved.content
    assert {"label": "production", "version": 2} in moved.json()["labels"]

    fetched = client.get(f"/api/public/v2/prompts/{quote(NAME, safe='')}", HTTP_AUTHORIZATION=api_key.basic)
    assert fetched.status_code == 200 and fetched.json()["version"] == 2

    event = PromptLabelEvent.objects.for_project(project).get(label="production", from_version=1)
    assert (event.from_version, event.to_version, event.actor_user_id) == (1, 2, member.id)
    audit = AuditLogEntry.objects.get(
        organization_id=organization.id, action=AuditAction.PROMPT_LABEL_MOVED, actor_id=member.id
    )
    assert (audit.data["label"], audit.data["from_version"], audit.data["to_version"]) == ("production", 1, 2)


def test_a_new_label_and_its_removal(organization, project, owner, prompts):
    client = person(owner)
    assert client.put(f"{labels_url(organization, project)}/staging", {"version": 1}, format="json").status_code == 200
    assert _labels(project)["staging"] == 1
    removed = client.delete(f"{labels_url(organization, project)}/staging")
    assert removed.status_code == 204
    assert "staging" not in _labels(project)
    assert client.delete(f"{labels_url(organization, project)}/staging").status_code == 404


@pytest.mark.parametrize(
    ("method", "label", "body"),
    [
        ("put", "latest", {"version": 1}),
        ("delete", "latest", None),
        ("put", "Bad Label", {"version": 1}),
        ("put", "staging", {"version": "two"}),
        ("put", "staging", {}),
    ],
)
def test_bad_label_writes_are_a_400_and_change_nothing(organization, project, owner, prompts, method, label, body):
    before = _labels(project)
    url = f"{labels_url(organization, project)}/{quote(label)}"
    response = getattr(person(owner), method)(url, body, format="json") if body is not None else person(owner).delete(url)
    assert response.status_code == 400, response.content
    assert _labels(project) == before


def test_missing_prompts_and_versions_are_a_404(organization, project, owner, prompts):
    client = person(owner)
    assert client.get(labels_url(organization, project, "nope")).status_code == 404
    assert client.put(f"{labels_url(organization, project)}/staging", {"version": 9}, format="json").status_code == 404


def test_a_viewer_cannot_move_or_remove(organization, project, member_of, prompts):
    client = person(member_of(organization, Role.VIEWER))
    before = _labels(project)
    assert client.put(f"{labels_url(organization, project)}/production", {"version": 2}, format="json").status_code == 403
    assert client.delete(f"{labels_url(organization, project)}/production").status_code == 403
    assert _labels(project) == before


@pytest.mark.parametrize("neighbour", ["other", "far"])
def test_another_organization_cannot_read_or_move_our_labels(request, organization, project, prompts, neighbour):
    stranger = request.getfixturevalue(f"{neighbour}_owner")
    their_org = request.getfixturevalue(f"{neighbour}_organization")
    their_project = request.getfixturevalue(f"{neighbour}_project")
    client = person(stranger)
    ours, theirs = _labels(project), _labels(their_project)
    for base in (labels_url(organization, project), labels_url(their_org, project)):
        assert client.get(base).status_code == 404
        assert client.put(f"{base}/production", {"version": 2}, format="json").status_code == 404
        assert client.delete(f"{base}/production").status_code == 404
    # Their own prompt of the same name is theirs to change, and ours stays as it was.
    assert client.put(f"{labels_url(their_org, their_project)}/production", {"version": 2},
                      format="json").status_code == 200
    assert _labels(project) == ours
    assert _labels(their_project) == {**theirs, "production": 2}
    assert PromptLabel.objects.for_project(project).filter(label="production").get().version == 1
