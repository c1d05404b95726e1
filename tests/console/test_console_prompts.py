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
    response = client.get(used.traces_url)
    assert [row.trace.id for row in response.context["rows"]] == ["t-1"]


def _prompted_call(project, trace_id, *, version, at, prompt="support/greeting", answer="hello"):
    from ingest.services import ingest_langfuse_batch
    from tests.console.support import _event, iso

    llm_call(project, trace_id, question="hi", answer=answer, at=at)
    result = ingest_langfuse_batch(project=project, payload={"batch": [_event("generation-create", {
        "id": f"{trace_id}-gen", "traceId": trace_id, "promptName": prompt, "promptVersion": version,
        "startTime": iso(at)})]})
    assert not result.errors, result.errors


def test_a_version_opens_its_generations_newest_first_a_page_at_a_time(
    client, member, project, other_project, support_prompt, monkeypatch
):
    from datetime import UTC, datetime, timedelta

    from traces import selectors as trace_selectors

    now = datetime.now(UTC)
    for i in range(5):
        _prompted_call(project, f"v2-{i}", version=2, at=now - timedelta(hours=i + 1), answer=f"answer {i}")
    _prompted_call(project, "v1-0", version=1, at=now - timedelta(hours=1))
    _prompted_call(project, "v2-old", version=2, at=now - timedelta(days=9))  # outside the 7 days
    make_prompt(other_project, "support/greeting", "Hello {{name}}!")
    _prompted_call(other_project, "v2-other", version=2, at=now - timedelta(minutes=30))
    response = client.get(prompt_url(project, "support/greeting"))
    [v2] = [m for m in response.context["metrics"] if m.version == 2]
    assert "open its generations" in response.content.decode()

    monkeypatch.setattr(trace_selectors, "VERSION_GENERATIONS_PAGE", 2)
    seen, address = [], v2.generations_url
    while address:
        response = client.get(address)
        assert response.status_code == 200
        seen += [row["obs"].trace_id for row in response.context["rows"]]
        address = response.context["next_url"]
    # Exactly the calls the version's metrics counted, newest first, none repeated or skipped.
    assert seen == [f"v2-{i}" for i in range(5)]
    assert len(seen) == v2.calls
    body = response.content.decode()
    assert "answer 4" in body and "Newest" in body

    # Each row opens its trace with that call unfolded and in view.
    [row] = [r for r in response.context["rows"] if r["obs"].trace_id == "v2-4"]
    page = client.get(row["url"].split("#")[0])
    assert page.status_code == 200
    focused = [r for r in page.context["tree"] if r.get("focus")]
    assert [r["obs"].id for r in focused] == ["v2-4-gen"] and focused[0]["open"]
    assert 'id="lg-focus"' in page.content.decode()

    # 30 days takes the older call in.
    monkeypatch.setattr(trace_selectors, "VERSION_GENERATIONS_PAGE", 50)
    response = client.get(v2.generations_url.replace("days=7", "days=30"))
    assert "v2-old" in {row["obs"].trace_id for row in response.context["rows"]}


def test_a_versions_generations_refuse_bad_input_and_other_organizations(
    client, member, project, other_project, far_project, support_prompt
):
    def generations(p, name, query):
        return client.get(f"{prompt_url(p, name).rstrip('/')}/generations?{query}")

    assert generations(project, "support/greeting", "version=2").status_code == 200
    for query in ("version=two", "version=2&days=5", "version=2&days=x", "version=2&before_time=yesterday&before_id=a",
                  "version=2&before_time=2026-01-01T00:00:00&before_id=a", "version=2&before_id=a"):
        assert generations(project, "support/greeting", query).status_code == 400, query
    # A version past any integer column is no version: an empty page, not a database error.
    huge = generations(project, "support/greeting", "version=" + "9" * 30)
    assert huge.status_code == 200 and huge.context["rows"] == []
    assert generations(project, "nothing-here", "version=1").status_code == 404
    for other in (other_project, far_project):
        make_prompt(other, "secret", "classified")
        assert generations(other, "secret", "version=1").status_code == 404
    # Another organization's prompt name is not found in this project either.
    assert generations(project, "secret", "version=1").status_code == 404


def test_a_versions_generations_page_is_a_fixed_number_of_queries(
    client, member, project, support_prompt, django_assert_max_num_queries
):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    for i in range(12):
        _prompted_call(project, f"q-{i}", version=2, at=now - timedelta(minutes=10 + i))
    address = f"{prompt_url(project, 'support/greeting').rstrip('/')}/generations?version=2"
    client.get(address)  # warm the session and project caches
    with django_assert_max_num_queries(12):
        response = client.get(address)
    assert len(response.context["rows"]) == 12


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
    ({"name": "nan-config", "type": "text", "content": "x", "config": '{"t": NaN}'}, "config must be a JSON object"),
    ({"name": "deep-config", "type": "text", "content": "x", "config": "[" * 100_000}, "config must be a JSON object"),
    ({"name": "deep-json", "type": "chat", "content": "[" * 100_000}, "must be JSON"),
    ({"name": "deeper-config", "type": "text", "content": "x", "config": '{"a":' * 101 + "1" + "}" * 101},
     "nests deeper than 100"),
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
