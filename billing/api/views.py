"""Management API for an organization's billing: its subscription (members read, superusers change
the plan) and the events ingestion refused for billing (members read)."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from billing import selectors, services
from billing.api import serializers as s
from billing.models import Plan
from tenancy.api.base import OrganizationScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role

MAX_DAYS = 366
_ORG_PATH = [OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH)]


def _unavailable() -> Response:
    return Response({"detail": "the database is unavailable; retry later"},
                    status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})


@extend_schema(tags=["billing"], parameters=_ORG_PATH)
class SubscriptionViewSet(OrganizationScopedViewSet):
    read_role = Role.VIEWER
    write_role = Role.OWNER  # and superuser, checked in `update`: plans are the operator's to change
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="The organization's plan, limits and usage this period (viewer)",
                   responses={200: s.SubscriptionSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(s.SubscriptionSerializer(selectors.subscription_summary(organization=self.organization)).data)

    @extend_schema(summary="Put the organization on a plan (superusers only)",
                   request=s.SubscriptionWriteSerializer, responses={200: s.SubscriptionSerializer})
    def update(self, request, *args, **kwargs):
        if not request.user.is_superuser:
            raise PermissionDenied("only an operator (superuser) can change an organization's plan")
        body = s.SubscriptionWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = Plan.objects.filter(name=body.validated_data["plan"]).first()
        if plan is None:
            return Response({"plan": [f"no plan named {body.validated_data['plan']!r}"]}, status=400)
        try:
            services.subscription_set(
                organization=self.organization, plan=plan, actor=request.user,
                period_start=body.validated_data.get("period_start"),
                overrides=body.validated_data.get("overrides"),
            )
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return self.retrieve(request)


@extend_schema(tags=["billing"], parameters=[
    *_ORG_PATH,
    OpenApiParameter("since", OpenApiTypes.DATE, description="First day (default: 30 days ago)."),
    OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, included (default: today)."),
])
class RejectedEventsViewSet(OrganizationScopedViewSet):
    read_role = Role.VIEWER
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="Events ingestion refused for billing, per day, project and reason (viewer)",
                   responses={200: s.RejectedEventsSerializer(many=True)})
    def list(self, request, *args, **kwargs):
        today = timezone.now().date()
        try:
            until = _date(request.query_params.get("until"), today)
            since = _date(request.query_params.get("since"), until - timedelta(days=30))
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=400)
        if since > until or (until - since).days > MAX_DAYS:
            return Response({"detail": f"`since` must be before `until`, at most {MAX_DAYS} days apart"}, status=400)
        try:
            rows = selectors.rejected_events(organization=self.organization, since=since, until=until)
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.RejectedEventsSerializer(rows, many=True).data)


def _date(raw, default):
    from datetime import date

    if raw in (None, ""):
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw[:40]!r} is not a date (YYYY-MM-DD)") from None
