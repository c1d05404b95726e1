"""CORS and abuse limits for the endpoints a browser calls with a project's public key alone:
`POST /api/v1/feedback` and `POST /api/public/scores` (Langfuse's browser SDK path).

Which pages may call them is decided per project (`FeedbackSettings.allowed_origins`), so this
module, not django-cors-headers, answers CORS for them:

- `@browser_cors` on the view answers preflights and puts `Access-Control-Allow-Origin` on responses
  whose origin the view accepted;
- the view calls `guard_browser_request(request, principal)` after authenticating: it refuses a request
  whose `Origin` the project does not allow (403 JSON, and no CORS headers, so the page learns nothing),
  refuses public-key writes when the project turned browser feedback off, and applies the per-key and
  per-IP rate limits to public-key callers.

Preflights carry no Authorization header, so they cannot name a project. A preflight is allowed when
the page's origin is allowed by any enabled project (answering that reveals nothing about any
project's data), or, when the page adds `?pk=<public key>` to the URL, by that key's project only.
The real request is then checked against its own project's list: a page allowed by project A can
never write with project B's key unless B allows it too.
"""

from __future__ import annotations

from functools import wraps

import orjson
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.http import HttpResponse
from django.utils.cache import patch_vary_headers

from feedback import ratelimit
from feedback.models import ANY_ORIGIN, FeedbackSettings, normalise_origin
from feedback.selectors import feedback_settings_for
from tenancy.authentication import KeyPrincipal
from tenancy.keys import PUBLIC_PREFIX
from tenancy.models import ApiKey

ALLOW_METHODS = "POST"
# Langfuse's browser SDK adds its attribution headers to score requests.
ALLOW_HEADERS = (
    "Authorization, Content-Type, X-Langfuse-Sdk-Name, X-Langfuse-Sdk-Version, X-Langfuse-Public-Key"
)
EXPOSE_HEADERS = "Retry-After, X-RateLimit-Limit"
# Browsers cap it anyway (Chromium: 2 h); short enough that an origin removed from a project stops
# being pre-approved soon, while the real request is checked every time regardless.
MAX_AGE_SECONDS = 600
_ALLOWED_ATTR = "_lookglass_cors_origin"


def json_response(payload, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def request_origin(request) -> str | None:
    """The `Origin` header as sent, or None when the request has none (server-side callers)."""
    origin = request.META.get("HTTP_ORIGIN")
    return origin if origin else None


def _canonical(origin: str) -> str | None:
    # "null" (sandboxed frames, file://) and anything malformed is never an allowed origin, not even with "*".
    try:
        canonical = normalise_origin(origin)
    except ValidationError:
        return None
    return None if canonical == ANY_ORIGIN else canonical


def origin_allowed_by_any_project(origin: str) -> bool:
    canonical = _canonical(origin)
    if canonical is None:
        return False
    return (
        FeedbackSettings.objects.filter(enabled=True)
        .filter(Q(allowed_origins__contains=[canonical]) | Q(allowed_origins__contains=[ANY_ORIGIN]))
        .exists()
    )


def origin_allowed_for_public_key(public_key: str, origin: str) -> bool:
    canonical = _canonical(origin)
    if canonical is None or not public_key.startswith(PUBLIC_PREFIX) or len(public_key) > 64:
        return False
    api_key = ApiKey.objects.active().select_related("project").filter(public_key=public_key).first()
    if api_key is None:
        return False
    settings = feedback_settings_for(api_key.project)
    return settings.enabled and settings.allows(canonical)


def preflight(request) -> HttpResponse:
    response = HttpResponse(status=204)
    patch_vary_headers(
        response, ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]
    )
    origin = request_origin(request)
    method = request.META.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
    if origin is None or method is None:
        response["Allow"] = "POST, OPTIONS"
        return response
    if method.upper() != "POST":
        return response
    public_key = request.GET.get("pk")
    try:
        allowed = (
            origin_allowed_for_public_key(public_key, origin)
            if public_key
            else origin_allowed_by_any_project(origin)
        )
    except (OperationalError, InterfaceError):
        return json_response(
            {"error": "ServiceUnavailableError", "message": "the database is unavailable; retry later"},
            status=503,
            headers={"Retry-After": "5"},
        )
    if allowed:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return response


def browser_cors(view):
    """Answer preflights for `view`, and mark its responses for the origin `guard_browser_request`
    accepted (only that one: nothing else is ever echoed)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "OPTIONS":
            return preflight(request)
        response = view(request, *args, **kwargs)
        patch_vary_headers(response, ["Origin"])
        origin = getattr(request, _ALLOWED_ATTR, None)
        if origin is not None:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response

    return wrapper


def too_many_requests(limited: ratelimit.Limited) -> HttpResponse:
    who = "this API key" if limited.scope == "key" else "your address"
    return json_response(
        {
            "error": "RateLimitError",
            "code": "rate_limited",
            "message": f"too many feedback requests from {who}: at most {limited.limit} per minute; "
            f"retry in {limited.retry_after} s",
            "details": {
                "scope": limited.scope,
                "limit": limited.limit,
                "retryAfterSeconds": limited.retry_after,
            },
        },
        status=429,
        headers={"Retry-After": str(limited.retry_after), "X-RateLimit-Limit": str(limited.limit)},
    )


def forbidden(message: str) -> HttpResponse:
    return json_response({"error": "ForbiddenError", "message": message}, status=403)


def guard_browser_request(
    request, principal: KeyPrincipal, *, ip_counted: bool = False
) -> HttpResponse | None:
    """After authentication: the refusal to send, or None when the request may proceed.

    Order matters: the origin is checked first, so that a page the project allows can read a 429
    (CORS headers present) and back off, while a page it does not allow learns nothing."""
    origin = request_origin(request)
    if origin is None and not principal.public_only:
        return None
    settings = feedback_settings_for(principal.project)
    if origin is not None:
        canonical = _canonical(origin)
        if canonical is None or not settings.allows(canonical):
            return forbidden(
                f"the origin {origin[:200]} may not send feedback to this project; add it to the project's "
                "feedback settings (allowed origins)"
            )
        setattr(request, _ALLOWED_ATTR, origin)
    if not principal.public_only:
        return None
    if not settings.enabled:
        return forbidden("browser feedback is turned off for this project; use the secret key from a server")
    limited = ratelimit.hit_key(principal.api_key.id)
    if limited is None and not ip_counted:
        limited = ratelimit.hit_ip(request)
    return too_many_requests(limited) if limited is not None else None


def looks_like_secret_credentials(header: str | None) -> bool:
    """Basic pk:sk or Bearer sk-lg-…: a server's request, not a browser's. Only decides whether the
    IP limit is counted before authentication; a false claim fails authentication and is counted then."""
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    return scheme == "basic" or (scheme == "bearer" and not credentials.strip().startswith(PUBLIC_PREFIX))
