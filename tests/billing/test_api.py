"""`/api/v1/organizations/{id}/subscription` and `…/billing/rejected-events`: members read, only
superusers change a plan, and no other tenant (same region or far) can read or change either."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from billing import limits
from billing.models import Plan, Subscription
from ingest.stages import price as costs
from tenancy.models import AuditLogEntry
from tests.billing.support import clear_rejection_counters, make_plan, post_batch, shipped_plans, subscribe


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)
    limits.invalidate()
    shipped_plans()
    clear_rejection_counters()
    yield
    limits.invalidate()


def as_user(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def sub_url(org) -> str:
    return f"/api/v1/organizations/{org.id}/subscription"


def rejected_url(org) -> str:
    return f"/api/v1/organizations/{org.id}/billing/rejected-events"


def test_a_viewer_reads_the_unlimited_default(organization, member_of):
    response = as_user(member_of(organization, "viewer")).get(sub_url(organization))
    assert response.status_code == 200
    body = response.json()
    assert (body["plan"], body["subscribed"], body["usage_units"]) == ("unlimited", False, None)
    assert all(value is None for value in body["limits"].values())


def test_a_member_reads_the_plan_its_limits_and_the_usage(client, organization, api_key, member_of):
    subscribe(organization, Plan.objects.get(name="free"), overrides={"included_units": 1000})
    assert post_batch(client, api_key).status_code == 207
    body = as_user(member_of(organization, "member")).get(sub_url(organization)).json()
    assert (body["plan"], body["subscribed"], body["usage_units"]) == ("free", True, 2)
    assert body["limits"]["included_units"] == 1000  # the override
    assert body["limits"]["hard_limit_units"] == 1000  # free has no overage
    assert body["limits"]["ingest_rate_per_second"] == 20
    assert body["period_start"] < body["period_end"]


def test_only_a_superuser_changes_the_plan_and_it_is_audited(client, organization, owner, superuser, api_key):
    subscribe(organization, make_plan(included_units=0))
    assert post_batch(client, api_key).status_code == 429
    denied = as_user(owner).put(sub_url(organization), {"plan": "team"}, format="json")
    assert denied.status_code == 403
    assert Subscription.objects.get(organization=organization).plan.name != "team"
    response = as_user(superuser).put(sub_url(organization), {"plan": "team", "overrides": {"key_rate_per_second": 7}},
                                      format="json")
    assert response.status_code == 200, response.content
    assert response.json()["plan"] == "team"
    assert response.json()["limits"]["key_rate_per_second"] == 7
    assert AuditLogEntry.objects.filter(organization_id=organization.id, action="billing.subscription_changed").exists()
    assert post_batch(client, api_key).status_code == 207  # the new plan applies at once


@pytest.mark.parametrize("body", [{"plan": "nope"}, {"plan": "team", "overrides": {"bogus": 1}},
                                  {"plan": "team", "overrides": {"included_units": -1}},
                                  {"plan": "team", "overrides": {"included_units": "many"}}, {}])
def test_bad_subscription_changes_are_400(organization, superuser, body):
    response = as_user(superuser).put(sub_url(organization), body, format="json")
    assert response.status_code == 400, response.content
    assert not Subscription.objects.filter(organization=organization).exists()


def test_rejected_events_are_visible_at_once_and_after_the_flush(client, organization, project, api_key, member_of):
    from billing.services import rejections_flush

    subscribe(organization, make_plan(included_units=0))
    for _ in range(3):
        assert post_batch(client, api_key).status_code == 429
    viewer = as_user(member_of(organization, "viewer"))
    before = viewer.get(rejected_url(organization))
    assert before.status_code == 200
    [row] = before.json()
    assert (row["project_id"], row["reason"], row["requests"], row["events"]) == (str(project.id), "quota", 3, 6)
    rejections_flush()
    assert viewer.get(rejected_url(organization)).json() == before.json()
    assert viewer.get(rejected_url(organization), {"since": "2000-01-01", "until": "2000-01-02"}).json() == []
    assert viewer.get(rejected_url(organization), {"since": "yesterday"}).status_code == 400


@pytest.mark.parametrize("url", [sub_url, rejected_url])
def test_other_tenants_get_404(client, url, organization, api_key, other_owner, far_owner, other_organization):
    subscribe(organization, make_plan(included_units=0))
    post_batch(client, api_key)
    for stranger in (other_owner, far_owner):
        assert as_user(stranger).get(url(organization)).status_code == 404
        assert as_user(stranger).put(url(organization), {"plan": "team"}, format="json").status_code in (404, 405)
    # Their own view shows nothing of ours.
    own = as_user(other_owner).get(url(other_organization)).json()
    assert own == [] if url is rejected_url else own["plan"] == "unlimited"
    assert APIClient().get(url(organization)).status_code in (401, 403)


def test_api_keys_cannot_read_billing(client, organization, api_key):
    response = client.get(sub_url(organization), HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 404


def test_the_endpoints_are_in_the_openapi_schema():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert set(paths["/api/v1/organizations/{organization_id}/subscription"]) == {"get", "put"}
    assert "get" in paths["/api/v1/organizations/{organization_id}/billing/rejected-events"]
