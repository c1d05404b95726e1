"""Quotas on every ingest path, against the run's real PostgreSQL and Redis: over a hard limit the
whole request is a 429 with Retry-After and nothing is stored; raising the plan lets the same request
in; a soft limit adds a warning header; the self-hosting default is never limited; Redis down fails
open; the check costs no query once warm; refused events are counted and readable by the customer."""

from __future__ import annotations

import logging
import math

import pytest
from google.rpc import code_pb2, status_pb2

from billing import enforcement, limits
from billing.enforcement import WARNING_HEADER
from billing.models import Plan, RejectedEvents
from billing.services import rejections_flush, subscription_set
from ingest.stages import price as costs
from tests.billing.support import (
    clear_rejection_counters,
    langfuse_batch,
    make_plan,
    post_batch,
    post_feedback,
    post_otlp,
    post_score,
    shipped_plans,
    stored,
    subscribe,
)


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


@pytest.fixture(autouse=True)
def _fresh_limits():
    limits.invalidate()
    shipped_plans()
    clear_rejection_counters()
    yield
    limits.invalidate()


@pytest.fixture
def exhausted(organization):
    """The organization is on a plan of 2 units without overage, and has used them."""
    plan = make_plan(included_units=2)
    subscribe(organization, plan)
    return plan


def _use_up(client, api_key, project):
    response = post_batch(client, api_key)  # 2 units: exactly the quota
    assert response.status_code == 207, response.content
    assert stored(project) == 2


def _check_429(response, *, retry_after_max=5):
    assert response.status_code == 429, response.content
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= retry_after_max
    return retry_after


def test_a_langfuse_batch_over_the_hard_limit_is_429_and_nothing_is_stored(client, project, api_key, exhausted):
    _use_up(client, api_key, project)
    response = post_batch(client, api_key)
    _check_429(response)
    body = response.json()
    assert body["error"] == "QuotaExceeded"
    assert (body["reason"], body["limit"], body["usage"]) == ("quota", 2, 2)
    assert exhausted.name in body["message"] and "changing the plan" in body["message"]
    assert "resets at" in body["message"]
    assert stored(project) == 2


