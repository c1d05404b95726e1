"""The console: server-rendered pages for the daily work on a project's LLM calls.

Views stay thin: every read goes through a selector (traces, scores, feedback, monitoring, evals,
prompts), every write through a service (ingest for scores, evals for dataset items, console for
saved views). The project comes from `project_or_404` (the admin's `visible_projects` rule), so
another organization's project, trace, session or user answers 404.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from console import selectors as console_selectors
from console import services as console_services
from console.access import SESSION_PROJECT, console_login_required, may_annotate, may_export, project_or_404
from console.forms import COLUMNS, ExplorerForm
from evals import selectors as eval_selectors
from evals import services as eval_services
from feedback.selectors import thumbs_down_daily
from ingest.services import create_scores
from monitoring import alerts_selectors
from monitoring.selectors import rollup_totals, user_totals
from prompts.errors import ApiError
from scores.admin import display_value, trace_scores
from scores.models import ScoreConfig
from tenancy.admin_site import visible_projects
from tenancy.selectors import api_keys_for_project
from traces import selectors as trace_selectors
from traces.admin import (
    MAX_OBSERVATIONS,
    _observation_redaction_totals,
    format_cost,
    format_ms,
    observation_tree,
    present,
    pretty_json,
    redaction_view,
    trace_summary,
)
from traces.models import Trace

PAGE_SIZE = 50


def score_label(score) -> str:
    """A score as one short label; an end user's thumb reads as up or down."""
    if score.source == "USER" and score.data_type == "BOOLEAN" and score.value is not None:
        return f"{score.name}: {'up' if score.value else 'down'}"
    return f"{score.name}: {display_value(score)}"
EXPORT_MAX_ROWS = 10_000
EXPORT_CHUNK = 500


def _url(name: str, project, *args) -> str:
    return reverse(f"console:{name}", args=[project.id, *args])


def trace_url(project, trace_id: str) -> str:
    # Trace ids are any string a client chose: encode it whole so `/` or `..` stay inside the id.
    return f"{reverse('console:traces', args=[project.id])}{quote(trace_id, safe='')}/"


def session_url(project, session_id: str) -> str:
    return f"{reverse('console:sessions', args=[project.id])}{quote(session_id, safe='')}/"


def user_url(project, user_id: str) -> str:
    return f"{reverse('console:users', args=[project.id])}{quote(user_id, safe='')}/"


def _admin_url(name: str, *args, query: str = "") -> str | None:
    try:
        return reverse(f"admin:{name}", args=args) + (f"?{query}" if query else "")
    except NoReverseMatch:
        return None


def _page(request, project, template: str, context: dict, *, status: int = 200, section: str = ""):
    projects = list(visible_projects(request).order_by("organization__name", "name"))
    nav = [
        ("home", "Home", _url("home", project)),
        ("traces", "Traces", _url("traces", project)),
        ("sessions", "Sessions", _url("sessions", project)),
        ("users", "Users", _url("users", project)),
        ("prompts", "Prompts", _url("prompts", project)),
        ("playground", "Playground", _url("playground", project)),
        ("review", "Review", _url("review", project)),
        ("datasets", "Datasets", _url("datasets", project)),
        ("dashboards", "Dashboards", _url("dashboards", project)),
        ("exports", "Exports", _url("exports", project) if may_export(request, project) else None),
    ]
    base = {
        "project": project,
        "projects": projects,
        "nav": [(key, label, url) for key, label, url in nav if url],
        "section": section,
        "admin_url": reverse("admin:index"),
    }
    return render(request, template, {**base, **context}, status=status)


# --- entry points ---------------------------------------------------------------------------------


@console_login_required
def index(request):
    """The last project opened, else the first visible one."""
    projects = visible_projects(request).order_by("organization__name", "name")
    remembered = request.session.get(SESSION_PROJECT)
    project = (remembered and projects.filter(pk=remembered).first()) or projects.first()
    if project is None:
        return render(request, "console/no_project.html", {"admin_url": reverse("admin:index")})
    return HttpResponseRedirect(_url("home", project))


