"""The console's prompt pages: folders, versions and their diff, new versions and forks, label moves
(production only after a confirmation), and another organization's prompt answering 404."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.urls import reverse

from prompts import selectors, services
from prompts.payloads import parse_create
from tenancy.models import Role
from tests.console.support import llm_call


def prompts_url(project):
    return reverse("console:prompts", args=[project.id])


def prompt_url(project, name):
    return f"{prompts_url(project)}{quote(name, safe='')}/"


def make_prompt(project, name, text, labels=(), actor=None):
    return services.prompt_create_version(
        project=project, data=parse_create({"name": name, "prompt": text, "labels": list(labels)}), actor=actor
    )


@pytest.fixture
def support_prompt(project):
    make_prompt(project, "support/greeting", "Hello {{name}}!", labels=["production"])
    make_prompt(project, "support/greeting", "Hi {{name}}, how can I help?")
    make_prompt(project, "summary", "Summarise: {{text}}")


def labels(project, name):
    prompt = selectors.prompt_by_name(project=project, name=name)
    return dict(selectors.prompt_labels(project=project, prompt=prompt))


def test_prompts_are_grouped_by_folder(client, member, project, support_prompt):
    response = client.get(prompts_url(project))
    folders = dict(response.context["folders"])
    assert [r["short_name"] for r in folders["support"]] == ["greeting"]
    assert [r["short_name"] for r in folders[""]] == ["summary"]


def test_a_prompt_shows_its_versions_side_by_side(client, member, project, support_prompt):
    response = client.get(prompt_url(project, "support/greeting"))
    assert response.status_code == 200
    body = response.content.decode()
    # HtmlDiff writes spaces as &nbsp;.
    assert "help?" in body and "Hello" in body and 'class="diff"' in body


def test_moving_production_asks_first(client, member, project, support_prompt):
    action = f"{prompt_url(project, 'support/greeting')}labels"
    response = client.post(action, {"label": "production", "version": "2", "action": "move"})
    assert response.status_code == 200 and b"lg-confirm" in response.content
    assert labels(project, "support/greeting")["production"] == 1
    response = client.post(action, {"label": "production", "version": "2", "action": "move", "confirm": "yes"})
    assert response.status_code == 302
    assert labels(project, "support/greeting")["production"] == 2
    # Other labels move at once.
    client.post(action, {"label": "staging", "version": "1", "action": "move"})
    assert labels(project, "support/greeting")["staging"] == 1


def test_a_new_version_and_a_fork(client, member, project, support_prompt):
    action = f"{prompt_url(project, 'support/greeting')}versions"
    response = client.post(action, {"content": "Hey {{name}}", "config": json.dumps({"temperature": 0.2}),
                                    "commit_message": "shorter"})
    assert response.status_code == 302
    prompt = selectors.prompt_by_name(project=project, name="support/greeting")
    assert prompt.latest_version == 3
    assert labels(project, "support/greeting")["production"] == 1  # saving never moves production
    client.post(action, {"content": "Yo {{name}}", "config": "{}", "fork_name": "support/casual"})
    assert selectors.prompt_by_name(project=project, name="support/casual").latest_version == 1
    response = client.post(action, {"content": "x", "config": "not json"}, follow=True)
    assert "Not saved" in response.content.decode()


def test_a_version_links_to_its_traces(client, member, project, support_prompt):
    from ingest.services import ingest_langfuse_batch
    from tests.console.support import _event

    llm_call(project, "t-1", question="hi", answer="hello")
    ingest_langfuse_batch(project=project, payload={"batch": [_event("generation-create", {
        "id": "t-1-gen", "traceId": "t-1", "promptName": "support/greeting", "promptVersion": 2})]})
    response = client.get(prompt_url(project, "support/greeting"))
    [used] = [m for m in response.context["metrics"] if m.calls]
    assert used.version == 2
    response = client.get(used.generations_url)
    assert [row.trace.id for row in response.context["rows"]] == ["t-1"]


def test_viewers_cannot_write_and_other_organizations_get_404(
    client, organization, member_of, project, other_project, far_project, support_prompt
):
    make_prompt(other_project, "secret", "classified", labels=["production"])
    make_prompt(far_project, "secret", "classified", labels=["production"])
    client.force_login(member_of(organization, Role.VIEWER))
    assert client.get(prompt_url(project, "summary")).status_code == 200
    assert client.post(f"{prompt_url(project, 'summary')}versions", {"content": "x"}).status_code == 403
    for other in (other_project, far_project):
        assert client.get(prompt_url(other, "secret")).status_code == 404
        assert client.post(f"{prompt_url(other, 'secret')}labels",
                           {"label": "production", "action": "remove", "confirm": "yes"}).status_code == 404
    assert labels(other_project, "secret") == {"latest": 1, "production": 1}


def create_url(project):
    return reverse("console:prompt_create", args=[project.id])


def test_a_new_prompt_is_created_from_the_console(client, member, project, support_prompt):
    page = client.get(prompts_url(project)).content.decode()
    assert 'id="lg-prompt-form"' in page
    messages = [{"role": "system", "content": "You are {{tone}}."}, {"role": "user", "content": "{{question}}"}]
    response = client.post(create_url(project), {
        "name": "support/triage", "type": "chat", "content": json.dumps(messages),
        "config": '{"model": "gpt-4o-mini"}', "commit_message": "first cut"})
    assert response.status_code == 302 and response["Location"] == prompt_url(project, "support/triage")
    version = selectors.prompt_version_for(project=project, name="support/triage", version=1)
    assert [(m["role"], m["content"]) for m in version.messages] == [(m["role"], m["content"]) for m in messages]
    assert version.config == {"model": "gpt-4o-mini"}
    assert version.commit_message == "first cut"
    assert labels(project, "support/triage") == {"latest": 1}  # never production by itself
    response = client.post(create_url(project), {"name": "notes", "type": "text", "content": "Note: {{x}}",
                                                 "config": ""})
    assert response.status_code == 302
    assert selectors.prompt_version_for(project=project, name="notes", version=1).text == "Note: {{x}}"


@pytest.mark.parametrize(("fields", "says"), [
    ({"name": "summary", "type": "text", "content": "again"}, "exists already"),
    ({"name": "", "type": "text", "content": "x"}, "name"),
    ({"name": "bad-json", "type": "chat", "content": "[{"}, "must be JSON"),
    ({"name": "bad-config", "type": "text", "content": "x", "config": "[1"}, "config must be a JSON object"),
    ({"name": "bad-type", "type": "image", "content": "x"}, "chat or text"),
])
def test_a_new_prompt_with_bad_input_is_a_400_that_keeps_the_form(client, member, project, support_prompt, fields,
                                                                   says):
    response = client.post(create_url(project), fields)
    assert response.status_code == 400
    body = response.content.decode()
    assert says in body and 'id="lg-new-error"' in body
    assert selectors.prompt_version_for(project=project, name="summary", version=2) is None
    assert selectors.prompt_by_name(project=project, name=fields["name"] or "x") is None or fields["name"] == "summary"


def test_viewers_cannot_create_a_prompt_and_another_organizations_project_is_404(
    client, organization, member_of, project, other_project, far_project
):
    client.force_login(member_of(organization, Role.VIEWER))
    assert 'id="lg-prompt-form"' not in client.get(prompts_url(project)).content.decode()
    assert client.post(create_url(project), {"name": "x", "type": "text", "content": "x"}).status_code == 403
    client.force_login(member_of(organization, Role.MEMBER))
    for other in (other_project, far_project):
        assert client.post(create_url(other), {"name": "x", "type": "text", "content": "x"}).status_code == 404
        assert selectors.prompt_by_name(project=other, name="x") is None
    assert selectors.prompt_by_name(project=project, name="x") is None


def test_a_chat_versions_edit_form_shows_roles_and_contents_and_saves_them_back(client, member, project):
    """The edit form's JSON is what a person writes ({role, content}; a placeholder keeps its type),
    not the stored `"type": "chatmessage"` of every message; saving it as is gives the same messages."""
    services.prompt_create_version(project=project, data=parse_create({
        "name": "chatty", "type": "chat", "prompt": [
            {"role": "system", "content": "Be {{tone}}."}, {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{q}}"}]}), actor=None)
    response = client.get(prompt_url(project, "chatty"))
    edited = json.loads(response.context["edit_content"])
    assert edited == [{"role": "system", "content": "Be {{tone}}."}, {"type": "placeholder", "name": "history"},
                      {"role": "user", "content": "{{q}}"}]
    client.post(f"{prompt_url(project, 'chatty')}versions", {"content": response.context["edit_content"],
                                                             "config": "{}"})
    first = selectors.prompt_version_for(project=project, name="chatty", version=1)
    second = selectors.prompt_version_for(project=project, name="chatty", version=2)
    assert second.messages == first.messages
