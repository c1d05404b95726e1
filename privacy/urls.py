"""Public privacy routes (no trailing slash, like the rest of /api/public)."""

from django.urls import path

from privacy.api import erasure_public, exports_public, public

urlpatterns = [
    path("api/public/redact", public.redact, name="public-redact"),
    path("api/public/erasure-requests", erasure_public.erasure_requests, name="public-erasure-requests"),
    path(
        "api/public/erasure-requests/<str:erasure_id>", erasure_public.erasure_request_detail,
        name="public-erasure-request",
    ),
    path("api/public/exports", exports_public.export_requests, name="public-exports"),
    path("api/public/exports/<str:export_id>", exports_public.export_detail, name="public-export"),
    path("api/public/exports/<str:export_id>/download", exports_public.export_download, name="public-export-download"),
]
