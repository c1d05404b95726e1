"""Langfuse-compatible public read routes: no trailing slashes, CSRF-exempt (DRF views), GET only."""

from django.urls import path

import tenancy.http.converters  # noqa: F401 (registers <anyid:…>)
from traces.public import views

urlpatterns = [
    path("api/public/traces", views.TraceListView.as_view(), name="public-traces"),
    path("api/public/traces/<anyid:trace_id>", views.TraceDetailView.as_view(), name="public-trace"),
    path("api/public/observations", views.ObservationListView.as_view(), name="public-observations"),
    path(
        "api/public/observations/<anyid:observation_id>",
        views.ObservationDetailView.as_view(),
        name="public-observation",
    ),
    path("api/public/v2/observations", views.ObservationV2ListView.as_view(), name="public-observations-v2"),
    path("api/public/sessions", views.SessionListView.as_view(), name="public-sessions"),
    path("api/public/sessions/<anyid:session_id>", views.SessionDetailView.as_view(), name="public-session"),
]
