"""The ingestion routes are tried first (config/urls.py, issue 13: a request resolved behind the
admin and `api/v1/` includes pays for each of them). That is only harmless while no other route
matches a path of theirs, and they match nothing but their own paths: both are checked here."""

from __future__ import annotations

import pytest
from django.urls import URLResolver
from django.urls.exceptions import Resolver404

import ingest.urls
from config import urls

# What the ingest routes answer, and only that: an id route takes any rest of the path.
INGEST_ROUTES = [
    "api/public/ingestion", "api/public/scores", "api/public/scores/<anyid:score_id>", "api/public/v2/scores",
    "api/public/v2/scores/<anyid:score_id>", "api/public/otel/v1/traces", "v1/traces",
]
INGEST_PATHS = [
    "api/public/ingestion", "api/public/scores", "api/public/scores/s-1", "api/public/scores/a/b/c",
    "api/public/v2/scores", "api/public/v2/scores/s-1", "api/public/otel/v1/traces", "v1/traces",
]
# Paths of the routes that used to come before them, and of their neighbours.
OTHER_PATHS = [
    "admin/", "admin/pricing/modelprice/", "admin/billing/modelprice/1/change/", "api/schema/", "api/docs/",
    "api/public/health", "api/public/ready", "api/public/projects", "api/v1/organizations",
    "api/v1/organizations/x/projects/00000000-0000-0000-0000-000000000000/", "api/public/traces",
    "api/public/observations", "api/public/otel/v1/metrics", "api/public/ingestion/x", "v1/traces/x",
    "api/public/scoresx", "console/", "trace/t-1",
]


def _matches(pattern, path: str) -> bool:
    try:
        return pattern.resolve(path) is not None
    except Resolver404:
        return False


def test_the_ingest_routes_come_first_and_are_the_known_ones():
    first = urls.urlpatterns[0]
    assert isinstance(first, URLResolver) and first.urlconf_module is ingest.urls
    assert [str(p.pattern) for p in ingest.urls.urlpatterns] == INGEST_ROUTES


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_no_other_route_takes_an_ingest_path(path):
    assert _matches(urls.urlpatterns[0], path)
    for pattern in urls.urlpatterns[1:]:
        if getattr(pattern, "name", None) == "public-not-implemented":
            continue  # the catch-all, last: only what nothing else answers
        assert not _matches(pattern, path), (path, pattern)


@pytest.mark.parametrize("path", OTHER_PATHS)
def test_the_ingest_routes_take_no_other_path(path):
    # Not matched by them, a path meets the other routes in their own order, as before.
    assert not _matches(urls.urlpatterns[0], path)
