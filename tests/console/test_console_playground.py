"""The playground and replay with the Django client, against the fake OpenAI-compatible server on
loopback: a replay sends the recorded messages, model and parameters (as recorded or changed) and
shows the new answer beside the recorded one; a prompt version runs with its variables; every run
is traced in the reserved `lookglass-playground` environment through the ingest pipeline (priced,
never evaluated, billed as ordinary units); provider errors are clear messages, never a 500; saving
makes a new prompt version and moves `production` only after a confirmation; another organization's
generation, prompt or connection answers 404 (same region and the other one)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from evals import judging
from evals.fakejudge import FakeJudge
from evals.playground import PLAYGROUND_ENVIRONMENT
from pricing.models import ModelPrice
from prompts import selectors as prompt_selectors
from tenancy.models import Role
from tests.console.playground_kit import NEW, RECORDED, connect, make_prompt, record_generation
from traces.models import Observation, Trace


def playground_url(project):
    return reverse("console:playground", args=[project.id])


def run_url(project):
    return reverse("console:playground_run", args=[project.id])


def save_url(project):
    return reverse("console:playground_save", args=[project.id])


@pytest.fixture
def server(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge(reply=NEW) as fake:
        yield fake


def form(connection, *, observation_id="", prompt_name="", prompt_version="", messages=(), model="replay-model",
         **extra):
    data = {"connection": str(connection.id) if connection else "", "model": model, "observation_id": observation_id,
            "prompt_name": prompt_name, "prompt_version": prompt_version,
            "role": [m["role"] for m in messages], "content": [m["content"] for m in messages],
            "temperature": "", "max_tokens": "", "top_p": "", "extra": ""}
    data.update(extra)
    return data


def test_replay_prefills_the_recorded_call_runs_it_and_compares(client, member, project, server):
    ModelPrice.objects.create(project=project, provider="openai", model_name="replay-model",
                              match_pattern="^replay-model$", input_price=1_000_000, output_price=2_000_000)
    connection = connect(project, server)
    generation_id = record_generation(project)

    page = client.get(playground_url(project), {"observation": generation_id})
    assert page.status_code == 200
    state = page.context["state"]
    assert [m["role"] for m in state.messages] == ["system", "user"]
    assert (state.model, state.parameters, state.recorded) == ("replay-model", {"temperature": 0.2, "max_tokens": 300}, RECORDED)
    assert '"seed": 7' in state.extra and "stream" not in state.extra  # streaming is left out, with a note
    assert any("stream" in note for note in state.notes)
    assert page.context["connections"] == [connection]

    # Run it changed: a warmer temperature.
    response = client.post(run_url(project), form(connection, observation_id=generation_id, messages=state.messages,
                                                  temperature="0.9", max_tokens="300", extra=state.extra))
    assert response.status_code == 200, response.context["problems"]
    sent = server.requests[-1]
    assert sent["model"] == "replay-model" and sent["messages"] == state.messages
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.9, 300, 7) and "stream" not in sent
    result = response.context["result"]
    assert result.ok and result.text == NEW
    assert (result.input_tokens, result.output_tokens, result.total_tokens) == (42, 7, 49)
    assert result.cost == Decimal("56")  # 42 × $1 + 7 × $2, from the price catalog through the pipeline
    body = response.content.decode()
    assert RECORDED in body and NEW in body
    # The diff says what went and what came, word by word.
    diff = str(response.context["diff"])
    assert diff == ("The Eiffel <del>tower</del><ins>Tower</ins> <del>stands</del><ins>is</ins> in Paris, "
                    "<del>France</del><ins>on the Champ de Mars</ins>.")

    # The run is a trace of the project, in the reserved environment, linked to what it replayed.
    run = Trace.objects.for_project(project).get(id=result.trace_id)
    assert (run.environment, run.name) == (PLAYGROUND_ENVIRONMENT, "Replay")
    assert run.metadata["replay_of"] == {"trace_id": "t-1", "observation_id": generation_id}
    stored = Observation.objects.for_project(project).get(trace_id=run.id)
    assert (stored.type, stored.model, stored.input_tokens, stored.output_tokens) == ("GENERATION", "replay-model", 42, 7)
    assert stored.model_parameters["temperature"] == 0.9
    assert not judging.environment_evaluable(PLAYGROUND_ENVIRONMENT)


def test_a_prompt_version_runs_with_its_variables(client, member, project, server):
    connection = connect(project, server)
    make_prompt(project, "support/greet", [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "Greet {{name}} from {{ city }}."}],
                config={"model": "prompt-model", "temperature": 0.3, "supported_languages": ["en"]})

    page = client.get(playground_url(project), {"prompt": "support/greet", "version": "1"})
    assert page.status_code == 200
    assert [name for name, _, _ in page.context["variables"]] == ["name", "city"]
    assert (page.context["state"].model, page.context["state"].parameters) == ("prompt-model", {"temperature": 0.3})
    messages = page.context["state"].messages

    # A variable left empty: nothing is sent.
    missing = client.post(run_url(project), form(connection, prompt_name="support/greet", prompt_version="1",
                                                 messages=messages, model="prompt-model", **{"var:name": "Ada"}))
    assert missing.status_code == 400 and "Fill in the variable city" in missing.content.decode()
    assert server.requests == []

    response = client.post(run_url(project), form(connection, prompt_name="support/greet", prompt_version="1",
                                                  messages=messages, model="prompt-model",
                                                  **{"var:name": "Ada", "var:city": "Lyon"}))
    assert response.status_code == 200
    assert server.requests[-1]["messages"][1] == {"role": "user", "content": "Greet Ada from Lyon."}
    assert response.context["result"].text == NEW
    stored = Observation.objects.for_project(project).get(environment=PLAYGROUND_ENVIRONMENT)
    assert (stored.prompt_name, stored.prompt_version) == ("support/greet", 1)


@pytest.mark.parametrize("mode,says", [
    ("auth", "refused the key"),
    ("rate_limited", "rate limited"),
    ("billing", "no credit"),
    ("server_error", "the provider failed"),
    ("garbage", "not a chat completion"),
])
def test_provider_errors_are_clear_messages(client, member, project, settings, mode, says):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge(mode=mode) as fake:
        connection = connect(project, fake)
        response = client.post(run_url(project), form(connection, messages=[{"role": "user", "content": "hi"}]))
    assert response.status_code == 200
    assert not response.context["result"].ok
    error = response.context["result"].error
    assert says in error and "sk-test" not in error
    assert "The call failed" in response.content.decode()
    # The failed attempt is traced too, marked as an error.
    failed = Observation.objects.for_project(project).get(environment=PLAYGROUND_ENVIRONMENT)
    assert failed.level == "ERROR" and says in failed.status_message


def test_a_timeout_is_a_clear_message(client, member, project, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge(latency=2.0, reply=NEW) as fake:
        connection = connect(project, fake, timeout=0.3)
        response = client.post(run_url(project), form(connection, messages=[{"role": "user", "content": "hi"}]))
    assert response.status_code == 200
    assert "did not answer in time" in response.context["result"].error


def test_a_private_address_is_refused_before_any_call(client, member, project, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge(reply=NEW) as fake:
        connection = connect(project, fake)
        settings.OUTBOUND_ALLOW_PRIVATE = False
        response = client.post(run_url(project), form(connection, messages=[{"role": "user", "content": "hi"}]))
        assert fake.requests == []
    assert response.status_code == 200
    assert response.context["result"].error_kind == "refused_url"
    assert not Trace.objects.for_project(project).filter(environment=PLAYGROUND_ENVIRONMENT).exists()


@pytest.mark.parametrize("fields,says", [
    ({"temperature": "7"}, "Temperature must be between 0 and 2"),
    ({"max_tokens": "many"}, "Max tokens must be a whole number"),
    ({"extra": "[1, 2]"}, "Other parameters must be a JSON object"),
    ({"extra": "[" * 5000}, "Other parameters must be a JSON object"),  # was the stdlib's RecursionError, a 500
    ({"extra": '{"stream": true}'}, "stream cannot be set here"),
    ({"extra": '{"temperature": 1}'}, "in its own field"),
    ({"role": ["wizard"], "content": ["hi"]}, "Unknown role"),
    ({"role": [], "content": []}, "Write at least one message"),
    ({"model": ""}, "Choose a model"),
])
def test_bad_input_is_a_400_with_the_reason_and_sends_nothing(client, member, project, server, fields, says):
    connection = connect(project, server)
    data = form(connection, messages=[{"role": "user", "content": "hi"}])
    data.update(fields)
    response = client.post(run_url(project), data)
    if fields.get("model") == "":
        # An empty model falls back to the connection's default model: nothing to refuse.
        assert response.status_code == 200 and server.requests[-1]["model"] == "default-model"
        return
    assert response.status_code == 400
    assert says in response.content.decode()
    assert server.requests == []


def test_without_a_connection_the_page_says_how_to_add_one(client, member, project):
    page = client.get(playground_url(project))
    assert page.status_code == 200 and "no LLM connection yet" in page.content.decode()
    response = client.post(run_url(project), form(None, messages=[{"role": "user", "content": "hi"}]))
    assert response.status_code == 400 and "no LLM connection yet" in response.content.decode()


def test_save_as_a_new_version_of_the_linked_prompt_and_production_only_after_confirming(client, member, project, server):
    connection = connect(project, server)
    make_prompt(project, "qa", [{"role": "user", "content": "Where is {{place}}?"}], labels=["production"])
    generation_id = record_generation(project, prompt=("qa", 1))
    state = client.get(playground_url(project), {"observation": generation_id}).context["state"]
    edited = [{"role": "system", "content": "Answer in one sentence, citing the district."},
              {"role": "user", "content": "Where is {{place}}?"}]
    data = form(connection, observation_id=generation_id, prompt_name=state.prompt_name, prompt_version="1",
                messages=edited, temperature="0.5", save_name="qa", commit_message="cite the district")

    saved = client.post(save_url(project), data)
    assert saved.status_code == 302
    prompt = prompt_selectors.prompt_by_name(project=project, name="qa")
    version = prompt_selectors.prompt_version_for(project=project, name="qa", version=2)
    assert version.messages[0]["content"].startswith("Answer in one sentence")
    assert version.messages[1]["content"] == "Where is {{place}}?"  # the template, not the values
    assert version.config == {"model": "replay-model", "temperature": 0.5}
    assert version.commit_message == "cite the district"
    assert dict(prompt_selectors.prompt_labels(project=project, prompt=prompt))["production"] == 1

    # Asking for production: a confirmation first, nothing saved yet.
    ask = client.post(save_url(project), {**data, "production": "yes"})
    assert ask.status_code == 200 and ask.context["confirm"] == {"current": 1, "next": 3, "name": "qa"}
    assert b'id="lg-confirm-save"' in ask.content
    assert prompt_selectors.prompt_version_for(project=project, name="qa", version=3) is None
    confirmed = client.post(save_url(project), {**data, "production": "yes", "confirm": "yes"})
    assert confirmed.status_code == 302
    assert dict(prompt_selectors.prompt_labels(project=project, prompt=prompt))["production"] == 3


def test_save_as_a_new_prompt_and_a_text_prompt_takes_one_message(client, member, project, server):
    connection = connect(project, server)
    make_prompt(project, "plain", "Summarise {{text}}")
    two = [{"role": "system", "content": "Be short."}, {"role": "user", "content": "Summarise {{text}}"}]
    refused = client.post(save_url(project), form(connection, messages=two, save_name="plain"))
    assert refused.status_code == 400 and "text prompt" in refused.content.decode()
    assert prompt_selectors.prompt_by_name(project=project, name="plain").latest_version == 1

    one = client.post(save_url(project), form(connection, messages=two[1:], save_name="plain"))
    assert one.status_code == 302
    assert prompt_selectors.prompt_version_for(project=project, name="plain", version=2).text == "Summarise {{text}}"

    new = client.post(save_url(project), form(connection, messages=two, save_name="fresh/summary"))
    assert new.status_code == 302
    created = prompt_selectors.prompt_by_name(project=project, name="fresh/summary")
    assert (created.type, created.latest_version) == ("chat", 1)


def test_viewers_look_but_do_not_run_or_save(client, organization, member_of, project, server):
    connection = connect(project, server)
    client.force_login(member_of(organization, Role.VIEWER))
    assert client.get(playground_url(project)).status_code == 200
    data = form(connection, messages=[{"role": "user", "content": "hi"}], save_name="x")
    assert client.post(run_url(project), data).status_code == 403
    assert client.post(save_url(project), data).status_code == 403
    assert server.requests == []


def test_every_action_needs_the_csrf_token(organization, member_of, project, server):
    connection = connect(project, server)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member_of(organization, Role.MEMBER))
    data = form(connection, messages=[{"role": "user", "content": "hi"}], save_name="x")
    assert strict.post(run_url(project), data).status_code == 403
    assert strict.post(save_url(project), data).status_code == 403
    assert strict.get(run_url(project)).status_code == 405
    assert server.requests == []


@pytest.mark.parametrize("stranger", ["other", "far"])
def test_another_organizations_generation_prompt_and_connection_answer_404(
    client, member, project, server, request, stranger,
):
    their_project = request.getfixturevalue(f"{stranger}_project")
    their_generation = record_generation(their_project, trace_id="their-trace")
    make_prompt(their_project, "their/prompt", "secret {{x}}")
    their_connection = connect(their_project, server)
    mine = connect(project, server)
    hi = [{"role": "user", "content": "hi"}]

    assert client.get(playground_url(project), {"observation": their_generation}).status_code == 404
    assert client.get(playground_url(project), {"prompt": "their/prompt", "version": "1"}).status_code == 404
    assert client.get(playground_url(their_project)).status_code == 404
    assert client.post(run_url(project), form(their_connection, messages=hi)).status_code == 404
    assert client.post(run_url(project), form(mine, observation_id=their_generation, messages=hi)).status_code == 404
    assert client.post(run_url(their_project), form(their_connection, messages=hi)).status_code == 404
    assert client.post(save_url(project), form(mine, observation_id=their_generation, messages=hi,
                                               save_name="x")).status_code == 404
    assert client.post(save_url(their_project), form(their_connection, messages=hi, save_name="x")).status_code == 404
    assert server.requests == []
    assert prompt_selectors.prompt_by_name(project=their_project, name="x") is None


def test_playground_runs_are_billed_as_units_not_judge_calls(client, member, project, server):
    from billing.metering import measure_hour
    from billing.models import Meter

    connection = connect(project, server)
    response = client.post(run_url(project), form(connection, messages=[{"role": "user", "content": "hi"}]))
    assert response.context["result"].recorded
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    totals, _ = measure_hour(region=project.region, hour=hour)
    key = str(project.id)
    assert totals[(key, str(Meter.TRACES))] == 1 and totals[(key, str(Meter.OBSERVATIONS))] == 1
    assert (key, str(Meter.JUDGE_CALLS)) not in totals


def test_an_anthropic_connection_gets_the_system_prompt_apart(client, member, project, settings):
    from evals import eval_services

    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge(reply=NEW) as fake:
        connection, _ = eval_services.connection_upsert(
            project=project, provider="anthropic", adapter="anthropic", secret_key="sk-ant-test-1234567890",
            base_url=fake.url.removesuffix("/v1"), default_model="claude-test", max_retries=0, timeout_seconds=5,
        )
        response = client.post(run_url(project), form(connection, model="claude-test", temperature="0.4", messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]))
    assert response.status_code == 200 and response.context["result"].text == NEW
    sent = fake.requests[-1]
    assert sent["system"] == "Be brief." and sent["messages"] == [{"role": "user", "content": "hi"}]
    assert (sent["temperature"], sent["max_tokens"]) == (0.4, 1024)  # max_tokens is required by the Messages API


def test_recorded_inputs_become_messages_with_notes_on_what_is_left_out():
    from console.playground_views import recorded_answer, recorded_messages

    messages, notes = recorded_messages([
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is on this picture?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ])
    assert messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is on this picture?"}]
    assert any("2 messages with tool calls" in n for n in notes) and any("Non-text parts" in n for n in notes)
    assert recorded_messages("just a prompt") == ([{"role": "user", "content": "just a prompt"}], [])
    assert recorded_messages({"messages": [{"role": "user", "content": "x"}]})[0] == [{"role": "user", "content": "x"}]
    assert recorded_messages({"query": "x"})[0][0]["content"].startswith("{")
    assert recorded_answer({"choices": [{"message": {"role": "assistant", "content": "from a completion"}}]}) == "from a completion"
    assert recorded_answer({"role": "assistant", "content": None, "refusal": "I can't."}) == "I can't."
    assert recorded_answer("plain") == "plain" and recorded_answer(None) is None


def test_over_the_hard_quota_the_answer_shows_but_is_not_recorded(client, member, organization, project, server):
    from billing import limits
    from tests.billing.support import clear_rejection_counters, make_plan, shipped_plans, subscribe

    limits.invalidate()
    shipped_plans()
    clear_rejection_counters()
    subscribe(organization, make_plan(included_units=2))  # one run: a trace and a generation
    connection = connect(project, server)
    hi = form(connection, messages=[{"role": "user", "content": "hi"}])
    try:
        first = client.post(run_url(project), hi).context["result"]
        second = client.post(run_url(project), hi)
    finally:
        limits.invalidate()
    assert first.recorded
    result = second.context["result"]
    assert result.ok and result.text == NEW and not result.recorded
    assert "not recorded" in result.note and "quota" in result.note
    assert "not recorded" in second.content.decode()
    assert Trace.objects.for_project(project).filter(environment=PLAYGROUND_ENVIRONMENT).count() == 1


def test_a_chat_placeholder_takes_a_json_list_of_messages(client, member, project, server):
    connection = connect(project, server)
    make_prompt(project, "chat/with-history", [{"role": "system", "content": "Be kind."},
                                               {"type": "placeholder", "name": "history"},
                                               {"role": "user", "content": "{{question}}"}])
    page = client.get(playground_url(project), {"prompt": "chat/with-history"})  # no version: the latest
    assert page.context["variables"] == [("question", "", False), ("history", "", True)]
    messages = page.context["state"].messages
    assert messages[1] == {"role": "placeholder", "content": "history"}
    fields = {"var:question": "And now?"}

    for not_json in ("not json", "[" * 5000):
        bad = client.post(run_url(project), form(connection, messages=messages, **fields, **{"var:history": not_json}))
        assert bad.status_code == 400 and "takes a JSON list of messages" in bad.content.decode()
    history = '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]'
    response = client.post(run_url(project), form(connection, messages=messages, **fields, **{"var:history": history}))
    assert response.status_code == 200
    assert server.requests[-1]["messages"] == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "And now?"}]

    # Saved back, the placeholder stays a placeholder.
    saved = client.post(save_url(project), form(connection, messages=messages, save_name="chat/with-history"))
    assert saved.status_code == 302
    version = prompt_selectors.prompt_version_for(project=project, name="chat/with-history", version=2)
    assert version.messages[1] == {"type": "placeholder", "name": "history"}


def test_the_console_navigation_has_the_playground(client, organization, member_of, project):
    """Every console page links the playground from its navigation, next to Prompts (viewers too:
    they may look), and the playground page marks it as the current section."""
    client.force_login(member_of(organization, Role.VIEWER))
    link = f'href="{playground_url(project)}"'
    home = client.get(reverse("console:home", args=[project.id])).content.decode()
    nav = home.split('class="lg-nav"', 1)[1].split("</nav>", 1)[0]
    assert link in nav and ">Playground</a>" in nav
    assert nav.index(">Prompts<") < nav.index(">Playground<")
    page = client.get(playground_url(project)).content.decode()
    nav = page.split('class="lg-nav"', 1)[1].split("</nav>", 1)[0]
    assert f'{link} class="active" aria-current="page">Playground</a>' in nav
