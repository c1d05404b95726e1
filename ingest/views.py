"""Langfuse-compatible write endpoints: batch ingestion and scores (plus score reads).

Plain Django views: they authenticate, read and parse the body, call one service and shape the
answer exactly as the Langfuse SDKs expect. Every failure is a JSON 4xx, or 503 + Retry-After when
the data region cannot take the write (the SDKs retry 5xx; a 500 would be retried too but means a bug).
"""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from billing.enforcement import QuotaExceeded, quota_response, with_billing_headers
from feedback.cors import browser_cors, guard_browser_request
from feedback.selectors import feedback_settings_for
from ingest.services import BatchError, create_scores, delete_score, ingest_langfuse_batch
from ingest.writer import InvalidRecord, StorageUnavailable
from scores.selectors import OPERATORS, ScoreFilters, page_meta, score_get
from tenancy.http.body import streams_body
from tenancy.http.endpoint import authenticate, endpoint, read_json
from tenancy.http.errors import json_response, unavailable
from tenancy.http.params import InvalidParams, query_datetime, query_int, query_list
from traces.selectors import score_list

MAX_PAGE_LIMIT = 100


def _unavailable(exc: StorageUnavailable) -> HttpResponse:
    return unavailable(exc.message, exc.retry_after).response()


@with_billing_headers
@streams_body
@endpoint("POST")
def ingestion(request, principal):
    """`POST /api/public/ingestion`: the Langfuse batch (v2 SDK tracing; v3/v4 scores)."""
    # Each event's values are checked on their own (`ingest.contract`, 100 levels): one nested too
    # deep is refused alone, the others are stored, so no limit for the body as a whole.
    payload = read_json(request, max_depth=None)
    try:
        # A score-create event breaking its score config is reported, the others are stored.
        result = ingest_langfuse_batch(
            project=principal.project, payload=payload, api_key_id=principal.api_key.id
        )
    except QuotaExceeded as exc:
        return quota_response(exc)
    except BatchError as exc:
        return json_response({"message": exc.message, "errors": exc.errors}, status=400)
    except StorageUnavailable as exc:
        return _unavailable(exc)
    except InvalidRecord as exc:
        return json_response({"error": "InvalidRequestError", "message": str(exc)}, status=400)
    return json_response(result.as_response(), status=207)


@with_billing_headers
@streams_body
@csrf_exempt
@browser_cors  # preflights, and CORS headers for the origins the project allows (feedback.cors)
@endpoint("GET", "POST", auth=False)
def scores(request, _principal):
    """`POST /api/public/scores` (one score, or an array as SDK v5 sends) and `GET` (list)."""
    if request.method == "GET":
        return _score_list(request)
    principal = authenticate(request, allow_public_only=True)
    try:
        # Browser feedback: the project's allowed origins, its on/off switch and the rate limits.
        refusal = guard_browser_request(request, principal)
    except (OperationalError, InterfaceError):
        raise unavailable() from None
    if refusal is not None:
        return refusal
    payload = read_json(  # a batch of scores: each checked on its own, as in `ingestion`
        request, limit=settings.FEEDBACK_MAX_BODY_BYTES if principal.public_only else None, max_depth=None
    )
    is_batch = isinstance(payload, list)
    if is_batch and not payload:
        # 202 would tell the SDK "every score accepted" for a batch that held none.
        return json_response({"message": "Invalid request data", "error": "the array of scores is empty"}, 400)
    bodies = payload if is_batch else [payload]
    try:
        comment_limit = (
            feedback_settings_for(principal.project).comment_max_length if principal.public_only else None
        )
        result = create_scores(
            project=principal.project,
            bodies=bodies,
            public_only=principal.public_only,
            comment_limit=comment_limit,
            api_key_id=principal.api_key.id,
        )
    except QuotaExceeded as exc:
        return quota_response(exc)
    except StorageUnavailable as exc:
        return _unavailable(exc)
    except (OperationalError, InterfaceError):
        raise unavailable() from None
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


def _score_list(request):
    principal = authenticate(request)
    query = request.GET
    try:
        page = query_int(query, "page", 1, low=1)
        limit = query_int(query, "limit", 50, low=1, high=MAX_PAGE_LIMIT)
        operator = request.GET.get("operator") or None
        value = request.GET.get("value")
        if operator is not None and operator not in OPERATORS:
            raise InvalidParams(f"`operator` must be one of {', '.join(OPERATORS)}")
        if (operator is None) != (value in (None, "")):
            raise InvalidParams("`operator` and `value` must be given together")
        try:
            number = float(value) if value not in (None, "") else None
        except ValueError:
            raise InvalidParams("`value` must be a number") from None
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
            environments=query_list(query, "environment"),
            score_ids=query_list(query, "scoreIds"),
            trace_tags=query_list(query, "traceTags"),
            from_timestamp=query_datetime(query, "fromTimestamp"),
            to_timestamp=query_datetime(query, "toTimestamp"),
            operator=operator,
            value=number,
        )
    except InvalidParams as exc:
        return json_response({"message": "Invalid request data", "error": exc.message}, status=400)
    try:
        data, total = score_list(project=principal.project, filters=filters, page=page, limit=limit)
    except InvalidParams as exc:  # a page too deep (traces.selectors.MAX_PAGE_OFFSET)
        return json_response({"message": "Invalid request data", "error": exc.message}, status=400)
    except (OperationalError, InterfaceError):
        return _unavailable(StorageUnavailable())
    return json_response({"data": data, "meta": page_meta(page=page, limit=limit, total=total)})


@endpoint("GET", "DELETE")
def score_detail(request, principal, score_id: str):
    """`GET`/`DELETE /api/public/scores/{id}`; another project's score answers 404 exactly like a
    missing one."""
    if request.method == "DELETE":
        try:
            deleted = delete_score(project=principal.project, score_id=score_id)
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
