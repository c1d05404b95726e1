"""The Watch and Judge pages in headless Chromium: the charts render (plotly, served locally) with
the seeded totals, and the run comparison shows a regression. Shares the browser fixtures of
test_console_browser.py; CONSOLE_SCREENSHOTS=<dir> keeps a 1440 px screenshot of each page."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tenancy.models import Role
from tests.console import test_console_browser as base
from tests.console.support import llm_call, thumbs

WAIT_SECONDS = base.WAIT_SECONDS
browser = base.browser  # the session's Chromium (a fixture)


@pytest.fixture
def console(browser, live_server):
    return base.Console(browser, live_server.url)


def _plot(console, element_id: str) -> list[dict]:
    """The traces plotly drew into a chart box (its `data`), once it has drawn them."""
    WebDriverWait(console.driver, WAIT_SECONDS).until(
        lambda d: d.execute_script(f"var e = document.getElementById('{element_id}'); return !!(e && e.data);"))
    return console.driver.execute_script(
        f"return document.getElementById('{element_id}').data.map(function (t) {{"
        f" return {{name: t.name, x: t.x, y: t.y}}; }});")


def test_the_dashboard_charts_render_the_seeded_totals(console, organization, member_of, project, other_project):
    llm_call(project, "t-1", question="q", answer="a", metadata={"feature": "search"}, cost=0.008, user_id="alice")
    llm_call(project, "t-2", question="q", answer="a", metadata={"feature": "search"}, cost=0.001,
             model="claude-3-haiku", status="error", user_id="alice")
    llm_call(project, "t-3", question="q", answer="a", metadata={"feature": "chat"}, cost=0.001, user_id="bob")
    thumbs(project, "t-1", up=False)
    thumbs(project, "t-3", up=True)
    llm_call(other_project, "x-1", question="q", answer="a", metadata={"feature": "search"}, cost=7.0)
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.alerts_models import AlertEvent, AlertRule

    firing = AlertRule.objects.create(project=project, name="Error rate above 10%", metric="error_rate",
                                      threshold=0.1, state="firing", last_value=1 / 3, min_calls=1)
    now = timezone.now()
    AlertEvent.objects.create(rule=firing, project=project, from_state="ok", to_state="firing", value=1 / 3,
                              limit=0.1, calls=3, window_start=now - timedelta(hours=1), window_end=now,
                              message="error rate 33.3% > 10% over the last hour (3 calls)")
    user = member_of(organization, Role.VIEWER)

    console.sign_in(user, f"/console/p/{project.id}/")
    console.driver.find_element(By.LINK_TEXT, "Dashboards").click()
    console.wait("#lg-dashboard-totals")
    assert console.driver.find_element(By.ID, "lg-total-spend").text == "$0.0100"
    assert console.driver.find_element(By.ID, "lg-total-calls").text == "3"
    pareto = _plot(console, "lg-chart-pareto")
    assert pareto[0]["x"] == ["search", "chat"]
    assert [round(v, 6) for v in pareto[0]["y"]] == [0.009, 0.001]
    assert [round(v, 4) for v in pareto[1]["y"]] == [0.9, 1.0]  # the cumulative share beside the 80% line
    by_model = _plot(console, "lg-chart-by-model")
    assert dict(zip(by_model[0]["x"], [round(v, 6) for v in by_model[0]["y"]], strict=True)) == {
        "gpt-4o-mini": 0.009, "claude-3-haiku": 0.001}
    rates = _plot(console, "lg-chart-rates")
    assert [t["name"] for t in rates] == ["error rate", "refusal rate", "thumbs-down rate"]
    assert max(v for v in rates[0]["y"] if v is not None) == round(1 / 3, 6)
    for chart in ("lg-chart-latency", "lg-chart-ttft", "lg-chart-spend-by-feature", "lg-chart-by-user",
                  "lg-chart-by-prompt-version", "lg-chart-cache"):
        _plot(console, chart)
    # The plot area really has drawn bars (an SVG path per bar), not just data.
    assert console.driver.find_elements(By.CSS_SELECTOR, "#lg-chart-pareto .barlayer .point path")
    console.shot("dashboards")

    console.driver.find_element(By.CSS_SELECTOR, ".lg-subnav").find_element(By.LINK_TEXT, "Feedback").click()
    console.wait("#lg-feedback-totals")
    assert console.driver.find_element(By.ID, "lg-thumbs-down").text == "1"
    by_feature = _plot(console, "lg-chart-thumbs-feature")
    assert dict(zip(by_feature[1]["x"], by_feature[1]["y"], strict=True)) == {"search": 1, "chat": 0}
    console.shot("feedback")

    console.driver.find_element(By.LINK_TEXT, "Alerts").click()
    console.wait("#lg-alert-rules")
    first = console.driver.find_element(By.CSS_SELECTOR, "#lg-alert-rules tbody tr")
    assert first.get_attribute("data-state") == "firing" and "Error rate above 10%" in first.text
    assert "33.3% > 10%" in console.driver.find_element(By.ID, "lg-alert-history").text
    console.shot("alerts")
    console.driver.find_element(By.LINK_TEXT, "Usage and plan").click()
    console.wait("#lg-usage-totals")
    _plot(console, "lg-chart-usage")
    console.shot("usage")
    assert console.problems() == []  # no CSP refusal: plotly's strict-CSP switch is on

    console.open(f"/console/p/{other_project.id}/dashboards/")
    assert "Not Found" in console.wait_text("Not Found")


def test_two_runs_side_by_side_show_a_regression(console, organization, member_of, project, other_project):
    from evals.evaluation_models import EvalJob, EvaluationRule
    from tests.console.judge_support import seed_runs
    from tests.evals.evalkit import judge_evaluator

    dataset, runs = seed_runs(project)
    evaluator = judge_evaluator(project, name="correctness")
    rule = EvaluationRule.objects.create(project=project, name="prod answers", enabled=True, target="trace",
                                         assignments=[{"evaluatorId": str(evaluator.pk), "variableMapping": None}])
    EvalJob.objects.for_project(project).create(
        id="job-err", rule_id=rule.id, evaluator_id=evaluator.id, evaluator_version_id=evaluator.versions.get().id,
        target="trace", trace_id="baseline-i0", status="error", error="judge answered 500: upstream overloaded")
    other_dataset, _ = seed_runs(other_project)
    user = member_of(organization, Role.MEMBER)

    console.sign_in(user, f"/console/p/{project.id}/datasets/")
    console.wait("#lg-datasets")
    console.shot("datasets")
    console.driver.find_element(By.LINK_TEXT, "qa-set").click()
    console.wait("#lg-compare-form")
    console.shot("dataset")
    console.driver.find_element(By.LINK_TEXT, "baseline").click()
    console.wait("#lg-run-summary")
    console.shot("run")
    console.driver.back()
    console.wait("#lg-compare-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    console.wait("#lg-compare-items")
    assert console.driver.find_element(By.ID, "lg-regression-count").text == "1"
    regressed = console.driver.find_elements(By.CSS_SELECTOR, "#lg-compare-items tr[data-regressed]")
    assert [r.find_element(By.CSS_SELECTOR, "td").text for r in regressed] == ["i1"]
    assert "0.900 → 0.100" in regressed[0].text and "regressed" in regressed[0].text
    console.shot("run-compare")

    console.driver.find_element(By.LINK_TEXT, "Evaluators and rules").click()
    console.wait("#lg-eval-rules")
    console.shot("evaluators")
    console.driver.find_element(By.CSS_SELECTOR, "#lg-eval-rules button[type=submit]").click()
    console.wait(".lg-messages")
    rule.refresh_from_db()
    assert rule.enabled is False
    console.driver.find_element(By.LINK_TEXT, "prod answers").click()
    console.wait("#lg-eval-jobs")
    assert "upstream overloaded" in console.driver.find_element(By.ID, "lg-eval-jobs").text
    console.shot("eval-rule")
    assert console.problems() == []

    console.open(f"/console/p/{other_project.id}/datasets/{other_dataset.id}/")
    assert "Not Found" in console.wait_text("Not Found")
