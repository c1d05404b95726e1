"""`POST /api/public/erasure-requests` and `GET /api/public/erasure-requests/{id}`: the customer's
backend, having received a GDPR request, asks for everything about an end user, a session or some
traces to be erased (secret key), then polls the receipt. Answers in the public API's style."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError

from privacy import selectors, services
from privacy.models import ErasureKind
from tenancy.http.endpoint import endpoint, read_json
from tenancy.http.errors import HttpError, json_response, unavailable

MAX_BODY_BYTES = 2 * 1024 * 1024  # 10,000 trace ids of 200 characters fit


def receipt(request) -> dict:
    """The receipt in the public API's camelCase (no subject: only its keyed hash)."""
    return {
        "id": str(request.id),
        "projectId": str(request.project_id),
        "status": request.status,
        "kind": request.kind,
        "subjectHash": request.subject_hash,
        "subjectCount": request.subject_count,
        "counts": request.counts,
        "verification": request.verification,
        "requestedVia": request.requested_via,
        "createdAt": request.created_at,
        "startedAt": request.started_at,
        "finishedAt": request.finished_at,
        "verifiedAt": request.verified_at,
        "graceUntil": request.grace_until,
        "closedAt": request.closed_at,
        "error": request.error,
    }


def parse_subject(data) -> tuple[str, list[str]]:
    """`{"userId"}`, `{"sessionId"}` or `{"traceIds": [...]}` (exactly one) → (kind, subjects)."""
    if not isinstance(data, dict):
        raise HttpError(400, 'send an object: {"userId": …}, {"sessionId": …} or {"traceIds": […]}')
    given = [name for name in ("userId", "sessionId", "traceIds") if data.get(name) is not None]
    if len(given) != 1:
        raise HttpError(400, "give exactly one of userId, sessionId, traceIds")
    name = given[0]
    value = data[name]
    if name == "traceIds":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise HttpError(400, "traceIds must be a non-empty array of trace ids (strings)")
        return ErasureKind.TRACES, value
    if not isinstance(value, str) or not value:
        raise HttpError(400, f"{name} must be a non-empty string")
    return (ErasureKind.USER if name == "userId" else ErasureKind.SESSION), [value]


def create_for_key(principal, *, kind: str, subjects: list[str], grace_days=None, via: str):
    try:
        return services.erasure_request_create(
            project=principal.project, kind=kind, subjects=subjects, via=via, api_key=principal.api_key,
            grace_days=grace_days,
        )
    except ValidationError as exc:
        raise HttpError(400, "; ".join(m for ms in exc.message_dict.values() for m in ms)) from None
    except (OperationalError, InterfaceError) as exc:
        raise unavailable() from exc


@endpoint("POST")
def erasure_requests(request, principal):
    data = read_json(request, limit=MAX_BODY_BYTES)
    kind, subjects = parse_subject(data)
    grace = data.get("gracePeriodDays")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise HttpError(400, "gracePeriodDays must be a whole number of days")
    erasure = create_for_key(principal, kind=kind, subjects=subjects, grace_days=grace, via="public-api")
    return json_response(receipt(erasure), status=202, headers={"Location": f"/api/public/erasure-requests/{erasure.id}"},
                         utc_z=True)


@endpoint("GET")
def erasure_request_detail(request, principal, erasure_id: str):
    try:
        erasure = selectors.erasure_request_get(project=principal.project, erasure_id=erasure_id)
    except (OperationalError, InterfaceError) as exc:
        raise unavailable() from exc
    if erasure is None:
        raise HttpError(404, "erasure request not found")
    return json_response(receipt(erasure), utc_z=True)
