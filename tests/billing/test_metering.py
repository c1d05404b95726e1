"""The exact meter (billing/metering.py): rows created per project and hour, counted once whatever
replays and updates followed, written once per (region, hour) into the control plane; the usage,
invoice-preview and usage-record endpoints that read it; the soft-limit banner and e-mail."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from billing import limits
from billing.metering import JUDGE_ENVIRONMENT, hours_due, meter_hour
from billing.models import Meter, MeteredHour, UsageRecord
from billing.services import quota_notices_send
from ingest.stages import price as costs
from scores.models import Score
from tenancy.models import Role
from tests.billing.support import clear_rejection_counters, make_plan, post_batch, shipped_plans, subscribe
from traces.models import Observation, Trace


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)
    limits.invalidate()
    shipped_plans()
    clear_rejection_counters()
    yield
    limits.invalidate()


def _hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def _batch(trace_id: str, *, environment: str | None = None, tokens: int = 0) -> dict:
    body = {"id": trace_id, "name": "q"}
    generation = {"id": trace_id + "-g", "traceId": trace_id, "name": "llm", "model": "m"}
    if environment:
        body["environment"] = generation["environment"] = environment
    if tokens:
        generation["usage"] = {"input": tokens, "output": 0}
    return {"batch": [
        {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": "2026-12-01T10:00:00Z", "body": body},
        {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": "2026-12-01T10:00:00Z",
         "body": generation},
        {"id": uuid.uuid4().hex, "type": "score-create", "timestamp": "2026-12-01T10:00:00Z",
         "body": {"id": trace_id + "-s", "traceId": trace_id, "name": "quality", "value": 1}},
    ]}


def _metered(project) -> dict[str, int]:
    return {r.meter: r.quantity for r in UsageRecord.objects.filter(project_id=project.id)}


def _rows(project) -> dict[str, int]:
    return {"traces": Trace.objects.for_project(project).count(),
            "observations": Observation.objects.for_project(project).count(),
            "scores": Score.objects.for_project(project).count()}


def test_replays_and_updates_are_metered_once(client, project, api_key, other_project, other_api_key):
    batches = [_batch(f"m-{i}") for i in range(5)]
    for body in batches:
        assert post_batch(client, api_key, body).status_code == 207
    for body in batches[:3]:  # replayed as is
        assert post_batch(client, api_key, body).status_code == 207
    update = {"batch": [{"id": uuid.uuid4().hex, "type": "generation-update", "timestamp": "2026-12-01T10:00:01Z",
                         "body": {"id": "m-0-g", "traceId": "m-0", "output": "later"}}]}
    assert post_batch(client, api_key, update).status_code == 207
    assert post_batch(client, other_api_key, _batch("o-1")).status_code == 207

    written = meter_hour(region=project.region, hour=_hour())
    assert written and written > 0
    metered = _metered(project)
    assert {k: metered.get(k, 0) for k in ("traces", "observations", "scores")} == _rows(project) == {
        "traces": 5, "observations": 5, "scores": 5}
    assert metered[Meter.BYTES] > 0
    # The neighbour in the same region is metered under its own organization, not ours.
    other = UsageRecord.objects.filter(project_id=other_project.id, meter=Meter.TRACES).get()
    assert other.quantity == 1 and other.organization_id == other_project.organization_id
    assert not UsageRecord.objects.filter(project_id=project.id).exclude(organization=project.organization).exists()


def test_a_rerun_of_an_hour_changes_nothing_even_after_an_erasure(client, project, api_key):
    assert post_batch(client, api_key, _batch("r-1")).status_code == 207
    hour = _hour()
    assert meter_hour(region=project.region, hour=hour) is not None
    before = _metered(project)
    Trace.objects.for_project(project).filter(id="r-1").delete()  # what an erasure would do later
    assert post_batch(client, api_key, _batch("r-2")).status_code == 207
    assert meter_hour(region=project.region, hour=hour) is None
    assert _metered(project) == before
    assert MeteredHour.objects.filter(region=project.region, hour=hour).count() == 1


def test_each_region_meters_its_own_projects(client, project, api_key, far_project, far_api_key):
    assert post_batch(client, far_api_key, _batch("f-1")).status_code == 207
    assert post_batch(client, api_key, _batch("e-1")).status_code == 207
    meter_hour(region=project.region, hour=_hour())
    assert _metered(project)["traces"] == 1
    assert not UsageRecord.objects.filter(project_id=far_project.id).exists()
    meter_hour(region=far_project.region, hour=_hour())
    assert _metered(far_project)["traces"] == 1


def test_judge_calls_are_metered_apart_and_are_not_billable_units(client, project, api_key):
    assert post_batch(client, api_key, _batch("j-1", environment=JUDGE_ENVIRONMENT, tokens=120)).status_code == 207
    assert post_batch(client, api_key, _batch("u-1")).status_code == 207
    meter_hour(region=project.region, hour=_hour())
    metered = _metered(project)
    assert metered["traces"] == 1 and metered["observations"] == 1
    assert metered[Meter.JUDGE_CALLS] == 1 and metered[Meter.JUDGE_TOKENS] == 120


def test_hours_due_skip_metered_hours_and_the_open_one(project, settings):
    settings.METERING_GRACE_MINUTES = 10
    now = timezone.now().replace(minute=5, second=0, microsecond=0)
    due = hours_due(region=project.region, now=now)
    # At hh:05 the previous hour is still in its grace period: the newest due hour is two hours back.
    assert due[-1] == now.replace(minute=0) - timedelta(hours=2)
    MeteredHour.objects.create(region=project.region, hour=due[-1])
    assert due[-1] not in hours_due(region=project.region, now=now)
    later = hours_due(region=project.region, now=now + timedelta(minutes=10))
    # Past the grace period the previous hour is due too; the metered one stays done.
    assert later[-1] == now.replace(minute=0) - timedelta(hours=1) and due[-1] not in later


# --- the API -------------------------------------------------------------------------------------

def _as(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_usage_by_day_invoice_and_export(client, organization, owner, project, api_key, member_of):
    plan = make_plan(included_units=4, extra_unit_price=Decimal("0.5"))
    subscribe(organization, plan, period_start=timezone.now() - timedelta(days=3))
    for i in range(3):
        assert post_batch(client, api_key, _batch(f"i-{i}")).status_code == 207
    meter_hour(region=project.region, hour=_hour())
    viewer = _as(member_of(organization, Role.VIEWER))

    usage = viewer.get(f"/api/v1/organizations/{organization.id}/billing/usage")
    assert usage.status_code == 200, usage.content
    [day] = usage.json()
    assert day["project_id"] == str(project.id) and day["units"] == 9
    assert (day["traces"], day["observations"], day["scores"]) == (3, 3, 3)

    invoice = viewer.get(f"/api/v1/organizations/{organization.id}/billing/invoice-preview").json()
    assert (invoice["units"], invoice["included_units"], invoice["overage_units"]) == (9, 4, 5)
    assert invoice["total"] == "2.50" and invoice["plan"] == plan.name

    # Usage records are the owner's (they price the organization's usage).
    assert viewer.get(f"/api/v1/organizations/{organization.id}/billing/usage-records").status_code == 403
    records = _as(owner).get(f"/api/v1/organizations/{organization.id}/billing/usage-records").json()
    lines = {line["meter"]: line for line in records}
    assert lines["units"]["quantity"] == 9 and lines["traces"]["quantity"] == 3
    again = _as(owner).get(f"/api/v1/organizations/{organization.id}/billing/usage-records").json()
    assert [r["idempotency_key"] for r in again] == [r["idempotency_key"] for r in records]
    assert len({r["idempotency_key"] for r in records}) == len(records)
    raw = _as(owner).get(f"/api/v1/organizations/{organization.id}/billing/usage-records?output=csv")
    assert raw.status_code == 200 and raw["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(raw.content.decode())))
    assert {r["meter"]: int(r["quantity"]) for r in rows}["units"] == 9


def test_bad_ranges_are_400(organization, owner):
    api = _as(owner)
    base = f"/api/v1/organizations/{organization.id}/billing"
    assert api.get(base + "/usage?since=2026-13-01").status_code == 400
    assert api.get(base + "/usage?since=2026-12-05&until=2026-12-01").status_code == 400
    assert api.get(base + "/usage-records?output=xml").status_code == 400
    assert api.get(base + "/invoice-preview?at=yesterday").status_code == 400


def test_other_tenants_see_nothing(client, organization, project, api_key, other_owner, far_owner, other_api_key):
    assert post_batch(client, api_key, _batch("x-1")).status_code == 207
    meter_hour(region=project.region, hour=_hour())
    for path in ("usage", "invoice-preview", "usage-records"):
        url = f"/api/v1/organizations/{organization.id}/billing/{path}"
        assert _as(other_owner).get(url).status_code == 404
        assert _as(far_owner).get(url).status_code == 404
        assert client.get(url, HTTP_AUTHORIZATION=other_api_key.basic).status_code == 404
    # Their own usage holds none of ours.
    own = _as(other_owner).get(f"/api/v1/organizations/{other_owner.memberships.first().organization_id}"
                               "/billing/usage").json()
    assert all(row["project_id"] != str(project.id) for row in own)


def test_operator_export_is_for_superusers_only(client, project, api_key, owner, superuser):
    assert post_batch(client, api_key, _batch("s-1")).status_code == 207
    meter_hour(region=project.region, hour=_hour())
    assert _as(owner).get("/api/v1/billing/usage-records").status_code == 404
    assert client.get("/api/v1/billing/usage-records", HTTP_AUTHORIZATION=api_key.basic).status_code == 404
    lines = _as(superuser).get("/api/v1/billing/usage-records").json()
    assert any(line["organization_id"] == str(project.organization_id) and line["meter"] == "units"
               for line in lines)


# --- soft limit: banner and e-mail ---------------------------------------------------------------

def test_soft_limit_emails_owners_and_admins_once_per_period(client, organization, owner, project, api_key,
                                                               member_of):
    admin = member_of(organization, Role.ADMIN)
    member_of(organization, Role.VIEWER)
    subscribe(organization, make_plan(included_units=10, soft_limit_share=0.5))
    assert quota_notices_send() == 0  # nothing used yet
    for i in range(3):  # 6 units ≥ 5
        assert post_batch(client, api_key, {"batch": _batch(f"n-{i}")["batch"][:2]}).status_code == 207
    mail.outbox.clear()
    assert quota_notices_send() == 1
    [message] = mail.outbox
    assert sorted(message.to) == sorted([owner.email, admin.email])
    assert "6 of 10" in message.subject
    assert quota_notices_send() == 0 and len(mail.outbox) == 1


def test_soft_limit_banner_for_owners_only(client, organization, owner, project, api_key, member_of, other_owner):
    subscribe(organization, make_plan(included_units=10, soft_limit_share=0.1))
    assert post_batch(client, api_key, {"batch": _batch("b-1")["batch"][:2]}).status_code == 207
    client.force_login(owner)
    page = client.get("/admin/billing/usage/")
    assert page.status_code == 200
    assert b'id="lg-quota-warnings"' in page.content and b"2 of 10 included units" in page.content
    viewer = member_of(organization, Role.VIEWER)
    client.force_login(viewer)
    assert b"lg-quota-warnings" not in client.get("/admin/billing/usage/").content
    client.force_login(other_owner)
    assert b"lg-quota-warnings" not in client.get("/admin/").content


def test_soft_limit_banner_reaches_a_superuser_who_owns_the_organization(client, organization, project, api_key,
                                                                          other_organization):
    from tenancy.models import Membership, User

    subscribe(organization, make_plan(included_units=10, soft_limit_share=0.1))
    assert post_batch(client, api_key, {"batch": _batch("s-1")["batch"][:2]}).status_code == 207
    operator = User.objects.create_superuser(email="op@example.com", password="x-pass-1234")
    Membership.objects.create(user=operator, organization=organization, role=Role.OWNER)
    client.force_login(operator)
    page = client.get("/admin/")
    assert b'id="lg-quota-warnings"' in page.content and b"2 of 10 included units" in page.content
    # A superuser who owns nothing is not warned about organizations they merely can see.
    bare = User.objects.create_superuser(email="bare@example.com", password="x-pass-1234")
    client.force_login(bare)
    assert b"lg-quota-warnings" not in client.get("/admin/").content


def test_the_soft_limit_banner_costs_no_query_per_organization(client, owner, project):
    """The banner runs on every console and admin page: an owner of 12 organizations past their soft
    limit, with the limits cache cold (any plan change anywhere empties it), costs the queries of 2."""
    from contextlib import ExitStack

    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from tests.factories import MembershipFactory, OrganizationFactory

    plan = make_plan(included_units=10, soft_limit_share=0.0)  # past the soft limit with nothing used
    client.force_login(owner)
    warned = 0

    def queries_with(k: int) -> int:
        nonlocal warned
        for _ in range(k - warned):
            organization = OrganizationFactory(name=f"Owned {warned}")
            MembershipFactory(organization=organization, user=owner, role=Role.OWNER)
            subscribe(organization, plan)
            warned += 1
        client.get("/admin/")
        limits.invalidate()  # cold: every organization's limits are read again
        with ExitStack() as stack:
            captured = [stack.enter_context(CaptureQueriesContext(connections[a])) for a in connections]
            page = client.get("/admin/")
        assert page.content.count(b"0 of 10 included units") == k
        return sum(len(c.captured_queries) for c in captured)

    small = queries_with(2)
    assert queries_with(12) == small


def test_usage_page_shows_metered_totals_and_hides_other_organizations(client, organization, owner, project,
                                                                        api_key, other_organization):
    for i in range(2):
        assert post_batch(client, api_key, _batch(f"p-{i}")).status_code == 207
    meter_hour(region=project.region, hour=_hour())
    client.force_login(owner)
    page = client.get(f"/admin/billing/usage/?organization={organization.id}")
    assert page.status_code == 200
    assert b'id="lg-usage-total">6<' in page.content and b'id="lg-invoice-units">6<' in page.content
    assert b"<rect" in page.content
    assert client.get(f"/admin/billing/usage/?organization={other_organization.id}").status_code == 404


# --- plan limits on projects and members ------------------------------------------------------------

def test_plan_limits_projects_and_members(organization, owner, project, member_of, other_organization):
    from django.core.exceptions import ValidationError

    from tenancy import services
    from tenancy.models import Membership, Project
    from tests.factories import UserFactory

    subscribe(organization, make_plan(max_projects=Project.objects.filter(organization=organization).count() + 1,
                                      max_members=Membership.objects.filter(organization=organization).count() + 1))
    services.project_create(organization=organization, name="second", actor=owner)
    with pytest.raises(ValidationError, match="allows"):
        services.project_create(organization=organization, name="third", actor=owner)
    api = _as(owner)
    answer = api.post(f"/api/v1/organizations/{organization.id}/projects/", {"name": "fourth"}, format="json")
    assert answer.status_code == 400 and "allows" in str(answer.json())
    services.membership_add(organization=organization, user=UserFactory(), role=Role.VIEWER, actor=owner)
    with pytest.raises(ValidationError, match="members"):
        services.membership_add(organization=organization, user=UserFactory(), role=Role.VIEWER, actor=owner)
    # Changing the role of an existing member is not a new member; another organization is not limited.
    member = Membership.objects.filter(organization=organization, role=Role.VIEWER).first()
    services.membership_add(organization=organization, user=member.user, role=Role.ADMIN, actor=owner)
    services.project_create(organization=other_organization, name="free to grow", actor=None)