def test_retry_after_is_the_time_to_the_period_reset_when_that_is_sooner(client, project, api_key, organization,
                                                                          settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.BILLING_QUOTA_RETRY_AFTER_SECONDS = 10**9
    # A period anchored a month (minus 90 s) ago resets in about 90 s.
    anchor = timezone.now() - timedelta(days=31) + timedelta(seconds=90)
    subscribe(organization, make_plan(included_units=0), period_start=anchor)
    retry_after = _check_429(post_batch(client, api_key), retry_after_max=10**9)
    lim = limits.limits_for(organization.id)
    _, end = lim.period(timezone.now())
    assert abs(retry_after - math.ceil((end - timezone.now()).total_seconds())) <= 2
    assert retry_after < 40 * 86400


@pytest.mark.parametrize("route", ["/api/public/otel/v1/traces", "/v1/traces"])
def test_otlp_over_the_hard_limit_is_429_with_an_otlp_status_on_both_routes(client, project, api_key, exhausted,
                                                                             route):
    _use_up(client, api_key, project)
    response = post_otlp(client, api_key, route=route)
    _check_429(response)
    status = status_pb2.Status.FromString(response.content)
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert "quota" in status.message.lower()
    assert status.details and status.details[0].type_url.endswith("RetryInfo")
    # JSON-encoded exports get the Status as JSON.
    response = post_otlp(client, api_key, route=route, json=True)
    _check_429(response)
    assert response.json()["code"] == code_pb2.RESOURCE_EXHAUSTED
    assert stored(project) == 2


def test_rest_scores_and_browser_feedback_over_the_hard_limit_are_429(client, project, api_key, exhausted):
    _use_up(client, api_key, project)
    for response in (post_score(client, api_key), post_feedback(client, api_key)):
        _check_429(response)
        assert response.json()["reason"] == "quota"
    assert stored(project) == 2


def test_raising_the_plan_lets_the_same_batch_in(client, project, api_key, organization, exhausted, superuser):
    _use_up(client, api_key, project)
    batch = langfuse_batch()
    assert post_batch(client, api_key, batch).status_code == 429
    bigger = make_plan(included_units=100)
    subscription_set(organization=organization, plan=bigger, actor=superuser)
    response = post_batch(client, api_key, batch)
    assert response.status_code == 207
    assert not response.json()["errors"]
    assert stored(project) == 4


def test_a_plan_with_overage_is_never_refused(client, project, api_key, organization):
    subscribe(organization, make_plan(included_units=1, extra_unit_price="0.0001"))
    for _ in range(3):
        assert post_batch(client, api_key).status_code == 207
    assert stored(project) == 6


def test_the_soft_limit_adds_a_warning_header(client, project, api_key, organization):
    subscribe(organization, make_plan(included_units=10, soft_limit_share=0.5))
    first = post_batch(client, api_key)  # 2 of 10
    assert WARNING_HEADER not in first
    post_batch(client, api_key)  # 4
    warned = post_batch(client, api_key)  # 6 ≥ 5
    assert warned.status_code == 207
    assert warned[WARNING_HEADER].startswith("6 of 10 included units used")
    assert stored(project) == 6


def test_an_organization_without_a_subscription_is_unlimited_and_never_touches_redis(
    client, project, api_key, organization, monkeypatch
):
    # The shipped plans exist, and none applies to an organization that has no subscription.
    assert set(Plan.objects.values_list("name", flat=True)) >= {"free", "team", "enterprise", "unlimited"}

    def no_redis():
        raise AssertionError("the unlimited default must not reach Redis")

    monkeypatch.setattr(enforcement, "_client", no_redis)
    for _ in range(5):
        response = post_batch(client, api_key)
        assert response.status_code == 207
        assert "X-RateLimit-Limit" not in response and WARNING_HEADER not in response
    assert stored(project) == 10


def test_the_unlimited_plan_chosen_explicitly_is_unlimited_too(client, project, api_key, organization):
    subscribe(organization, Plan.objects.get(name="unlimited"))
    for _ in range(3):
        assert post_batch(client, api_key).status_code == 207


def test_the_check_costs_no_query_once_warm_and_a_plan_change_is_seen(project, organization, queries_everywhere):
    plan = make_plan(included_units=100)
    subscribe(organization, plan)
    enforcement.check(project=project, api_key_id=None, units=1)  # warms the cache
    with queries_everywhere() as captured:
        for _ in range(5):
            enforcement.check(project=project, api_key_id=None, units=1)
    assert captured == []
    plan.included_units = 0
    plan.save()  # bumps the generation stamp
    with pytest.raises(enforcement.QuotaExceeded):
        enforcement.check(project=project, api_key_id=None, units=1)


def test_redis_down_fails_open_with_a_log_line(client, project, api_key, organization, settings, caplog):
    from config import cache as failfast
    from config.devstack import free_port

    subscribe(organization, make_plan(included_units=0))  # everything would be refused
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    failfast.reset()
    try:
        with caplog.at_level(logging.WARNING):
            response = post_batch(client, api_key)
        assert response.status_code == 207, response.content
        assert stored(project) == 2
        assert "quota checks fail open" in caplog.text or "billing check unavailable" in caplog.text
    finally:
        failfast.reset()
        from tenancy import keycache

        keycache._state.update(checked_at=0.0, redis_ok=True)
        limits._state.update(checked_at=0.0, redis_ok=True)


def test_rejected_events_are_counted_by_reason_and_flushed(client, project, api_key, organization, exhausted):
    _use_up(client, api_key, project)
    post_batch(client, api_key)  # 2 events refused
    post_otlp(client, api_key)  # 1 span (a trace and an observation: 2 units)
    post_score(client, api_key)  # 1
    rejections_flush()
    [row] = RejectedEvents.objects.filter(organization=organization)
    assert (row.project_id, row.reason, row.requests, row.events) == (project.id, "quota", 3, 5)
    post_score(client, api_key)
    rejections_flush()
    row.refresh_from_db()
    assert (row.requests, row.events) == (4, 6)
    assert rejections_flush() == 0


def test_two_flushes_at_once_count_each_rejection_once(organization, project, monkeypatch):
    from billing import services

    enforcement._client().hincrby(enforcement.REJECTED_KEY, f"{organization.id}|{project.id}|2026-12-01|quota|events", 3)
    parse, raced = services.parse_counters, []

    def while_another_flush_runs(raw):
        if not raced:  # a second worker's flush (a beat backlog) reaches the renamed hash meanwhile
            raced.append("started")
            raced.append(rejections_flush())
        return parse(raw)

    monkeypatch.setattr(services, "parse_counters", while_another_flush_runs)
    assert rejections_flush() == 1
    assert raced == ["started", 0]
    assert list(RejectedEvents.objects.values_list("events", flat=True)) == [3]


def test_the_flush_skips_counters_of_deleted_organizations(organization, project):
    import uuid

    from billing.models import RejectedEvents

    enforcement._client().hincrby(enforcement.REJECTED_KEY, f"{uuid.uuid4()}|{uuid.uuid4()}|2026-12-01|quota|events", 3)
    enforcement._client().hincrby(enforcement.REJECTED_KEY, f"{organization.id}|{project.id}|2026-12-01|quota|events", 2)
    assert rejections_flush() == 1
    assert list(RejectedEvents.objects.values_list("organization_id", "events")) == [(organization.id, 2)]
