"""Sampling under /api/v1/organizations/{org}/projects/{project}/: the policy (viewer reads, admin
writes) and the kept/dropped counts by reason (viewer)."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from monitoring import sampling
from monitoring.alerts_api import PROJECT_PATH
from monitoring.sampling_models import SamplingPolicy, SamplingReason
from tenancy.api.base import ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role

UNAVAILABLE = {"detail": "the database is unavailable; retry later"}


class SamplingPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = SamplingPolicy
        fields = ("enabled", "keep_share", "settle_minutes", "cost_threshold", "latency_threshold_ms",
                  "latency_percentile", "percentile_min_calls", "enabled_at", "updated_at")
        read_only_fields = ("enabled_at", "updated_at")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class CountsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=90, default=7)


class CountsSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    decided = serializers.IntegerField()
    kept = serializers.IntegerField()
    dropped = serializers.IntegerField()
    by_reason = serializers.DictField(child=serializers.IntegerField(),
                                      help_text=f"One of: {', '.join(r.value for r in SamplingReason)}")
    client_sampled_traces = serializers.IntegerField(help_text="Decided traces whose client SDK told its sample rate")
    estimated_client_traces = serializers.FloatField(
        help_text="The traffic the decided traces stand for: each weighs 1 / its client sample rate")


@extend_schema_view(
    retrieve=extend_schema(summary="The project's sampling policy (viewer); off until a team switches it on"),
    update=extend_schema(summary="Set the sampling policy (admin)"),
    partial_update=extend_schema(summary="Change the sampling policy, e.g. switch it on (admin)"),
)
@extend_schema(tags=["sampling"], parameters=PROJECT_PATH, responses={200: SamplingPolicySerializer})
class SamplingPolicyViewSet(ProjectScopedViewSet):
    queryset = SamplingPolicy.objects.all()
    serializer_class = SamplingPolicySerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []
    pagination_class = None

    def retrieve(self, request, *args, **kwargs):
        policy = self.get_queryset().first() or SamplingPolicy(project=self.project)
        return Response(SamplingPolicySerializer(policy).data)

    def update(self, request, *args, **kwargs):
        payload = SamplingPolicySerializer(data=request.data, partial=kwargs.pop("partial", False))
        payload.is_valid(raise_exception=True)
        try:
            policy = sampling.policy_update(project=self.project, actor=request.user, **payload.validated_data)
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return Response(SamplingPolicySerializer(policy).data)

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)


@extend_schema(tags=["sampling"], parameters=[*PROJECT_PATH, CountsQuerySerializer],
               summary="Traces kept and dropped by reason over the last days (viewer)",
               responses={200: CountsSerializer})
class SamplingCountsViewSet(ProjectScopedViewSet):
    queryset = SamplingPolicy.objects.none()
    serializer_class = CountsSerializer
    read_role = Role.VIEWER
    filter_backends: list = []
    pagination_class = None

    def list(self, request, *args, **kwargs):
        query = CountsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since = timezone.now() - timedelta(days=query.validated_data["days"])
        try:
            result = sampling.counts(project=self.project, since=since)
        except (OperationalError, InterfaceError):
            return Response(UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
        return Response(CountsSerializer(result).data)
