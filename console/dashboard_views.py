"""The console's cost and quality breakdowns: `monitoring.selectors.cost_breakdown` (answered from
the rollups) as tables, by feature, model, user, prompt version, trace name, environment or release,
with the 80/20 line. Charts are left to the monitoring dashboards (issue 12) so that one chart library
serves both."""

from __future__ import annotations

from django.http import Http404
from django.views.decorators.http import require_GET

from console.access import console_login_required, project_or_404
from console.views import _page
from monitoring.selectors import BREAKDOWNS, MAX_DAYS, cost_breakdown

DAY_CHOICES = (1, 7, 30, 90)


@require_GET
@console_login_required
def dashboards(request, project_id):
    project = project_or_404(request, project_id)
    by = request.GET.get("by", "feature")
    if by not in BREAKDOWNS:
        raise Http404("Unknown breakdown.")
    try:
        days = min(max(int(request.GET.get("days", 7)), 1), MAX_DAYS)
    except ValueError:
        days = 7
    breakdown = cost_breakdown(project=project, by=by, days=days)
    for row in breakdown["rows"]:
        row["label"] = " v".join(str(v) for v in row["key"].values() if v not in ("", None)) or "(none)"
    bys = [(key, key.replace("_", " ").capitalize()) for key in BREAKDOWNS]
    context = {"breakdown": breakdown, "by": by, "by_label": dict(bys)[by], "days": days, "bys": bys,
               "day_choices": DAY_CHOICES}
    return _page(request, project, "console/dashboards.html", context, section="dashboards")
