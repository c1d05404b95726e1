"""Erasure requests: everything about one end user (or session, or trace ids) leaves every data-plane
table of every region, everything else stays; counts are exact across a killed run; the receipt
keeps only a keyed hash; every route answers another tenant's request with 404."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from django.apps import apps
from django.db import connections
from django.utils import timezone

from evals.models import Dataset, DatasetItem, DatasetRun, DatasetRunItem
from feedback.models import FeedbackEvent
from privacy import services, tasks
from privacy.models import DeletionBatch, ErasureRequest, ErasureTarget
from tenancy.planes import Plane, plane_of
from tenancy.regions import data_databases
from traces.models import Observation, Trace

INGESTION = "/api/public/ingestion"
ERASURES = "/api/public/erasure-requests"
ALICE = "alice-7f3e"  # every row about her carries this marker (user id, trace ids, session id)
BOB = "bob-2c1a"
TRACES_EACH = 3


def ts(minute: int, second: int = 0) -> str:
    return f"2026-11-26T10:{minute:02d}:{second:02d}.000000Z"


def seed_person(client, key, project, who: str) -> None:
    """Traces with LLM calls, a score per trace and per session, feedback, dataset items copied from a
    trace and eval results on it — through the real ingestion path where one exists."""
    events = []
    for n in range(TRACES_EACH):
        trace = f"{who}-t{n}"
        events += [
            {"id": f"{trace}-e1", "type": "trace-create", "timestamp": ts(n), "body": {
                "id": trace, "name": "support", "userId": who, "sessionId": f"{who}-session", "timestamp": ts(n),
                "input": f"hello from {who}", "metadata": {"plan": "pro"}}},
            {"id": f"{trace}-e2", "type": "generation-create", "timestamp": ts(n, 1), "body": {
                "id": f"{trace}-g1", "traceId": trace, "name": "chat", "model": "gpt-4o-mini",
                "startTime": ts(n, 1), "endTime": ts(n, 2), "input": [{"role": "user", "content": "hi"}],
                "output": "hello", "usage": {"input": 10, "output": 5}}},
            {"id": f"{trace}-e3", "type": "span-create", "timestamp": ts(n, 3), "body": {
                "id": f"{trace}-s1", "traceId": trace, "name": "tool", "startTime": ts(n, 3)}},
            {"id": f"{trace}-e4", "type": "score-create", "timestamp": ts(n, 4), "body": {
                "id": f"{trace}-score", "traceId": trace, "name": "helpful", "value": 1}},
        ]
    events.append({"id": f"{who}-e5", "type": "score-create", "timestamp": ts(9), "body": {
        "id": f"{who}-session-score", "sessionId": f"{who}-session", "name": "resolved", "value": 1}})
    response = client.post(INGESTION, data=orjson.dumps({"batch": events}), content_type="application/json",
                           HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 207 and response.json()["errors"] == [], response.content
    for n in range(TRACES_EACH):
        FeedbackEvent.objects.for_project(project).create(
            score_id=f"{who}-t{n}-score", trace_id=f"{who}-t{n}", user_id=who, name="thumbs", data_type="BOOLEAN",
            value=1, comment=f"{who} liked it")
    dataset, _ = Dataset.objects.for_project(project).get_or_create(name="golden")
    run, _ = DatasetRun.objects.for_project(project).get_or_create(dataset_id=dataset.id, name="run-1")
    DatasetItem.objects.for_project(project).get_or_create(
        id="shared-item", defaults={"dataset_id": dataset.id, "input": {"q": "x"}})
    DatasetItem.objects.for_project(project).create(
        id=f"{who}-item", dataset_id=dataset.id, input={"q": "hello"}, source_trace_id=f"{who}-t0")
    # An eval result of that item on a trace of someone else, and one on this person's trace.
    DatasetRunItem.objects.for_project(project).create(run_id=run.id, dataset_item_id=f"{who}-item", trace_id="eval-x")
    DatasetRunItem.objects.for_project(project).create(
        run_id=run.id, dataset_item_id="shared-item", trace_id=f"{who}-t1")


def mentions(marker: str) -> dict[tuple[str, str, str], int]:
    """Rows that mention `marker` anywhere, per (database, table, project): a scan of every data-plane
    table of every region, so a table forgotten by the erasure shows up here."""
    found = {}
    for alias in data_databases():
        with connections[alias].cursor() as cursor:
            for model in apps.get_models():
                if plane_of(model) != Plane.DATA:
                    continue
                table = model._meta.db_table
                cursor.execute(
                    f'SELECT project_id::text, count(*) FROM "{table}" AS t '
                    f"WHERE row_to_json(t)::text LIKE %s GROUP BY 1", [f"%{marker}%"])
                for project_id, count in cursor.fetchall():
                    found[(alias, table, project_id)] = count
    return found


def for_project(found: dict, project) -> dict:
    return {key: count for key, count in found.items() if key[2] == str(project.id)}


def erase(client, key, body) -> dict:
    response = client.post(ERASURES, data=orjson.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 202, response.content
    return response.json()


@pytest.fixture
def people(client, api_key, project, other_api_key, other_project, far_api_key, far_project):
    seed_person(client, api_key, project, ALICE)
    seed_person(client, api_key, project, BOB)
    # The same end-user id in two other tenants (same region and the other region): not theirs to erase.
    seed_person(client, other_api_key, other_project, ALICE)
    seed_person(client, far_api_key, far_project, ALICE)


def test_erasing_an_end_user_removes_every_row_about_them_in_every_table_and_keeps_everyone_else(
    client, api_key, project, people
):
    before_alice, before_bob = mentions(ALICE), mentions(BOB)
    assert len(for_project(before_alice, project)) >= 7  # traces, observations, scores, feedback, items, …
    body = erase(client, api_key, {"userId": ALICE, "gracePeriodDays": 0})
    assert body["status"] == "queued" and body["kind"] == "user" and ALICE not in orjson.dumps(body).decode()

    assert tasks.run_erasure(project_id=str(project.id), erasure_id=body["id"]) is True

    after_alice = mentions(ALICE)
    assert for_project(after_alice, project) == {}
    # Everything else is intact: Alice in the other tenants, Bob here.
    assert after_alice == {k: v for k, v in before_alice.items() if k[2] != str(project.id)}
    assert mentions(BOB) == before_bob
    assert Trace.objects.for_project(project).filter(user_id=BOB).count() == TRACES_EACH
    assert DatasetItem.objects.for_project(project).filter(id="shared-item").exists()

    receipt = client.get(f"{ERASURES}/{body['id']}", HTTP_AUTHORIZATION=api_key.basic).json()
    assert receipt["status"] == "done" and receipt["finishedAt"] and receipt["verifiedAt"]
    assert receipt["counts"] == {
        "evals.DatasetItem": 1, "evals.DatasetRunItem": 2, "feedback.FeedbackEvent": TRACES_EACH,
        "monitoring.DailyUserRollup": 1, "monitoring.DailyUserScoreRollup": 1,
        "scores.Score": TRACES_EACH + 1,  # + the session's score
        "traces.Observation": 2 * TRACES_EACH,
        "traces.Trace": TRACES_EACH,
    }
    assert set(receipt["verification"].values()) == {0}
    request = ErasureRequest.objects.get(id=body["id"])
    assert request.subject_hash == services.subject_hash(project=project, kind="user", subjects=[ALICE])
    assert request.closed_at is not None  # no grace period: the region forgot the subject
    # The control plane never held the id.
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM privacy_erasurerequest WHERE row_to_json(privacy_erasurerequest)::text LIKE %s",
                       [f"%{ALICE}%"])
        assert cursor.fetchone()[0] == 0


def test_a_killed_run_resumes_without_counting_anything_twice(client, api_key, project, people):
    body = erase(client, api_key, {"userId": ALICE, "gracePeriodDays": 0})
    batches = []

    class WorkerKilled(BaseException):
        """Stands for SIGKILL: raised inside a batch's transaction, after its DELETE and its count."""

    def die_on_third(label, rows):
        batches.append((label, rows))
        if len([b for b in batches if b[1]]) == 3:
            raise WorkerKilled()

    # Small chunks so the killed batch is one of several of its table.
    with pytest.raises(WorkerKilled):
        services.erasure_run(erasure_id=body["id"], on_batch=die_on_third, budget_seconds=None)
    assert ErasureRequest.objects.get(id=body["id"]).status == "running"
    committed = sum(DeletionBatch.objects.for_project(project).values_list("rows", flat=True))
    assert committed == sum(rows for _, rows in batches if rows) - batches[-1][1]  # the third rolled back

    assert tasks.run_erasure(project_id=str(project.id), erasure_id=body["id"]) is True
    receipt = ErasureRequest.objects.get(id=body["id"])
    assert receipt.status == "done"
    assert receipt.counts["traces.Trace"] == TRACES_EACH
    assert receipt.counts["traces.Observation"] == 2 * TRACES_EACH
    # … + 1: the user's daily score rollup row.
    assert sum(receipt.counts.values()) == 1 + 2 + TRACES_EACH + 1 + 1 + (TRACES_EACH + 1) + 2 * TRACES_EACH + TRACES_EACH
    assert for_project(mentions(ALICE), project) == {}


