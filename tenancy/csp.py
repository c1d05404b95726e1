"""django-csp's middleware, with the policy of a plain response built once (issue 13, web-tier CPU).

The library builds the Content-Security-Policy string on every response (a dataclass copied to a
dict, every directive copied and joined): ≈ 85 µs of CPU per request here, a fifth of what an
ingestion request costs outside its stages. For a response that changes nothing about the policy —
no nonce was asked for (API and ingest answers never render a template), no view set its own
config/update/replace, none is exempted, DEBUG off — the string is a function of the settings alone,
so it is built by the library once and reused until the CSP settings change. Every other response
(console pages with their nonce, decorated views, DEBUG error pages) goes through the library as it
is. The headers set, and when, are the library's: tests/tenancy/test_csp_cache.py compares them.
"""

from __future__ import annotations

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# What a view or decorator can set on a response to change or drop its policy (django-csp 4).
_RESPONSE_OVERRIDES = (
    "_csp_config", "_csp_update", "_csp_replace", "_csp_exempt",
    "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro",
)
_SETTINGS = frozenset({"CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY", "DEBUG"})

# [(header, policy, excluded path prefixes)] for the headers a plain response gets; None: not built yet.
_plain_headers: list[tuple[str, str, tuple[str, ...]]] | None = None


def _build_plain_headers() -> list[tuple[str, str, tuple[str, ...]]]:
    headers = []
    for header, setting, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        policy = build_policy(report_only=report_only)  # no config/update/replace/nonce: the settings'
        if policy:
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
            headers.append((header, policy, tuple(prefixes)))
    return headers


@receiver(setting_changed)
def _forget_plain_headers(*, setting, **kwargs) -> None:
    global _plain_headers
    if setting in _SETTINGS:
        _plain_headers = None


class CSPMiddleware(LibraryCSPMiddleware):
    def process_response(self, request, response):
        global _plain_headers
        if (
            settings.DEBUG
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _RESPONSE_OVERRIDES)
        ):
            return super().process_response(request, response)
        headers = _plain_headers
        if headers is None:
            headers = _plain_headers = _build_plain_headers()
        path = request.path_info
        for header, policy, prefixes in headers:
            if header not in response and not path.startswith(prefixes):
                response[header] = policy
        # As the library does once the header is written: a late use of the nonce is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
