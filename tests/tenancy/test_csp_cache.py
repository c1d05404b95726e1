"""`tenancy.csp.CSPMiddleware` builds a plain response's policy once (issue 13): every response must
get exactly the headers django-csp's own middleware gives it — the plain ones from the cached
strings, the others (a nonce used, a view's own policy, an exemption, DEBUG) from the library — and
a change of the CSP settings must reach the next response."""

from __future__ import annotations

import re

import pytest
from csp.decorators import csp_exempt, csp_replace, csp_update
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.test import RequestFactory, override_settings

from tenancy import csp


def _view(kind: str):
    def view(request):
        if kind == "nonce":
            return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")
        if kind == "json":
            return JsonResponse({"successes": [], "errors": []}, status=207)
        if kind == "own-header":
            response = HttpResponse()
            response["Content-Security-Policy"] = "default-src 'none'"
            return response
        if kind == "not-found":
            return HttpResponseNotFound()
        return HttpResponse(b"\x00\x01", content_type="application/x-protobuf")

    decorated = {
        "exempt": csp_exempt(),
        "update": csp_update({"img-src": ["https://example.com"]}),
        "replace": csp_replace({"default-src": ["https://example.com"]}),
        "update-ro": csp_update({"img-src": ["https://example.com"]}, REPORT_ONLY=True),
    }
    return decorated[kind](view) if kind in decorated else view


KINDS = ["plain", "json", "nonce", "own-header", "not-found", "exempt", "update", "replace", "update-ro"]


def _answer(middleware_class, kind: str, path: str):
    request = RequestFactory().post(path, data=b"", content_type="application/x-protobuf")
    middleware = middleware_class(_view(kind))
    response = middleware(request)
    try:
        str(request.csp_nonce)
        late_nonce = "allowed"
    except CSPNonceError:
        late_nonce = "refused"
    # A nonce is random per response: compared as where it stands, not its value.
    headers = {k: re.sub(r"'nonce-[^']+'", "'nonce-*'", v) for k, v in response.headers.items()}
    return headers, late_nonce


SETTINGS = [
    {},
    {"CONTENT_SECURITY_POLICY_REPORT_ONLY": {"DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp"}}},
    {"CONTENT_SECURITY_POLICY": {"EXCLUDE_URL_PREFIXES": ["/api/public/otel"],
                                 "DIRECTIVES": {"default-src": ["'none'"]}}},
    {"CONTENT_SECURITY_POLICY": None},
    {"DEBUG": True},
]


@pytest.mark.parametrize("overrides", SETTINGS, ids=lambda o: ",".join(o) or "project settings")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["/api/public/otel/v1/traces", "/api/public/ingestion", "/console/"])
def test_every_response_gets_the_librarys_headers(overrides, kind, path):
    with override_settings(**overrides):
        for _ in range(2):  # the first answer builds the cached strings, the second reads them
            assert _answer(csp.CSPMiddleware, kind, path) == _answer(LibraryCSPMiddleware, kind, path)


def test_a_changed_policy_reaches_the_next_response():
    path = "/api/public/ingestion"
    before, _ = _answer(csp.CSPMiddleware, "plain", path)
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        during, _ = _answer(csp.CSPMiddleware, "plain", path)
        assert during["Content-Security-Policy"] == "default-src 'none'"
    after, _ = _answer(csp.CSPMiddleware, "plain", path)
    assert before == after != during


def test_plain_responses_take_the_cached_path():
    """The comparison above holds either way; this checks the shortcut is actually taken."""
    csp._plain_headers = None
    _answer(csp.CSPMiddleware, "json", "/api/public/ingestion")
    assert csp._plain_headers is not None
    csp._plain_headers = [("Content-Security-Policy", "marker", ())]
    try:
        headers, _ = _answer(csp.CSPMiddleware, "json", "/api/public/ingestion")
        assert headers["Content-Security-Policy"] == "marker"
        headers, _ = _answer(csp.CSPMiddleware, "nonce", "/console/")  # a nonce: the library's own
        assert "'nonce-*'" in headers["Content-Security-Policy"]
    finally:
        csp._plain_headers = None
