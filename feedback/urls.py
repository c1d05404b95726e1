"""Feedback routes, mounted at the site root: the browser feedback endpoint and the feedback reports
under /api/v1/, the Langfuse score-config API under /api/public/ (no trailing slashes, as the SDKs
call them)."""

from django.urls import path

from feedback import views

PROJECT = "api/v1/organizations/<str:organization_id>/projects/<str:project_id>/"

urlpatterns = [
    path("api/v1/feedback", views.feedback, name="feedback"),
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
    path("api/public/score-configs", views.score_configs, name="public-score-configs"),
    path("api/public/score-configs/<str:config_id>", views.score_config_detail, name="public-score-config"),
]
