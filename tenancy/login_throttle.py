"""Password-guessing protection for every sign-in form (console login, invitation page), with
django-axes. Settings: the "Sign-in throttling" block of config/settings.py.

Failures are counted per account and per client address, separately: LOGIN_FAILURE_LIMIT failures
on either pauses sign-in for it during LOGIN_COOLOFF_MINUTES, right password or not. The hooks here
adapt axes to this project: email sign-in (case-insensitive), the client address behind a proxy,
what a success resets, and the page a locked-out person sees.
"""

from __future__ import annotations

import ipaddress

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render


def username(request, credentials) -> str | None:
    """The account a sign-in is for, as the login compares it: trimmed and lower-cased.

    Case is folded because the login accepts any case: otherwise each spelling would get its own
    allowance of guesses. `credentials` is what `authenticate()` got (or axes's own dict, keyed by
    AXES_USERNAME_FORM_FIELD); the posted form is the fallback.
    """
    credentials = credentials or {}
    value = credentials.get("username") or credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    if value is None and request is not None:
        value = request.POST.get("username")
    value = (value or "").strip().lower()
    return value or None


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address: the socket peer, or behind LOGIN_TRUSTED_PROXY_HOPS proxies the
    X-Forwarded-For entry the outermost trusted proxy appended. Entries further left are chosen by
    the client, so they are never trusted; behind a proxy without this setting every client would
    share the proxy's address, and one attacker would lock everyone out."""
    hops = settings.LOGIN_TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            address = _ip(forwarded[-hops])
            if address:
                return address
    return _ip(request.META.get("REMOTE_ADDR") or "")


class LoginThrottleHandler(AxesDatabaseHandler):
    """axes's database handler (counts shared by every web node), with one change: a successful
    sign-in clears that account's failures only, not those of the address it came from. Otherwise
    someone with an account of their own could sign into it between guesses at another account and
    wipe the count of the address they guess from."""

    def reset_user_attempts(self, request, credentials=None) -> int:
        account = get_client_username(request, credentials)
        if not account:
            return 0
        count, _ = AccessAttempt.objects.filter(username=account).delete()
        return count


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """The page shown instead of the sign-in form while an account or address is locked (429)."""
    from tenancy.admin_site import admin_site

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {
        **admin_site.each_context(request),
        "title": "Too many failed sign-in attempts",
        "cooloff_minutes": minutes,
    }
    # Rendered now: axes swaps it in from a middleware, after template responses are rendered.
    response = render(request, "tenancy/login_locked.html", context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    response["Cache-Control"] = "no-store"
    return response
