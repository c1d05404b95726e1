"""Console pages for traces: a cross-project list and a trace's detail.

Trace and Observation have composite primary keys and live in region databases, which Django's
ModelAdmin cannot handle, so these are plain views registered on `admin_site` and rendered with the
admin's own templates. Every query is scoped by the projects the person can see
(`visible_projects`), so another tenant's trace is as absent as a missing one.
"""

from __future__ import annotations

import binascii
import json
import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from django import forms
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from scores.admin import trace_scores
from tenancy.admin_site import (
    admin_site,
    visible_projects,
)
from tenancy.http.params import decode_token, encode_token
from tenancy.models import Project
from traces.models import Observation, ObservationType, Status, Trace
from traces.selectors import TraceListRow, is_counted, is_unpriced, redaction_totals, trace_status
from traces.selectors import traces_across_projects as _traces_across_projects

PAGE_SIZE = 50
# A trace page stays usable; past this many observations the rest is left out, with a notice.
MAX_OBSERVATIONS = 2000
# Inputs and outputs can be megabytes; the page shows this much of each and says so.
MAX_TEXT_CHARS = 100_000
OPEN_DETAILS_UP_TO = 25



# --- the list ---------------------------------------------------------------------------------


class Cursor:
    """Position in the newest-first order (timestamp, project_id, id), carried in the URL."""

    def __init__(self, timestamp: datetime, project_id: uuid.UUID, trace_id: str):
        self.timestamp, self.project_id, self.trace_id = timestamp, project_id, trace_id

    @classmethod
    def of(cls, trace: Trace) -> Cursor:
        return cls(trace.timestamp, trace.project_id, trace.id)

    def encode(self) -> str:
        return encode_token([self.timestamp.isoformat(), str(self.project_id), self.trace_id])

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            timestamp, project_id, trace_id = decode_token(value)
            parsed = parse_datetime(timestamp)
            if parsed is None or not isinstance(trace_id, str):
                raise ValueError
            return cls(parsed, uuid.UUID(project_id), trace_id)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise forms.ValidationError(
                "This page link is not valid; start again from the newest traces."
            ) from None

    # The leading bound on timestamp alone is redundant but lets the (project_id, -timestamp) index
    # start at the cursor instead of filtering every newer row.
    def older(self) -> Q:
        return Q(timestamp__lte=self.timestamp) & (
            Q(timestamp__lt=self.timestamp)
            | Q(timestamp=self.timestamp, project_id__lt=self.project_id)
            | Q(timestamp=self.timestamp, project_id=self.project_id, id__lt=self.trace_id)
        )

    def newer(self) -> Q:
        return Q(timestamp__gte=self.timestamp) & (
            Q(timestamp__gt=self.timestamp)
            | Q(timestamp=self.timestamp, project_id__gt=self.project_id)
            | Q(timestamp=self.timestamp, project_id=self.project_id, id__gt=self.trace_id)
        )


STATUS_CHOICES = [("", "any status"), *Status.choices]


class TraceFilterForm(forms.Form):
    project = forms.ChoiceField(required=False)
    user_id = forms.CharField(required=False, max_length=1000, label="User id")
    session_id = forms.CharField(required=False, max_length=1000, label="Session id")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    model = forms.CharField(required=False, max_length=500)
    environment = forms.CharField(required=False, max_length=100)
    since = forms.DateTimeField(
        required=False, label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        required=False, label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data, *, projects: list[Project]):
        super().__init__(data)
        self.projects = {str(p.id): p for p in projects}
        self.fields["project"].choices = [
            ("", "all projects"), *[(key, str(p)) for key, p in self.projects.items()]
        ]

    def clean_after(self):
        value = self.cleaned_data.get("after")
        return Cursor.decode(value) if value else None

    def clean_before(self):
        value = self.cleaned_data.get("before")
        return Cursor.decode(value) if value else None

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be later than “From”.")
        if cleaned.get("after") and cleaned.get("before"):
            raise forms.ValidationError("Use either a newer or an older page link, not both.")
        return cleaned

    def selected_projects(self) -> list[Project]:
        key = self.cleaned_data.get("project")
        return [self.projects[key]] if key else list(self.projects.values())


def trace_page(*, projects, filters: dict, after=None, before=None, page_size: int = PAGE_SIZE):
    """The console list's page: `traces.selectors.traces_across_projects` with console rows."""
    return _traces_across_projects(
        projects=projects, filters=filters, after=after, before=before, page_size=page_size, row_class=TraceRow
    )


