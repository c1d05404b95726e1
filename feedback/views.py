"""End-user feedback (`POST /api/v1/feedback`), Langfuse score configs (`/api/public/score-configs`)
and the feedback reports of the management API.

The first two are plain Django views like the other Langfuse-compatible endpoints (they authenticate
with project keys and shape answers exactly); the reports are a `ProjectScopedViewSet` for people.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from feedback import ratelimit, selectors, services
from feedback.cors import (
    browser_cors,
    guard_browser_request,
    json_response,
    looks_like_secret_credentials,
    request_origin,
    too_many_requests,
)
from feedback.models import ScoreConfigDataType
from ingest.writer import StorageUnavailable
from tenancy.api.base import ProjectScopedViewSet
from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.http.endpoint import read_json
from tenancy.http.errors import (
    CONTROL_PLANE_DOWN,
    RETRY_AFTER_SECONDS,
    HttpError,
    method_not_allowed,
    unauthorized,
    unavailable,
)
from tenancy.http.params import query_datetime, query_int

MAX_PAGE_LIMIT = 100


def _unauthorized(message: str):
    return unauthorized(message, scheme="Bearer").response()


def _unavailable(message: str = CONTROL_PLANE_DOWN, retry_after: int = RETRY_AFTER_SECONDS):
    return unavailable(message, retry_after).response()


def _method_not_allowed(allowed: list[str]):
    return method_not_allowed(allowed).response()


def _bad_request(message: str, status: int = 400, error: str = "InvalidRequestError"):
    return HttpError(status, message, error).response()


def _read_json(request, *, limit: int):
    """(payload, None) or (None, error response), through the one body reader."""
    try:
        return read_json(request, limit=limit), None
    except HttpError as exc:
        return None, exc.response()


# --- POST /api/v1/feedback ----------------------------------------------------------------------


@csrf_exempt
@browser_cors
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
            project=principal.project, feedback=parsed, origin=request_origin(request) or ""
        )
    except services.FeedbackRejected as exc:
        return _bad_request(exc.message, exc.status, exc.error)
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


# --- /api/public/score-configs ------------------------------------------------------------------


def _authenticate(request):
    try:
        return authenticate_header(request.META.get("HTTP_AUTHORIZATION")), None
    except AuthenticationFailed as exc:
        return None, _unauthorized(exc.message)
    except (OperationalError, InterfaceError):
        return None, _unavailable()


def _int_param(request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    return query_int(request.GET, name, default, low=low, high=high)


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{_CAMEL.get(name, name)}: {' '.join(messages)}" if name != "__all__" else " ".join(messages)
            for name, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


_CAMEL = {
    "data_type": "dataType",
    "min_value": "minValue",
    "max_value": "maxValue",
    "is_archived": "isArchived",
}
_CONFIG_BODY = {
    "name": "name",
    "dataType": "data_type",
    "minValue": "min_value",
    "maxValue": "max_value",
    "categories": "categories",
    "description": "description",
    "isArchived": "is_archived",
}


def _config_fields(payload, *, allowed: set[str]) -> dict:
    if not isinstance(payload, dict):
        raise ValidationError("the body must be a JSON object")
    out = {}
    for key, value in payload.items():
        if key not in allowed:
            raise ValidationError(
                f"unknown or read-only field {key[:60]!r}; expected {', '.join(sorted(allowed))}"
            )
        target = _CONFIG_BODY[key]
        if target in ("min_value", "max_value") and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError({target: ["must be a number"]})
            value = float(value)
        if target == "is_archived" and not isinstance(value, bool):
            raise ValidationError({target: ["must be true or false"]})
        if (
            target in ("name", "description", "data_type")
            and value is not None
            and not isinstance(value, str)
        ):
            raise ValidationError({target: ["must be a string"]})
        out[target] = value
    return out


@csrf_exempt
def score_configs(request):
    """`GET` (paginated list) and `POST` (create) `/api/public/score-configs`."""
    if request.method not in ("GET", "POST"):
        return _method_not_allowed(["GET", "POST"])
    principal, error = _authenticate(request)
    if error is not None:
        return error
    project = principal.project
    if request.method == "GET":
        try:
            page = _int_param(request, "page", 1, low=1)
            limit = _int_param(request, "limit", 50, low=1, high=MAX_PAGE_LIMIT)
        except ValueError as exc:
            return json_response({"message": "Invalid request data", "error": str(exc)}, status=400)
        configs, total = selectors.score_config_page(project=project, page=page, limit=limit)
        return json_response(
            {
                "data": [selectors.score_config_to_langfuse(c) for c in configs],
                "meta": selectors.page_meta(page=page, limit=limit, total=total),
            }
        )
    payload, error = _read_json(request, limit=settings.FEEDBACK_MAX_BODY_BYTES)
    if error is not None:
        return error
    try:
        fields = _config_fields(payload, allowed=set(_CONFIG_BODY) - {"isArchived"})
        missing = [key for key in ("name", "data_type") if not fields.get(key)]
        if missing:
            raise ValidationError({key: ["is required"] for key in missing})
        if fields["data_type"] not in ScoreConfigDataType.values:
            raise ValidationError({"data_type": [f"must be one of {', '.join(ScoreConfigDataType.values)}"]})
        config = services.score_config_create(project=project, actor=principal, **fields)
    except ValidationError as exc:
        return json_response(
            {"message": "Invalid request data", "error": _validation_message(exc)}, status=400
        )
    except IntegrityError:
        return json_response(
            {"message": "Invalid request data", "error": "name: a live score config with this name exists"},
            status=409,
        )
    return json_response(selectors.score_config_to_langfuse(config))


@csrf_exempt
def score_config_detail(request, config_id: str):
    """`GET` and `PATCH /api/public/score-configs/{id}`; another project's config answers 404 exactly
    like a missing one."""
    if request.method not in ("GET", "PATCH"):
        return _method_not_allowed(["GET", "PATCH"])
    principal, error = _authenticate(request)
    if error is not None:
        return error
    config = None
    try:
        config = selectors.score_config_get(project=principal.project, config_id=uuid.UUID(config_id))
    except ValueError:
        pass
    if config is None:
        return json_response(
            {"error": "LangfuseNotFoundError", "message": "Score config not found"}, status=404
        )
    if request.method == "GET":
        return json_response(selectors.score_config_to_langfuse(config))
    payload, error = _read_json(request, limit=settings.FEEDBACK_MAX_BODY_BYTES)
    if error is not None:
        return error
    try:
        fields = _config_fields(payload, allowed=set(_CONFIG_BODY) - {"dataType"})
        config = services.score_config_update(config=config, actor=principal, **fields)
    except ValidationError as exc:
        return json_response(
            {"message": "Invalid request data", "error": _validation_message(exc)}, status=400
        )
    except IntegrityError:
        return json_response(
            {"message": "Invalid request data", "error": "name: a live score config with this name exists"},
            status=409,
        )
    return json_response(selectors.score_config_to_langfuse(config))


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