def test_a_run_out_of_time_continues_in_the_next_and_counts_stay_exact(client, api_key, project, people):
    body = erase(client, api_key, {"userId": ALICE, "gracePeriodDays": 0})
    assert services.erasure_run(erasure_id=body["id"], budget_seconds=-1) is False
    assert ErasureRequest.objects.get(id=body["id"]).status == "running"
    assert services.erasure_run(erasure_id=body["id"]) is True
    assert ErasureRequest.objects.get(id=body["id"]).counts["traces.Trace"] == TRACES_EACH


def test_the_task_runs_only_its_own_projects_request_and_a_missing_one_ends_quietly(
    client, api_key, project, other_project, people
):
    body = erase(client, api_key, {"userId": ALICE, "gracePeriodDays": 0})
    # A message whose project is not the request's (same region): the id is one that project does not have.
    assert tasks.run_erasure(project_id=str(other_project.id), erasure_id=body["id"]) is True
    assert ErasureRequest.objects.get(id=body["id"]).status == "queued"
    assert Trace.objects.for_project(project).filter(user_id=ALICE).count() == TRACES_EACH
    assert tasks.run_erasure(project_id=str(project.id), erasure_id=str(uuid.uuid4())) is True


def test_late_arrivals_during_the_grace_period_are_erased_then_the_subject_is_forgotten(
    client, api_key, project, people
):
    body = erase(client, api_key, {"userId": ALICE, "gracePeriodDays": 7})
    tasks.run_erasure(project_id=str(project.id), erasure_id=body["id"])
    assert ErasureTarget.objects.for_project(project).filter(id=body["id"]).exists()  # still active
    # An SDK retry delivers Alice's data again after the erasure.
    seed_again = {"batch": [{"id": "late", "type": "trace-create", "timestamp": ts(30), "body": {
        "id": f"{ALICE}-late", "userId": ALICE, "input": "again"}}]}
    client.post(INGESTION, data=orjson.dumps(seed_again), content_type="application/json",
                HTTP_AUTHORIZATION=api_key.basic)
    assert Trace.objects.for_project(project).filter(user_id=ALICE).count() == 1

    sent = []
    tasks.publish = lambda task, kwargs, queue: sent.append((task.name, kwargs, queue)) or True
    try:
        assert tasks.sweep_erasures() >= 1
    finally:
        from tenancy.tasks import publish

        tasks.publish = publish
    assert ("privacy.run_erasure", {"project_id": str(project.id), "erasure_id": body["id"]}, "region.eu") in sent
    tasks.run_erasure(project_id=str(project.id), erasure_id=body["id"])
    assert Trace.objects.for_project(project).filter(user_id=ALICE).count() == 0
    receipt = ErasureRequest.objects.get(id=body["id"])
    assert receipt.counts["traces.Trace"] == TRACES_EACH + 1 and receipt.closed_at is None

    ErasureRequest.objects.filter(id=body["id"]).update(grace_until=timezone.now() - timedelta(seconds=1))
    tasks.run_erasure(project_id=str(project.id), erasure_id=body["id"])
    assert ErasureRequest.objects.get(id=body["id"]).closed_at is not None
    assert not ErasureTarget.objects.for_project(project).filter(id=body["id"]).exists()