class TraceRow(TraceListRow):
    """A row of the console's trace list: the selector's row with its links and display forms."""

    @property
    def detail_url(self) -> str:
        return trace_detail_url(self.project.id, self.trace.id)

    @property
    def cost_display(self) -> str:
        return format_cost(self.total_cost)

    @property
    def latency_display(self) -> str:
        return format_ms(self.latency_ms)



def trace_list_view(request):
    projects = list(visible_projects(request))
    form = TraceFilterForm(request.GET, projects=projects)
    rows, has_newer, has_older, status = [], False, False, 200
    if form.is_valid():
        rows, has_newer, has_older = trace_page(
            projects=form.selected_projects(), filters=form.cleaned_data,
            after=form.cleaned_data["after"], before=form.cleaned_data["before"], page_size=PAGE_SIZE,
        )
    else:
        status = 400

    base_query = request.GET.copy()
    for key in ("after", "before"):
        base_query.pop(key, None)
    newer_url = older_url = None
    if rows and has_newer:
        query = base_query.copy()
        query["before"] = Cursor.of(rows[0].trace).encode()
        newer_url = "?" + query.urlencode()
    if rows and has_older:
        query = base_query.copy()
        query["after"] = Cursor.of(rows[-1].trace).encode()
        older_url = "?" + query.urlencode()

    context = {
        **admin_site.each_context(request),
        "title": "Traces",
        "form": form,
        "rows": rows,
        "newer_url": newer_url,
        "older_url": older_url,
        "newest_url": "?" + base_query.urlencode() if (has_newer or form.data.get("after")) else None,
        "has_projects": bool(projects),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/traces/trace_list.html", context, status=status)


# --- the detail -------------------------------------------------------------------------------


def trace_detail_url(project_id, trace_id: str) -> str:
    """The console page of a trace. The id is percent-encoded whole: `reverse()` leaves `/` and `.`
    as they are, so a trace id such as `../../auth/user` linked to another admin page (ids are any
    string the client chose). The route decodes it back (`<path:trace_id>`)."""
    return f"{reverse('admin:traces_trace_list')}{project_id}/{quote(trace_id, safe='')}/"


def trace_detail_view(request, project_id, trace_id):
    project = visible_projects(request).filter(pk=project_id).first()
    if project is None:
        raise Http404("No such trace.")
    trace = Trace.objects.for_project(project).filter(id=trace_id).first()
    if trace is None:
        raise Http404("No such trace.")
    observations = list(
        Observation.objects.for_project(project).filter(trace_id=trace.id).order_by("start_time", "id")[
            : MAX_OBSERVATIONS + 1
        ]
    )
    truncated = len(observations) > MAX_OBSERVATIONS
    observations = observations[:MAX_OBSERVATIONS]

    context = {
        **admin_site.each_context(request),
        "title": trace.name or trace.id,
        "subtitle": None,
        "project": project,
        "trace": trace,
        "summary": trace_summary(observations),
        "tree": observation_tree(observations),
        "observations_truncated": truncated,
        "max_observations": MAX_OBSERVATIONS,
        "trace_input": present(trace.input),
        "trace_output": present(trace.output),
        "trace_metadata": pretty_json(trace.metadata) if trace.metadata else "",
        "trace_redactions": redaction_view(trace.redactions),
        "observation_redactions": _observation_redaction_totals(observations),
        "scores": trace_scores(project=project, trace_id=trace.id),
        "list_url": reverse("admin:traces_trace_list"),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/traces/trace_detail.html", context)


def _observation_redaction_totals(observations: list[Observation]) -> dict | None:
    merged: dict[str, dict[str, int]] = {}
    for o in observations:
        for name, counts in (o.redactions or {}).items() if isinstance(o.redactions, dict) else ():
            if isinstance(counts, dict):
                bucket = merged.setdefault(name, {})
                for kind, n in counts.items():
                    if isinstance(n, int):
                        bucket[kind] = bucket.get(kind, 0) + n
    return redaction_view(merged)


def trace_summary(observations: list[Observation]) -> dict:
    # A nested generation repeating its parent's call (`duplicate_of`) is shown, not counted again.
    counted = [o for o in observations if is_counted(o)]

    def total(attr):
        values = [getattr(o, attr) for o in counted if getattr(o, attr) is not None]
        return sum(values) if values else None

    start, end = _bounds(observations)
    return {
        "status": trace_status(
            errors=sum(o.status == Status.ERROR for o in observations),
            refusals=sum(o.status == Status.REFUSED for o in observations),
        ),
        "observation_count": len(observations),
        "models": sorted({o.model for o in observations if o.model}),
        "input_tokens": total("input_tokens"),
        "cached_input_tokens": total("cached_input_tokens"),
        "cache_write_tokens": total("cache_write_tokens"),
        "output_tokens": total("output_tokens"),
        "reasoning_tokens": total("reasoning_tokens"),
        "total_tokens": total("total_tokens"),
        "total_cost": format_cost(total("total_cost")),
        "unpriced": sum(1 for o in counted if is_unpriced(o)),
        "unpriced_models": sorted({o.response_model or o.model for o in counted if is_unpriced(o)}),
        "latency": format_ms((end - start).total_seconds() * 1000) if start else "—",
        "start": start,
    }


def _bounds(observations):
    if not observations:
        return None, None
    start = min(o.start_time for o in observations)
    end = max((o.end_time or o.start_time) for o in observations)
    return start, end


def observation_tree(observations: list[Observation]) -> list[dict]:
    """Observations in depth-first order with their depth, nested by parent_observation_id.

    An observation whose parent is unknown (not ingested yet, or another trace's) is shown at the
    top level; a parent cycle cannot hide rows.
    """
    ids = {o.id for o in observations}
    children: dict[str, list[Observation]] = defaultdict(list)
    roots = []
    for o in observations:
        if o.parent_observation_id and o.parent_observation_id in ids and o.parent_observation_id != o.id:
            children[o.parent_observation_id].append(o)
        else:
            roots.append(o)

    start, end = _bounds(observations)
    duration = (end - start).total_seconds() if start else 0
    ordered: list[tuple[Observation, int]] = []
    seen: set[str] = set()

    def walk(nodes, depth):
        stack = [(node, depth) for node in reversed(nodes)]
        while stack:
            node, d = stack.pop()
            if node.id in seen:
                continue
            seen.add(node.id)
            ordered.append((node, d))
            stack.extend((child, d + 1) for child in reversed(children.get(node.id, [])))

    walk(roots, 0)
    walk([o for o in observations if o.id not in seen], 0)
    # Small traces open every generation, tool call and error; big ones stay folded to stay usable.
    open_by_default = len(observations) <= OPEN_DETAILS_UP_TO
    rows = [_observation_row(o, depth, start, duration) for o, depth in ordered]
    _mark_same_calls(rows)
    for row in rows:
        row["open"] = row["has_error"] or (
            open_by_default and row["obs"].type in (ObservationType.GENERATION, ObservationType.TOOL)
        )
    return rows


def _source(o: Observation) -> str:
    """Who recorded an observation: its OTel instrumentation scope, else the Langfuse SDK."""
    otel = o.metadata.get("otel") if isinstance(o.metadata, dict) else None
    scope = otel.get("scope") if isinstance(otel, dict) else None
    name = scope.get("name") if isinstance(scope, dict) else None
    return str(name) if name else "Langfuse SDK"


def _mark_same_calls(rows: list[dict]) -> None:
    """A generation that repeats its parent's call (`duplicate_of`) and that parent, shown as one
    call with both sources: the inner row says "same call as …" and is not counted again."""
    by_id = {row["obs"].id: row for row in rows}
    for row in rows:
        outer = by_id.get(row["obs"].duplicate_of) if row["obs"].duplicate_of else None
        if outer is None:
            continue
        row["same_call_as"] = {"id": outer["obs"].id, "name": outer["obs"].name, "source": _source(outer["obs"])}
        row["source"] = _source(row["obs"])
        outer["source"] = _source(outer["obs"])
        outer.setdefault("same_call_by", []).append(
            {"id": row["obs"].id, "name": row["obs"].name, "source": row["source"]}
        )


def _observation_row(o: Observation, depth: int, start, duration: float) -> dict:
    if duration > 0:
        offset = (o.start_time - start).total_seconds() / duration * 100
        width = ((o.end_time or o.start_time) - o.start_time).total_seconds() / duration * 100
    else:
        offset, width = 0.0, 100.0
    offset = min(max(offset, 0.0), 100.0)
    width = min(max(width, 0.5), 100.0 - offset) if offset < 100.0 else 0.5
    tokens = [
        (label, getattr(o, attr))
        for label, attr in (
            ("input", "input_tokens"),
            ("cached", "cached_input_tokens"),
            ("cache write", "cache_write_tokens"),
            ("output", "output_tokens"),
            ("reasoning", "reasoning_tokens"),
            ("total", "total_tokens"),
        )
        if getattr(o, attr) is not None
    ]
    return {
        "obs": o,
        "depth": depth,
        "indent": depth * 18,
        "bar_offset": f"{offset:.2f}",
        "bar_width": f"{width:.2f}",
        "latency": format_ms(o.latency_ms),
        "ttft": format_ms(o.time_to_first_token_ms),
        "tokens": tokens,
        "cost": format_cost(o.total_cost),
        "unpriced": is_unpriced(o),
        "is_tool": o.type == ObservationType.TOOL,
        "input": present(o.input),
        "output": present(o.output),
        "tool_calls": tool_calls(o.tool_calls),
        "metadata": pretty_json(o.metadata) if o.metadata else "",
        "model_parameters": pretty_json(o.model_parameters) if o.model_parameters else "",
        "has_error": bool(o.status == Status.ERROR or o.error_type or o.error_message or o.error_stack),
        "redactions": redaction_view(o.redactions),
    }


def redaction_view(redactions) -> dict | None:
    """What PII redaction removed from a row before storage, for display: totals by detector and
    the same per field (counts only; the values were never stored)."""
    totals = redaction_totals(redactions)
    if not totals:
        return None
    fields = [
        (name, ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())))
        for name, counts in sorted(redactions.items())
        if isinstance(counts, dict) and counts
    ]
    return {
        "total": sum(totals.values()),
        "totals": list(totals.items()),
        "summary": ", ".join(f"{kind} {n}" for kind, n in totals.items()),
        "fields": fields,
    }


