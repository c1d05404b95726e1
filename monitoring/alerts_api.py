"""Alert rules and channels under /api/v1/organizations/{org}/projects/{project}/ (viewer reads,
admin writes; a channel's webhook secret is shown to admins only). Tenant resolution and roles are
`tenancy.api.base`'s; writes go through `monitoring.alerts_services`."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from monitoring import alerts, alerts_services
from monitoring.alerts_models import AlertChannel, AlertDelivery, AlertEvent, AlertRule
from tenancy.api.base import ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role, role_at_least

PROJECT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]
RULE_PATH = [*PROJECT_PATH, OpenApiParameter("alert_rule_id", OpenApiTypes.UUID, OpenApiParameter.PATH)]
CHANNEL_PATH = [*PROJECT_PATH, OpenApiParameter("channel_id", OpenApiTypes.UUID, OpenApiParameter.PATH)]


class _Strict(serializers.ModelSerializer):
    """Unknown fields are a 400, not silently ignored (a typo in `threshold` must not pass)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class _ProjectChannels(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return AlertChannel.objects.filter(project=self.context["project"])


class AlertRuleSerializer(_Strict):
    channels = _ProjectChannels(many=True, required=False)

    class Meta:
        model = AlertRule
        fields = (
            "id", "name", "enabled", "metric", "score_name", "feature", "model", "environment", "prompt_name",
            "prompt_version", "window_minutes", "mode", "baseline", "anomaly_weeks", "operator", "threshold",
            "warning_threshold", "min_calls", "renotify_minutes", "cooldown_minutes", "channels", "seed_key",
            "state", "state_since", "last_value", "last_baseline", "last_evaluated_at", "last_notified_at",
            "created_at", "updated_at",
        )
        read_only_fields = (
            "id", "seed_key", "state", "state_since", "last_value", "last_baseline", "last_evaluated_at",
            "last_notified_at", "created_at", "updated_at",
        )


class AlertChannelSerializer(_Strict):
    rotate_secret = serializers.BooleanField(write_only=True, required=False, default=False,
                                             help_text="Replace the webhook secret (update only)")

    class Meta:
        model = AlertChannel
        fields = ("id", "name", "kind", "url", "emails", "enabled", "secret", "rotate_secret", "created_at",
                  "updated_at")
        read_only_fields = ("id", "secret", "created_at", "updated_at")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("show_secret"):
            data["secret"] = "…" + instance.secret[-4:] if instance.secret else ""
        return data


class AlertEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertEvent
        fields = ("id", "from_state", "to_state", "value", "baseline", "limit", "calls", "window_start",
                  "window_end", "message", "created_at")


class AlertDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertDelivery
        fields = ("id", "channel", "rule", "event", "kind", "status", "attempts", "response_status", "last_error",
                  "created_at", "sent_at")


class HistoryQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)


class TestRequestSerializer(serializers.Serializer):
    rule = serializers.UUIDField(required=False, help_text="A rule of the project to name in the test message")


def _errors(exc: DjangoValidationError):
    return as_api_errors(exc)


class _AlertViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, ProjectScopedViewSet,
):
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []
    pagination_class = None
    lookup_field = "id"


@extend_schema_view(
    list=extend_schema(summary="The project's alert rules with their current state (viewer)"),
    create=extend_schema(summary="Create an alert rule (admin)"),
    retrieve=extend_schema(summary="One alert rule (viewer)"),
    update=extend_schema(summary="Replace an alert rule (admin)"),
    partial_update=extend_schema(summary="Change an alert rule, e.g. switch a seed rule on (admin)"),
    destroy=extend_schema(summary="Delete an alert rule (admin)"),
)
@extend_schema(tags=["alerts"], parameters=PROJECT_PATH)
class AlertRuleViewSet(_AlertViewSet):
    queryset = AlertRule.objects.prefetch_related("channels")
    serializer_class = AlertRuleSerializer
    lookup_url_kwarg = "alert_rule_id"

    def perform_create(self, serializer):
        try:
            serializer.instance = alerts_services.alert_rule_create(
                project=self.project, actor=self.request.user, **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise _errors(exc) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = alerts_services.alert_rule_update(
                rule=serializer.instance, actor=self.request.user, **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise _errors(exc) from None

    def perform_destroy(self, instance):
        alerts_services.alert_rule_delete(rule=instance, actor=self.request.user)

    @extend_schema(summary="The rule's state changes and notifications, newest first (viewer)",
                   parameters=[*RULE_PATH, HistoryQuerySerializer],
                   responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def history(self, request, *args, **kwargs):
        rule = self.get_object()
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = query.validated_data["limit"]
        return Response({
            "events": AlertEventSerializer(rule.events.all()[:limit], many=True).data,
            "deliveries": AlertDeliverySerializer(rule.deliveries.all()[:limit], many=True).data,
        })


@extend_schema_view(
    list=extend_schema(summary="The project's alert channels: signed webhooks, Slack, email (viewer)"),
    create=extend_schema(summary="Create a channel; webhook and Slack URLs are checked against SSRF (admin)"),
    retrieve=extend_schema(summary="One alert channel (viewer; the secret in full for admins)"),
    update=extend_schema(summary="Replace an alert channel (admin)"),
    partial_update=extend_schema(summary="Change an alert channel; rotate_secret replaces the webhook secret"),
    destroy=extend_schema(summary="Delete an alert channel (admin)"),
)
@extend_schema(tags=["alerts"], parameters=PROJECT_PATH)
class AlertChannelViewSet(_AlertViewSet):
    queryset = AlertChannel.objects.all()
    serializer_class = AlertChannelSerializer
    lookup_url_kwarg = "channel_id"

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["show_secret"] = role_at_least(getattr(self, "role", Role.VIEWER), Role.ADMIN)
        return context

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("rotate_secret", None)
        try:
            serializer.instance = alerts_services.alert_channel_create(
                project=self.project, actor=self.request.user, **data
            )
        except DjangoValidationError as exc:
            raise _errors(exc) from None

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = alerts_services.alert_channel_update(
                channel=serializer.instance, actor=self.request.user, **data
            )
        except DjangoValidationError as exc:
            raise _errors(exc) from None

    def perform_destroy(self, instance):
        alerts_services.alert_channel_delete(channel=instance, actor=self.request.user)

    @extend_schema(summary="Send a test notification to the channel now (admin); answers how it went",
                   parameters=CHANNEL_PATH, request=TestRequestSerializer, responses={200: AlertDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, *args, **kwargs):
        channel = self.get_object()
        body = TestRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rule = None
        if body.validated_data.get("rule"):
            rule = AlertRule.objects.filter(project=self.project, pk=body.validated_data["rule"]).first()
            if rule is None:
                raise serializers.ValidationError({"rule": ["not a rule of this project"]})
        delivery = alerts.test_delivery(channel, rule=rule)
        return Response(AlertDeliverySerializer(delivery).data, status=status.HTTP_200_OK)
