"""One endpoint decorator for the Langfuse-compatible plain Django views: CSRF-exempt, method check
(405 before credentials are looked at), key authentication (401), a control-plane outage while
authenticating answered 503 + Retry-After (keys live there; nothing can be accepted, only retried),
and `HttpError` anywhere in the view rendered in Langfuse's shape. Plus `read_json`, the JSON body
through the one body reader (decompression and size limits)."""

from __future__ import annotations

import functools

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.views.decorators.csrf import csrf_exempt

from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.http.body import MAX_BODY_DEPTH, BodyError, loads_json, nests_deeper_than, read_body
from tenancy.http.errors import HttpError, method_not_allowed, unauthorized, unavailable


def authenticate(request, *, allow_public_only: bool = False, scheme: str = "Basic"):
    """The request's key principal, or HttpError (401; 503 when the control plane is down)."""
    try:
        return authenticate_header(
            request.META.get("HTTP_AUTHORIZATION"), allow_public_only=allow_public_only
        )
    except AuthenticationFailed as exc:
        raise unauthorized(exc.message, scheme=scheme) from None
    except (OperationalError, InterfaceError) as exc:
        raise unavailable() from exc


def endpoint(*methods: str, auth: bool = True, method_message=None):
    """`@endpoint("GET", "POST")`: the view gets `(request, principal, **kwargs)` (`principal` is None
    with `auth=False`, for views that authenticate differently per method). `method_message(request,
    allowed)` words the 405 (default: Langfuse's "Method not allowed")."""
    allowed = [m.upper() for m in methods]

    def wrap(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in allowed:
                    message = method_message(request, allowed) if method_message else "Method not allowed"
                    raise method_not_allowed(allowed, message)
                principal = authenticate(request) if auth else None
                return view(request, principal, *args, **kwargs)
            except HttpError as exc:
                return exc.response()

        return wrapper

    return wrap


def read_json(
    request,
    *,
    limit: int | None = None,
    empty=None,
    invalid_message: str | None = None,
    max_depth: int | None = MAX_BODY_DEPTH,
):
    """The decoded JSON body, read through the one body reader (`tenancy.http.body`): 413/415/400
    as HttpError. An empty body is a 400, unless `empty` gives its value; `invalid_message` words the
    400 for a body that is not JSON; a body nested deeper than `max_depth` is a 400 (None: the caller
    checks each item of a batch on its own)."""
    try:
        raw = read_body(request, limit=limit or settings.INGEST_MAX_BODY_BYTES)
    except BodyError as exc:
        raise HttpError(exc.status, exc.message) from None
    if not raw.strip():
        if empty is not None:
            return empty
        raise HttpError(400, "the request body is empty")
    try:
        document = loads_json(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, invalid_message or f"the request body is not valid JSON: {exc}") from None
    if max_depth is not None and nests_deeper_than(document, max_depth):
        raise HttpError(400, f"the request body nests deeper than {max_depth} levels")
    return document