# --- presenting values: chat messages, tool calls, JSON ---------------------------------------


def pretty_json(value) -> str:
    return _clip(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return f"{text[:MAX_TEXT_CHARS]}\n… ({len(text) - MAX_TEXT_CHARS} more characters not shown)"


def present(value) -> dict | None:
    """How to show an input or output: role-labelled chat messages, plain text, or JSON."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    messages = chat_messages(value)
    if messages is not None:
        return {"kind": "chat", "messages": messages}
    if isinstance(value, str):
        return {"kind": "text", "text": _clip(value)}
    return {"kind": "json", "text": pretty_json(value)}


def chat_messages(value) -> list[dict] | None:
    """`[{role, content}, …]` (also `{"messages": [...]}` or a single message) → display blocks."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    elif isinstance(value, dict) and isinstance(value.get("role"), str):
        value = [value]
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value):
        return None
    messages = []
    for message in value:
        parts, calls = _content_parts(message.get("content"))
        refusal = message.get("refusal")
        if not parts and isinstance(refusal, str) and refusal:
            # An OpenAI refusal (`content` null) stored before ingest copied it into `content`: the
            # refusal is the answer, so it is shown as one.
            parts = [{"kind": "text", "text": _clip(refusal)}]
        messages.append(
            {
                "role": message["role"],
                "name": str(message.get("name") or ""),
                "tool_call_id": str(message.get("tool_call_id") or ""),
                "parts": parts,
                "tool_calls": tool_calls(message.get("tool_calls")) + calls,
            }
        )
    return messages