@console_login_required
def sdk_project_trace(request, project_id, trace_id):
    """`/project/<project id>/traces/<trace id>` (SDK v3+ and the read API's htmlPath)."""
    project = project_or_404(request, project_id)
    return HttpResponseRedirect(trace_url(project, trace_id))


@console_login_required
def sdk_project_experiment(request, project_id, sdk_run_id=None, sdk_dataset_id=None):
    """The experiment links the SDKs print — v5 `/project/<id>/experiments/results?baseline=<experiment
    id>`, v4 `/project/<id>/datasets/<dataset id>/runs/<run id>` — open Evals › Evaluations with that
    run's summary (the project's evaluations when it names no run of this project)."""
    project = project_or_404(request, project_id)
    run_id = sdk_run_id or request.GET.get("baseline") or ""
    run = eval_selectors.run_get(project=project, run_id=run_id)
    if run is not None and run.dataset_id is not None:
        # A dataset's run has its console page (summary, run evaluations, items, compare).
        return HttpResponseRedirect(reverse("console:run", args=[project.id, run.dataset_id, run.id]))
    query = {"project": str(project.id)}
    if run is not None:  # an experiment on local data: the evaluations page shows it
        query["run"] = run_id
    return HttpResponseRedirect(_admin_url("evals_evaluations", query=urlencode(query)))


@console_login_required
def sdk_trace(request, trace_id):
    """`/trace/<trace id>` (SDK v2): the project is not in the address, so look among the caller's."""
    project = trace_selectors.trace_project(projects=visible_projects(request), trace_id=trace_id)
    if project is None:
        raise Http404("No such trace.")
    return HttpResponseRedirect(trace_url(project, trace_id))


# --- project home --------------------------------------------------------------------------------


@console_login_required
def home(request, project_id):
    project = project_or_404(request, project_id)
    # Totals only (no groups, no latency histograms): the home stays one narrow rollup sum at volume.
    day = {"total": rollup_totals(project=project, days=1)}
    today = timezone.now().date()
    thumbs = thumbs_down_daily(project=project, since=today, until=today + timedelta(days=1))[0]
    key = api_keys_for_project(project=project).active().first()
    host = settings.PUBLIC_URL.rstrip("/")
    context = {
        "day": day,
        "thumbs": thumbs,
        "public_key": key.public_key if key else None,
        "create_key_url": _admin_url("tenancy_apikey_add", query=f"project={project.id}"),
        "host": host,
        "otlp_endpoint": f"{host}/api/public/otel",
        "recent": _explorer_rows(project, trace_selectors.trace_search(
            project=project, search=trace_selectors.TraceSearch())[:5]),
        "alerts": alerts_selectors.active_alerts(project=project),
        "alerts_url": _url("alerts", project),
    }
    return _page(request, project, "console/home.html", context, section="home")


# --- trace explorer -------------------------------------------------------------------------------


class ExplorerRow:
    def __init__(self, project, trace: Trace, summary, scores):
        self.trace, self.summary, self.scores = trace, summary, scores
        self.url = trace_url(project, trace.id)
        self.cost = format_cost(summary.total_cost if summary else None)
        self.latency = format_ms(summary.latency_seconds * 1000 if summary else None)
        self.status = summary.status if summary else "success"
        self.models = summary.models if summary else []
        self.score_labels = [score_label(s) for s in scores]


def _explorer_rows(project, traces) -> list[ExplorerRow]:
    traces = list(traces)
    ids = [t.id for t in traces]
    summaries = trace_selectors.trace_summaries(project=project, trace_ids=ids, with_ids=False)
    scores = trace_selectors.scores_by_trace(project=project, trace_ids=ids)
    return [ExplorerRow(project, t, summaries.get(t.id), scores.get(t.id, [])) for t in traces]


def _query_without(request, *keys) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    return query.urlencode()


