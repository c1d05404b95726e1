"""Score routes, mounted at the site root: the Langfuse score-config API under /api/public/ (no
trailing slashes, as the SDKs call them)."""

from django.urls import path

from scores import views

urlpatterns = [
    path("api/public/score-configs", views.score_configs, name="public-score-configs"),
    path("api/public/score-configs/<str:config_id>", views.score_config_detail, name="public-score-config"),
]
