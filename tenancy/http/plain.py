"""Response-returning forms of the kit, for the plain views that answer errors inline rather than
raising `HttpError` under `tenancy.http.endpoint.endpoint` (score configs, browser feedback)."""

from __future__ import annotations

from tenancy.http.endpoint import read_json
from tenancy.http.errors import (
    CONTROL_PLANE_DOWN,
    RETRY_AFTER_SECONDS,
    HttpError,
    method_not_allowed,
    unauthorized,
    unavailable,
)
from tenancy.http.params import query_int


def unauthorized_response(message: str, *, scheme: str = "Bearer"):
    return unauthorized(message, scheme=scheme).response()


def unavailable_response(message: str = CONTROL_PLANE_DOWN, retry_after: int = RETRY_AFTER_SECONDS):
    return unavailable(message, retry_after).response()


def method_not_allowed_response(allowed: list[str]):
    return method_not_allowed(allowed).response()


def read_json_or_response(request, *, limit: int):
    """(payload, None) or (None, error response), through the one body reader."""
    try:
        return read_json(request, limit=limit), None
    except HttpError as exc:
        return None, exc.response()


def int_param(request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    """A query-string integer within [low, high]; ValueError (InvalidParams) otherwise."""
    return query_int(request.GET, name, default, low=low, high=high)
