"""Score routes, mounted at the site root: the Langfuse score-config API under /api/public/ (no
trailing slashes, as the SDKs call them) and the management score-config API under /api/v1/ (same
conventions as tenancy/api/urls.py: collections and objects end in a slash)."""

from django.urls import path

from scores import api, views

PROJECT = "api/v1/organizations/<str:organization_id>/projects/<str:project_id>/"

urlpatterns = [
    path("api/public/score-configs", views.score_configs, name="public-score-configs"),
    path("api/public/score-configs/<str:config_id>", views.score_config_detail, name="public-score-config"),
    path(
        PROJECT + "score-configs/",
        api.ScoreConfigViewSet.as_view({"get": "list", "post": "create"}),
        name="score-config-list",
    ),
    path(
        PROJECT + "score-configs/<str:config_id>/",
        api.ScoreConfigViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="score-config-detail",
    ),
]
