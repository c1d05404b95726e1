"""Monitoring routes, mounted at /api/v1/ (the settings name the object itself: no id, no slash)."""

from django.urls import path

from monitoring import views

PROJECT = "organizations/<str:organization_id>/projects/<str:project_id>/"

urlpatterns = [
    path(
        PROJECT + "monitoring-settings",
        views.MonitoringSettingsViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="monitoring-settings",
    ),
    path(
        PROJECT + "metrics/cost-by-feature",
        views.CostBreakdownViewSet.as_view({"get": "list"}),
        name="monitoring-cost-by-feature",
    ),
]

# Alerts and sampling (their own module, so their routes merge without touching the ones above).
from monitoring.alerts_urls import urlpatterns as _alerts_and_sampling  # noqa: E402

urlpatterns += _alerts_and_sampling
