"""Re-redaction: after a project tightens its policy, the stored data of a time range is rewritten with
the same engine ingestion uses, through the ingest writer, fail closed, with counts in the run's record;
other tenants and rows outside the range are untouched; the API is admin-only and tenant-scoped."""

from __future__ import annotations

import orjson
import pytest
from rest_framework.test import APIClient

from ingest import tasks as ingest_tasks
from privacy import services
from privacy.models import ReredactionRun
from scores.models import Score
from tenancy.models import Role
from traces.models import Observation, Trace

EMAIL = "maria.lopez@gmail.com"
INGESTION = "/api/public/ingestion"


def ingest(client, key, trace_id: str, minute: int) -> None:
    at = f"2026-11-26T10:{minute:02d}:00.000000Z"
    events = [
        {"id": f"{trace_id}-1", "type": "trace-create", "timestamp": at, "body": {
            "id": trace_id, "timestamp": at, "input": f"mail {EMAIL}", "metadata": {"contact": EMAIL}}},
        {"id": f"{trace_id}-2", "type": "generation-create", "timestamp": at, "body": {
            "id": f"{trace_id}-g", "traceId": trace_id, "startTime": at, "model": "gpt-4o-mini",
            "output": f"I wrote to {EMAIL}", "usage": {"input": 3, "output": 2}}},
        {"id": f"{trace_id}-3", "type": "score-create", "timestamp": at, "body": {
            "id": f"{trace_id}-s", "traceId": trace_id, "name": "ok", "value": 1, "comment": f"from {EMAIL}",
            "timestamp": at}},
    ]
    response = client.post(INGESTION, data=orjson.dumps({"batch": events}), content_type="application/json",
                           HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 207 and response.json()["errors"] == []


@pytest.fixture
def stored(client, api_key, project, other_api_key, other_project):
    """Raw data stored while the project had no policy, then the policy is turned on."""
    ingest(client, api_key, "in-range", 5)
    ingest(client, api_key, "after", 30)
    ingest(client, other_api_key, "in-range", 5)
    services.redaction_policy_update(project=project, actor=None)  # every detector, mask
    services.redaction_policy_update(project=other_project, actor=None)


def run(project, owner):
    from datetime import UTC, datetime

    request = services.reredaction_create(project=project, actor=owner,
                                          since=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
                                          until=datetime(2026, 11, 26, 10, 10, tzinfo=UTC))
    ingest_tasks.reredact(project_id=str(project.id), run_id=str(request.id))
    return ReredactionRun.objects.get(id=request.id)


def test_stored_data_in_range_is_redacted_with_counts(project, other_project, owner, stored):
    record = run(project, owner)
    trace = Trace.objects.for_project(project).get(id="in-range")
    assert trace.input == "mail [EMAIL]" and trace.metadata == {"contact": "[EMAIL]"}
    assert trace.redactions["input"]["email"] == 1
    assert Observation.objects.for_project(project).get(id="in-range-g").output == "I wrote to [EMAIL]"
    assert Score.objects.for_project(project).get(id="in-range-s").comment == "from [EMAIL]"
    # Outside the range, and another tenant's rows, stay as they were.
    assert Trace.objects.for_project(project).get(id="after").input == f"mail {EMAIL}"
    assert Trace.objects.for_project(other_project).get(id="in-range").input == f"mail {EMAIL}"
    assert record.status == "done"
    assert record.counts["examined"] == 3 and record.counts["changed"] == 3 and record.counts["emptied"] == 0
    assert record.counts["findings"] == {"email": 4}
    # Again: nothing left to change (a mask is not found twice).
    assert run(project, owner).counts["changed"] == 0


def test_a_row_the_policy_cannot_be_applied_to_is_emptied(project, owner, stored, monkeypatch):
    from privacy import engine

    original = engine.Redactor.redact_record

    def fails_on_traces(self, record, fields):
        if record.get("id") == "in-range" and "tool_calls" not in fields and "comment" not in fields:
            raise RuntimeError("boom")
        return original(self, record, fields)

    monkeypatch.setattr(engine.Redactor, "redact_record", fails_on_traces)
    record = run(project, owner)
    trace = Trace.objects.for_project(project).get(id="in-range")
    assert (trace.input, trace.output, trace.metadata) == (None, None, {})
    assert record.counts["emptied"] == 1
    assert Observation.objects.for_project(project).get(id="in-range-g").output == "I wrote to [EMAIL]"


def url(organization, project) -> str:
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/reredactions/"


def test_the_api_is_for_admins_and_scoped(organization, project, member_of, other_owner, far_owner):
    admin, member = APIClient(), APIClient()
    admin.force_login(member_of(organization, Role.ADMIN))
    member.force_login(member_of(organization, Role.MEMBER))
    body = {"since": "2026-11-26T10:00:00Z", "until": "2026-11-26T11:00:00Z"}
    assert member.post(url(organization, project), body, format="json").status_code == 403
    assert admin.post(url(organization, project), {"since": body["until"], "until": body["since"]},
                      format="json").status_code == 400
    response = admin.post(url(organization, project), body, format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert len(admin.get(url(organization, project)).json()["results"]) == 1
    for user in (other_owner, far_owner):
        client = APIClient()
        client.force_login(user)
        assert client.get(url(organization, project)).status_code == 404
        assert client.post(url(organization, project), body, format="json").status_code == 404


def test_a_database_outage_answers_503_with_retry_after_not_500(organization, project, member_of, monkeypatch):
    from django.db import OperationalError

    from privacy.api import views

    def down(**kwargs):
        raise OperationalError("region database unavailable")

    monkeypatch.setattr(views, "reredaction_create", down)
    admin = APIClient()
    admin.force_login(member_of(organization, Role.ADMIN))
    response = admin.post(url(organization, project), {"since": "2026-11-26T10:00:00Z", "until": "2026-11-26T11:00:00Z"},
                          format="json")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert not ReredactionRun.objects.exists()
