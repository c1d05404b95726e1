"""Retention: exactly the expired traces go, with everything attached; expired payloads are emptied
while rows and rollups stay; other tenants are untouched; every run leaves a record; the plan's days
are the default; the settings API and console are scoped by role and tenant."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from evals.models import Dataset, DatasetItem, DatasetRun, DatasetRunItem
from feedback.models import FeedbackEvent
from monitoring.models import DailyUserRollup, HourlyRollup
from privacy import services, tasks
from privacy.models import RetentionPolicy, RetentionRun
from scores.models import Score
from tenancy.models import Role
from traces.models import Observation, Trace

INGESTION = "/api/public/ingestion"
AGES = {"old": 40, "mid": 10, "new": 1}  # days


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed(client, key, project, now) -> None:
    events = []
    for label, days in AGES.items():
        for n in range(2):
            trace, at = f"{label}-{n}", now - timedelta(days=days, minutes=n)
            events += [
                {"id": f"{trace}-1", "type": "trace-create", "timestamp": iso(at), "body": {
                    "id": trace, "userId": "u", "timestamp": iso(at), "input": "prompt", "output": "answer",
                    "metadata": {"k": "v"}}},
                {"id": f"{trace}-2", "type": "generation-create", "timestamp": iso(at), "body": {
                    "id": f"{trace}-g", "traceId": trace, "model": "gpt-4o-mini", "startTime": iso(at),
                    "endTime": iso(at + timedelta(seconds=1)), "input": [{"role": "user", "content": "hi"}],
                    "output": "hello", "metadata": {"m": 1}, "usage": {"input": 10, "output": 5}}},
                {"id": f"{trace}-3", "type": "score-create", "timestamp": iso(at), "body": {
                    "id": f"{trace}-s", "traceId": trace, "name": "helpful", "value": 1}},
            ]
    response = client.post(INGESTION, data=orjson.dumps({"batch": events}), content_type="application/json",
                           HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 207 and response.json()["errors"] == [], response.content
    dataset = Dataset.objects.for_project(project).create(name="golden")
    run = DatasetRun.objects.for_project(project).create(dataset_id=dataset.id, name="r")
    DatasetItem.objects.for_project(project).create(id="item-old", dataset_id=dataset.id, source_trace_id="old-0")
    for label in AGES:
        FeedbackEvent.objects.for_project(project).create(
            score_id=f"{label}-0-s", trace_id=f"{label}-0", user_id="u", name="thumbs", data_type="BOOLEAN", value=1)
        DatasetRunItem.objects.for_project(project).create(run_id=run.id, dataset_item_id="item-old",
                                                           trace_id=f"{label}-0")


def rollups(project):
    return (
        sorted(HourlyRollup.objects.for_project(project).values_list("hour", "calls", "input_tokens", "cost")),
        sorted(DailyUserRollup.objects.for_project(project).values_list("day", "user_id", "calls")),
    )


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def seeded(client, api_key, project, other_api_key, other_project, far_api_key, far_project, now):
    for key, tenant in ((api_key, project), (other_api_key, other_project), (far_api_key, far_project)):
        seed(client, key, tenant, now)


def test_retention_deletes_exactly_the_expired_traces_with_everything_attached(
    project, other_project, far_project, owner, seeded, now
):
    services.retention_policy_update(project=project, actor=owner, days=30, payload_days=7)
    rollups_before = rollups(project)
    run = services.retention_run(project_id=project.id, budget_seconds=None, now=now)

    assert sorted(Trace.objects.for_project(project).values_list("id", flat=True)) == ["mid-0", "mid-1", "new-0", "new-1"]
    assert not Observation.objects.for_project(project).filter(trace_id__startswith="old").exists()
    assert not Score.objects.for_project(project).filter(trace_id__startswith="old").exists()
    assert not FeedbackEvent.objects.for_project(project).filter(trace_id__startswith="old").exists()
    assert not DatasetRunItem.objects.for_project(project).filter(trace_id__startswith="old").exists()
    # The dataset item copied from an expired trace belongs to its dataset and stays.
    assert DatasetItem.objects.for_project(project).filter(id="item-old").exists()
    assert Observation.objects.for_project(project).count() == 4 and Score.objects.for_project(project).count() == 4

    # Payloads older than 7 days are emptied; rows, tokens and rollups stay.
    for trace in Trace.objects.for_project(project):
        expired = trace.id.startswith("mid")
        assert (trace.input, trace.output, trace.metadata) == ((None, None, {}) if expired else ("prompt", "answer", {"k": "v"}))
    for obs in Observation.objects.for_project(project):
        expired = obs.trace_id.startswith("mid")
        assert (obs.input is None, obs.output is None, obs.metadata == {}) == (expired, expired, expired)
        assert obs.input_tokens == 10
    assert rollups(project) == rollups_before

    # The run's record says what it did.
    assert run.status == "done" and run.finished_at is not None
    assert run.counts == {
        "evals.DatasetRunItem": 1, "feedback.FeedbackEvent": 1, "scores.Score": 2, "traces.Observation": 2,
        "traces.Trace": 2, "traces.Observation.payload": 2, "traces.Trace.payload": 2,
    }
    # Other tenants (same region, other region) keep everything.
    for tenant in (other_project, far_project):
        assert Trace.objects.for_project(tenant).count() == 6
        assert Trace.objects.for_project(tenant).get(id="mid-0").input == "prompt"

    # A second run finds nothing left to do.
    again = services.retention_run(project_id=project.id, budget_seconds=None, now=now)
    assert again.counts == {}


def test_a_run_out_of_time_continues_as_the_same_run(project, owner, seeded, now):
    services.retention_policy_update(project=project, actor=owner, days=30)
    run = services.retention_run(project_id=project.id, budget_seconds=-1, now=now)
    assert run.status == "running"
    run = services.retention_run(project_id=project.id, run_id=run.id, budget_seconds=None)
    assert run.status == "done" and run.counts["traces.Trace"] == 2
    assert RetentionRun.objects.filter(project=project).count() == 1


def test_a_redelivered_first_message_continues_the_run_its_dead_worker_left_running(project, owner, seeded, now):
    services.retention_policy_update(project=project, actor=owner, days=30)
    # The worker ran out of time (or was killed) before it could send the continuation with the run id.
    first = services.retention_run(project_id=project.id, budget_seconds=-1, now=now)
    assert first.status == "running"
    tasks.enforce_retention(project_id=str(project.id))  # the same message again: no run id

    [run] = RetentionRun.objects.filter(project=project)
    assert run.id == first.id and run.status == "done" and run.counts["traces.Trace"] == 2
    assert not Trace.objects.for_project(project).filter(id__startswith="old").exists()


def test_the_plan_sets_the_default_and_the_nightly_job_sends_each_project_to_its_region(
    project, far_project, owner, organization, far_organization, seeded, now
):
    from billing.models import Plan, Subscription
    from billing.plans import ensure_default_plans

    ensure_default_plans(Plan)  # a transactional test before this one flushes the migration's rows

    sent = []
    original = tasks.publish
    tasks.publish = lambda task, kwargs, queue: sent.append((task.name, kwargs, queue)) or True
    try:
        assert tasks.schedule_retention() == 0  # unlimited (no subscription), no setting: nothing to do
        Subscription.objects.create(organization=organization, plan=Plan.objects.get(name="free"))  # 30 days
        services.retention_policy_update(project=far_project, actor=None, days=5)
        tasks.schedule_retention()
    finally:
        tasks.publish = original
    assert sorted(sent, key=str) == sorted([
        ("privacy.enforce_retention", {"project_id": str(project.id)}, "region.eu"),
        ("privacy.enforce_retention", {"project_id": str(far_project.id)}, "region.us"),
    ], key=str)
    tasks.enforce_retention(project_id=str(project.id))
    assert not Trace.objects.for_project(project).filter(id__startswith="old").exists()
    assert Trace.objects.for_project(project).filter(id__startswith="mid").count() == 2


def url(organization, project, tail="retention") -> str:
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/{tail}"


def test_the_settings_api_validates_audits_and_scopes(
    organization, project, member_of, other_owner, far_owner, other_organization, other_project
):
    from tenancy.models import AuditLogEntry

    viewer, admin = APIClient(), APIClient()
    viewer.force_login(member_of(organization, Role.VIEWER))
    admin.force_login(member_of(organization, Role.ADMIN))
    body = viewer.get(url(organization, project)).json()
    assert body["days"] is None and body["effective_days"] is None and body["source"] == "none"
    assert viewer.put(url(organization, project), {"days": 30}, format="json").status_code == 403
    for bad in ({"days": 0}, {"days": 10, "payload_days": 10}, {"days": "x"}, {"payload_days": 99999}):
        assert admin.put(url(organization, project), bad, format="json").status_code == 400, bad
    response = admin.put(url(organization, project), {"days": 30, "payload_days": 7}, format="json")
    assert response.status_code == 200 and response.json()["effective_days"] == 30
    assert admin.patch(url(organization, project), {"payload_days": None}, format="json").json()["days"] == 30
    assert AuditLogEntry.objects.filter(action="retention.updated").count() == 2
    assert viewer.get(url(organization, project, "retention-runs/")).json()["results"] == []
    for user in (other_owner, far_owner):
        client = APIClient()
        client.force_login(user)
        for tail in ("retention", "retention-runs/"):
            assert client.get(url(organization, project, tail)).status_code == 404
        assert client.put(url(organization, project), {"days": 1}, format="json").status_code == 404


def test_the_console_shows_and_changes_retention_for_admins_only(client, organization, project, member_of, other_owner):
    client.force_login(member_of(organization, Role.ADMIN))
    response = client.post("/admin/privacy/retentionpolicy/add/", {"project": project.id, "days": 10, "payload_days": 20})
    assert response.status_code == 200  # payload days must be shorter
    # Retention that deletes sooner is shown back first: nothing changes until it is confirmed.
    data = {"project": project.id, "days": 30, "payload_days": 7}
    response = client.post("/admin/privacy/retentionpolicy/add/", data)
    page = response.content.decode()
    assert response.status_code == 200 and not RetentionPolicy.objects.filter(project=project).exists()
    assert f"Shorten the retention of {project}?" in page and "Nothing has been done yet" in page
    assert "Traces older than 30 days are deleted" in page and "older than 7 days are emptied" in page
    response = client.post("/admin/privacy/retentionpolicy/add/", {**data, "confirm": "yes"})
    assert response.status_code == 302
    policy = RetentionPolicy.objects.get(project=project)
    assert (policy.days, policy.payload_days) == (30, 7)
    change = f"/admin/privacy/retentionpolicy/{policy.pk}/change/"
    # Shorter again: confirmed first too; longer keeps more, so it saves at once.
    response = client.post(change, {"days": 20, "payload_days": 7})
    assert response.status_code == 200 and "Traces older than 20 days are deleted" in response.content.decode()
    policy.refresh_from_db()
    assert policy.days == 30
    assert client.post(change, {"days": 20, "payload_days": 7, "confirm": "yes"}).status_code == 302
    assert client.post(change, {"days": 60, "payload_days": 7}).status_code == 302
    policy.refresh_from_db()
    assert (policy.days, policy.payload_days) == (60, 7)
    assert client.get("/admin/privacy/retentionpolicy/").status_code == 200
    from django.test import Client

    other = Client()
    other.force_login(other_owner)
    assert str(project.id).encode() not in other.get("/admin/privacy/retentionpolicy/").content
