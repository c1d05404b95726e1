"""Public privacy routes (no trailing slash, like the rest of /api/public)."""

from django.urls import path

from privacy.api import erasure_public, public

urlpatterns = [
    path("api/public/redact", public.redact, name="public-redact"),
    path("api/public/erasure-requests", erasure_public.erasure_requests, name="public-erasure-requests"),
    path(
        "api/public/erasure-requests/<str:erasure_id>", erasure_public.erasure_request_detail,
        name="public-erasure-request",
    ),
]
