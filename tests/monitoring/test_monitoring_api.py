"""The monitoring API: the seed's cost-by-feature question (and by model, user, prompt version)
answered from the rollups, with the 80/20 marker, rates and percentiles; the per-project feature
setting (audited, roles, rebuild); isolation from the same-region and the far-region tenant."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ingest import writer
from monitoring.models import HourlyRollup
from tenancy.models import AuditAction, AuditLogEntry, Role


def cost_url(organization, project, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/metrics/cost-by-feature" + (
        f"?{qs}" if qs else ""
    )


def settings_url(organization, project):
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/monitoring-settings"


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def call(obs_id, trace_id, *, cost, start, latency_ms=1000, model="gpt-4o", **extra):
    return {
        "id": obs_id, "trace_id": trace_id, "type": "GENERATION", "start_time": start,
        "end_time": start + timedelta(milliseconds=latency_ms), "model": model,
        "total_cost": Decimal(cost), "cost_details": {"total": float(cost)}, **extra,
    }


@pytest.fixture
def traffic(project):
    """Three features spending 70, 20 and 10 (and one older call outside a 7-day window)."""
    now = timezone.now() - timedelta(hours=1)
    traces = [
        {"id": "t-support", "name": "chat", "user_id": "alice", "metadata": {"feature": "support"}, "tags": ["feature:help"]},
        {"id": "t-search", "name": "search", "user_id": "bob", "metadata": {"feature": "search"}, "tags": ["feature:find"]},
        {"id": "t-summary", "name": "summarise", "user_id": "alice", "metadata": {"feature": "summary"}},
        {"id": "t-old", "name": "chat", "metadata": {"feature": "legacy"}},
    ]
    calls = [
        call("c1", "t-support", cost="40", start=now, latency_ms=800, prompt_name="qa", prompt_version=2),
        call("c2", "t-support", cost="30", start=now, latency_ms=1200, level="ERROR", prompt_name="qa", prompt_version=2),
        call("c3", "t-search", cost="20", start=now, latency_ms=300, model="claude-sonnet-4"),
        call("c4", "t-summary", cost="6", start=now, latency_ms=5000, finish_reason="content_filter"),
        call("c5", "t-summary", cost="4", start=now, latency_ms=6000),
        call("c6", "t-old", cost="999", start=now - timedelta(days=9)),
    ]
    writer.write_records(project=project, traces=traces, observations=calls, scores=[])
    return now


def test_spend_by_feature_is_ordered_with_the_80_20_marker(organization, project, owner, traffic):
    response = person(owner).get(cost_url(organization, project, days=7))
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["rows"]
    assert [r["key"]["feature"] for r in rows] == ["support", "search", "summary"]  # legacy is 9 days old
    assert [Decimal(r["spend"]) for r in rows] == [70, 20, 10]
    assert [r["calls"] for r in rows] == [2, 1, 2]
    assert [Decimal(r["cost_per_call"]) for r in rows] == [35, 20, 5]
    assert [r["cumulative_share"] for r in rows] == pytest.approx([0.7, 0.9, 1.0])
    assert [r["within_80"] for r in rows] == [True, True, False] and body["groups_within_80"] == 2
    assert rows[0]["error_rate"] == 0.5 and rows[2]["refusal_rate"] == 0.5
    assert body["total"]["calls"] == 5 and Decimal(body["total"]["spend"]) == 100
    assert body["total"]["error_rate"] == 0.2 and body["total"]["refusal_rate"] == 0.2
    # Percentiles from the histograms: within a bucket (±9%) of the true values.
    latency = rows[2]["latency_ms"]
    assert latency["p50"] == pytest.approx(5000, rel=0.1) and latency["p99"] == pytest.approx(6000, rel=0.1)
    assert latency["avg"] == pytest.approx(5500)
    assert set(rows[0]["ttft_ms"]) == {"p50", "p95", "p99"}


def test_a_longer_window_includes_older_calls(organization, project, owner, traffic):
    body = person(owner).get(cost_url(organization, project, days=10)).json()
    assert body["rows"][0]["key"] == {"feature": "legacy"} and Decimal(body["total"]["spend"]) == 1099


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        ("model", [{"model": "gpt-4o"}, {"model": "claude-sonnet-4"}]),
        ("user", [{"user_id": "alice"}, {"user_id": "bob"}]),
        ("prompt_version", [{"prompt_name": "qa", "prompt_version": 2}, {"prompt_name": "", "prompt_version": 0}]),
    ],
)
def test_the_same_breakdown_by_model_user_and_prompt_version(organization, project, owner, traffic, by, keys):
    body = person(owner).get(cost_url(organization, project, days=7, by=by)).json()
    assert body["by"] == by
    assert [r["key"] for r in body["rows"]] == keys
    assert sum(Decimal(r["spend"]) for r in body["rows"]) == 100


@pytest.mark.parametrize("query", [{"days": 0}, {"days": 91}, {"days": "week"}, {"by": "colour"}])
def test_bad_parameters_answer_400(organization, project, owner, query):
    response = person(owner).get(cost_url(organization, project, **query))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")


def test_the_breakdown_reads_only_the_project_s_rollups_in_one_query(
    organization, project, owner, other_project, far_project, traffic, queries_everywhere
):
    now = timezone.now() - timedelta(hours=1)
    for neighbour in (other_project, far_project):
        writer.write_records(
            project=neighbour, scores=[], traces=[{"id": "t-x", "metadata": {"feature": "support"}}],
            observations=[call("c1", "t-x", cost="500", start=now)],
        )
    with queries_everywhere() as queries:
        body = person(owner).get(cost_url(organization, project)).json()
    assert Decimal(body["rows"][0]["spend"]) == 70 and Decimal(body["total"]["spend"]) == 100
    rollup_reads = [q for q in queries if "monitoring_hourlyrollup" in q["sql"]]
    assert len(rollup_reads) == 1 and "traces_observation" not in " ".join(q["sql"] for q in queries)


def test_another_tenant_gets_404_for_the_metrics_and_the_settings(
    organization, project, other_owner, far_owner, traffic
):
    for stranger in (other_owner, far_owner):
        client = person(stranger)
        assert client.get(cost_url(organization, project)).status_code == 404
        assert client.get(settings_url(organization, project)).status_code == 404
        assert client.patch(settings_url(organization, project), {"feature_source": "trace_name"},
                            format="json").status_code == 404


# --- the feature setting -------------------------------------------------------------------------------


def test_the_default_is_the_metadata_key_feature(organization, project, member_of):
    body = person(member_of(organization, Role.VIEWER)).get(settings_url(organization, project)).json()
    assert body == {
        "project_id": str(project.id), "configured": False, "feature_source": "metadata", "feature_key": "feature",
        "applied": True, "updated_at": None,
    }


def test_an_admin_switches_to_a_tag_prefix_and_the_rollups_follow_audited(organization, project, member_of, traffic):
    admin = member_of(organization, Role.ADMIN)
    response = person(admin).put(
        settings_url(organization, project), {"feature_source": "tag_prefix", "feature_key": "feature:"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["applied"] is True and response.json()["configured"] is True
    rows = person(admin).get(cost_url(organization, project)).json()["rows"]
    assert [(r["key"]["feature"], Decimal(r["spend"])) for r in rows] == [("help", 70), ("find", 20), ("", 10)]
    # New writes are counted under the new rule too.
    writer.write_records(
        project=project, scores=[], traces=[{"id": "t-new", "tags": ["feature:help"]}],
        observations=[call("c9", "t-new", cost="5", start=traffic)],
    )
    rows = person(admin).get(cost_url(organization, project)).json()["rows"]
    assert (rows[0]["key"]["feature"], Decimal(rows[0]["spend"])) == ("help", 75)
    [entry] = AuditLogEntry.objects.filter(action=AuditAction.MONITORING_SETTINGS_UPDATED)
    assert entry.actor_id == admin.id and entry.target_id == str(project.id)
    assert entry.data["changes"]["feature_source"] == ["metadata", "tag_prefix"]

    # The trace name as feature; an unchanged setting writes no audit entry.
    client = person(admin)
    assert client.patch(settings_url(organization, project), {"feature_source": "trace_name"}, format="json").status_code == 200
    assert client.patch(settings_url(organization, project), {"feature_source": "trace_name"}, format="json").status_code == 200
    assert AuditLogEntry.objects.filter(action=AuditAction.MONITORING_SETTINGS_UPDATED).count() == 2
    assert {r.feature for r in HourlyRollup.objects.for_project(project) if r.calls} == {"chat", "search", "summarise", ""}


@pytest.mark.parametrize(
    "payload",
    [{"feature_source": "colour"}, {"feature_source": "metadata", "feature_key": "  "}, {"feature_sauce": "x"},
     {"feature_key": "k" * 201}],
)
def test_bad_settings_answer_400(organization, project, member_of, payload):
    response = person(member_of(organization, Role.ADMIN)).put(settings_url(organization, project), payload, format="json")
    assert response.status_code == 400, response.content


def test_members_read_but_only_admins_write(organization, project, member_of):
    member = person(member_of(organization, Role.MEMBER))
    assert member.get(settings_url(organization, project)).status_code == 200
    assert member.put(settings_url(organization, project), {"feature_source": "trace_name"}, format="json").status_code == 403
