"""The console's pages, server-side: access, the explorer's search and filters, the trace page and
its writes, sessions and users. Every page: another organization's object answers 404."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.urls import resolve, reverse

from console import views as console_views
from console.models import SavedView
from scores.models import Score
from scores.services import score_config_create
from tenancy.models import Role
from tests.console.support import llm_call, thumbs, url


def trace_url(project, trace_id):
    return f"{url('traces', project)}{quote(trace_id, safe='')}/"


@pytest.fixture
def calls(project):
    llm_call(project, "t-paris", question="What is the capital of France?", answer="Paris, of course.",
             user_id="Alice@example.com", session_id="sess-1", tags=["Prod-EU"], metadata={"feature": "geo"})
    llm_call(project, "t-rome", question="And of Italy?", answer="It is Rome.", user_id="alice@example.com",
             session_id="sess-1", model="claude-3-haiku", status="error", cost=0.01, seconds=9,
             answer_on_trace=False)
    llm_call(project, "t-berlin", question="Germany?", answer="Berlin.", user_id="bob", session_id="sess-2")
    thumbs(project, "t-rome", up=False)


# --- access ----------------------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_sign_in(client, project):
    response = client.get(url("home", project))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_console_opens_on_a_visible_project(client, member, project):
    response = client.get(reverse("console:index"))
    assert response.status_code == 302 and response["Location"] == url("home", project)


@pytest.mark.parametrize("page", ["home", "traces", "sessions", "users", "datasets"])
def test_another_organizations_project_answers_404(client, member, other_project, far_project, page):
    assert client.get(url(page, other_project)).status_code == 404
    assert client.get(url(page, far_project)).status_code == 404


def test_another_organizations_trace_session_and_user_answer_404(client, member, other_project, far_project):
    for project in (other_project, far_project):
        llm_call(project, "secret", question="q", answer="classified", user_id="u-x", session_id="s-x")
        assert client.get(trace_url(project, "secret")).status_code == 404
        assert client.get(f"{url('sessions', project)}s-x/").status_code == 404
        assert client.get(f"{url('users', project)}u-x/").status_code == 404
        response = client.post(f"{trace_url(project, 'secret')}score", {"name": "x", "value": "1"})
        assert response.status_code == 404
        assert client.get("/trace/secret").status_code == 404
    assert not Score.objects.for_project(other_project).filter(name="x").exists()


# --- home ------------------------------------------------------------------------------------------


def test_home_shows_the_last_day_from_the_rollups_and_a_quickstart(client, member, project, api_key, calls):
    response = client.get(url("home", project))
    assert response.status_code == 200
    day = response.context["day"]["total"]
    assert day["calls"] == 3 and day["errors"] == 1
    assert str(day["spend"]) .startswith("0.012")
    assert response.context["thumbs"]["down"] == 1
    body = response.content.decode()
    assert api_key.public in body and api_key.secret not in body
    assert "/api/public/otel" in body


# --- explorer --------------------------------------------------------------------------------------


def found(response) -> list[str]:
    assert response.status_code == 200, response.content[:2000]
    return [row.trace.id for row in response.context["rows"]]


def test_full_text_search_finds_a_word_of_the_answer_on_the_trace_or_its_generation(client, member, project, calls):
    assert found(client.get(url("traces", project), {"q": "paris"})) == ["t-paris"]
    # The answer of t-rome is only on its generation.
    assert found(client.get(url("traces", project), {"q": "Rome"})) == ["t-rome"]
    assert found(client.get(url("traces", project), {"q": "capital -italy"})) == ["t-paris"]
    assert found(client.get(url("traces", project), {"q": "nowhere"})) == []


def test_filters_forgive_case_and_take_prefixes(client, member, project, calls):
    get = lambda **q: sorted(found(client.get(url("traces", project), q)))  # noqa: E731
    assert get(user="ALICE") == ["t-paris", "t-rome"]
    assert get(session="SESS-2") == ["t-berlin"]
    assert get(model="Claude") == ["t-rome"]
    assert get(tag="prod") == ["t-paris"]
    assert get(meta="feature=GE") == ["t-paris"]
    assert get(meta="feature") == ["t-paris"]
    assert get(status="error") == ["t-rome"]
    assert get(thumbs_down="on") == ["t-rome"]
    assert get(score="THUMBS", score_max="0") == ["t-rome"]
    assert get(cost_min="0.005") == ["t-rome"]
    assert get(cost_max="0.005") == ["t-berlin", "t-paris"]
    assert get(latency_min="5000") == ["t-rome"]
    assert get(latency_max="5000") == ["t-berlin", "t-paris"]


def test_metadata_score_and_prompt_filters_forgive_case_and_take_prefixes_too(client, member, project, calls):
    """The metadata key (not only its value), the score name and the prompt name forgive case and take
    a beginning like the other filters; a metadata that is not an object has no keys (and no error)."""
    from ingest.services import ingest_langfuse_batch
    from tests.console.support import _event
    from traces.models import Trace

    llm_call(project, "t-odd", question="q", answer="a", metadata={"Feature_Flag": "Beta"})
    llm_call(project, "t-list", question="q", answer="a")
    # The ingest wraps a non-object metadata ({"metadata": …}); the column still allows one.
    Trace.objects.for_project(project).filter(id="t-list").update(metadata=["not", "an", "object"])
    ingest_langfuse_batch(project=project, payload={"batch": [_event("generation-create", {
        "id": "t-berlin-gen", "traceId": "t-berlin", "promptName": "support/Greeting", "promptVersion": 3})]})
    get = lambda **q: sorted(found(client.get(url("traces", project), q)))  # noqa: E731
    assert get(meta="FEATURE") == ["t-odd", "t-paris"]
    assert get(meta="feat=GE") == ["t-paris"]
    assert get(meta="feature_f=be") == ["t-odd"]
    assert get(meta="nothing") == []
    assert get(meta="100%_") == []  # LIKE wildcards are literal
    assert get(score="thu") == ["t-rome"]
    assert get(prompt="SUPPORT/g") == ["t-berlin"]
    # With a version (the prompt page's link), the name is whole.
    assert get(prompt="support/Greeting", prompt_version="3") == ["t-berlin"]
    assert get(prompt="support/G", prompt_version="3") == []


def test_the_explorer_counts_sorts_and_rejects_bad_input(client, member, project, calls):
    response = client.get(url("traces", project), {"order": "-cost"})
    assert found(response)[0] == "t-rome" and response.context["total"] == 3
    assert found(client.get(url("traces", project), {"order": "user"}))[-1] == "t-berlin"
    assert client.get(url("traces", project), {"cost_min": "abc"}).status_code == 400
    assert client.get(url("traces", project), {"order": "drop table"}).status_code == 400


def test_the_column_picker_shows_the_chosen_columns(client, member, project, calls):
    response = client.get(url("traces", project), {"cols": ["session", "cost"]})
    assert response.context["columns"] == ["session", "cost"]
    assert b"sess-2" in response.content


def test_export_streams_the_current_result(client, member, project, calls):
    response = client.get(url("traces_export", project), {"user": "alice", "format": "csv"})
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["id"] for r in rows) == ["t-paris", "t-rome"]
    response = client.get(url("traces_export", project), {"q": "berlin", "format": "jsonl"})
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["id"] for line in lines] == ["t-berlin"] and lines[0]["output_preview"] == "Berlin."


def test_export_defuses_spreadsheet_formulas(client, member, project):
    llm_call(project, "t-formula", question="=HYPERLINK(\"http://evil\")", answer="fine")
    response = client.get(url("traces_export", project), {"format": "csv"})
    [row] = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert row["input_preview"].startswith("'=HYPERLINK")


def test_saved_views_are_kept_per_project(client, member, project, other_project, calls):
    response = client.post(url("saved_view_save", project), {"view_name": "errors", "query": "status=error"})
    assert response.status_code == 302
    view = SavedView.objects.get(project=project)
    assert view.query == "status=error"
    assert b"errors" in client.get(url("traces", project)).content
    assert client.post(url("saved_view_save", other_project), {"view_name": "x", "query": ""}).status_code == 404
    assert client.post(url("saved_view_delete", other_project, view.id)).status_code == 404
    assert client.post(url("saved_view_delete", project, view.id)).status_code == 302
    assert not SavedView.objects.exists()


def test_viewers_read_but_do_not_write(client, organization, member_of, project, calls):
    client.force_login(member_of(organization, Role.VIEWER))
    assert client.get(trace_url(project, "t-paris")).status_code == 200
    assert client.post(f"{trace_url(project, 't-paris')}score", {"name": "x", "value": "1"}).status_code == 403
    assert client.post(url("saved_view_save", project), {"view_name": "v"}).status_code == 403


# --- the trace page --------------------------------------------------------------------------------


def test_the_trace_page_links_session_user_and_shows_scores(client, member, project, calls):
    response = client.get(trace_url(project, "t-rome"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"{url('sessions', project)}sess-1/" in body
    assert f"{url('users', project)}alice%40example.com/" in body
    assert "thumbs" in body and "upstream timed out" in body
    assert body.count("upstream timed out") == 1


def test_a_score_from_a_config_goes_through_the_scores_write_path(client, member, project, calls):
    config = score_config_create(project=project, actor=member, name="correct", data_type="NUMERIC", min_value=0,
                                 max_value=1)
    response = client.post(f"{trace_url(project, 't-paris')}score",
                           {"config": str(config.id), "value": "0.5", "comment": "half right"})
    assert response.status_code == 302
    score = Score.objects.for_project(project).get(name="correct")
    assert (score.value, score.comment, score.source, score.trace_id) == (0.5, "half right", "ANNOTATION", "t-paris")
    # Out of the config's range: refused with a message, nothing stored.
    response = client.post(f"{trace_url(project, 't-paris')}score", {"config": str(config.id), "value": "7"},
                           follow=True)
    assert "Not saved" in response.content.decode(), [str(m) for m in response.context["messages"]]
    assert Score.objects.for_project(project).filter(name="correct").count() == 1


def test_a_signaling_nan_as_the_value_is_refused_with_a_message_not_a_500(client, member, project, calls):
    """A value of "sNaN" parses as a Decimal that no float can hold: the form's number conversion raised
    and the annotation answered 500. It goes to the scores API as the text it is, which refuses it."""
    config = score_config_create(project=project, actor=member, name="correct", data_type="NUMERIC", min_value=0,
                                 max_value=1)
    for value in ("sNaN", "-snan", "sNaN12"):
        response = client.post(f"{trace_url(project, 't-paris')}score", {"config": str(config.id), "value": value},
                               follow=True)
        assert response.status_code == 200
        assert "Not saved" in response.content.decode(), [str(m) for m in response.context["messages"]]
    assert not Score.objects.for_project(project).filter(name="correct").exists()


def test_any_observation_of_the_trace_can_be_scored(client, member, project, calls):
    """A span is an observation too: the form offers every observation of the tree, not only
    generations and tools."""
    from ingest.services import ingest_langfuse_batch
    from tests.console.support import _event

    ingest_langfuse_batch(project=project, payload={"batch": [_event("span-create", {
        "id": "t-paris-retrieve", "traceId": "t-paris", "name": "retrieve"})]})
    body = client.get(trace_url(project, "t-paris")).content.decode()
    form = body.split('id="lg-score-form"', 1)[1].split("</form>", 1)[0]
    assert '<option value="t-paris-retrieve">span retrieve</option>' in form
    response = client.post(f"{trace_url(project, 't-paris')}score",
                           {"name": "relevant", "value": "1", "observation_id": "t-paris-retrieve"})
    assert response.status_code == 302
    score = Score.objects.for_project(project).get(name="relevant")
    assert (score.trace_id, score.observation_id, score.value) == ("t-paris", "t-paris-retrieve", 1)


def test_a_comment_alone_is_stored(client, member, project, calls):
    client.post(f"{trace_url(project, 't-paris')}score", {"comment": "check the tone"})
    score = Score.objects.for_project(project).get(name="comment")
    assert score.comment == "check the tone"


def test_sdk_links_land_on_the_console(client, member, project, calls):
    response = client.get(f"/project/{project.id}/traces/t-paris")
    assert response.status_code == 302 and response["Location"] == trace_url(project, "t-paris")
    response = client.get("/trace/t-paris")
    assert response["Location"] == trace_url(project, "t-paris")


# --- sessions and users ----------------------------------------------------------------------------


def test_sessions_list_and_transcript(client, member, project, calls):
    response = client.get(url("sessions", project))
    totals = {t.key: t for t, _ in response.context["rows"]}
    assert totals["sess-1"].traces == 2 and totals["sess-1"].thumbs_down == 1 and totals["sess-1"].errors == 1
    response = client.get(f"{url('sessions', project)}sess-1/")
    body = response.content.decode()
    assert body.index("capital of France") < body.index("And of Italy")


def test_users_list_and_page(client, member, project, calls):
    response = client.get(url("users", project))
    assert {t.key for t, _ in response.context["rows"]} == {"Alice@example.com", "alice@example.com", "bob"}
    response = client.get(f"{url('users', project)}bob/")
    assert [r.trace.id for r in response.context["rows"]] == ["t-berlin"]
    assert response.context["totals"].traces == 1


def test_a_users_cost_keeps_the_digits_of_small_calls(client, member, project):
    """The user page shows cost to the micro-dollar like the users list, not $0.0000."""
    llm_call(project, "t-cheap", question="q", answer="a", user_id="carol", cost=0.000029)
    body = client.get(f"{url('users', project)}carol/").content.decode()
    assert 'id="lg-user-cost">$0.000029<' in body


def test_a_users_page_links_to_that_users_traces_only(client, member, project, other_project):
    """Filters take a beginning (`bob` finds `bobby`), so the user page's link asks for the exact value
    ("in quotes"); another organization's `bob` is never listed."""
    for trace_id, user in (("t-bob", "bob"), ("t-bobby", "bobby"), ("t-BOB", "BOB")):
        llm_call(project, trace_id, question="q", answer="a", user_id=user)
    llm_call(other_project, "t-their-bob", question="q", answer="a", user_id="bob")
    page = client.get(f"{url('users', project)}bob/")
    link = page.context["all_traces_url"]
    listed = client.get(link)
    assert listed.status_code == 200
    assert [r.trace.id for r in listed.context["rows"]] == ["t-bob"]
    prefix = client.get(url("traces", project), {"user": "bob"})
    assert {r.trace.id for r in prefix.context["rows"]} == {"t-bob", "t-bobby", "t-BOB"}
    exact = client.get(url("traces", project), {"user": '"bobby"'})
    assert [r.trace.id for r in exact.context["rows"]] == ["t-bobby"]


