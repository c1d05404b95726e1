"""One error type for the Langfuse-compatible HTTP layer, rendered in Langfuse's JSON error shape:
`{"message": …, "error": "<Kind>"}` (for a 400 on a field, Langfuse puts "Invalid request data" in
`message` and the detail in `error`)."""

from __future__ import annotations

import orjson
from django.http import HttpResponse

KINDS = {
    400: "InvalidRequestError",
    401: "UnauthorizedError",
    404: "LangfuseNotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    422: "UnprocessableEntityError",
    429: "TooManyRequestsError",
    503: "ServiceUnavailableError",
}
RETRY_AFTER_SECONDS = 5
CONTROL_PLANE_DOWN = "the database is unavailable; retry later"


def json_response(
    payload, status: int = 200, headers: dict | None = None, *, utc_z: bool = False
) -> HttpResponse:
    option = orjson.OPT_UTC_Z if utc_z else None
    response = HttpResponse(
        orjson.dumps(payload, option=option), status=status, content_type="application/json"
    )
    for key, value in (headers or {}).items():
        response[key] = value
    return response


class HttpError(Exception):
    """Raise anywhere under `tenancy.http.endpoint.endpoint` to answer with this error."""

    def __init__(self, status: int, message: str, error: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or KINDS.get(status, "Error")
        self.headers = headers or {}

    def response(self) -> HttpResponse:
        return json_response({"error": self.error, "message": self.message}, self.status, self.headers)


def unauthorized(message: str, *, scheme: str = "Basic") -> HttpError:
    return HttpError(401, message, headers={"WWW-Authenticate": f'{scheme} realm="lookglass"'})


def method_not_allowed(allowed, message: str = "Method not allowed") -> HttpError:
    return HttpError(405, message, headers={"Allow": ", ".join(allowed)})


def unavailable(message: str = CONTROL_PLANE_DOWN, retry_after: int = RETRY_AFTER_SECONDS) -> HttpError:
    return HttpError(503, message, headers={"Retry-After": str(retry_after)})
