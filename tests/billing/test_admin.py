"""Console pages: plans are the operator's (superusers edit, everyone reads); a subscription is seen by
its organization's members only and changed by superusers only, and the change reaches ingestion."""

from __future__ import annotations

import pytest
from django.test import Client

from billing import limits
from billing.models import Plan, Subscription
from tests.billing.support import make_plan, shipped_plans, subscribe

PLANS = "/admin/billing/plan/"
SUBSCRIPTIONS = "/admin/billing/subscription/"


@pytest.fixture(autouse=True)
def _fresh():
    limits.invalidate()
    shipped_plans()
    yield
    limits.invalidate()


def console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def plan_form(plan: Plan, **changes) -> dict:
    data = {name: ("" if getattr(plan, name) is None else getattr(plan, name)) for name in (
        "name", "included_units", "extra_unit_price", "max_projects", "max_members", "retention_days",
        "eval_judge_calls", "ingest_rate_per_second", "key_rate_per_second", "soft_limit_share")}
    data.update(changes)
    return data


def test_an_owner_reads_plans_and_its_own_subscription_but_changes_neither(
    member_of, organization, other_organization
):
    free = Plan.objects.get(name="free")
    mine = subscribe(organization, free)
    theirs = subscribe(other_organization, free)
    client = console(member_of(organization, "owner"))
    assert client.get(PLANS).status_code == 200
    assert client.get(f"{PLANS}{free.pk}/change/").status_code == 200  # view only
    assert client.post(f"{PLANS}{free.pk}/change/", plan_form(free, included_units=10**9)).status_code == 403
    assert Plan.objects.get(pk=free.pk).included_units == 50_000
    page = client.get(SUBSCRIPTIONS).content.decode()
    assert "Acme" in page and "Globex" not in page
    assert client.get(f"{SUBSCRIPTIONS}{mine.pk}/change/").status_code == 200
    assert client.get(f"{SUBSCRIPTIONS}{theirs.pk}/change/").status_code == 302  # "doesn't exist"
    assert client.get(f"{SUBSCRIPTIONS}add/").status_code == 403


def test_a_superuser_edits_a_plan_and_the_new_limit_applies(superuser, organization, project):
    from billing import enforcement

    plan = make_plan(included_units=0)
    subscribe(organization, plan)
    with pytest.raises(enforcement.QuotaExceeded):
        enforcement.check(project=project, api_key_id=None, units=1)
    response = console(superuser).post(f"{PLANS}{plan.pk}/change/", plan_form(plan, included_units=100))
    assert response.status_code == 302, response.content.decode()[:2000]
    enforcement.check(project=project, api_key_id=None, units=1)  # admitted now


def test_a_superuser_rejects_bad_overrides_in_the_admin(superuser, organization):
    sub = subscribe(organization, Plan.objects.get(name="team"))
    response = console(superuser).post(f"{SUBSCRIPTIONS}{sub.pk}/change/", {
        "plan": str(sub.plan.pk), "period_start_0": "2026-12-01", "period_start_1": "00:00:00",
        "overrides": '{"included_units": "lots"}',
    })
    assert response.status_code == 200 and "wrong type" in response.content.decode()
    assert Subscription.objects.get(pk=sub.pk).overrides == {}