# --- annotation queue ------------------------------------------------------------------------------


def test_a_reviewer_works_through_every_thumbs_down(client, member, project, other_project, calls):
    thumbs(project, "t-berlin", up=False)
    queue_url = url("review", project)
    assert client.get(queue_url).status_code == 200  # the list of queues
    # Oldest first: t-rome was stored before t-berlin (same timestamp: id order).
    response = client.get(queue_url, {"thumbs_down": "on"})
    first = response["Location"]
    assert first.startswith(trace_url(project, "t-berlin")) or first.startswith(trace_url(project, "t-rome"))
    page = client.get(first)
    assert page.context["review"]["left"] == 2
    current = page.context["trace"].id
    # Scoring it moves on to the next one, and it leaves the queue.
    response = client.post(f"{trace_url(project, current)}score",
                           {"name": "ok", "value": "1", "review": "thumbs_down=on"})
    following = client.get(response["Location"])
    assert following.status_code == 302
    nxt = following["Location"]
    assert current not in nxt
    other = client.get(nxt).context["trace"].id
    assert client.get(nxt).context["review"]["left"] == 1
    # Skipping the last one reaches the end, with one still waiting.
    done = client.get(client.get(nxt).context["review"]["skip_url"])
    assert done.status_code == 200 and done.context["done"] and done.context["left"] == 1
    client.post(f"{trace_url(project, other)}score", {"name": "ok", "value": "1"})
    done = client.get(queue_url, {"thumbs_down": "on"})
    assert done.context["done"] and done.context["left"] == 0
    assert client.get(url("review", other_project), {"thumbs_down": "on"}).status_code == 404


