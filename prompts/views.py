"""Langfuse-compatible prompt endpoints (`/api/public/v2/prompts…`) and the management comparison.

The public views are plain Django views rather than DRF: `GET /api/public/v2/prompts/{name}` sits
on the customer's request path and does nothing but authenticate, read the cache and write bytes.
Errors keep Langfuse's shape: `{"message": …, "error": "<Kind>"}`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from prompts import selectors, services
from prompts.errors import InvalidRequest, PromptNotFound, not_found_message
from prompts.payloads import parse_create, parse_version, validate_labels
from prompts.render import iso
from prompts.templating import compile_prompt
from tenancy.api.base import ProjectScopedViewSet
from tenancy.http.body import streams_body
from tenancy.http.endpoint import endpoint, read_json
from tenancy.http.errors import dumps
from tenancy.http.params import parse_iso_datetime

JSON = "application/json"
MAX_WINDOW = timedelta(days=366)
DEFAULT_WINDOW = timedelta(days=7)


def _json(payload, status: int = 200) -> HttpResponse:
    # `dumps` falls back to the stdlib for integers beyond 64 bits, which stored JSON (a dataset's
    # metadata, an item's input) may hold and orjson refuses.
    return HttpResponse(dumps(payload, option=orjson.OPT_UTC_Z), status=status, content_type=JSON)


def _method_message(request, allowed) -> str:
    return f"Method {request.method} not allowed here; use {', '.join(allowed)}"


def langfuse_endpoint(*methods: str):
    """CSRF-exempt, method-checked, key-authenticated (`tenancy.http.endpoint`); the view gets
    (request, principal, **kwargs)."""
    wrap = endpoint(*sorted(m.upper() for m in methods), method_message=_method_message)
    # Marked for `tenancy.chunked`: these views read chunked bodies themselves, under their own limit.
    return lambda view: streams_body(wrap(view))


def _body(request) -> dict:
    # Through the one body reader: Content-Encoding, and the size limit applied after decompression.
    body = read_json(
        request,
        limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        empty={},
        invalid_message="the request body is not valid JSON.",
    )
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object.")
    return body


# Shared with the other Langfuse-compatible plain views (evals/views.py).
json_response = _json
json_body = _body


def _label_or_version(label, version) -> tuple[str | None, int | None]:
    if label not in (None, "") and version not in (None, ""):
        raise InvalidRequest("give either `version` or `label`, not both.")
    if version not in (None, ""):
        return None, parse_version(version)
    if label not in (None, ""):
        if not isinstance(label, str):
            raise InvalidRequest("`label` must be a string.")
        return label, None
    return None, None


def _int_param(request, name: str, *, default: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"`{name}` must be an integer between 1 and {maximum}, not {raw!r}.") from None
    if not 1 <= value <= maximum:
        raise InvalidRequest(f"`{name}` must be an integer between 1 and {maximum}, not {raw!r}.")
    return value


# Shared with evals/views.py, like json_response and json_body above.
int_param = _int_param


def _datetime_param(raw: str | None, name: str) -> datetime | None:
    if raw in (None, ""):
        return None
    value = parse_iso_datetime(raw)
    if value is None:
        raise InvalidRequest(
            f"`{name}` must be an ISO 8601 datetime such as 2025-01-31T00:00:00Z, not {raw!r}."
        )
    return value


def parse_window(query) -> tuple[datetime, datetime]:
    until = _datetime_param(query.get("to"), "to") or timezone.now()
    since = _datetime_param(query.get("from"), "from") or until - DEFAULT_WINDOW
    if since >= until:
        raise InvalidRequest("`from` must be earlier than `to`.")
    if until - since > MAX_WINDOW:
        raise InvalidRequest("the window from `from` to `to` may span at most 366 days.")
    return since, until


# --- /api/public/v2/prompts -------------------------------------------------------------------


@langfuse_endpoint("GET", "POST")
def prompts_root(request, principal):
    if request.method == "POST":
        return _create(request, principal)
    return _list(request, principal)


def _create(request, principal):
    data = parse_create(_body(request))
    project = principal.project
    prompt, version = services.prompt_create_version(project=project, data=data, actor=principal)
    payload = selectors.prompt_payload_for(
        project=project, name=prompt.name, label=None, version=version.version
    )
    return _json(payload, status=201)


def _list(request, principal):
    query = request.GET
    label = query.get("label") or None
    if label is not None:
        validate_labels([label], field="label", allow_latest=True)
    filters = selectors.PromptListFilters(
        name=query.get("name") or None,
        label=label,
        tag=query.get("tag") or None,
        from_updated_at=_datetime_param(query.get("fromUpdatedAt"), "fromUpdatedAt"),
        to_updated_at=_datetime_param(query.get("toUpdatedAt"), "toUpdatedAt"),
    )
    page = _int_param(request, "page", default=1, maximum=1_000_000)
    limit = _int_param(request, "limit", default=50, maximum=1000)
    data, total = selectors.prompt_list(project=principal.project, filters=filters, page=page, limit=limit)
    for row in data:
        row["lastUpdatedAt"] = iso(row["lastUpdatedAt"])
    return _json(
        {
            "data": data,
            "meta": {"page": page, "limit": limit, "totalItems": total, "totalPages": -(-total // limit)},
        }
    )


@langfuse_endpoint("GET")
def prompt_detail(request, principal, name: str):
    """The SDKs' `get_prompt`: `?version=` or `?label=`, `production` by default."""
    label, version = _label_or_version(request.GET.get("label"), request.GET.get("version"))
    body = selectors.prompt_fetch_cached(project=principal.project, name=name, label=label, version=version)
    if body is None:
        raise PromptNotFound(
            not_found_message(
                name, label=label or ("production" if version is None else None), version=version
            )
        )
    return HttpResponse(body, content_type=JSON)


