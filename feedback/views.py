"""End-user feedback (`POST /api/v1/feedback`) and the feedback reports of the management API.

The first is a plain Django view like the other Langfuse-compatible endpoints (it authenticates
with project keys and shapes answers exactly); the reports are a `ProjectScopedViewSet` for people.
The Langfuse score-config endpoints are in scores/views.py.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from billing.enforcement import QuotaExceeded, quota_response, with_billing_headers
from feedback import ratelimit, selectors, services
from feedback.cors import (
    browser_cors,
    guard_browser_request,
    json_response,
    looks_like_secret_credentials,
    request_origin,
    too_many_requests,
)
from ingest.pipeline import StorageUnavailable
from tenancy.api.base import ProjectScopedViewSet
from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.http.body import streams_body
from tenancy.http.errors import (
    HttpError,
)
from tenancy.http.params import query_datetime
from tenancy.http.plain import int_param as _int_param
from tenancy.http.plain import method_not_allowed_response as _method_not_allowed
from tenancy.http.plain import read_json_or_response as _read_json
from tenancy.http.plain import unauthorized_response as _unauthorized
from tenancy.http.plain import unavailable_response as _unavailable

MAX_PAGE_LIMIT = 100





def _bad_request(message: str, status: int = 400, error: str = "InvalidRequestError"):
    return HttpError(status, message, error).response()





# --- POST /api/v1/feedback ----------------------------------------------------------------------


@streams_body
@csrf_exempt
@browser_cors
@with_billing_headers
def feedback(request):
    """Record an end user's rating of a trace. `Authorization: Bearer <public key>` is enough, so a
    web page can call it directly; the key can write feedback and nothing else."""
    if request.method != "POST":
        return _method_not_allowed(["POST", "OPTIONS"])
    header = request.META.get("HTTP_AUTHORIZATION")
    server_call = looks_like_secret_credentials(header)
    if not server_call:
        limited = ratelimit.hit_ip(request)
        if limited is not None:
            return too_many_requests(limited)
    try:
        principal = authenticate_header(header, allow_public_only=True)
    except AuthenticationFailed as exc:
        if server_call:
            # A secret-looking header that fails still counts against the address (key guessing).
            limited = ratelimit.hit_ip(request)
            if limited is not None:
                return too_many_requests(limited)
        return _unauthorized(exc.message)
    except (OperationalError, InterfaceError):
        return _unavailable()
    try:
        refusal = guard_browser_request(request, principal, ip_counted=True)
    except (OperationalError, InterfaceError):
        return _unavailable()
    if refusal is not None:
        return refusal
    payload, error = _read_json(request, limit=settings.FEEDBACK_MAX_BODY_BYTES)
    if error is not None:
        return error
    try:
        limits = selectors.feedback_settings_for(principal.project)
        parsed = services.parse_feedback(payload, comment_max_length=limits.comment_max_length)
        result = services.feedback_submit(
            project=principal.project, feedback=parsed, origin=request_origin(request) or "",
            api_key_id=principal.api_key.id,
        )
    except services.FeedbackRejected as exc:
        return _bad_request(exc.message, exc.status, exc.error)
    except QuotaExceeded as exc:
        return quota_response(exc)
    except StorageUnavailable as exc:
        return _unavailable(exc.message, exc.retry_after)
    except (OperationalError, InterfaceError):
        return _unavailable()
    item = result.feedback
    return json_response(
        {
            "id": result.score_id,
            "traceId": item.trace_id,
            "observationId": item.observation_id or None,
            "name": item.name,
            "dataType": item.data_type,
            "value": item.value,
            "created": result.created,
            "previousValue": result.previous_value,
        },
        status=201 if result.created else 200,
    )


# --- management API: feedback reports -----------------------------------------------------------

MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 30
_REPORT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]


class _BadQuery(ValueError):
    pass


def _date_param(params, name: str) -> date | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _BadQuery(f"`{name}` must be a date (YYYY-MM-DD)") from None


def _datetime_param(params, name: str):
    return query_datetime(params, name)


class FeedbackReportViewSet(ProjectScopedViewSet):
    """End-user feedback of a project: the thumbs-down list and the daily thumbs-down rate (viewer+).
    People only (API keys are for the public API)."""

    @extend_schema(
        summary="Thumbs-down feedback, newest first, with comments",
        tags=["feedback"],
        parameters=[
            *_REPORT_PATH,
            OpenApiParameter(
                "name", OpenApiTypes.STR, description="only this feedback name (e.g. user_feedback)"
            ),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="start (inclusive)"),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="end (exclusive)"),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"1–{MAX_PAGE_LIMIT}, default 50"),
            OpenApiParameter("offset", OpenApiTypes.INT, description="default 0"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def thumbs_down(self, request, *args, **kwargs):
        params = request.query_params
        try:
            limit = _int_param(request, "limit", 50, low=1, high=MAX_PAGE_LIMIT)
            offset = _int_param(request, "offset", 0, low=0)
            since, until = _datetime_param(params, "from"), _datetime_param(params, "to")
            if since and until and since >= until:
                raise _BadQuery("`from` must be earlier than `to`")
        except (ValueError, _BadQuery) as exc:
            return Response({"detail": str(exc)}, status=400)
        items, total = selectors.thumbs_down_page(
            project=self.project,
            name=params.get("name") or None,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return Response({"count": total, "limit": limit, "offset": offset, "results": items})

    @extend_schema(
        summary="Thumbs up/down per UTC day and the thumbs-down rate",
        tags=["feedback"],
        parameters=[
            *_REPORT_PATH,
            OpenApiParameter("name", OpenApiTypes.STR, description="only this feedback name"),
            OpenApiParameter(
                "from", OpenApiTypes.DATE, description=f"first day; default `to` − {DEFAULT_REPORT_DAYS}"
            ),
            OpenApiParameter(
                "to", OpenApiTypes.DATE, description="day after the last; default tomorrow (UTC)"
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def daily(self, request, *args, **kwargs):
        params = request.query_params
        try:
            until = _date_param(params, "to") or (timezone.now().date() + timedelta(days=1))
            since = _date_param(params, "from") or (until - timedelta(days=DEFAULT_REPORT_DAYS))
            if since >= until:
                raise _BadQuery("`from` must be earlier than `to`")
            if (until - since).days > MAX_REPORT_DAYS:
                raise _BadQuery(f"at most {MAX_REPORT_DAYS} days per request")
        except _BadQuery as exc:
            return Response({"detail": str(exc)}, status=400)
        days = selectors.thumbs_down_daily(
            project=self.project, since=since, until=until, name=params.get("name") or None
        )
        total = sum(d["total"] for d in days)
        down = sum(d["down"] for d in days)
        return Response(
            {
                "from": since.isoformat(),
                "to": until.isoformat(),
                "total": total,
                "down": down,
                "thumbsDownRate": down / total if total else None,
                "days": days,
            }
        )