# --- dashboards ------------------------------------------------------------------------------------


def test_the_breakdown_answers_from_the_rollups_with_the_80_line(client, member, project, other_project, calls):
    response = client.get(url("dashboards", project), {"by": "model", "days": "1"})
    assert response.status_code == 200
    rows = response.context["breakdown"]["rows"]
    assert [r["label"] for r in rows] == ["claude-3-haiku", "gpt-4o-mini"]
    assert [r["within_80"] for r in rows] == [True, False]
    assert b"lg-pareto-line" in response.content
    assert client.get(url("dashboards", project), {"by": "nonsense"}).status_code == 404
    assert client.get(url("dashboards", other_project)).status_code == 404


def test_a_common_word_is_answered_from_the_newest_window_and_old_matches_still_found(
    client, member, project, monkeypatch
):
    from traces import selectors as trace_selectors

    # A common word: estimated to match more than the threshold (tiny here, millions in production).
    monkeypatch.setattr(trace_selectors, "SEARCH_WINDOWED_ABOVE", 0)
    now = datetime.now(UTC)
    for i in range(55):
        llm_call(project, f"new-{i}", question="q", answer="common word", at=now - timedelta(minutes=i))
    llm_call(project, "old", question="q", answer="common rarity", at=now - timedelta(days=60))
    response = client.get(url("traces", project), {"q": "common"})
    assert len(found(response)) == 50 and response.context["window"] == "the last hour"
    assert response.context["total"] == 55  # counted in that window
    response = client.get(url("traces", project), {"q": "common", "page": "2"})
    assert found(response) == ["new-50", "new-51", "new-52", "new-53", "new-54", "old"]
    assert response.context["window"] == ""
    assert found(client.get(url("traces", project), {"q": "rarity"})) == ["old"]
    # A rare word (few estimated matches) is read in one index scan, without windows.
    monkeypatch.setattr(trace_selectors, "SEARCH_WINDOWED_ABOVE", 10**9)
    response = client.get(url("traces", project), {"q": "common"})
    assert response.context["window"] == "" and response.context["total"] == 56


