"""Langfuse-compatible write routes (no trailing slash: the SDKs POST to these exact paths)."""

from django.urls import path

from traces.ingest import views

urlpatterns = [
    path("api/public/ingestion", views.ingestion, name="public-ingestion"),
    path("api/public/scores", views.scores, name="public-scores"),
    path("api/public/scores/<str:score_id>", views.score_detail, name="public-score-detail"),
    path("api/public/v2/scores", views.scores, name="public-scores-v2"),
    path("api/public/v2/scores/<str:score_id>", views.score_detail, name="public-score-detail-v2"),
]