@require_GET
@console_login_required
def traces(request, project_id):
    project = project_or_404(request, project_id)
    form = ExplorerForm(request.GET)
    rows, total, count_kind, status = [], 0, "exact", 200
    page = 1
    window = None
    if form.is_valid():
        page = form.page_number()
        found = trace_selectors.trace_search_page(
            project=project, search=form.search(), order=form.sort_order(), page=page, limit=PAGE_SIZE
        )
        total, count_kind, window = found.total, found.count_kind, found.window
        rows = _explorer_rows(project, found.traces)
    else:
        status = 400
    base = _query_without(request, "page")
    order = form.sort_order()
    context = {
        "form": form,
        "rows": rows,
        "total": total,
        "capped": count_kind == "capped",
        "estimated": count_kind == "estimated",
        "window": _window_label(window),
        "columns": form.columns(),
        "all_columns": COLUMNS,
        "sort_links": {
            key: "?" + urlencode({**{k: v for k, v in request.GET.items() if k not in ("order", "page")},
                                  "order": key if order == f"-{key}" else f"-{key}"})
            for key in trace_selectors.SEARCH_ORDER_FIELDS
        },
        "order": order,
        "prev_url": f"?{base}&page={page - 1}" if page > 1 else None,
        "next_url": f"?{base}&page={page + 1}" if page * PAGE_SIZE < total and page < 200 else None,
        "page": page,
        "query": base,
        "export_csv": f"{_url('traces_export', project)}?{_query_without(request, 'page', 'cols')}&format=csv",
        "export_jsonl": f"{_url('traces_export', project)}?{_query_without(request, 'page', 'cols')}&format=jsonl",
        "saved_views": console_selectors.saved_views(project=project),
        "can_write": may_annotate(request, project),
    }
    return _page(request, project, "console/traces.html", context, status=status, section="traces")