@langfuse_endpoint("PATCH")
def prompt_version_update(request, principal, name: str, version: str):
    number = parse_version(version)
    body = _body(request)
    if "newLabels" not in body:
        raise InvalidRequest("the body needs `newLabels`: the labels to move to this version.")
    labels = validate_labels(body["newLabels"], field="newLabels", allow_latest=False)
    project = principal.project
    services.prompt_version_add_labels(
        project=project, name=name, version=number, labels=labels, actor=principal
    )
    return _json(selectors.prompt_payload_for(project=project, name=name, label=None, version=number))


@langfuse_endpoint("POST")
def prompt_compile(request, principal, name: str):
    """Our extension: the server-side preview of `prompt.compile(**variables)`."""
    body = _body(request)
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidRequest("`variables` must be a JSON object of name → value.")
    label, version = _label_or_version(body.get("label"), body.get("version"))
    project = principal.project
    payload = selectors.prompt_payload_for(project=project, name=name, label=label, version=version)
    if payload is None:
        raise PromptNotFound(
            not_found_message(
                name, label=label or ("production" if version is None else None), version=version
            )
        )
    if payload["type"] == "text":
        compiled = compile_prompt(text=payload["prompt"], variables=variables)
    else:
        compiled = compile_prompt(messages=payload["prompt"], variables=variables)
    return _json(
        {
            "name": payload["name"],
            "version": payload["version"],
            "type": payload["type"],
            "labels": payload["labels"],
            "config": payload["config"],
            "prompt": compiled.prompt,
            "missing": compiled.missing,
            "unused": compiled.unused,
            "warnings": compiled.warnings,
        }
    )


@langfuse_endpoint("GET")
def prompt_metrics(request, principal, name: str):
    """Our extension: the version comparison over `?from=&to=` (default: the last 7 days)."""
    since, until = parse_window(request.GET)
    project = principal.project
    prompt = selectors.prompt_by_name(project=project, name=name)
    if prompt is None:
        raise PromptNotFound(not_found_message(name))
    rows = selectors.compare_versions(project=project, prompt=prompt, since=since, until=until)
    return _json(
        {
            "name": prompt.name,
            "from": iso(since),
            "to": iso(until),
            "versions": [metrics_payload(row, camel=True) for row in rows],
        }
    )


def routed_by_method(name_view, *, methods: dict):
    """`a/b/compile` is the compile route of `a/b` for POST and the prompt named `a/b/compile` for
    GET; likewise `…/versions/3`. Django resolves paths without looking at the method, so the
    suffix routes hand other methods back to the prompt-by-name view with the full name."""

    @streams_body  # every handler reads its body through `_body`
    @csrf_exempt
    def view(request, name: str, suffix: str, **kwargs):
        handler = methods.get(request.method)
        if handler is not None:
            return handler(request, name=name, **kwargs)
        return name_view(request, name=f"{name}/{suffix}")

    return view


def metrics_payload(row: selectors.VersionMetrics, *, camel: bool) -> dict:
    def num(value):
        return float(value) if value is not None else None

    payload = {
        "version": row.version,
        "registered": row.registered,
        "labels": row.labels,
        "created_at": iso(row.created_at),
        "commit_message": row.commit_message,
        "calls": row.calls,
        "error_rate": row.error_rate,
        "refusal_rate": row.refusal_rate,
        "latency_p50_ms": num(row.latency_p50_ms),
        "latency_p95_ms": num(row.latency_p95_ms),
        "time_to_first_token_p50_ms": num(row.time_to_first_token_p50_ms),
        "avg_cost": num(row.avg_cost),
        "costed_calls": row.costed_calls,
        "unpriced_calls": row.unpriced_calls,
        "feedback_count": row.feedback_count,
        "thumbs_down_count": row.thumbs_down_count,
        "thumbs_down_rate": row.thumbs_down_rate,
        "scores": {name: {"avg": num(s["avg"]), "count": s["count"]} for name, s in row.scores.items()},
    }
    if camel:
        payload = {_camel(key): value for key, value in payload.items()}
    return payload


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


# --- /api/v1/…/prompts/{name}/versions/compare --------------------------------------------------


class PromptCompareViewSet(ProjectScopedViewSet):
    """Per-version metrics of a prompt over a window; any member of the organization (viewer+)."""

    @extend_schema(
        summary="Compare a prompt's versions: calls, error/refusal rates, latency, cost, feedback, scores",
        tags=["prompts"],
        parameters=[
            OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            OpenApiParameter(
                "prompt_name",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The prompt's name; folders separated by `/`",
            ),
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="Start (inclusive); default `to` − 7 days"
            ),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (exclusive); default now"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def compare(self, request, *args, **kwargs):
        name = self.kwargs["prompt_name"]
        try:
            since, until = parse_window(request.query_params)
        except InvalidRequest as exc:
            return Response({"detail": exc.message}, status=400)
        prompt = selectors.prompt_by_name(project=self.project, name=name)
        if prompt is None:
            return Response({"detail": not_found_message(name)}, status=404)
        rows = selectors.compare_versions(project=self.project, prompt=prompt, since=since, until=until)
        return Response(
            {
                "name": prompt.name,
                "from": iso(since),
                "to": iso(until),
                "versions": [metrics_payload(row, camel=False) for row in rows],
            }
        )