# --- isolation: every console page, discovered from the URL resolver -------------------------------
# A new console route is walked as soon as it is added; one whose path takes an id `_FILLERS` does
# not know fails the walk until someone says which of the other tenant's objects it names.

CONSOLE_VIEW_MODULES = ("console.",)
SECRET = "classified-answer-of-the-other-tenant"


def _console_routes():
    from django.urls import URLResolver, get_resolver
    from django.utils.regex_helper import normalize

    routes = []

    def walk(patterns, prefix):
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
            elif pattern.callback.__module__.startswith(CONSOLE_VIEW_MODULES):
                template, params = normalize(regex)[0]
                routes.append((template, list(params), pattern.callback))

    walk(get_resolver().url_patterns, "")
    return routes


def _their_objects(project) -> dict:
    """One object of every kind a console address names, in the other tenant's project."""
    from evals.evaluation_models import EvaluationRule
    from evals.models import Dataset, DatasetRun
    from prompts.payloads import parse_create
    from prompts.services import prompt_create_version

    llm_call(project, "iso-trace", question="their question", answer=SECRET, user_id="iso-user",
             session_id="iso-session")
    dataset = Dataset.objects.for_project(project).create(name="iso-set", description=SECRET)
    run = DatasetRun.objects.for_project(project).create(dataset_id=dataset.id, name="iso-run", description=SECRET)
    prompt_create_version(project=project, data=parse_create({"name": "iso/prompt", "prompt": SECRET,
                                                              "labels": ["production"]}), actor=None)
    return {
        "trace_id": "iso-trace", "session_id": "iso-session", "user_id": "iso-user", "name": "iso/prompt",
        "dataset_id": dataset.id, "dataset_run_id": run.id, "sdk_dataset_id": dataset.id, "sdk_run_id": run.id,
        "view_id": SavedView.objects.create(project=project, name="iso-view", query="status=error").id,
        "eval_rule_id": EvaluationRule.objects.create(project=project, name="iso-rule", enabled=False).id,
        "alert_rule_id": project.alert_rules.get(seed_key="refusal_rate_5pct").id,
    }


