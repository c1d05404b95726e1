"""`POST /api/public/redact` (a Lookglass extension of the public API): a machine redacts a text or
JSON value with its project's policy, authenticated with the project's secret key. Nothing is stored.

Same body and rules as the management route `…/projects/{id}/redact`; answers in the public API's
style (`{"error", "message"}` on failure, camelCase keys).
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from privacy import selectors
from privacy.api.serializers import MAX_TEXT_CHARS, RedactRequestSerializer
from privacy.api.views import PREVIEW_FAILED, RETRY_AFTER_SECONDS, UNAVAILABLE
from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.http.body import (
    MAX_BODY_DEPTH,
    BodyError,
    loads_json,
    nests_deeper_than,
    read_body,
    streams_body,
)
from tenancy.http.errors import dumps

# The text limit counts characters; its UTF-8 and JSON-escaped form may be a few times larger.
MAX_BODY_BYTES = 8 * MAX_TEXT_CHARS


def _json(payload, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(dumps(payload), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error(status: int, error: str, message: str, headers: dict | None = None) -> HttpResponse:
    return _json({"error": error, "message": message}, status=status, headers=headers)


def _messages(errors, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out = []
        for key, value in errors.items():
            where = "" if key == "non_field_errors" else f"{prefix}{key}: "
            out.extend(_messages(value, where))
        return out
    if isinstance(errors, list):
        return [m for item in errors for m in _messages(item, prefix)]
    return [f"{prefix}{errors}"]


def _parse(raw: bytes):
    if not raw.strip():
        raise ValueError("the request body is empty; send {\"text\": \"…\"} or {\"value\": …}")
    try:
        data = loads_json(raw)  # the public API's reader: NaN and 1e400 are not JSON, deep nesting a 400
    except ValueError as exc:
        raise ValueError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the request body must be an object: {\"text\": \"…\"} or {\"value\": …}")
    if nests_deeper_than(data, MAX_BODY_DEPTH):
        raise ValueError(f"the request body nests deeper than {MAX_BODY_DEPTH} levels")
    return data


@streams_body
@csrf_exempt
def redact(request):
    if request.method != "POST":
        return _error(405, "MethodNotAllowedError", "Method not allowed; send POST", headers={"Allow": "POST"})
    try:
        principal = authenticate_header(request.META.get("HTTP_AUTHORIZATION"))
    except AuthenticationFailed as exc:
        return _error(401, "UnauthorizedError", exc.message, headers={"WWW-Authenticate": 'Basic realm="lookglass"'})
    except (OperationalError, InterfaceError):
        return _error(503, "ServiceUnavailableError", UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    try:
        data = _parse(read_body(request, limit=MAX_BODY_BYTES))
    except BodyError as exc:
        kind = {413: "PayloadTooLargeError", 415: "UnsupportedMediaTypeError"}.get(exc.status, "InvalidRequestError")
        return _error(exc.status, kind, exc.message)
    except ValueError as exc:
        return _error(400, "InvalidRequestError", str(exc))
    payload = RedactRequestSerializer(data=data)
    if not payload.is_valid():
        return _error(400, "InvalidRequestError", "; ".join(_messages(payload.errors)))
    key = "text" if "text" in payload.validated_data else "value"
    try:
        preview = selectors.redaction_preview(project=principal.project, value=payload.validated_data[key])
    except selectors.RedactionPreviewFailed:
        return _error(422, "UnprocessableEntityError", PREVIEW_FAILED)
    except (OperationalError, InterfaceError):
        return _error(503, "ServiceUnavailableError", UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return _json(
        {
            key: preview.value,
            "counts": preview.counts,
            "policy": {
                "source": preview.source,
                "version": preview.version,
                "appliedAtIngest": preview.applied_at_ingest,
            },
        }
    )
