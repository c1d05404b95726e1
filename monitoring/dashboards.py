"""The cost and quality dashboard in the console (`/admin/monitoring/dashboard/`): the seed's
spend by feature over the last days, ordered by spend with the 80/20 line, the same by model, user
and prompt version, cache savings, error/refusal/thumbs-down rates and latency/TTFT percentiles,
as tables and time-series charts. Every number comes from `monitoring.selectors.dashboard` (the
console app will reuse it).

Charts: plotly.js, vendored by the `plotly` pip package (`plotly/package_data/plotly.min.js`) and
served from here, so nothing loads from a CDN and the version is the one pinned in pyproject.toml.
The page hands the chart data over as a `json_script` block (not executed) and `dashboard.js`
(a static file) draws it, so the CSP needs no inline script beyond the nonce Django's admin has.
"""

from __future__ import annotations

import functools
import re
from importlib import metadata
from pathlib import Path

from django import forms
from django.http import FileResponse, Http404, HttpResponse
from django.template.response import TemplateResponse

from monitoring import selectors
from tenancy.admin_site import admin_site, visible_projects
from tenancy.models import Project

DAY_CHOICES = (1, 7, 14, 30, 90)


def plotly_version() -> str:
    return metadata.version("plotly")


def _plotly_path() -> Path:
    import plotly  # the pip package that vendors plotly.js

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def plotly_js(request, version: str):
    """plotly.min.js from the installed package; the URL names the version, so it is cached for good."""
    if version != plotly_version():
        raise Http404("no such plotly.js version")
    response = FileResponse(_plotly_path().open("rb"), content_type="application/javascript")
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


# plotly.js writes its stylesheet at run time (a <style> element with rules from a table in the
# bundle), which the console's CSP refuses: the page takes the same rules from this stylesheet,
# read out of the installed bundle so they always match its version.
_STRING = r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
_RULE = re.compile(rf"({_STRING}):({_STRING})")
_TABLE = re.compile(r"=\{(\"X,X div\":.*?)\};for\(")


@functools.cache
def plotly_css() -> str:
    text = _plotly_path().read_text(encoding="utf-8")
    table = _TABLE.search(text)
    if table is None:
        return ""
    rules = []
    for key, value in _RULE.findall(table.group(1)):
        selector = key[1:-1]
        if selector.startswith(","):
            selector = " " + selector
        selector = selector.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        rules.append(f"{selector} {{{value[1:-1]}}}")
    return "\n".join(rules) + "\n"


def plotly_stylesheet(request, version: str):
    if version != plotly_version():
        raise Http404("no such plotly.js version")
    response = HttpResponse(plotly_css(), content_type="text/css")
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


class DashboardForm(forms.Form):
    project = forms.ChoiceField()
    days = forms.TypedChoiceField(coerce=int, choices=[(d, f"last {d} days") for d in DAY_CHOICES], initial=7)
    granularity = forms.ChoiceField(choices=[("day", "by day"), ("hour", "by hour")], initial="day")

    def __init__(self, data, *, projects: list[Project]):
        super().__init__(data)
        self.projects = {str(p.id): p for p in projects}
        self.fields["project"].choices = [(key, str(p)) for key, p in self.projects.items()]


def _f(value) -> float | None:
    return float(value) if value is not None else None


def _iso(moment) -> str:
    return moment.isoformat()


def chart_data(board: dict) -> dict:
    """The charts' series as plain JSON (floats and ISO times)."""
    quality, cache, thumbs = board["quality"]["points"], board["cache"]["points"], board["thumbs"]["points"]
    feature_rows = board["by_feature"]["rows"]
    return {
        "pareto": {
            "names": [r["key"]["feature"] or "(none)" for r in feature_rows],
            "spend": [_f(r["spend"]) for r in feature_rows],
            "cumulative": [_f(r["cumulative_share"]) for r in feature_rows],
        },
        "spendByFeature": {
            "times": [_iso(t) for t in board["spend_by_feature"]["times"]],
            "series": [{"name": s["name"] or "(none)", "spend": [_f(v) for v in s["spend"]]}
                       for s in board["spend_by_feature"]["series"]],
        },
        "times": [_iso(p["time"]) for p in quality],
        "calls": [p["calls"] for p in quality],
        "spend": [_f(p["spend"]) for p in quality],
        "errorRate": [p["error_rate"] for p in quality],
        "refusalRate": [p["refusal_rate"] for p in quality],
        "thumbsDownRate": [p["thumbs_down_rate"] for p in thumbs],
        "latency": {q: [p["latency_ms"][q] for p in quality] for q in ("p50", "p95", "p99")},
        "ttft": {q: [p["ttft_ms"][q] for p in quality] for q in ("p50", "p95", "p99")},
        "cacheSavings": [_f(p["savings"]) for p in cache],
        "cachePaid": [_f(p["paid"]) for p in cache],
    }


def dashboard_view(request):
    projects = list(visible_projects(request))
    data = request.GET.copy()
    if projects and not data.get("project"):
        data["project"] = str(projects[0].id)
    data.setdefault("days", "7")
    data.setdefault("granularity", "day")
    form = DashboardForm(data, projects=projects)
    if data.get("project") and data["project"] not in form.projects:
        # Another organization's project is as absent as a missing one.
        raise Http404("no such project")
    context = {
        **admin_site.each_context(request),
        "title": "Cost and quality",
        "form": form,
        "has_projects": bool(projects),
        "project": None,
        "plotly_version": plotly_version(),
    }
    status = 200
    if projects and form.is_valid():
        project = form.projects[form.cleaned_data["project"]]
        board = selectors.dashboard(project=project, days=form.cleaned_data["days"],
                                    granularity=form.cleaned_data["granularity"])
        quality = board["quality"]["points"]
        calls = sum(p["calls"] for p in quality)
        context.update(
            project=project,
            board=board,
            charts=chart_data(board),
            period={
                "errors": sum(p["errors"] for p in quality),
                "refusals": sum(p["refusals"] for p in quality),
                "calls": calls,
            },
        )
    elif projects:
        status = 400
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/monitoring/dashboard.html", context, status=status)


def _is_console_user(request) -> bool:
    return admin_site.has_permission(request)


admin_site.register_view(
    "monitoring/dashboard/",
    dashboard_view,
    name="monitoring_dashboard",
    link_title="Cost and quality",
    app_label="monitoring",
    app_title="Monitoring",
    visible=_is_console_user,
)
admin_site.register_view("monitoring/assets/plotly-<str:version>.min.js", plotly_js, name="monitoring_plotly_js")
admin_site.register_view("monitoring/assets/plotly-<str:version>.css", plotly_stylesheet, name="monitoring_plotly_css")
