"""Redaction routes, mounted at /api/v1/ (a project has one policy: the route names the object
itself, with no id and no trailing slash; `redact` is an action)."""

from django.urls import path

from privacy.api import views

PROJECT = "organizations/<str:organization_id>/projects/<str:project_id>/"

urlpatterns = [
    path(
        PROJECT + "redaction-policy",
        views.RedactionPolicyViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="redaction-policy",
    ),
    path(PROJECT + "redact", views.RedactViewSet.as_view({"post": "create"}), name="redaction-redact"),
    path(
        PROJECT + "retention",
        views.RetentionViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="retention",
    ),
    path(PROJECT + "reredactions/", views.ReredactionViewSet.as_view({"get": "list", "post": "create"}),
         name="reredactions"),
    path(PROJECT + "retention-runs/", views.RetentionRunViewSet.as_view({"get": "list"}), name="retention-runs"),
    path(
        PROJECT + "erasure-requests/",
        views.ErasureRequestViewSet.as_view({"get": "list", "post": "create"}),
        name="erasure-requests",
    ),
    path(
        PROJECT + "erasure-requests/<str:erasure_id>/",
        views.ErasureRequestViewSet.as_view({"get": "retrieve"}),
        name="erasure-request",
    ),
    path(PROJECT + "exports/", views.ExportViewSet.as_view({"get": "list", "post": "create"}), name="exports"),
    path(
        PROJECT + "exports/<str:data_export_id>/",
        views.ExportViewSet.as_view({"get": "retrieve"}),
        name="export",
    ),
]
