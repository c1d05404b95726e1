"""Model price routes, mounted at /api/v1/ (same conventions as tenancy/api/urls.py: collections and
objects end in a slash, actions do not)."""

from django.urls import path

from pricing.api import views

PROJECT = "organizations/<str:organization_id>/projects/<str:project_id>/"

urlpatterns = [
    path(
        "model-prices/",
        views.CatalogPriceViewSet.as_view({"get": "list", "post": "create"}),
        name="model-price-catalog",
    ),
    path(
        "model-prices/<str:price_id>/",
        views.CatalogPriceViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="model-price-catalog-detail",
    ),
    path(
        PROJECT + "model-prices/",
        views.ProjectPriceViewSet.as_view({"get": "list", "post": "create"}),
        name="model-price-list",
    ),
    path(
        PROJECT + "model-prices/resolve",
        views.ProjectPriceViewSet.as_view({"get": "resolve"}),
        name="model-price-resolve",
    ),
    path(
        PROJECT + "model-prices/<str:price_id>/",
        views.ProjectPriceViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="model-price-detail",
    ),
]