def _their_state(project) -> tuple:
    from evals.evaluation_models import EvaluationRule
    from evals.models import DatasetItem
    from privacy.models import ExportJob
    from prompts.models import PromptLabel, PromptVersion

    return (
        sorted(Score.objects.for_project(project).values_list("id", "name", "value")),
        DatasetItem.objects.for_project(project).count(),
        sorted(PromptVersion.objects.for_project(project).values_list("prompt_id", "version")),
        sorted(PromptLabel.objects.for_project(project).values_list("prompt_id", "label", "version")),
        sorted(SavedView.objects.filter(project=project).values_list("id", "name", "query")),
        sorted(EvaluationRule.objects.filter(project=project).values_list("id", "enabled")),
        ExportJob.objects.filter(project=project).count(),
    )


# A form that every console write accepts from someone allowed to make it.
_WRITE = {"name": "x", "value": "1", "comment": "x", "dataset": "iso-set", "view_name": "x", "query": "",
          "enabled": "1", "label": "production", "action": "remove", "confirm": "yes", "content": "x",
          "type": "text"}


@pytest.mark.parametrize("tenant", ["other", "far"])
def test_every_console_page_answers_404_for_another_organizations_project_and_objects(
    client, request, organization, member_of, project, tenant
):
    """Same region (`other`: only the project filter keeps the tenants apart) and the other region
    (`far`): their project in the address, and their objects under our project's address."""
    theirs = request.getfixturevalue(f"{tenant}_project")
    their_ids = _their_objects(theirs)
    client.force_login(member_of(organization, Role.OWNER))
    markers = [SECRET, theirs.name, theirs.organization.name, "iso-view", "iso-rule"]
    before = _their_state(theirs)
    routes = _console_routes()
    assert len(routes) >= 40
    for template, params, callback in routes:
        unknown = [p for p in params if p != "project_id" and p not in their_ids]
        assert not unknown, f"/{template} takes {unknown}: teach _their_objects which object that names"
        sub_ids = [p for p in params if p != "project_id"]
        if not sub_ids and "project_id" not in params:
            continue  # the console index: only the caller's own projects
        variants = []
        if "project_id" in params:
            variants.append(("their project", {"project_id": theirs.id, **their_ids}))
        if sub_ids:
            variants.append(("our project", {"project_id": project.id, **their_ids}))
        for label, values in variants:
            path = "/" + template % {p: quote(str(values[p]), safe="") for p in params}
            assert resolve(path).func is callback, f"{path} resolved elsewhere, proving nothing"
            statuses = {}
            for method in ("get", "post"):
                response = getattr(client, method)(path, _WRITE if method == "post" else None)
                if response.status_code == 302 and template.startswith(("project/", "trace/")):
                    # An SDK link hands over to a console page: that page must not serve them either.
                    response = client.get(response["Location"])
                statuses[method] = response.status_code
                text = response.content.decode(errors="replace")
                leaked = [m for m in markers if m in text]
                assert not leaked, f"{method.upper()} {path} ({label}) answered {response.status_code} with {leaked}"
            if callback is console_views.sdk_project_experiment and label == "our project":
                # An experiment link falls back to the project's evaluations page for a run it does
                # not find there, as for a missing one: that page is ours, and names none of theirs.
                continue
            assert set(statuses.values()) <= {404, 405}, f"{path} ({label}) answered {statuses}"
            assert 404 in statuses.values(), f"{path} ({label}) answered {statuses}: no method reached the check"
    assert _their_state(theirs) == before
