"""Feedback routes, mounted at the site root: the browser feedback endpoint, and the feedback settings
and reports under /api/v1/ (a project has one settings object: the route names it, with no id)."""

from django.urls import path

from feedback import api, views

PROJECT = "api/v1/organizations/<str:organization_id>/projects/<str:project_id>/"

urlpatterns = [
    path("api/v1/feedback", views.feedback, name="feedback"),
    path(
        PROJECT + "feedback/settings",
        api.FeedbackSettingsViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="feedback-settings",
    ),
    path(
        PROJECT + "feedback/thumbs-down",
        views.FeedbackReportViewSet.as_view({"get": "thumbs_down"}),
        name="feedback-thumbs-down",
    ),
    path(
        PROJECT + "feedback/daily",
        views.FeedbackReportViewSet.as_view({"get": "daily"}),
        name="feedback-daily",
    ),
]
