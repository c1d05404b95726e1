"""Langfuse-compatible write endpoints: batch ingestion and scores (plus score reads).

Plain Django views: they authenticate, read and parse the body, call one service and shape the
answer exactly as the Langfuse SDKs expect. Every failure is a JSON 4xx, or 503 + Retry-After when
the data region cannot take the write (the SDKs retry 5xx; a 500 would be retried too but means a bug).
"""

from __future__ import annotations

from datetime import datetime
from functools import wraps

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from feedback.cors import browser_cors, guard_browser_request
from feedback.services import score_delete, scores_create, screen_ingestion_scores
from scores.selectors import OPERATORS, ScoreFilters, page_meta, score_get, score_list
from tenancy.authentication import AuthenticationFailed, KeyPrincipal, authenticate_header
from traces.ingest.body import BodyError, read_body, streams_body
from traces.ingest.langfuse import EventError, parse_datetime
from traces.ingest.writer import InvalidRecord, StorageUnavailable
from traces.services import BatchError, ingest_langfuse_batch

MAX_PAGE_LIMIT = 100


def json_response(payload, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _unauthorized(message: str) -> HttpResponse:
    return json_response(
        {"error": "UnauthorizedError", "message": message},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="lookglass"'},
    )


def _method_not_allowed(allowed: list[str]) -> HttpResponse:
    return json_response(
        {"error": "MethodNotAllowedError", "message": "Method not allowed"},
        status=405,
        headers={"Allow": ", ".join(allowed)},
    )


def _unavailable(exc: StorageUnavailable) -> HttpResponse:
    return json_response(
        {"error": "ServiceUnavailableError", "message": exc.message},
        status=503,
        headers={"Retry-After": str(exc.retry_after)},
    )


class _ControlPlaneDown(Exception):
    pass


def _authenticate(request, *, allow_public_only: bool = False) -> KeyPrincipal:
    try:
        return authenticate_header(
            request.META.get("HTTP_AUTHORIZATION"), allow_public_only=allow_public_only
        )
    except (OperationalError, InterfaceError) as exc:
        # Keys live in the control-plane database; without it nothing can be accepted, only retried.
        raise _ControlPlaneDown from exc


def _read_json(request, limit: int | None = None):
    """The decoded JSON body, or an error response."""
    try:
        raw = read_body(request, limit=limit or settings.INGEST_MAX_BODY_BYTES)
    except BodyError as exc:
        kind = {413: "PayloadTooLargeError", 415: "UnsupportedMediaTypeError"}.get(
            exc.status, "InvalidRequestError"
        )
        return None, json_response({"error": kind, "message": exc.message}, status=exc.status)
    if not raw.strip():
        return None, json_response(
            {"error": "InvalidRequestError", "message": "the request body is empty"}, 400
        )
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        return None, json_response(
            {"error": "InvalidRequestError", "message": f"the request body is not valid JSON: {exc}"},
            status=400,
        )


def _retry_when_down(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except _ControlPlaneDown:
            return _unavailable(StorageUnavailable("the database is unavailable; retry later"))

    return wrapper


@streams_body
@csrf_exempt
@_retry_when_down
def ingestion(request):
    """`POST /api/public/ingestion`: the Langfuse batch (v2 SDK tracing; v3/v4 scores)."""
    if request.method != "POST":
        return _method_not_allowed(["POST"])
    try:
        principal = _authenticate(request)
    except AuthenticationFailed as exc:
        return _unauthorized(exc.message)
    payload, error = _read_json(request)
    if error is not None:
        return error
    try:
        # Score configs: a score-create event breaking its config is reported, the others are stored.
        payload, config_errors = screen_ingestion_scores(project=principal.project, payload=payload)
    except (OperationalError, InterfaceError):
        return _unavailable(StorageUnavailable("the database is unavailable; retry later"))
    try:
        result = ingest_langfuse_batch(project=principal.project, payload=payload)
    except BatchError as exc:
        return json_response({"message": exc.message, "errors": exc.errors}, status=400)
    except StorageUnavailable as exc:
        return _unavailable(exc)
    except InvalidRecord as exc:
        return json_response({"error": "InvalidRequestError", "message": str(exc)}, status=400)
    result.errors.extend(config_errors)
    return json_response(result.as_response(), status=207)


@streams_body
@csrf_exempt
@browser_cors  # preflights, and CORS headers for the origins the project allows (feedback.cors)
@_retry_when_down
def scores(request):
    """`POST /api/public/scores` (one score, or an array as SDK v5 sends) and `GET` (list)."""
    if request.method == "GET":
        return _score_list(request)
    if request.method != "POST":
        return _method_not_allowed(["GET", "POST"])
    try:
        principal = _authenticate(request, allow_public_only=True)
    except AuthenticationFailed as exc:
        return _unauthorized(exc.message)
    try:
        # Browser feedback: the project's allowed origins, its on/off switch and the rate limits.
        refusal = guard_browser_request(request, principal)
    except (OperationalError, InterfaceError):
        return _unavailable(StorageUnavailable("the database is unavailable; retry later"))
    if refusal is not None:
        return refusal
    payload, error = _read_json(
        request, limit=settings.FEEDBACK_MAX_BODY_BYTES if principal.public_only else None
    )
    if error is not None:
        return error
    is_batch = isinstance(payload, list)
    if is_batch and not payload:
        # 202 would tell the SDK "every score accepted" for a batch that held none.
        return json_response({"message": "Invalid request data", "error": "the array of scores is empty"}, 400)
    bodies = payload if is_batch else [payload]
    try:
        result = scores_create(project=principal.project, bodies=bodies, public_only=principal.public_only)
    except StorageUnavailable as exc:
        return _unavailable(exc)
    except (OperationalError, InterfaceError):
        return _unavailable(StorageUnavailable("the database is unavailable; retry later"))
    except InvalidRecord as exc:
        return json_response({"message": "Invalid request data", "error": str(exc)}, status=400)
    if not is_batch:
        if result.errors:
            error = result.errors[0]
            status = error.get("status", 400)
            message = "Invalid request data" if status == 400 else "Unprocessable Entity"
            return json_response({"message": message, "error": error["message"]}, status)
        return json_response({"id": result.ids[0]}, status=200)
    if not result.errors:
        return json_response({"message": "Accepted"}, status=202)
    return json_response(
        {
            "accepted": len(result.ids),
            "rejected": len(result.errors),
            "errors": [{"message": f"score {e['index']}: {e['message']}"} for e in result.errors],
        },
        status=207,
    )


def _query_list(request, name: str) -> tuple[str, ...]:
    values = []
    for raw in request.GET.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(values)


class _BadQuery(ValueError):
    pass


def _int_param(request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadQuery(f"`{name}` must be an integer") from None
    if value < low or (high is not None and value > high):
        raise _BadQuery(f"`{name}` must be between {low} and {high}" if high else f"`{name}` must be ≥ {low}")
    return value


def _time_param(request, name: str) -> datetime | None:
    raw = request.GET.get(name)
    if not raw:
        return None
    try:
        return parse_datetime(raw, name)
    except EventError as exc:
        raise _BadQuery(exc.message) from None


def _score_list(request):
    try:
        principal = _authenticate(request)
    except AuthenticationFailed as exc:
        return _unauthorized(exc.message)
    try:
        page = _int_param(request, "page", 1, low=1)
        limit = _int_param(request, "limit", 50, low=1, high=MAX_PAGE_LIMIT)
        operator = request.GET.get("operator") or None
        value = request.GET.get("value")
        if operator is not None and operator not in OPERATORS:
            raise _BadQuery(f"`operator` must be one of {', '.join(OPERATORS)}")
        if (operator is None) != (value in (None, "")):
            raise _BadQuery("`operator` and `value` must be given together")
        try:
            number = float(value) if value not in (None, "") else None
        except ValueError:
            raise _BadQuery("`value` must be a number") from None
        filters = ScoreFilters(
            name=request.GET.get("name") or None,
            user_id=request.GET.get("userId") or None,
            trace_id=request.GET.get("traceId") or None,
            observation_id=request.GET.get("observationId") or None,
            session_id=request.GET.get("sessionId") or None,
            source=request.GET.get("source") or None,
            data_type=request.GET.get("dataType") or None,
            config_id=request.GET.get("configId") or None,
            queue_id=request.GET.get("queueId") or None,
            environments=_query_list(request, "environment"),
            score_ids=_query_list(request, "scoreIds"),
            trace_tags=_query_list(request, "traceTags"),
            from_timestamp=_time_param(request, "fromTimestamp"),
            to_timestamp=_time_param(request, "toTimestamp"),
            operator=operator,
            value=number,
        )
    except _BadQuery as exc:
        return json_response({"message": "Invalid request data", "error": str(exc)}, status=400)
    try:
        data, total = score_list(project=principal.project, filters=filters, page=page, limit=limit)
    except (OperationalError, InterfaceError):
        return _unavailable(StorageUnavailable())
    return json_response({"data": data, "meta": page_meta(page=page, limit=limit, total=total)})


@csrf_exempt
@_retry_when_down
def score_detail(request, score_id: str):
    """`GET`/`DELETE /api/public/scores/{id}`; another project's score answers 404 exactly like a
    missing one."""
    if request.method not in ("GET", "DELETE"):
        return _method_not_allowed(["GET", "DELETE"])
    try:
        principal = _authenticate(request)
    except AuthenticationFailed as exc:
        return _unauthorized(exc.message)
    if request.method == "DELETE":
        try:
            deleted = score_delete(project=principal.project, score_id=score_id)
        except (OperationalError, InterfaceError):
            return _unavailable(StorageUnavailable())
        if not deleted:
            return json_response({"error": "LangfuseNotFoundError", "message": "Score not found"}, status=404)
        return HttpResponse(status=204)
    try:
        score = score_get(project=principal.project, score_id=score_id)
    except (OperationalError, InterfaceError):
        return _unavailable(StorageUnavailable())
    if score is None:
        return json_response({"error": "LangfuseNotFoundError", "message": "Score not found"}, status=404)
    return json_response(score)
