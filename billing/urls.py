"""Billing routes, mounted at /api/v1/ (an organization has one subscription: no id, no trailing slash)."""

from django.urls import path

from billing.api import views

ORG = "organizations/<str:organization_id>/"

urlpatterns = [
    path(ORG + "subscription",
         views.SubscriptionViewSet.as_view({"get": "retrieve", "put": "update"}), name="billing-subscription"),
    path(ORG + "billing/rejected-events",
         views.RejectedEventsViewSet.as_view({"get": "list"}), name="billing-rejected-events"),
    path(ORG + "billing/usage", views.UsageViewSet.as_view({"get": "list"}), name="billing-usage"),
    path(ORG + "billing/invoice-preview",
         views.InvoicePreviewViewSet.as_view({"get": "retrieve"}), name="billing-invoice-preview"),
    path(ORG + "billing/usage-records",
         views.UsageRecordsViewSet.as_view({"get": "list"}), name="billing-usage-records"),
    path("billing/usage-records", views.OperatorUsageRecordsView.as_view(), name="billing-usage-records-all"),
]