def _window_label(window) -> str:
    if window is None:
        return ""
    hours = int(window.total_seconds() // 3600)
    if hours == 1:
        return "the last hour"
    return f"the last {hours} hours" if hours < 48 else f"the last {hours // 24} days"


EXPORT_FIELDS = (
    "id", "timestamp", "name", "user_id", "session_id", "environment", "release", "tags", "status",
    "models", "total_cost", "latency_ms", "input_preview", "output_preview", "scores",
)


def _export_records(project, queryset):
    """The current result, oldest page first as shown, in chunks (never the whole result in memory)."""
    for offset in range(0, EXPORT_MAX_ROWS, EXPORT_CHUNK):
        chunk = list(queryset[offset : offset + EXPORT_CHUNK])
        if not chunk:
            return
        for row in _explorer_rows(project, chunk):
            t, s = row.trace, row.summary
            yield {
                "id": t.id,
                "timestamp": t.timestamp.isoformat(),
                "name": t.name,
                "user_id": t.user_id,
                "session_id": t.session_id,
                "environment": t.environment,
                "release": t.release,
                "tags": list(t.tags or []),
                "status": row.status,
                "models": row.models,
                "total_cost": str(s.total_cost) if s else None,
                "latency_ms": round(s.latency_seconds * 1000, 3) if s else None,
                "input_preview": t.input_preview,
                "output_preview": t.output_preview,
                "scores": row.score_labels,
            }
        if len(chunk) < EXPORT_CHUNK:
            return


def _csv_cell(value):
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@require_GET
@console_login_required
def traces_export(request, project_id):
    """The explorer's current result as CSV or JSON Lines, streamed, at most EXPORT_MAX_ROWS rows."""
    project = project_or_404(request, project_id)
    form = ExplorerForm(request.GET)
    if not form.is_valid():
        return _page(request, project, "console/traces.html", {"form": form, "rows": [], "columns": [],
                     "all_columns": COLUMNS}, status=400, section="traces")
    kind = request.GET.get("format", "csv")
    if kind not in ("csv", "jsonl"):
        raise Http404("Unknown export format.")
    queryset = trace_selectors.trace_search(project=project, search=form.search(), order=form.sort_order())
    records = _export_records(project, queryset)

    if kind == "jsonl":
        body = (json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        content_type = "application/x-ndjson"
    else:
        def lines():
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            for record in records:
                writer.writerow({k: _csv_cell(";".join(v) if isinstance(v, list) else v) for k, v in record.items()})
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            yield buffer.getvalue()

        body, content_type = lines(), "text/csv; charset=utf-8"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="traces-{slugify(project.name) or project.id}.{kind}"'
    return response


@require_POST
@console_login_required
def saved_view_save(request, project_id):
    project = project_or_404(request, project_id)
    if not may_annotate(request, project):
        raise PermissionDenied("Saving a view needs the member role.")
    query = request.POST.get("query", "")
    try:
        console_services.saved_view_save(project=project, name=request.POST.get("view_name", ""), query=query,
                                         actor=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, "View saved.")
    return HttpResponseRedirect(f"{_url('traces', project)}?{query}")


@require_POST
@console_login_required
def saved_view_delete(request, project_id, view_id):
    project = project_or_404(request, project_id)
    if not may_annotate(request, project):
        raise PermissionDenied("Deleting a view needs the member role.")
    if not console_services.saved_view_delete(project=project, view_id=view_id):
        raise Http404("No such view.")
    messages.success(request, "View deleted.")
    return HttpResponseRedirect(_url("traces", project))


# --- a trace --------------------------------------------------------------------------------------


def _otel_folded(metadata) -> tuple[str, str]:
    """(metadata without the OTel resource/scope block, that block) as display text."""
    if not isinstance(metadata, dict) or not metadata:
        return "", ""
    rest = {k: v for k, v in metadata.items() if k != "otel"}
    otel = metadata.get("otel")
    return (pretty_json(rest) if rest else "", pretty_json(otel) if otel else "")


def _tree_rows(observations):
    rows = observation_tree(observations)
    for row in rows:
        o = row["obs"]
        row["metadata"], row["otel"] = _otel_folded(o.metadata)
        # The same text in error_message and status_message, or the same tool calls in the answer and
        # in `tool_calls`, is shown once.
        row["status_message_extra"] = o.status_message if o.status_message != o.error_message else ""
        answered = {c["id"] for m in (row["output"] or {}).get("messages", []) for c in m["tool_calls"] if c["id"]}
        if answered and all(c["id"] in answered for c in row["tool_calls"]):
            row["tool_calls"] = []
    return rows


def _time_axis(summary, rows):
    start = summary.get("start")
    ends = [r["obs"].end_time or r["obs"].start_time for r in rows]
    if start is None or not ends:
        return []
    total_ms = (max(ends) - start).total_seconds() * 1000
    return [format_ms(total_ms * i / 4) for i in range(5)]


@require_GET
@console_login_required
def trace_detail(request, project_id, trace_id):
    project = project_or_404(request, project_id)
    trace = trace_selectors.trace_get(project=project, trace_id=trace_id)
    if trace is None:
        raise Http404("No such trace.")
    observations = trace_selectors.trace_observations_first(
        project=project, trace_id=trace.id, limit=MAX_OBSERVATIONS + 1
    )
    truncated = len(observations) > MAX_OBSERVATIONS
    observations = observations[:MAX_OBSERVATIONS]
    rows = _tree_rows(observations)
    # A link to one call (a prompt version's generations) unfolds it and lands on it (#lg-focus).
    wanted = request.GET.get("observation")
    for row in rows:
        if wanted and row["obs"].id == wanted:
            row["open"] = row["focus"] = True
    summary = trace_summary(observations)
    metadata, otel = _otel_folded(trace.metadata)
    prompts = sorted({(o.prompt_name, o.prompt_version) for o in observations if o.prompt_name})
    context = {
        "trace": trace,
        "summary": summary,
        "tree": rows,
        "axis": _time_axis(summary, rows),
        "observations_truncated": truncated,
        "max_observations": MAX_OBSERVATIONS,
        "trace_input": present(trace.input),
        "trace_output": present(trace.output),
        "trace_metadata": metadata,
        "trace_otel": otel,
        "trace_redactions": redaction_view(trace.redactions),
        "observation_redactions": _observation_redaction_totals(observations),
        "scores": trace_scores(project=project, trace_id=trace.id),
        "score_configs": ScoreConfig.objects.filter(project=project, is_archived=False).order_by("name"),
        "session_url": session_url(project, trace.session_id) if trace.session_id else None,
        "user_url": user_url(project, trace.user_id) if trace.user_id else None,
        "prompt_links": [
            (name, version, f"{reverse('console:prompts', args=[project.id])}{quote(name, safe='')}/"
             + (f"?right={version}" if version else ""))
            for name, version in prompts
        ],
        "datasets": eval_selectors.dataset_names(project=project),
        "memberships": eval_selectors.trace_dataset_memberships(project=project, trace_id=trace.id),
        "can_write": may_annotate(request, project),
        "list_url": _url("traces", project),
        "review": _review_context(project, _queue_query(QueryDict(request.GET.get("review", ""))), trace),
    }
    return _page(request, project, "console/trace.html", context, section="traces")


def _score_value(raw: str, config: ScoreConfig | None):
    """The value as the scores API expects it: a number for numeric and boolean configs."""
    raw = (raw or "").strip()
    if config is not None and config.data_type in ("CATEGORICAL", "TEXT"):
        return raw
    if config is not None and config.data_type == "BOOLEAN":
        lowered = raw.lower()
        if lowered in ("true", "yes", "1"):
            return 1
        if lowered in ("false", "no", "0"):
            return 0
        return raw
    try:
        return float(Decimal(raw))
    except (InvalidOperation, ValueError):  # ValueError: "sNaN" is a Decimal that no float can hold
        return raw


@require_POST
@console_login_required
def trace_score(request, project_id, trace_id):
    """Add a score or a comment to the trace or one of its observations, through the scores API's
    own write path (validated against the project's score configs)."""
    project = project_or_404(request, project_id)
    trace = trace_selectors.trace_get(project=project, trace_id=trace_id)
    if trace is None:
        raise Http404("No such trace.")
    if not may_annotate(request, project):
        raise PermissionDenied("Scoring needs the member role.")
    config = None
    if request.POST.get("config"):
        config = ScoreConfig.objects.filter(project=project, pk=request.POST["config"]).first() \
            if _is_uuid(request.POST["config"]) else None
        if config is None:
            raise Http404("No such score config.")
    name = config.name if config else (request.POST.get("name") or "").strip()
    comment = (request.POST.get("comment") or "").strip()
    body = {
        "traceId": trace_id,
        "name": name or "comment",
        "source": "ANNOTATION",
        "metadata": {"annotatedBy": str(request.user.pk)},
    }
    if request.POST.get("observation_id"):
        body["observationId"] = request.POST["observation_id"]
    if config is not None:
        body["configId"] = str(config.id)
        body["dataType"] = config.data_type
        body["value"] = _score_value(request.POST.get("value", ""), config)
    elif request.POST.get("value", "").strip():
        body["value"] = _score_value(request.POST["value"], None)
    else:
        # A comment alone is a TEXT score holding the comment.
        body["dataType"] = "TEXT"
        body["value"] = comment[:500] or ""
    if comment:
        body["comment"] = comment
    result = create_scores(project=project, bodies=[body])
    queue = _queue_query(QueryDict(request.POST.get("review", "")))
    if result.errors:
        messages.error(request, f"Not saved: {result.errors[0]['message']}")
        back = f"?{urlencode({'review': queue})}" if queue else ""
        return HttpResponseRedirect(f"{trace_url(project, trace_id)}{back}#scores")
    messages.success(request, f"Score “{body['name']}” added.")
    if queue:
        # In a queue: on to the next trace after this one.
        return HttpResponseRedirect(_review_url(project, queue, after=trace))
    return HttpResponseRedirect(trace_url(project, trace_id) + "#scores")


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@require_POST
@console_login_required
def trace_to_dataset(request, project_id, trace_id):
    project = project_or_404(request, project_id)
    if trace_selectors.trace_get(project=project, trace_id=trace_id) is None:
        raise Http404("No such trace.")
    if not may_annotate(request, project):
        raise PermissionDenied("Adding to a dataset needs the member role.")
    dataset_name = request.POST.get("dataset") or ""
    observation_id = request.POST.get("observation_id") or None
    try:
        item, dataset = eval_services.dataset_item_from_production(
            project=project, dataset_name=dataset_name, trace_id=trace_id, observation_id=observation_id,
        )
    except ApiError as exc:
        messages.error(request, f"Not added to dataset {dataset_name!r}: {exc.message}")
    else:
        messages.success(request, f"Added to dataset {dataset.name!r} as item {item.id}.")
    return HttpResponseRedirect(trace_url(project, trace_id))


# --- annotation queue -----------------------------------------------------------------------------
# A queue is an explorer query (a saved view, or a preset such as every thumbs-down); a reviewer
# works through its traces oldest first, and a trace leaves the queue once someone scores it
# (an ANNOTATION score). Skipped traces stay in the queue, behind the reviewer's position.

REVIEW_PRESETS = (
    ("Every thumbs-down", "thumbs_down=on"),
    ("Every error", "status=error"),
    ("Every refusal", "status=refused"),
)
QUEUE_FIELDS = ("q", "name", "user", "session", "model", "environment", "release", "tag", "meta", "status",
                "prompt", "prompt_version",
                "score", "score_min", "score_max", "thumbs_down", "cost_min", "cost_max", "latency_min",
                "latency_max", "since", "until")


def _queue_query(params) -> str:
    """The part of a query string that defines a queue (filters only: no sort, page or columns)."""
    return urlencode([(k, v) for k in QUEUE_FIELDS for v in params.getlist(k) if v])


def _position(raw: str):
    moment, _, trace_id = (raw or "").partition("|")
    parsed = parse_datetime(moment) if moment else None
    return (parsed, trace_id) if parsed is not None and trace_id else None


def _review_url(project, queue: str, after: Trace | None = None) -> str:
    query = queue + (f"&{urlencode({'after': f'{after.timestamp.isoformat()}|{after.id}'})}" if after else "")
    return f"{_url('review', project)}?{query}"


@require_GET
@console_login_required
def review(request, project_id):
    """The next trace of a queue (a redirect to its page in review mode), or the list of queues."""
    project = project_or_404(request, project_id)
    queue = _queue_query(request.GET)
    if not queue:
        context = {
            "presets": [(label, f"{_url('review', project)}?{query}") for label, query in REVIEW_PRESETS],
            "views": [(v.name, f"{_url('review', project)}?{_queue_query(QueryDict(v.query))}")
                      for v in console_selectors.saved_views(project=project) if _queue_query(QueryDict(v.query))],
        }
        return _page(request, project, "console/review.html", context, section="review")
    form = ExplorerForm(QueryDict(queue))
    if not form.is_valid():
        return _page(request, project, "console/review.html", {"errors": form.errors}, status=400, section="review")
    after = _position(request.GET.get("after", ""))
    trace = trace_selectors.review_next(project=project, search=form.search(), after=after)
    if trace is None:
        left, _ = trace_selectors.search_count(
            trace_selectors.trace_search(project=project, search=dataclasses.replace(form.search(), unreviewed=True))
        )
        context = {"done": True, "left": left, "restart_url": f"{_url('review', project)}?{queue}" if left else None}
        return _page(request, project, "console/review.html", context, section="review")
    return HttpResponseRedirect(f"{trace_url(project, trace.id)}?{urlencode({'review': queue})}")


# The review bar's "N left" counts at most this many: past it the reviewer reads "more than 1,000
# left", which is as useful, and counting a thumbs-down queue of 100,000 traces to 10,000 cost 0.2-0.5 s
# on every trace page of a review at 10M observations (this count: 11-16 ms).
REVIEW_LEFT_CAP = 1_000


def _review_context(project, queue: str, trace: Trace) -> dict | None:
    if not queue:
        return None
    form = ExplorerForm(QueryDict(queue))
    if not form.is_valid():
        return None
    left, capped = trace_selectors.search_count(
        trace_selectors.trace_search(project=project, search=dataclasses.replace(form.search(), unreviewed=True)),
        cap=REVIEW_LEFT_CAP,
    )
    return {"queue": queue, "left": left, "capped": capped, "skip_url": _review_url(project, queue, after=trace)}


# --- sessions and users ---------------------------------------------------------------------------


def _page_number(request) -> int:
    try:
        return max(1, min(int(request.GET.get("page", 1)), 1000))
    except ValueError:
        return 1


@require_GET
@console_login_required
def sessions(request, project_id):
    project = project_or_404(request, project_id)
    page = _page_number(request)
    contains = request.GET.get("q", "")[:1000]
    ids, more = trace_selectors.session_ids_page(project=project, contains=contains, page=page, limit=PAGE_SIZE)
    totals = trace_selectors.trace_group_totals(project=project, column="session_id", keys=ids)
    rows = [(totals[i], session_url(project, i)) for i in ids if i in totals]
    context = {"rows": rows, "q": contains, "page": page, "more": more, "kind": "session"}
    return _page(request, project, "console/sessions.html", context, section="sessions")


@require_GET
@console_login_required
def session_detail(request, project_id, session_id):
    project = project_or_404(request, project_id)
    turns = trace_selectors.session_traces(project=project, session_id=session_id)
    if not turns:
        raise Http404("No such session.")
    turns = turns[:500]
    summaries = trace_selectors.trace_summaries(project=project, trace_ids=[t.id for t in turns], with_ids=False)
    scores = trace_selectors.scores_by_trace(project=project, trace_ids=[t.id for t in turns])
    totals = trace_selectors.trace_group_totals(project=project, column="session_id", keys=[session_id])
    context = {
        "session_id": session_id,
        "totals": totals.get(session_id),
        "turns": [
            {
                "trace": t,
                "url": trace_url(project, t.id),
                "input": present(t.input),
                "output": present(t.output),
                "summary": summaries.get(t.id),
                "cost": format_cost(summaries[t.id].total_cost) if t.id in summaries else "—",
                "scores": [score_label(s) for s in scores.get(t.id, [])],
                "user_url": user_url(project, t.user_id) if t.user_id else None,
            }
            for t in turns
        ],
    }
    return _page(request, project, "console/session.html", context, section="sessions")


@require_GET
@console_login_required
def users(request, project_id):
    project = project_or_404(request, project_id)
    page = _page_number(request)
    contains = request.GET.get("q", "")[:1000]
    ids, more = trace_selectors.user_ids_page(project=project, contains=contains, page=page, limit=PAGE_SIZE)
    # Cost and thumbs of a page of users from the per-user rollups: summed from every observation and
    # score of their traces they cost seconds at 10M observations (make bench-console).
    totals = trace_selectors.trace_group_totals(project=project, column="user_id", keys=ids, costs=False, thumbs=False)
    for user_id, rolled in user_totals(project=project, user_ids=ids).items():
        if user_id in totals:
            totals[user_id].cost = rolled["cost"]
            totals[user_id].thumbs_up, totals[user_id].thumbs_down = rolled["thumbs_up"], rolled["thumbs_down"]
    rows = [(totals[i], user_url(project, i)) for i in ids if i in totals]
    context = {"rows": rows, "q": contains, "page": page, "more": more, "kind": "user"}
    return _page(request, project, "console/users.html", context, section="users")


@require_GET
@console_login_required
def user_detail(request, project_id, user_id):
    project = project_or_404(request, project_id)
    totals = trace_selectors.trace_group_totals(project=project, column="user_id", keys=[user_id]).get(user_id)
    if totals is None:
        raise Http404("No such user.")
    exact = f'"{user_id}"'  # the explorer's exact-value form (a bare value is a prefix: bob finds bobby)
    recent = trace_selectors.trace_search(
        project=project, search=trace_selectors.TraceSearch(user_id=exact)
    )[:PAGE_SIZE]
    rows = _explorer_rows(project, recent)
    sessions_of_user = list(dict.fromkeys(r.trace.session_id for r in rows if r.trace.session_id))
    context = {
        "user_id": user_id,
        "totals": totals,
        "rows": rows,
        "columns": ["time", "input", "output", "status", "session", "scores", "cost", "latency"],
        "sessions": [(s, session_url(project, s)) for s in sessions_of_user[:20]],
        "all_traces_url": f"{_url('traces', project)}?{urlencode({'user': exact})}",
    }
    return _page(request, project, "console/user.html", context, section="users")


# --- datasets -------------------------------------------------------------------------------------


@require_GET
@console_login_required
def datasets(request, project_id):
    project = project_or_404(request, project_id)
    page = _page_number(request)
    rows, total = eval_selectors.dataset_page(project=project, page=page, limit=PAGE_SIZE)
    context = {"datasets": rows, "total": total, "page": page, "more": page * PAGE_SIZE < total}
    return _page(request, project, "console/datasets.html", context, section="datasets")

