"""Console pages for prompts: list, side-by-side diff, comparison, label moves; scoped by membership."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from prompts.models import PromptLabel, PromptLabelEvent
from prompts.payloads import parse_create
from prompts.services import prompt_create_version
from tenancy.models import AuditAction, AuditLogEntry


def make(project, name, text, **extra):
    return prompt_create_version(
        project=project, data=parse_create({"name": name, "prompt": text, **extra}), actor=None
    )


def detail(project, name):
    return f"/admin/prompts/{project.id}/{quote(name)}/"


@pytest.fixture
def prompts(project, other_project):
    make(
        project,
        "support/reply",
        "Hello {{name}}.\nBe kind.",
        labels=["production"],
        config={"model": "gpt-4o"},
    )
    make(project, "support/reply", "Hello {{name}}.\nBe brief <b>now</b>.", config={"model": "gpt-4o-mini"})
    make(other_project, "globex-secret", "their plans", labels=["production"])
    return project


def test_the_list_shows_the_members_prompts_only(client, prompts, organization, member_of):
    client.force_login(member_of(organization, "viewer"))
    response = client.get("/admin/prompts/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "support/reply" in page
    assert "production → v1" in page and "latest → v2" in page
    assert "globex-secret" not in page
    assert "Prompts" in client.get("/admin/").content.decode()


def test_the_list_query_count_does_not_grow_with_prompts(
    client, prompts, organization, member_of, queries_everywhere
):
    for i in range(8):
        make(prompts, f"bulk/{i}", "x", labels=["staging"])
    client.force_login(member_of(organization, "viewer"))
    # session, user, roles, projects, then two per region with prompts (prompts, labels); no
    # per-prompt queries. Counted in every database: the prompts are read from the region's.
    with queries_everywhere() as captured:
        response = client.get("/admin/prompts/")
    assert len(captured) <= 6
    assert response.content.decode().count('class="lg-prompt-row"') == 9


def test_the_detail_diffs_versions_side_by_side_and_escapes_content(client, prompts, organization, member_of):
    client.force_login(member_of(organization, "viewer"))
    response = client.get(detail(prompts, "support/reply"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="diff"' in page
    assert "v1" in page and "v2" in page
    assert "&lt;b&gt;now&lt;/b&gt;" in page
    assert "<b>now</b>" not in page
    assert "gpt-4o-mini" in page  # the config is part of the diff
    assert 'id="lg-comparison"' in page
    assert 'id="lg-label-form"' not in page  # viewers cannot move labels
    same = client.get(detail(prompts, "support/reply"), {"left": "2", "right": "2"}).content.decode()
    assert 'id="lg-version-text"' in same


def test_the_detail_of_another_tenants_prompt_is_404(
    client, prompts, other_project, other_owner, organization
):
    client.force_login(other_owner)
    assert client.get(detail(prompts, "support/reply")).status_code == 404
    # Their own project, a name that exists only in ours: 404 as well.
    assert client.get(detail(other_project, "support/reply")).status_code == 404
    assert client.get(detail(other_project, "globex-secret")).status_code == 200


def test_a_member_moves_a_label_from_the_console_and_it_is_audited(client, prompts, organization, member_of):
    person = member_of(organization, "member")
    client.force_login(person)
    # Moving production is shown back first: nothing moves until it is confirmed.
    move = {"label": "production", "version": "2", "action": "move"}
    response = client.post(detail(prompts, "support/reply"), move)
    page = response.content.decode()
    assert response.status_code == 200 and "Nothing has been done yet" in page
    assert "Move “production” of support/reply to v2?" in page and "It points at v1 now" in page
    assert dict(PromptLabel.objects.for_project(prompts).values_list("label", "version"))["production"] == 1
    response = client.post(detail(prompts, "support/reply"), {**move, "confirm": "yes"})
    assert response.status_code == 302
    labels = dict(PromptLabel.objects.for_project(prompts).values_list("label", "version"))
    assert labels == {"production": 2, "latest": 2}
    event = PromptLabelEvent.objects.for_project(prompts).filter(from_version=1, to_version=2).get()
    assert (event.actor, event.actor_user_id) == (person.email, person.id)
    audit = AuditLogEntry.objects.get(
        organization_id=organization.id, action=AuditAction.PROMPT_LABEL_MOVED, data__from_version=1
    )
    assert (audit.actor_id, audit.data["to_version"]) == (person.id, 2)
    page = client.get(detail(prompts, "support/reply")).content.decode()
    assert person.email in page  # the label history

    remove = {"label": "production", "action": "remove"}
    response = client.post(detail(prompts, "support/reply"), remove)
    assert "Remove “production” from support/reply?" in response.content.decode()
    assert dict(PromptLabel.objects.for_project(prompts).values_list("label", "version"))["production"] == 2
    client.post(detail(prompts, "support/reply"), {**remove, "confirm": "yes"})
    assert dict(PromptLabel.objects.for_project(prompts).values_list("label", "version")) == {"latest": 2}


def test_the_console_refuses_latest_and_viewers(client, prompts, organization, member_of):
    client.force_login(member_of(organization, "member"))
    client.post(detail(prompts, "support/reply"), {"label": "latest", "version": "1", "action": "move"})
    assert dict(PromptLabel.objects.for_project(prompts).values_list("label", "version"))["latest"] == 2
    client.force_login(member_of(organization, "viewer"))
    response = client.post(
        detail(prompts, "support/reply"), {"label": "production", "version": "2", "action": "move"}
    )
    assert response.status_code == 403
    assert dict(PromptLabel.objects.for_project(prompts).values_list("label", "version"))["production"] == 1
