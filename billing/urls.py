"""Billing routes, mounted at /api/v1/ (an organization has one subscription: no id, no trailing slash)."""

from django.urls import path

from billing.api import views

ORG = "organizations/<str:organization_id>/"

urlpatterns = [
    path(ORG + "subscription",
         views.SubscriptionViewSet.as_view({"get": "retrieve", "put": "update"}), name="billing-subscription"),
    path(ORG + "billing/rejected-events",
         views.RejectedEventsViewSet.as_view({"get": "list"}), name="billing-rejected-events"),
]
