"""The console's Watch pages, server-side: dashboards with chart data from the rollups, feedback
analytics, alerts with their state and history, usage against the plan. Every page: another
organization's project (same region and other region) answers 404."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.services import create_scores
from monitoring.alerts_models import AlertEvent, AlertRule
from tests.console.support import llm_call, thumbs, url
from tests.pages import off_host_assets


@pytest.fixture
def calls(project):
    llm_call(project, "t-1", question="q1", answer="a1", user_id="alice", metadata={"feature": "search"},
             cost=0.008)
    llm_call(project, "t-2", question="q2", answer="a2", user_id="alice", metadata={"feature": "search"},
             cost=0.001, model="claude-3-haiku", status="error")
    llm_call(project, "t-3", question="q3", answer="a3", user_id="bob", metadata={"feature": "chat"}, cost=0.001)
    llm_call(project, "t-4", question="q4", answer="a4", user_id="bob", metadata={"feature": "summarize"},
             cost=0.0005)
    thumbs(project, "t-1", up=False)
    thumbs(project, "t-3", up=True)
    # A thumb on the generation itself: it has a model.
    result = create_scores(project=project, bodies=[{"traceId": "t-2", "observationId": "t-2-gen", "name": "thumbs",
                                                     "value": 0, "dataType": "BOOLEAN"}], public_only=True)
    assert not result.errors


PAGES = ["dashboards", "feedback", "alerts", "usage"]


@pytest.mark.parametrize("page", PAGES)
def test_watch_pages_of_another_organization_answer_404(client, member, other_project, far_project, page):
    assert client.get(url(page, other_project)).status_code == 404
    assert client.get(url(page, far_project)).status_code == 404


@pytest.mark.parametrize("page", PAGES)
def test_watch_pages_render_for_a_member(client, member, project, calls, page):
    response = client.get(url(page, project))
    assert response.status_code == 200
    # plotly.js and its stylesheet come from this server (the pip package), never a CDN.
    if page != "alerts":
        assert b"/admin/monitoring/assets/plotly-" in response.content
    assert off_host_assets(response.content) == []


def test_the_dashboard_charts_carry_the_rollup_totals(client, member, project, other_project, calls):
    llm_call(other_project, "x-1", question="q", answer="a", metadata={"feature": "search"}, cost=5.0)
    response = client.get(url("dashboards", project), {"days": "1"})
    assert response.status_code == 200
    # The series as the page hands them to the chart script.
    data = json.loads(response.content.decode().split(
        '<script id="lg-dashboard-data" type="application/json">')[1].split("</script>")[0])
    # Spend by feature with the 80/20 line: search 0.009, chat 0.001, summarize 0.0005.
    assert data["pareto"]["names"] == ["search", "chat", "summarize"]
    assert [round(v, 6) for v in data["pareto"]["spend"]] == [0.009, 0.001, 0.0005]
    assert round(data["pareto"]["cumulative"][0], 4) == round(0.009 / 0.0105, 4)
    assert dict(zip(data["byModel"]["names"], data["byModel"]["calls"], strict=True)) == {
        "gpt-4o-mini": 3, "claude-3-haiku": 1}
    assert dict(zip(data["byUser"]["names"], [round(v, 6) for v in data["byUser"]["spend"]], strict=True)) == {
        "alice": 0.009, "bob": 0.0015}
    assert sum(data["calls"]) == 4
    assert response.context["board"]["by_feature"]["total"]["spend"] == Decimal("0.0105")
    assert "$0.0105" in response.content.decode()
    assert response.context["board"]["by_feature"]["groups_within_80"] == 1
    assert response.context["board"]["thumbs"]["total"] == {"thumbs": 3, "down": 2, "up": 1,
                                                            "thumbs_down_rate": round(2 / 3, 6)}


def test_the_breakdown_tabs_and_bad_input(client, member, project, calls):
    response = client.get(url("dashboards", project), {"by": "user", "days": "7"})
    assert [r["label"] for r in response.context["breakdown"]["rows"]] == ["alice", "bob"]
    assert client.get(url("dashboards", project), {"by": "nonsense"}).status_code == 404
    response = client.get(url("dashboards", project), {"days": "x", "granularity": "minute"})
    assert response.status_code == 200 and response.context["granularity"] == "day"
    response = client.get(url("dashboards", project), {"days": "30", "granularity": "hour"})
    assert response.context["days"] == 7 and len(response.context["charts"]["times"]) == 7 * 24


def test_feedback_analytics_by_feature_model_and_prompt_version(client, member, project, other_project, calls):
    llm_call(other_project, "x-1", question="q", answer="a", metadata={"feature": "search"})
    thumbs(other_project, "x-1", up=False)
    response = client.get(url("feedback", project))
    assert response.status_code == 200
    analytics = response.context["analytics"]
    by_feature = {r["label"]: (r["up"], r["down"]) for r in analytics["feature"]}
    assert by_feature == {"search": (0, 2), "chat": (1, 0)}
    by_model = {r["label"]: (r["up"], r["down"]) for r in analytics["model"]}
    assert by_model == {"(on the trace)": (1, 1), "claude-3-haiku": (0, 1)}
    assert response.context["thumbs"]["total"]["thumbs"] == 3
    assert 'id="lg-thumbs-down">2<' in response.content.decode()


def test_alerts_show_state_and_history_and_another_projects_rule_is_404(
    client, member, project, other_project, far_project
):
    rule = AlertRule.objects.create(project=project, name="Error rate high", metric="error_rate", threshold=0.1,
                                    state="firing", last_value=0.25)
    now = timezone.now()
    AlertEvent.objects.create(rule=rule, project=project, from_state="ok", to_state="firing", value=0.25, limit=0.1,
                              calls=40, window_start=now - timedelta(hours=1), window_end=now,
                              message="error rate 25% > 10%")
    response = client.get(url("alerts", project))
    assert response.status_code == 200
    body = response.content.decode()
    assert response.context["rules"][0] == rule  # firing first
    assert "error rate 25% &gt; 10%" in body and "lg-state-firing" in body
    detail = client.get(url("alert", project, rule.id))
    assert detail.status_code == 200 and "error rate 25% &gt; 10%" in detail.content.decode()
    for stranger in (other_project, far_project):
        theirs = AlertRule.objects.create(project=stranger, name="theirs", metric="error_rate", threshold=0.1)
        # Their rule under our project, and our rule under theirs: not found.
        assert client.get(url("alert", project, theirs.id)).status_code == 404
        assert client.get(url("alert", stranger, rule.id)).status_code == 404
        assert client.get(url("alert", stranger, theirs.id)).status_code == 404


def test_usage_shows_the_organizations_units_against_the_plan(client, member, project, calls):
    response = client.get(url("usage", project))
    assert response.status_code == 200
    assert response.context["summary"]["plan"]
    assert len(response.context["charts"]["days"]) == 30


def test_the_home_reads_the_rollup_totals_without_histograms(client, member, project, other_project, calls):
    """The home's figures are the rollups' sums of the last 24 hours, read without the latency and
    TTFT histograms (summing 160 histogram buckets per rollup row was 420 of its 496 ms at 50k traces)."""
    from django.test.utils import CaptureQueriesContext

    from monitoring.selectors import cost_breakdown, rollup_totals
    from tenancy.dataplane import data_connection

    llm_call(other_project, "x-1", question="q", answer="a", cost=3.0)
    assert rollup_totals(project=project, days=1) == cost_breakdown(project=project, by="model", days=1)["total"]
    with CaptureQueriesContext(data_connection(project)) as queries:
        response = client.get(url("home", project))
    assert response.status_code == 200
    assert response.content.decode().count('id="lg-calls">4<') == 1
    assert '$0.0105' in response.content.decode()
    rollup_reads = [q["sql"] for q in queries.captured_queries if "monitoring_hourlyrollup" in q["sql"]]
    assert len(rollup_reads) == 1
    assert "_hist" not in rollup_reads[0]


def test_the_metrics_query_groups_scores_by_the_traces_feature(client, project, other_project, api_key, calls):
    """The console's feedback by feature is the public metrics query's `feature` dimension on score
    views (added for it): the scored trace's feature under the project's rule; other tenants' thumbs
    are not counted."""
    from urllib.parse import quote

    llm_call(other_project, "x-1", question="q", answer="a", metadata={"feature": "search"})
    thumbs(other_project, "x-1", up=False)
    now = timezone.now()
    query = {"view": "scores-boolean", "dimensions": [{"field": "feature"}],
             "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "value", "aggregation": "sum"}],
             "filters": [{"column": "source", "operator": "=", "value": "USER", "type": "string"}],
             "fromTimestamp": (now - timedelta(days=1)).isoformat(), "toTimestamp": (now + timedelta(minutes=1)).isoformat()}
    response = client.get(f"/api/public/v2/metrics?query={quote(json.dumps(query))}", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    rows = {r["feature"]: (r["count_count"], r["sum_value"]) for r in response.json()["data"]}
    assert rows == {"search": ("2", 0.0), "chat": ("1", 1.0)}


def test_the_home_lists_the_projects_firing_and_warning_alerts_and_never_another_organizations(
    client, member, project, other_project, far_project
):
    """The home shows what fires now, each linked to its alert page, in one read of the rules; a
    rule that is ok, or switched off, is not listed; other organizations' firing rules never are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    firing = AlertRule.objects.create(project=project, name="Error rate high", metric="error_rate", threshold=0.1,
                                      state="firing", last_value=0.25)
    warning = AlertRule.objects.create(project=project, name="Cost creeping", metric="cost", threshold=5,
                                       state="warning", last_value=4.2)
    AlertRule.objects.create(project=project, name="Latency fine", metric="error_rate", threshold=0.1, state="ok")
    AlertRule.objects.create(project=project, name="Switched off", metric="error_rate", threshold=0.1,
                             state="firing", enabled=False)
    for stranger in (other_project, far_project):
        AlertRule.objects.create(project=stranger, name=f"Theirs {stranger.name}", metric="error_rate",
                                 threshold=0.1, state="firing", last_value=0.9)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("home", project))
    assert response.status_code == 200
    body = response.content.decode()
    assert [r.name for r in response.context["alerts"]] == ["Error rate high", "Cost creeping"]  # firing first
    assert f'href="{url("alert", project, firing.id)}"' in body
    assert f'href="{url("alert", project, warning.id)}"' in body
    assert "lg-state-firing" in body and "lg-state-warning" in body
    assert "Latency fine" not in body and "Switched off" not in body
    assert "Theirs" not in body and "not part of this build" not in body
    assert len([q for q in queries.captured_queries if "monitoring_alertrule" in q["sql"]]) == 1

    # Nothing fires: the home says so and links to the rules.
    AlertRule.objects.filter(project=project).update(state="ok")
    body = client.get(url("home", project)).content.decode()
    assert "No alert firing" in body and f'href="{url("alerts", project)}"' in body
    assert "Theirs" not in body


def test_the_console_breakdown_by_user_shows_the_others_row(monkeypatch, client, member, project):
    from console import dashboard_views
    from monitoring import selectors

    monkeypatch.setattr(selectors, "DASHBOARD_USERS", 2)
    monkeypatch.setattr(dashboard_views, "DASHBOARD_USERS", 2)
    now = timezone.now()
    for i, cost in enumerate((0.5, 0.4, 0.3, 0.2)):
        llm_call(project, f"t-{i}", question="q", answer="a", user_id=f"u{i}", cost=cost, at=now - timedelta(minutes=5))
    response = client.get(url("dashboards", project), {"by": "user", "days": "7"})
    assert response.status_code == 200
    assert [r["label"] for r in response.context["breakdown"]["rows"]] == ["u0", "u1"]
    page = response.content.decode()
    assert 'id="lg-breakdown-others"' in page and "2 other users" in page and "$0.5000" in page
    assert response.context["breakdown"]["total"]["spend"] == Decimal("1.4")
