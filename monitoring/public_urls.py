"""Langfuse-compatible metrics routes (no trailing slash, like the rest of /api/public)."""

from django.urls import path

from monitoring import public_views

urlpatterns = [
    path("api/public/metrics", public_views.metrics_v1, name="public-metrics"),
    path("api/public/metrics/daily", public_views.metrics_daily, name="public-metrics-daily"),
    path("api/public/v2/metrics", public_views.metrics_v2, name="public-metrics-v2"),
]
