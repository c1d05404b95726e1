"""Monitoring API under /api/v1/organizations/{org}/projects/{project}/: the feature setting (viewer
reads, admin writes) and the cost breakdown answered from the rollups (viewer). Tenant resolution
and roles are `tenancy.api.base`'s; writes go through `monitoring.services`, reads `monitoring.selectors`."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from monitoring import selectors
from monitoring import serializers as s
from monitoring.models import MonitoringSettings
from monitoring.rules import FeatureRule
from monitoring.services import monitoring_settings_update
from tenancy.api.base import ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role

RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "the database is unavailable; retry later"
_PROJECT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]


def _unavailable() -> Response:
    return Response({"detail": UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _representation(project, settings: MonitoringSettings | None, applied: bool) -> dict:
    rule = FeatureRule(settings.feature_source, settings.feature_key) if settings else FeatureRule()
    return {
        "project_id": project.id, "configured": settings is not None, "feature_source": rule.source,
        "feature_key": rule.key, "applied": applied, "updated_at": settings.updated_at if settings else None,
    }


@extend_schema_view(
    retrieve=extend_schema(summary="Where the project's calls get their feature from (viewer)"),
    update=extend_schema(
        summary="Set where calls get their feature from (admin); rebuilds the rollups under the new rule",
        request=s.MonitoringSettingsWriteSerializer,
    ),
    partial_update=extend_schema(
        summary="Change the feature setting (admin); rebuilds the rollups under the new rule",
        request=s.MonitoringSettingsWriteSerializer,
    ),
)
@extend_schema(tags=["monitoring"], parameters=_PROJECT_PATH, responses={200: s.MonitoringSettingsSerializer})
class MonitoringSettingsViewSet(ProjectScopedViewSet):
    queryset = MonitoringSettings.objects.all()
    serializer_class = s.MonitoringSettingsSerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []
    pagination_class = None

    def retrieve(self, request, *args, **kwargs):
        try:
            settings = self.get_queryset().first()
            wanted = FeatureRule(settings.feature_source, settings.feature_key) if settings else FeatureRule()
            applied = selectors.applied_feature_rule(project=self.project) == wanted
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.MonitoringSettingsSerializer(_representation(self.project, settings, applied)).data)

    def update(self, request, *args, **kwargs):
        payload = s.MonitoringSettingsWriteSerializer(data=request.data, partial=kwargs.pop("partial", False))
        payload.is_valid(raise_exception=True)
        try:
            settings, applied = monitoring_settings_update(
                project=self.project, actor=request.user, **payload.validated_data
            )
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.MonitoringSettingsSerializer(_representation(self.project, settings, applied)).data)

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)


@extend_schema(
    tags=["monitoring"],
    parameters=[*_PROJECT_PATH, s.BreakdownQuerySerializer],
    summary="Spend, calls and cost per call by feature (or model, user, prompt version…) over the last days",
    description="Answered from the rollups of 100% of traffic. Ordered by spend, largest first, with each "
    "group's share, the cumulative share and the 80/20 marker (`within_80`: the fewest top groups that make "
    "at least 80% of the spend); error and refusal rates; latency and time-to-first-token p50/p95/p99 from "
    "fixed log-scale histograms (±9%; not for by=user). The window is the last `days` × 24 whole hours "
    "(for by=user, the last `days` calendar days, UTC).",
    responses={200: s.BreakdownSerializer},
)
class CostBreakdownViewSet(ProjectScopedViewSet):
    queryset = MonitoringSettings.objects.none()
    serializer_class = s.BreakdownSerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []
    pagination_class = None

    def list(self, request, *args, **kwargs):
        query = s.BreakdownQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            result = selectors.cost_breakdown(project=self.project, **query.validated_data)
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.BreakdownSerializer(result).data)
