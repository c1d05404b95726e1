"""Per-key and per-organization ingest rate limits: token buckets in the run's real Redis."""

from __future__ import annotations

import time

import pytest

from billing import limits
from billing.models import RejectedEvents
from billing.services import rejections_flush
from ingest.stages import price as costs
from tests.billing.support import (
    clear_rejection_counters,
    make_plan,
    post_batch,
    post_otlp,
    post_score,
    stored,
    subscribe,
)
from tests.factories import ApiKeyPair, ProjectFactory


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


@pytest.fixture(autouse=True)
def _one_second_buckets(settings):
    settings.BILLING_RATE_BURST_SECONDS = 1.0
    limits.invalidate()
    clear_rejection_counters()
    yield
    limits.invalidate()


def test_a_key_over_its_rate_gets_429_and_the_headers(client, project, api_key, organization):
    subscribe(organization, make_plan(ingest_rate_per_second=100, key_rate_per_second=2))
    first = post_batch(client, api_key)
    assert first.status_code == 207
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("2", "1")
    assert int(first["X-RateLimit-Reset"]) >= 1
    assert post_batch(client, api_key).status_code == 207
    refused = post_batch(client, api_key)
    assert refused.status_code == 429
    assert refused["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused["Retry-After"]) <= 1
    body = refused.json()
    assert (body["error"], body["reason"], body["limit"]) == ("RateLimitExceeded", "key_rate", 2)
    assert stored(project) == 4
    # Another key of the same project has its own bucket.
    other_key = ApiKeyPair.issue(project)
    assert post_batch(client, other_key).status_code == 207
    # The bucket refills at the rate.
    time.sleep(0.6)
    assert post_batch(client, api_key).status_code == 207


def test_the_organization_bucket_is_shared_by_its_keys_and_projects_only(
    client, project, api_key, organization, other_organization, other_api_key, far_organization, far_api_key
):
    plan = make_plan(ingest_rate_per_second=2)
    for org in (organization, other_organization, far_organization):
        subscribe(org, plan)
    second_project_key = ApiKeyPair.issue(ProjectFactory(organization=organization, region="us"))
    assert post_batch(client, api_key).status_code == 207
    assert post_otlp(client, second_project_key).status_code == 200
    refused = post_score(client, ApiKeyPair.issue(project))
    assert refused.status_code == 429
    assert refused.json()["reason"] == "org_rate"
    # Other tenants (same region and the far one) are not starved.
    for key in (other_api_key, far_api_key):
        response = post_batch(client, key)
        assert response.status_code == 207
        assert response["X-RateLimit-Remaining"] == "1"
    rejections_flush()
    [row] = RejectedEvents.objects.all()
    assert (row.organization_id, row.reason, row.requests, row.events) == (organization.id, "org_rate", 1, 1)


def test_otlp_rate_limited_is_a_retryable_429_with_the_headers(client, project, api_key, organization):
    subscribe(organization, make_plan(ingest_rate_per_second=1))
    assert post_otlp(client, api_key).status_code == 200
    refused = post_otlp(client, api_key, route="/v1/traces")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1" and refused["X-RateLimit-Limit"] == "1"
    assert refused["Content-Type"] == "application/x-protobuf"