def _content_parts(content) -> tuple[list[dict], list[dict]]:
    if content is None or content == "":
        return [], []
    if isinstance(content, str):
        return [{"kind": "text", "text": _clip(content)}], []
    if not isinstance(content, list):
        return [{"kind": "json", "text": pretty_json(content)}], []
    parts, calls = [], []
    for part in content:
        if isinstance(part, str):
            parts.append({"kind": "text", "text": _clip(part)})
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append({"kind": "text", "text": _clip(part["text"])})
        elif isinstance(part, dict) and part.get("type") == "tool_use":
            calls.extend(tool_calls([part]))
        else:
            parts.append({"kind": "json", "text": pretty_json(part)})
    return parts, calls


def tool_calls(value) -> list[dict]:
    """Tool calls as stored ({id, name, arguments}), or as OpenAI/Anthropic send them."""
    if not isinstance(value, list):
        return []
    calls = []
    for call in value:
        if not isinstance(call, dict):
            calls.append({"id": "", "name": "", "arguments": pretty_json(call)})
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        name = call.get("name") or function.get("name") or ""
        if "arguments" in call:
            arguments = call["arguments"]
        elif "arguments" in function:
            arguments = function["arguments"]
        else:
            arguments = call.get("input")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                pass
        calls.append(
            {
                "id": str(call.get("id") or ""),
                "name": str(name),
                "arguments": arguments if isinstance(arguments, str) else pretty_json(arguments),
            }
        )
    return calls


def format_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.2f} s"


def format_cost(value) -> str:
    if value is None:
        return "—"
    value = Decimal(value)
    if value == 0:
        return "$0"
    return f"${value:.6f}" if abs(value) < Decimal("0.01") else f"${value:.4f}"


def _is_console_user(request) -> bool:
    return admin_site.has_permission(request)


admin_site.register_view(
    "traces/", trace_list_view, name="traces_trace_list",
    link_title="Traces", app_label="traces", app_title="Traces", visible=_is_console_user,
)
admin_site.register_view(
    "traces/<uuid:project_id>/<path:trace_id>/", trace_detail_view, name="traces_trace_detail",
)
