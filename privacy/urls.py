"""Public redaction route (no trailing slash, like the rest of /api/public)."""

from django.urls import path

from privacy.api import public

urlpatterns = [
    path("api/public/redact", public.redact, name="public-redact"),
]
