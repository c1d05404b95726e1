"""Unknown is not zero: calls without a price are counted and named wherever costs are added up,
listed with a one-click add, and stored calls can be re-priced (command, synchronously; console, as a
background run on the region queue whose counts show its progress; both audited)."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from ingest import services as ingest_services
from ingest import tasks as ingest_tasks
from ingest.services import AUDIT_REPRICE_REQUESTED, AUDIT_REPRICED
from ingest.writer import reprice_observations, write_records
from pricing.models import ModelPrice, PriceSource, RepriceRun
from pricing.pricing import reset_local_cache
from prompts.selectors import compare_versions
from tenancy.models import AuditLogEntry, Role
from tests.commits import on_commit_of_every_database
from traces.models import Observation

NOW = timezone.now().replace(microsecond=0)
T0 = NOW - timedelta(hours=2)


def price(project=None, model_name="priced-model", input_price="1", output_price="2", start=None):
    row = ModelPrice.objects.create(
        project=project, provider="acme", model_name=model_name, match_pattern=rf"^{model_name}$",
        effective_from=start or datetime(2024, 1, 1, tzinfo=dt_timezone.utc), input_price=Decimal(input_price),
        output_price=Decimal(output_price), source=PriceSource.CATALOG if project is None else PriceSource.CUSTOM,
    )
    reset_local_cache()  # a test never commits, so the change is not published by itself
    return row


def gen(obs_id, model, *, trace="t1", start=T0, input_tokens=1000, output_tokens=500, **extra):
    return {"id": obs_id, "trace_id": trace, "type": "GENERATION", "name": "llm", "start_time": start,
            "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens, **extra}


def write(project, observations, traces=()):
    write_records(project=project, traces=list(traces), observations=list(observations), scores=[])


def rows(project):
    return {o.id: o for o in Observation.objects.for_project(project)}


def console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def mixed_trace(project):
    price()
    write(project, [
        gen("o-priced", "priced-model"),
        gen("o-new-1", "brand-new-model", start=T0 + timedelta(seconds=1)),
        gen("o-new-2", "brand-new-model", start=T0 + timedelta(seconds=2)),
        {"id": "o-span", "trace_id": "t1", "type": "SPAN", "name": "retrieval", "start_time": T0},
        # A model without tokens is not a call that should have had a cost.
        gen("o-no-tokens", "other-new-model", input_tokens=None, output_tokens=None),
    ], traces=[{"id": "t1", "name": "mixed", "timestamp": T0}])
    write(project, [gen("o-only", "brand-new-model", trace="t2")], traces=[{"id": "t2", "timestamp": T0}])


# --- the read API -------------------------------------------------------------------------------


def test_a_trace_that_mixes_priced_and_unpriced_calls_says_so(client, api_key, mixed_trace):
    detail = client.get("/api/public/traces/t1", HTTP_AUTHORIZATION=api_key.basic).json()
    # $1 / $2 per million: 1000 in, 500 out.
    assert detail["totalCost"] == pytest.approx(0.002)
    assert (detail["unpricedObservations"], detail["unpricedModels"]) == (2, ["brand-new-model"])
    by_id = {o["id"]: o for o in detail["observations"]}
    unpriced = by_id["o-new-1"]
    assert (unpriced["usage"]["totalCost"], unpriced["calculatedTotalCost"], unpriced["costDetails"]) == (None, None, {})

    listed = {t["id"]: t for t in client.get("/api/public/traces", HTTP_AUTHORIZATION=api_key.basic).json()["data"]}
    assert (listed["t1"]["unpricedObservations"], listed["t1"]["unpricedModels"]) == (2, ["brand-new-model"])
    # Only unpriced calls: the SDKs need a number for totalCost, but the trace says none was priced.
    assert (listed["t2"]["totalCost"], listed["t2"]["unpricedObservations"]) == (0.0, 1)
    assert listed["t2"]["inputCost"] is None

    v2 = client.get("/api/public/v2/observations?fields=core,usage&traceId=t1", HTTP_AUTHORIZATION=api_key.basic).json()
    assert {o["id"]: o["totalCost"] for o in v2["data"]}["o-new-1"] is None


def test_prompt_metrics_count_calls_without_a_price(project):
    from prompts.payloads import parse_create
    from prompts.services import prompt_create_version

    prompt, _ = prompt_create_version(project=project, data=parse_create({"name": "qa", "prompt": "hi"}), actor=None)
    price()
    write(project, [
        gen("p1", "priced-model", prompt_name="qa", prompt_version=1),
        gen("p2", "brand-new-model", prompt_name="qa", prompt_version=1),
    ])
    (version,) = compare_versions(project=project, prompt=prompt, since=T0 - timedelta(hours=1), until=NOW)
    assert (version.calls, version.costed_calls, version.unpriced_calls) == (2, 1, 1)


# --- the console --------------------------------------------------------------------------------


def test_the_console_trace_list_and_detail_flag_unpriced_calls(organization, member_of, project, mixed_trace):
    client = console(member_of(organization, Role.VIEWER))
    listing = client.get("/admin/traces/")
    row = next(r for r in listing.context["rows"] if r.trace.id == "t1")
    assert (row.unpriced, row.unpriced_models) == (2, ["brand-new-model"])
    assert "+2 unpriced" in listing.content.decode()

    detail = client.get(f"/admin/traces/{project.id}/t1/").content.decode()
    assert "plus 2 calls without a price (brand-new-model)" in detail


def test_models_seen_without_a_price_are_listed_with_a_one_click_add(
    organization, member_of, project, other_project, mixed_trace
):
    write(other_project, [gen("n1", "neighbours-secret-model")])
    admin = member_of(organization, Role.ADMIN)
    client = console(admin)

    for url in ("/admin/pricing/unpriced/", "/admin/pricing/modelprice/"):
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "brand-new-model" in html and "other-new-model" not in html
        assert "neighbours-secret-model" not in html
    (row,) = client.get("/admin/pricing/unpriced/").context["rows"]
    assert (row["item"].calls, row["item"].project, row["priced_now"]) == (3, project, False)
    query = parse_qs(urlparse(row["add_override_url"]).query)
    assert (query["project"], query["model_name"]) == ([str(project.id)], ["brand-new-model"])

    form = client.get(row["add_override_url"]).context["adminform"].form
    assert (form.initial["model_name"], str(form.initial["project"])) == ("brand-new-model", str(project.id))
    # Superusers only add to the global catalog.
    assert row["add_catalog_url"] is None


# --- re-pricing ---------------------------------------------------------------------------------


@pytest.fixture
def history(project, other_project):
    write(project, [
        gen("h1", "brand-new-model", start=T0),
        gen("h2", "brand-new-model", start=T0 + timedelta(minutes=1), response_model="brand-new-model"),
        gen("h-old", "brand-new-model", start=T0 - timedelta(days=30)),
        gen("h-client", "brand-new-model", start=T0, cost_details={"total": 0.5}, total_cost=Decimal("0.5"),
            cost_source="client"),
        gen("h-other", "another-model", start=T0),
    ])
    # A neighbour in the same region with the same model and no price of its own.
    write(other_project, [gen("n1", "brand-new-model", start=T0)])


def test_the_reprice_command_fixes_history_after_a_price_is_added(project, other_project, history):
    price(model_name="brand-new-model", input_price="3", output_price="15")
    out = StringIO()
    call_command("reprice", "--project", str(project.id), "--since", (T0 - timedelta(days=1)).isoformat(),
                 "--model", "brand-new-model", stdout=out)

    mine = rows(project)
    # 1000 × $3 + 500 × $15 per million tokens.
    assert (mine["h1"].total_cost, mine["h1"].cost_source) == (Decimal("0.0105"), "catalog")
    assert mine["h1"].cost_details == {"input": 0.003, "output": 0.0075, "total": 0.0105}
    assert mine["h2"].total_cost == Decimal("0.0105")
    assert mine["h-old"].total_cost is None  # outside the range
    assert (mine["h-client"].total_cost, mine["h-client"].cost_source) == (Decimal("0.5"), "client")
    assert mine["h-other"].total_cost is None  # another model
    assert rows(other_project)["n1"].total_cost is None  # the neighbour is not touched
    assert "2 re-priced (2 newly priced)" in out.getvalue()

    (entry,) = AuditLogEntry.objects.filter(action=AUDIT_REPRICED)
    assert (entry.organization_id, entry.target_id, entry.actor_email) == (
        project.organization_id, str(project.id), "manage.py reprice")
    assert (entry.data["models"], entry.data["repriced"]) == (["brand-new-model"], 2)
    assert not AuditLogEntry.objects.filter(organization_id=other_project.organization_id, action=AUDIT_REPRICED).exists()


def test_the_reprice_command_refuses_bad_input(project):
    with pytest.raises(CommandError, match="no project"):
        call_command("reprice", "--project", "00000000-0000-0000-0000-000000000000", "--since", "2026-01-01")
    with pytest.raises(CommandError, match="since"):
        call_command("reprice", "--project", str(project.id), "--since", "2026-02-01", "--until", "2026-01-01")
    with pytest.raises(CommandError, match="not a date"):
        call_command("reprice", "--project", str(project.id), "--since", "yesterday")


def test_a_project_override_reprices_only_that_project(project, other_project, history, superuser):
    price(project=project, model_name="brand-new-model", input_price="1", output_price="1")
    report = reprice_observations(project=project, since=T0 - timedelta(days=1), until=NOW, batch_size=2)
    # h1, h2 and h-other are in the range; the client-cost row is never read.
    assert (report.examined, report.repriced) == (3, 2)
    assert rows(project)["h1"].total_cost == Decimal("0.0015")
    assert rows(other_project)["n1"].total_cost is None


def test_repricing_walks_every_batch(project):
    # Stored before the model had a price (several calls share a start time: the keyset uses the id too).
    write(project, [gen(f"b{i}", "brand-new-model", start=T0 + timedelta(seconds=i % 3)) for i in range(7)])
    assert {o.total_cost for o in rows(project).values()} == {None}
    price(model_name="brand-new-model")
    report = reprice_observations(project=project, since=T0, until=NOW, batch_size=3)
    assert (report.examined, report.repriced) == (7, 7)
    assert {o.total_cost for o in rows(project).values()} == {Decimal("0.002")}
    assert reprice_observations(project=project, since=T0, until=NOW, batch_size=3).repriced == 0


@pytest.fixture
def sent(monkeypatch):
    """Region task messages, captured instead of sent to the broker (after commit, as in production)."""
    from tenancy import tasks as tenancy_tasks

    messages: list[tuple[str, dict, str]] = []
    monkeypatch.setattr(tenancy_tasks, "publish",
                        lambda task, kwargs, queue: messages.append((task.name, kwargs, queue)) or True)
    return messages


def deliver(sent) -> int:
    """Run every captured message (and the continuations they send) as a region worker would."""
    delivered = 0
    while sent:
        name, kwargs, queue = sent.pop(0)
        assert (name, queue) == ("ingest.reprice", "region.eu")
        ingest_tasks.reprice(**kwargs)
        delivered += 1
    return delivered


def test_the_console_reprices_for_admins_of_the_project_only(
    organization, member_of, project, other_project, history, other_owner, sent
):
    catalog_row = price(model_name="brand-new-model", input_price="3", output_price="15")
    admin = member_of(organization, Role.ADMIN)
    client = console(admin)

    # The admin action on the catalog page leads to the form, prefilled with the selected prices.
    response = client.post("/admin/pricing/modelprice/", {"action": "reprice_calls", "_selected_action": [catalog_row.id]})
    assert response.status_code == 302 and response.url.startswith("/admin/pricing/reprice/")
    assert client.get(response.url).status_code == 200

    form_data = {"project": str(project.id), "since": (T0 - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
                 "until": "", "models": "", "prices": str(catalog_row.id)}
    # A valid form is shown back first: which project, window and models, and that stored costs change.
    with on_commit_of_every_database():
        response = client.post("/admin/pricing/reprice/", form_data)
    page = response.content.decode()
    assert response.status_code == 200 and "Nothing has been done yet" in page
    assert f"Re-price the stored calls of {project}?" in page and f"in its region ({project.region})" in page
    assert f"from {form_data['since']} UTC until now (the moment you confirm)." in page
    assert "brand-new-model (^brand-new-model$)" in page and "replace the costs stored today" in page
    assert 'name="confirm" value="yes"' in page and f'name="prices" value="{catalog_row.id}"' in page
    assert not RepriceRun.objects.exists() and sent == []
    assert not AuditLogEntry.objects.filter(action=AUDIT_REPRICE_REQUESTED).exists()
    assert rows(project)["h1"].total_cost is None

    with on_commit_of_every_database():
        response = client.post("/admin/pricing/reprice/", {**form_data, "confirm": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    # The request only records the run and queues it, once, on the project's region queue.
    run = RepriceRun.objects.get()
    assert response.url == f"/admin/pricing/reprice/runs/{project.id}/"
    assert (run.project_id, run.status, run.requested_by_id, run.price_ids) == (
        project.id, "queued", admin.id, [str(catalog_row.id)])
    assert sent == [("ingest.reprice", {"project_id": str(project.id), "run_id": str(run.id)}, "region.eu")]
    assert rows(project)["h1"].total_cost is None
    requested = AuditLogEntry.objects.get(action=AUDIT_REPRICE_REQUESTED)
    assert (requested.actor_id, requested.data["run_id"]) == (admin.id, str(run.id))

    assert deliver(sent) == 1
    assert rows(project)["h1"].total_cost == Decimal("0.0105")
    assert rows(project)["h-other"].total_cost is None  # the selected price's pattern does not match it
    entry = AuditLogEntry.objects.get(action=AUDIT_REPRICED)
    assert (entry.actor_id, entry.data["models"], entry.data["run_id"]) == (admin.id, ["brand-new-model"], str(run.id))
    run.refresh_from_db()
    assert (run.status, run.model_names, run.examined, run.repriced, run.newly_priced) == (
        "done", ["brand-new-model"], 2, 2, 2)

    # Another organization's project does not exist here, to read or to re-price, confirmed or not.
    assert client.get(f"/admin/pricing/reprice/?project={other_project.id}").status_code == 404
    theirs = {**form_data, "project": str(other_project.id)}
    assert client.post("/admin/pricing/reprice/", theirs).status_code == 404
    assert client.post("/admin/pricing/reprice/", {**theirs, "confirm": "yes"}).status_code == 404
    assert rows(other_project)["n1"].total_cost is None
    # A viewer of the project may not re-price it.
    viewer = console(member_of(organization, Role.VIEWER))
    assert viewer.post("/admin/pricing/reprice/", form_data).status_code == 404
    assert viewer.post("/admin/pricing/reprice/", {**form_data, "confirm": "yes"}).status_code == 404
    # Nor may the neighbour re-price ours.
    assert console(other_owner).post("/admin/pricing/reprice/", form_data).status_code == 404
    assert console(other_owner).post("/admin/pricing/reprice/", {**form_data, "confirm": "yes"}).status_code == 404
    assert AuditLogEntry.objects.filter(action=AUDIT_REPRICED).count() == 1
    assert RepriceRun.objects.count() == 1 and sent == []


def test_the_reprice_confirmation_names_the_window_and_models_and_goes_back_prefilled(
    organization, member_of, project, sent
):
    client = console(member_of(organization, Role.ADMIN))
    form_data = {"project": str(project.id), "since": "2026-01-01 00:00:00", "until": "2026-01-02 12:00:00",
                 "models": "gpt-4o, claude-x", "prices": ""}

    response = client.post("/admin/pricing/reprice/", form_data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "from 2026-01-01 00:00:00 UTC until 2026-01-02 12:00:00 UTC." in page
    assert "Only calls of these models (as sent): gpt-4o, claude-x." in page
    cancel = response.context["cancel_url"]
    assert cancel.startswith("/admin/pricing/reprice/?") and parse_qs(urlparse(cancel).query)["models"] == [
        "gpt-4o, claude-x"]
    assert client.get(cancel).context["form"].initial["until"] == "2026-01-02 12:00:00"
    assert not RepriceRun.objects.exists() and sent == []
    # A form the service would refuse is refused before any confirmation.
    too_many = ", ".join(f"m{n}" for n in range(ingest_services.MAX_REPRICE_MODELS + 1))
    response = client.post("/admin/pricing/reprice/", {**form_data, "models": too_many})
    assert response.status_code == 400 and "Nothing has been done yet" not in response.content.decode()


def queue_run(project, owner, **filters):
    return ingest_services.reprice_run_create(project=project, actor=owner, since=T0 - timedelta(days=1), until=NOW,
                                              **filters)


def test_a_background_run_reprices_what_the_command_does_batch_by_batch(
    project, other_project, history, owner, sent, monkeypatch
):
    price(model_name="brand-new-model", input_price="3", output_price="15")
    with on_commit_of_every_database():
        run = queue_run(project, owner, models=["brand-new-model"])
    assert len(sent) == 1 and RepriceRun.objects.get(id=run.id).status == "queued"

    # One call per batch and no time left after each: every batch is recorded, then a new message continues.
    def one_batch_per_message(**kwargs):
        return reprice_run(**kwargs, budget_seconds=0, batch_size=1)

    reprice_run = ingest_services.reprice_run
    monkeypatch.setattr(ingest_services, "reprice_run", one_batch_per_message)
    name, kwargs, _ = sent.pop(0)
    ingest_tasks.reprice(**kwargs)
    run.refresh_from_db()
    assert (run.status, run.examined, run.repriced, run.position_id) == ("running", 1, 1, "h1")
    assert len(sent) == 1  # the continuation
    assert rows(project)["h1"].total_cost == Decimal("0.0105") and rows(project)["h2"].total_cost is None
    assert deliver(sent) >= 1

    # The same calls as `manage.py reprice` (test_the_reprice_command_fixes_history_after_a_price_is_added).
    mine = rows(project)
    assert (mine["h1"].total_cost, mine["h1"].cost_source) == (Decimal("0.0105"), "catalog")
    assert mine["h2"].total_cost == Decimal("0.0105")
    assert mine["h-old"].total_cost is None
    assert (mine["h-client"].total_cost, mine["h-client"].cost_source) == (Decimal("0.5"), "client")
    assert mine["h-other"].total_cost is None
    assert rows(other_project)["n1"].total_cost is None
    run.refresh_from_db()
    assert (run.status, run.examined, run.repriced, run.newly_priced, run.still_unpriced, run.error) == (
        "done", 2, 2, 2, 0, "")
    assert run.finished_at is not None
    (entry,) = AuditLogEntry.objects.filter(action=AUDIT_REPRICED)
    assert (entry.actor_id, entry.data["models"], entry.data["repriced"]) == (owner.id, ["brand-new-model"], 2)

    # A redelivered message for a done run changes nothing.
    finished_at = run.finished_at
    ingest_tasks.reprice(project_id=str(project.id), run_id=str(run.id))
    run.refresh_from_db()
    assert (run.examined, run.repriced, run.finished_at) == (2, 2, finished_at)
    assert AuditLogEntry.objects.filter(action=AUDIT_REPRICED).count() == 1 and sent == []


def test_a_run_is_only_run_for_its_own_project(project, other_project, history, owner, sent):
    price(model_name="brand-new-model")
    run = queue_run(project, owner)
    ingest_tasks.reprice(project_id=str(other_project.id), run_id=str(run.id))
    run.refresh_from_db()
    assert (run.status, run.examined) == ("queued", 0)
    assert rows(project)["h1"].total_cost is None and rows(other_project)["n1"].total_cost is None


def test_a_failed_run_says_why(project, history, owner, sent, monkeypatch):
    from ingest import writer
    from ingest.writer import StorageUnavailable

    def down(**kwargs):
        raise StorageUnavailable("the eu data region is unavailable; retry later")
        yield  # pragma: no cover

    monkeypatch.setattr(writer, "reprice_batches", down)
    run = queue_run(project, owner)
    with pytest.raises(StorageUnavailable):
        ingest_tasks.reprice(project_id=str(project.id), run_id=str(run.id))
    run.refresh_from_db()
    assert run.status == "failed" and "unavailable" in run.error and run.finished_at is not None


def test_the_runs_page_shows_status_and_counts_to_admins_of_the_project_only(
    organization, member_of, project, other_project, history, other_owner, sent
):
    price(model_name="brand-new-model")
    admin = member_of(organization, Role.ADMIN)
    client = console(admin)
    page = f"/admin/pricing/reprice/runs/{project.id}/"
    with on_commit_of_every_database():
        run = queue_run(project, admin)
    # While a run is queued or running the page reloads itself.
    response = client.get(page)
    assert response.status_code == 200 and response.context["refresh_seconds"] == 5
    assert 'http-equiv="refresh"' in response.content.decode()

    deliver(sent)
    response = client.get(page)
    assert response.status_code == 200 and response.context["refresh_seconds"] is None
    (listed,) = response.context["runs"]
    assert listed.id == run.id
    html = response.content.decode()
    # Every call of the range but the client-priced one: h1, h2 and h-other (no price: still unpriced).
    assert (listed.status, listed.examined, listed.repriced, listed.newly_priced, listed.still_unpriced) == (
        "done", 3, 2, 2, 1)
    assert '<td class="lg-examined">3</td>' in html and '<td class="lg-still-unpriced">1</td>' in html
    assert 'http-equiv="refresh"' not in html

    # Another organization's project, or ours to its owner or to a viewer, does not exist here.
    assert client.get(f"/admin/pricing/reprice/runs/{other_project.id}/").status_code == 404
    assert console(other_owner).get(page).status_code == 404
    assert console(member_of(organization, Role.VIEWER)).get(page).status_code == 404


def test_repricing_reaches_a_project_in_the_other_region(far_project, project):
    write(far_project, [gen("f1", "brand-new-model")])
    write(project, [gen("e1", "brand-new-model")])
    price(project=far_project, model_name="brand-new-model")
    report = reprice_observations(project=far_project, since=T0, until=NOW)
    assert (report.examined, report.repriced) == (1, 1)
    assert rows(far_project)["f1"].total_cost == Decimal("0.002")
    assert rows(project)["e1"].total_cost is None


def test_adding_a_price_in_the_console_offers_to_reprice(organization, member_of, project):
    client = console(member_of(organization, Role.ADMIN))
    response = client.post("/admin/pricing/modelprice/add/", {
        "project": str(project.id), "provider": "acme", "model_name": "brand-new-model", "match_pattern": "",
        "effective_from_0": "2026-01-01", "effective_from_1": "00:00:00", "input_price": "1",
        "cached_input_price": "", "cache_write_price": "", "output_price": "2", "reasoning_price": "",
    }, follow=True)
    assert response.status_code == 200
    (message,) = [str(m) for m in response.context["messages"] if "re-price" in str(m)]
    assert "/admin/pricing/reprice/?" in message and str(project.id) in message