def test_erasing_a_session_or_trace_ids_removes_only_those(client, api_key, project, people):
    session = erase(client, api_key, {"sessionId": f"{BOB}-session", "gracePeriodDays": 0})
    tasks.run_erasure(project_id=str(project.id), erasure_id=session["id"])
    # Only Bob's per-user rollups (calls and scores) are left: a session erasure is not an erasure of the user.
    assert sorted(key[1] for key in for_project(mentions(BOB), project)) == [
        "monitoring_dailyuserrollup", "monitoring_dailyuserscorerollup"]
    ids = erase(client, api_key, {"traceIds": [f"{ALICE}-t0", "never-existed"], "gracePeriodDays": 0})
    tasks.run_erasure(project_id=str(project.id), erasure_id=ids["id"])
    assert set(Trace.objects.for_project(project).values_list("id", flat=True)) == {f"{ALICE}-t1", f"{ALICE}-t2"}
    assert not Observation.objects.for_project(project).filter(trace_id=f"{ALICE}-t0").exists()
    counts = ErasureRequest.objects.get(id=ids["id"]).counts
    assert counts["traces.Trace"] == 1 and counts["evals.DatasetItem"] == 1 and counts["scores.Score"] == 1


@pytest.mark.parametrize("body", [
    {}, {"userId": ""}, {"userId": 5}, {"userId": "a", "sessionId": "b"}, {"traceIds": []}, {"traceIds": [1]},
    {"userId": "a", "gracePeriodDays": -1}, {"userId": "a", "gracePeriodDays": 91}, {"userId": "a", "gracePeriodDays": "7"},
    {"userId": "x" * 1001}, [],
])
def test_bad_requests_answer_400(client, api_key, body):
    response = client.post(ERASURES, data=orjson.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 400 and response.json()["message"]
    assert ErasureRequest.objects.count() == 0


def test_the_public_key_alone_cannot_ask_for_an_erasure(client, api_key):
    response = client.post(ERASURES, data=b'{"userId": "a"}', content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {api_key.public}")
    assert response.status_code == 401


def test_another_tenants_erasure_request_is_not_found(client, api_key, other_api_key, far_api_key, project):
    body = erase(client, api_key, {"userId": ALICE})
    for key in (other_api_key, far_api_key):
        response = client.get(f"{ERASURES}/{body['id']}", HTTP_AUTHORIZATION=key.basic)
        assert response.status_code == 404
    assert client.get(f"{ERASURES}/{uuid.uuid4()}", HTTP_AUTHORIZATION=api_key.basic).status_code == 404
    assert client.get(f"{ERASURES}/not-a-uuid", HTTP_AUTHORIZATION=api_key.basic).status_code == 404
    assert client.get(f"{ERASURES}/{body['id']}", HTTP_AUTHORIZATION=api_key.basic).status_code == 200


# --- Langfuse's deletion endpoints ---------------------------------------------------------------


def test_langfuse_trace_deletes_are_erasures_whose_id_the_answer_carries(client, api_key, project, people):
    response = client.delete(f"/api/public/traces/{ALICE}-t0", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Trace deleted successfully" and body["status"] == "queued"
    tasks.run_erasure(project_id=str(project.id), erasure_id=body["erasureId"])
    assert not Trace.objects.for_project(project).filter(id=f"{ALICE}-t0").exists()
    receipt = client.get(f"{ERASURES}/{body['erasureId']}", HTTP_AUTHORIZATION=api_key.basic).json()
    assert receipt["status"] == "done" and receipt["counts"]["traces.Observation"] == 2

    response = client.delete("/api/public/traces", data=orjson.dumps({"traceIds": [f"{ALICE}-t1", f"{ALICE}-t2"]}),
                             content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200 and response.json()["message"] == "Traces deleted successfully"
    tasks.run_erasure(project_id=str(project.id), erasure_id=response.json()["erasureId"])
    assert not Trace.objects.for_project(project).filter(user_id=ALICE).exists()
    assert Trace.objects.for_project(project).filter(user_id=BOB).count() == TRACES_EACH


def test_langfuse_trace_deletes_refuse_bad_bodies_and_other_tenants_traces(
    client, api_key, other_api_key, far_api_key, project, other_project, far_project, people
):
    for body in (b"{}", b'{"traceIds": []}', b'{"traceIds": [1]}', b"[]", b"not json"):
        response = client.delete("/api/public/traces", data=body, content_type="application/json",
                                 HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 400, body
    # The other tenants hold a trace with the same id (seeded); without it, ours is not found from there.
    for tenant, key in ((other_project, other_api_key), (far_project, far_api_key)):
        Trace.objects.for_project(tenant).filter(id=f"{ALICE}-t0").delete()
        assert client.delete(f"/api/public/traces/{ALICE}-t0", HTTP_AUTHORIZATION=key.basic).status_code == 404
    assert Trace.objects.for_project(project).filter(id=f"{ALICE}-t0").exists()
    assert client.put("/api/public/traces", HTTP_AUTHORIZATION=api_key.basic).status_code == 405
    assert ErasureRequest.objects.count() == 0


# --- the management API -----------------------------------------------------------------------------


def v1(organization, project) -> str:
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/erasure-requests/"


def test_admins_request_and_read_erasures_through_the_management_api(organization, project, member_of, people):
    from rest_framework.test import APIClient

    from tenancy.models import AuditLogEntry, Role

    admin, member = APIClient(), APIClient()
    admin.force_login(member_of(organization, Role.ADMIN))
    member.force_login(member_of(organization, Role.MEMBER))
    assert member.post(v1(organization, project), {"user_id": ALICE}, format="json").status_code == 403
    assert admin.post(v1(organization, project), {"user_id": ALICE, "session_id": "x"}, format="json").status_code == 400
    response = admin.post(v1(organization, project), {"user_id": ALICE, "grace_period_days": 0}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    erasure_id = response.json()["id"]
    tasks.run_erasure(project_id=str(project.id), erasure_id=erasure_id)
    detail = admin.get(f"{v1(organization, project)}{erasure_id}/").json()
    assert detail["status"] == "done" and detail["requested_via"] == "api" and detail["counts"]["traces.Trace"] == 3
    assert [r["id"] for r in admin.get(v1(organization, project)).json()["results"]] == [erasure_id]
    entry = AuditLogEntry.objects.get(action="erasure.requested")
    assert entry.target_id == erasure_id and ALICE not in orjson.dumps(entry.data).decode()


def test_the_management_api_answers_404_for_other_tenants(
    organization, project, owner, other_organization, other_project, other_owner, far_organization, far_project,
    far_owner,
):
    from rest_framework.test import APIClient

    mine = services.erasure_request_create(project=project, kind="user", subjects=[ALICE], via="api", actor=owner)
    for user, org, proj in ((other_owner, other_organization, other_project), (far_owner, far_organization, far_project)):
        client = APIClient()
        client.force_login(user)
        assert client.get(f"{v1(organization, project)}{mine.id}/").status_code == 404
        assert client.post(v1(organization, project), {"user_id": "x"}, format="json").status_code == 404
        # Their own project's list does not show ours, nor does its detail route.
        assert client.get(v1(org, proj)).json()["results"] == []
        assert client.get(f"{v1(org, proj)}{mine.id}/").status_code == 404


# --- the console ------------------------------------------------------------------------------------


def test_an_admin_asks_for_an_erasure_in_the_console_and_others_do_not_see_it(
    client, organization, project, member_of, other_owner, far_owner, other_project
):
    from tenancy.models import Role

    admin = member_of(organization, Role.ADMIN)
    client.force_login(admin)
    add = "/admin/privacy/erasurerequest/add/"
    assert client.get(add).status_code == 200
    response = client.post(add, {"project": project.id, "kind": "user", "subject": "", "grace_days": 7})
    assert response.status_code == 200 and ErasureRequest.objects.count() == 0  # the form says why
    # Another organization's project is not a choice.
    response = client.post(add, {"project": other_project.id, "kind": "user", "subject": ALICE, "grace_days": 7})
    assert response.status_code == 200 and ErasureRequest.objects.count() == 0
    # A valid request is shown back first: nothing is erased until it is confirmed.
    data = {"project": project.id, "kind": "user", "subject": ALICE, "grace_days": 3}
    response = client.post(add, data)
    assert response.status_code == 200 and ErasureRequest.objects.count() == 0
    page = response.content.decode()
    assert f"Erase everything about the end user “{ALICE}” in {project}?" in page
    assert "This cannot be undone." in page and "Nothing has been done yet" in page
    assert 'name="confirm" value="yes"' in page and 'name="subject"' in page
    response = client.post(add, {**data, "confirm": "yes"})
    assert response.status_code == 302, response.content[:2000]
    erasure = ErasureRequest.objects.get()
    assert erasure.requested_by == admin and erasure.requested_via == "admin"
    assert ErasureTarget.objects.for_project(project).get(id=erasure.id).subjects == [ALICE]
    page = client.get(f"/admin/privacy/erasurerequest/{erasure.id}/change/")
    assert page.status_code == 200 and erasure.subject_hash.encode() in page.content
    assert ALICE.encode() not in page.content
    from django.test import Client

    for user in (other_owner, far_owner, member_of(organization, Role.MEMBER)):
        client = Client()  # a fresh one: the admin's "was added" message must not carry over
        client.force_login(user)
        assert client.get(f"/admin/privacy/erasurerequest/{erasure.id}/change/").status_code in (302, 403, 404)
        listing = client.get("/admin/privacy/erasurerequest/")
        assert listing.status_code in (200, 302, 403)
        assert f"{erasure.id}/change/".encode() not in listing.content
