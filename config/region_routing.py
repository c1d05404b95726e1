"""Region-pinned nodes (SERVE_REGIONS): a request for a project whose region this node does not serve
is answered with where to go — 307 to the same path on that region's base URL (REGION_URLS), or 421
Misdirected Request when none is configured — before any view runs, and never by reaching across.

The project is found from the API key (public API, ingestion, OTLP, feedback: the control plane and
the key cache know the key's project and region) or from the project id in a management URL. Anything
that still reaches a region this node does not serve raises `RegionNotServed` in
`tenancy.regions.region_database` (there is no connection to it), answered here the same way."""

from __future__ import annotations

import re

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

from tenancy.regions import RegionNotServed, served_regions

_PROJECT_URL = re.compile(r"^/api/v1/organizations/[^/]+/projects/([0-9a-fA-F-]{36})(?:/|$)")


def wrong_region(request, region: str) -> HttpResponse:
    base = settings.REGION_URLS.get(region)
    served = ", ".join(served_regions())
    body = {
        "error": "WrongRegionError",
        "message": f"this project's data lives in region {region!r}, which this node does not serve "
        f"(it serves {served})" + (f"; send the request to {base}" if base else "; no URL is configured for it"),
        "region": region,
        "baseUrl": base,
    }
    response = HttpResponse(orjson.dumps(body), status=307 if base else 421, content_type="application/json")
    if base:
        # 307 keeps the method and body: an SDK or exporter that follows it re-sends the same batch there.
        response["Location"] = f"{base}{request.get_full_path()}"
    return response


class RegionRoutingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if len(served_regions()) < len(settings.DATA_REGIONS):
            region = self._region_of(request)
            if region is not None and region not in served_regions():
                return wrong_region(request, region)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RegionNotServed):
            return wrong_region(request, exception.region)
        return None

    @staticmethod
    def _region_of(request) -> str | None:
        from tenancy.models import Project

        try:
            match = _PROJECT_URL.match(request.path)
            if match is not None:
                return Project.objects.filter(pk=match.group(1)).values_list("region", flat=True).first()
            header = request.META.get("HTTP_AUTHORIZATION")
            if header and not request.path.startswith("/admin/"):
                from tenancy.authentication import AuthenticationFailed, authenticate_header

                try:
                    return authenticate_header(header, allow_public_only=True).project.region
                except AuthenticationFailed:
                    return None  # the view answers 401 as usual
        except (OperationalError, InterfaceError):
            return None  # the view meets the outage too and answers 503 as usual
        return None
