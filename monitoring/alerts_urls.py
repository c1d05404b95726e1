"""Alert and sampling routes, mounted at /api/v1/ through `monitoring.urls`."""

from django.urls import path

from monitoring import alerts_api, sampling_api

PROJECT = "organizations/<str:organization_id>/projects/<str:project_id>/"
_COLLECTION = {"get": "list", "post": "create"}
_ITEM = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path(PROJECT + "alert-rules", alerts_api.AlertRuleViewSet.as_view(_COLLECTION), name="alert-rules"),
    path(PROJECT + "alert-rules/<str:alert_rule_id>", alerts_api.AlertRuleViewSet.as_view(_ITEM), name="alert-rule"),
    path(PROJECT + "alert-rules/<str:alert_rule_id>/history", alerts_api.AlertRuleViewSet.as_view({"get": "history"}),
         name="alert-rule-history"),
    path(PROJECT + "alert-channels", alerts_api.AlertChannelViewSet.as_view(_COLLECTION), name="alert-channels"),
    path(PROJECT + "alert-channels/<str:channel_id>", alerts_api.AlertChannelViewSet.as_view(_ITEM), name="alert-channel"),
    path(PROJECT + "alert-channels/<str:channel_id>/test", alerts_api.AlertChannelViewSet.as_view({"post": "test"}),
         name="alert-channel-test"),
    path(PROJECT + "sampling-policy",
         sampling_api.SamplingPolicyViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
         name="sampling-policy"),
    path(PROJECT + "sampling/counts", sampling_api.SamplingCountsViewSet.as_view({"get": "list"}),
         name="sampling-counts"),
]
