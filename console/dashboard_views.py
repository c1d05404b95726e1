"""Watch: the console's dashboards, feedback analytics, alerts and usage against the plan.

Every number comes from the selectors the admin pages already use — `monitoring.selectors.dashboard`
(cost by feature with the 80/20 line, by model, user and prompt version, rates, latency and TTFT
percentiles, cache savings, thumbs), the metrics query (`monitoring.metrics`, thumbs by feature,
model and prompt version), `monitoring.alerts_selectors` and `billing.selectors` — so the console
and the admin never disagree. Charts are plotly.js from the installed `plotly` package, served by
`monitoring.dashboards` (no CDN); the page carries its series as a `json_script` block and static
scripts draw them, so nothing inline runs.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from pathlib import Path

from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing import selectors as billing_selectors
from console import selectors as console_selectors
from console.access import console_login_required, project_or_404
from console.views import _admin_url, _page
from monitoring import alerts_selectors
from monitoring.dashboards import chart_data, plotly_version
from monitoring.selectors import (
    BREAKDOWNS,
    DASHBOARD_USERS,
    MAX_DAYS,
    cost_breakdown,
    dashboard,
    thumbs_series,
)

DAY_CHOICES = (1, 7, 30, 90)
GRANULARITIES = ("day", "hour")
TOP_BARS = 15  # bars per breakdown chart; the tables list every group (by user: the top DASHBOARD_USERS)
USAGE_DAYS = 30


@functools.cache
def plotly_style_ids() -> list[str]:
    """The ids of the <style> elements plotly.js would create at run time (which the CSP refuses).
    plotly skips its rule sheet when an element `plotly.js-style-global` with the class
    `no-inline-styles` exists (its documented strict-CSP switch), and its bundled map library's
    sheet when an element with that sheet's id exists: the page provides both, empty, and takes
    the rules from the stylesheet `monitoring.dashboards` extracts from the bundle."""
    import plotly

    text = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    return re.findall(r'getElementById\("([0-9a-f]{32,})"\)\)\{var \w+=document\.createElement\("style"\)', text)


def _days(request, default: int = 7) -> int:
    try:
        return min(max(int(request.GET.get("days", default)), 1), MAX_DAYS)
    except ValueError:
        return default


def _label(key: dict) -> str:
    return " v".join(str(v) for v in key.values() if v not in ("", None, 0)) or "(none)"


def _bars(breakdown: dict) -> dict:
    rows = breakdown["rows"][:TOP_BARS]
    return {"names": [_label(r["key"]) for r in rows], "spend": [float(r["spend"]) for r in rows],
            "calls": [r["calls"] for r in rows]}


@require_GET
@console_login_required
def dashboards(request, project_id):
    project = project_or_404(request, project_id)
    by = request.GET.get("by", "feature")
    if by not in BREAKDOWNS:
        raise Http404("Unknown breakdown.")
    days = _days(request)
    granularity = request.GET.get("granularity", "day")
    if granularity not in GRANULARITIES:
        granularity = "day"
    if granularity == "hour":
        days = min(days, 7)  # at most 168 points a line
    board = dashboard(project=project, days=days, granularity=granularity)
    named = {"feature": "by_feature", "model": "by_model", "user": "by_user", "prompt_version": "by_prompt_version"}
    breakdown = board[named[by]] if by in named else cost_breakdown(project=project, by=by, days=days)
    for row in breakdown["rows"]:
        row["label"] = _label(row["key"])
    charts = chart_data(board)
    charts.update(byModel=_bars(board["by_model"]), byUser=_bars(board["by_user"]),
                  byPromptVersion=_bars(board["by_prompt_version"]))
    bys = [(key, key.replace("_", " ").capitalize()) for key in BREAKDOWNS]
    quality = board["quality"]["points"]
    context = {
        "board": board, "breakdown": breakdown, "by": by, "by_label": dict(bys)[by], "days": days, "bys": bys,
        "granularity": granularity, "day_choices": DAY_CHOICES, "charts": charts, "top_users": DASHBOARD_USERS,
        "plotly_version": plotly_version(), "plotly_style_ids": plotly_style_ids(),
        "period": {"errors": sum(p["errors"] for p in quality), "refusals": sum(p["refusals"] for p in quality)},
    }
    return _page(request, project, "console/dashboards.html", {**context, "tab": "dashboards"}, section="dashboards")


@require_GET
@console_login_required
def feedback(request, project_id):
    project = project_or_404(request, project_id)
    days = _days(request, 30)
    analytics = console_selectors.thumbs_breakdowns(project=project, days=days)
    dashboard_thumbs = thumbs_series(project=project, days=days, granularity="day")
    series = {
        "times": [p["time"].isoformat() for p in dashboard_thumbs["points"]],
        "up": [p["up"] for p in dashboard_thumbs["points"]],
        "down": [p["down"] for p in dashboard_thumbs["points"]],
        "rate": [p["thumbs_down_rate"] for p in dashboard_thumbs["points"]],
        "breakdowns": {key: {"names": [r["label"] for r in rows[:TOP_BARS]],
                             "up": [r["up"] for r in rows[:TOP_BARS]],
                             "down": [r["down"] for r in rows[:TOP_BARS]]}
                       for key, rows in analytics.items()},
    }
    context = {"days": days, "day_choices": DAY_CHOICES, "thumbs": dashboard_thumbs, "analytics": analytics,
               "charts": series, "plotly_version": plotly_version(), "plotly_style_ids": plotly_style_ids(),
               "thumbs_down_url": reverse("console:review", args=[project.id]) + "?queue=thumbs_down",
               "overview_url": _admin_url("feedback_overview")}
    return _page(request, project, "console/feedback.html", {**context, "tab": "feedback"}, section="dashboards")


@require_GET
@console_login_required
def alerts(request, project_id):
    project = project_or_404(request, project_id)
    context = {
        "rules": alerts_selectors.alert_rules(project=project),
        "events": alerts_selectors.alert_events(project=project, limit=50),
        "manage_url": _admin_url("monitoring_alertrule_changelist"),
    }
    return _page(request, project, "console/alerts.html", {**context, "tab": "alerts"}, section="dashboards")


@require_GET
@console_login_required
def alert_detail(request, project_id, alert_rule_id):
    project = project_or_404(request, project_id)
    rule = alerts_selectors.alert_rule_get(project=project, rule_id=alert_rule_id)
    if rule is None:
        raise Http404("No such alert rule.")
    context = {
        "rule": rule,
        "events": alerts_selectors.alert_events(project=project, rule_id=rule.id, limit=200),
        "deliveries": alerts_selectors.alert_deliveries(project=project, rule_id=rule.id, limit=50),
        "edit_url": _admin_url("monitoring_alertrule_change", rule.id),
    }
    return _page(request, project, "console/alert.html", {**context, "tab": "alerts"}, section="dashboards")


@require_GET
@console_login_required
def usage(request, project_id):
    """The organization's billable units per day against its plan (`billing.selectors`, as the
    admin's "Usage and plan" page reads them; exports and the invoice preview stay there)."""
    project = project_or_404(request, project_id)
    organization = project.organization
    until = timezone.now().date()
    since = until - timedelta(days=USAGE_DAYS - 1)
    per_day: dict[str, dict] = {}
    for row in billing_selectors.usage_by_day(organization=organization, since=since, until=until):
        day = per_day.setdefault(row["day"], {"units": 0, "rejected_events": 0, "judge_calls": 0})
        for key in day:
            day[key] += row[key]
    days = [(since + timedelta(days=i)).isoformat() for i in range(USAGE_DAYS)]
    empty = {"units": 0, "rejected_events": 0, "judge_calls": 0}
    rows = [{"day": d, **per_day.get(d, empty)} for d in days]
    summary = billing_selectors.subscription_summary(organization=organization)
    included = summary["limits"]["included_units"]
    used = summary["usage_units"]
    context = {
        "summary": summary, "rows": list(reversed(rows)),
        "totals": {k: sum(r[k] for r in rows) for k in empty},
        "share": (used / included) if used is not None and included else None,
        "charts": {"days": days, "units": [r["units"] for r in rows],
                   "rejected": [r["rejected_events"] for r in rows], "included": included,
                   "used": used},
        "plotly_version": plotly_version(), "plotly_style_ids": plotly_style_ids(),
        "admin_usage_url": _admin_url("billing_usage", query=f"organization={organization.id}"),
    }
    return _page(request, project, "console/usage.html", {**context, "tab": "usage"}, section="dashboards")
