"""Management API for an organization's billing: its subscription (members read, superusers change
the plan) and the events ingestion refused for billing (members read)."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from billing import selectors, services
from billing.api import serializers as s
from billing.models import Plan
from tenancy.api.base import MANAGEMENT_AUTHENTICATION, OrganizationScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.authentication import KeyPrincipal
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


def _range(request) -> tuple:
    today = timezone.now().date()
    until = _date(request.query_params.get("until"), today)
    since = _date(request.query_params.get("since"), until - timedelta(days=30))
    if since > until or (until - since).days > MAX_DAYS:
        raise ValueError(f"`since` must be before `until`, at most {MAX_DAYS} days apart")
    return since, until


_RANGE = [
    OpenApiParameter("since", OpenApiTypes.DATE, description="First day, UTC (default: 30 days before `until`)."),
    OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, included (default: today)."),
]
_FORMAT = OpenApiParameter("output", OpenApiTypes.STR, enum=["json", "csv"],
                           description="`csv` for a CSV file (default JSON).")


@extend_schema(tags=["billing"], parameters=[*_ORG_PATH, *_RANGE])
class UsageViewSet(OrganizationScopedViewSet):
    read_role = Role.VIEWER
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="Metered usage per day and project: units, bytes, judge calls, rejected events (viewer)",
                   responses={200: s.UsageDaySerializer(many=True)})
    def list(self, request, *args, **kwargs):
        try:
            since, until = _range(request)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=400)
        try:
            rows = selectors.usage_by_day(organization=self.organization, since=since, until=until)
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.UsageDaySerializer(rows, many=True).data)


@extend_schema(tags=["billing"], parameters=[
    *_ORG_PATH,
    OpenApiParameter("at", OpenApiTypes.DATETIME, description="A moment in the period (default: now)."),
])
class InvoicePreviewViewSet(OrganizationScopedViewSet):
    read_role = Role.VIEWER
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="What the period costs so far: included units, overage × price, total (viewer)",
                   responses={200: s.InvoicePreviewSerializer})
    def retrieve(self, request, *args, **kwargs):
        from django.utils.dateparse import parse_datetime

        raw = request.query_params.get("at")
        at = None
        if raw:
            try:
                at = parse_datetime(raw)
            except ValueError:
                at = None
            if at is None or at.tzinfo is None:
                return Response({"detail": "`at` must be an ISO 8601 date-time with a time zone"}, status=400)
        try:
            preview = selectors.invoice_preview(organization=self.organization, at=at)
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.InvoicePreviewSerializer(preview).data)


def usage_records_answer(request, *, organization) -> Response | HttpResponse:
    try:
        since, until = _range(request)
    except ValueError as exc:
        return Response({"detail": str(exc)}, status=400)
    fmt = request.query_params.get("output", "json")
    if fmt not in ("json", "csv"):
        return Response({"detail": "`output` must be json or csv"}, status=400)
    try:
        lines = selectors.usage_export_rows(since=since, until=until, organization=organization)
    except (OperationalError, InterfaceError):
        return _unavailable()
    if fmt == "json":
        return Response(s.UsageRecordLineSerializer(lines, many=True).data)
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(s.UsageRecordLineSerializer().fields))
    writer.writeheader()
    writer.writerows(lines)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lookglass-usage-{since}-{until}.csv"'
    return response


@extend_schema(tags=["billing"], parameters=[*_ORG_PATH, *_RANGE, _FORMAT])
class UsageRecordsViewSet(OrganizationScopedViewSet):
    read_role = Role.OWNER
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="Usage records for a billing system: one line per month and meter, "
                           "with an idempotency key (owner)",
                   responses={200: s.UsageRecordLineSerializer(many=True)})
    def list(self, request, *args, **kwargs):
        return usage_records_answer(request, organization=self.organization)


def _date(raw, default):
    from datetime import date

    if raw in (None, ""):
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw[:40]!r} is not a date (YYYY-MM-DD)") from None


@extend_schema(tags=["billing"], parameters=[*_RANGE, _FORMAT])
class OperatorUsageRecordsView(GenericAPIView):
    """Every organization's usage records, for the operator's billing system (superusers only;
    anyone else gets 404, as for a route that does not exist)."""

    # The key class is listed only so an anonymous caller gets a 401 challenge; a key is refused.
    authentication_classes = MANAGEMENT_AUTHENTICATION
    allow_api_keys = False
    permission_classes = [IsAuthenticated]
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="Usage records of every organization for a billing system (operators)",
                   responses={200: s.UsageRecordLineSerializer(many=True)})
    def get(self, request, *args, **kwargs):
        if isinstance(request.auth, KeyPrincipal) or not getattr(request.user, "is_superuser", False):
            raise Http404
        return usage_records_answer(request, organization=None)
