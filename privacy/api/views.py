"""Management API for a project's PII redaction: the policy (viewer reads, admin writes) and an
on-demand redaction that stores nothing (member).

Tenant resolution and role checks happen in `tenancy.api.base`; policy writes go through
`privacy.services.redaction_policy_update`, which validates and audits them.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from privacy import selectors
from privacy.api import serializers as s
from privacy.detectors import DETECTORS
from privacy.models import (
    ErasureRequest,
    ExportJob,
    RedactionPolicy,
    ReredactionRun,
    RetentionPolicy,
    RetentionRun,
)
from privacy.policy import DEFAULT_PHONE_REGION, RedactionMode
from privacy.retention import effective_retention
from privacy.services import (
    erasure_request_create,
    export_create,
    redaction_policy_update,
    reredaction_create,
    retention_policy_update,
)
from tenancy.api.base import ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role

RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "the database is unavailable; retry later"
PREVIEW_FAILED = "the redaction policy could not be applied to this input, so nothing is returned"

_PROJECT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]


def _unavailable() -> Response:
    return Response({"detail": UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _accepted(view, start) -> Response:
    """202 with the job `start()` created, for the region jobs (erasure, re-redaction, export): a
    refused request is a 400 naming the field, a database outage a 503 to retry."""
    try:
        job = start()
    except DjangoValidationError as exc:
        raise as_api_errors(exc) from None
    except (OperationalError, InterfaceError):
        return _unavailable()
    return Response(view.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)


def policy_representation(project, policy: RedactionPolicy | None) -> dict:
    if policy is None:
        # Never configured: nothing is redacted. The other values are what a first save starts from.
        return {
            "project_id": project.id, "configured": False, "enabled": False,
            "default_mode": RedactionMode.MASK.value, "detector_modes": {},
            "effective_modes": {name: RedactionMode.MASK.value for name in DETECTORS},
            "phone_default_region": DEFAULT_PHONE_REGION, "custom_patterns": [], "version": None,
            "updated_at": None,
        }
    return {
        "project_id": project.id, "configured": True, "enabled": policy.enabled,
        "default_mode": policy.default_mode, "detector_modes": policy.detector_modes,
        "effective_modes": {name: policy.mode_for(name) for name in DETECTORS},
        "phone_default_region": policy.phone_default_region, "custom_patterns": policy.custom_patterns,
        "version": policy.version, "updated_at": policy.updated_at,
    }


@extend_schema_view(
    retrieve=extend_schema(summary="The project's PII redaction policy (viewer)"),
    update=extend_schema(
        summary="Replace the redaction policy (admin); fields left out go back to their defaults",
        request=s.RedactionPolicyWriteSerializer,
    ),
    partial_update=extend_schema(
        summary="Change some settings of the redaction policy (admin)", request=s.RedactionPolicyWriteSerializer
    ),
)
@extend_schema(tags=["redaction"], parameters=_PROJECT_PATH, responses={200: s.RedactionPolicySerializer})
class RedactionPolicyViewSet(ProjectScopedViewSet):
    queryset = RedactionPolicy.objects.all()
    serializer_class = s.RedactionPolicySerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []
    pagination_class = None

    def retrieve(self, request, *args, **kwargs):
        try:
            policy = self.get_queryset().first()
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.RedactionPolicySerializer(policy_representation(self.project, policy)).data)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        payload = s.RedactionPolicyWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        changes = dict(payload.validated_data)
        rotate_salt = bool(changes.pop("rotate_salt", False))
        if not partial:
            changes = {**s.RedactionPolicyWriteSerializer.DEFAULTS, **changes}
        try:
            policy = redaction_policy_update(
                project=self.project, actor=request.user, rotate_salt=rotate_salt, **changes
            )
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(s.RedactionPolicySerializer(policy_representation(self.project, policy)).data)

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)


@extend_schema(
    tags=["redaction"],
    parameters=_PROJECT_PATH,
    summary="Redact a text or JSON value with the project's policy (member); nothing is stored",
    description="Uses the project's saved policy even while it is disabled (`policy.applied_at_ingest` "
    "says whether ingestion applies it now); a project without a policy gets the defaults (every "
    "detector, mask).",
    request=s.RedactRequestSerializer,
    responses={200: s.RedactResponseSerializer},
)
class RedactViewSet(ProjectScopedViewSet):
    queryset = RedactionPolicy.objects.none()
    serializer_class = s.RedactRequestSerializer
    read_role = Role.MEMBER
    write_role = Role.MEMBER
    filter_backends: list = []
    pagination_class = None

    def create(self, request, *args, **kwargs):
        payload = s.RedactRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        key = "text" if "text" in payload.validated_data else "value"
        try:
            preview = selectors.redaction_preview(project=self.project, value=payload.validated_data[key])
        except selectors.RedactionPreviewFailed:
            return Response({"detail": PREVIEW_FAILED}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        except (OperationalError, InterfaceError):
            return _unavailable()
        return Response(
            {
                key: preview.value,
                "counts": preview.counts,
                "policy": {
                    "source": preview.source,
                    "version": preview.version,
                    "applied_at_ingest": preview.applied_at_ingest,
                },
            }
        )


# --- erasure requests ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The project's erasure requests, newest first (admin)"),
    retrieve=extend_schema(summary="One erasure request: status, counts per table, verification (admin)"),
    create=extend_schema(
        summary="Erase everything about an end user, a session or some traces (admin)",
        description="Answers 202 with the request; a job in the project's region deletes every trace, "
        "observation, score, feedback event, dataset item copied from those traces, eval result and "
        "per-user rollup of the subject in small batches, then writes the counts and a verification "
        "query that found nothing left. The receipt keeps the subject only as a keyed hash.",
        request=s.ErasureRequestCreateSerializer, responses={202: s.ErasureRequestSerializer},
    ),
)
@extend_schema(tags=["privacy"], parameters=_PROJECT_PATH, responses={200: s.ErasureRequestSerializer})
class ErasureRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = ErasureRequest.objects.select_related("requested_by").order_by("-created_at")
    serializer_class = s.ErasureRequestSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filter_backends: list = []
    lookup_field = "id"
    lookup_url_kwarg = "erasure_id"

    def create(self, request, *args, **kwargs):
        payload = s.ErasureRequestCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        kind, subjects = payload.subject()
        return _accepted(self, lambda: erasure_request_create(
            project=self.project, kind=kind, subjects=subjects, via="api", actor=request.user,
            grace_days=payload.validated_data.get("grace_period_days"),
        ))


# --- retention -------------------------------------------------------------------------------------


def retention_representation(project, policy) -> dict:
    effective = effective_retention(project, policy)
    return {
        "project_id": project.id, "days": policy.days if policy else None,
        "payload_days": policy.payload_days if policy else None, "effective_days": effective.days,
        "effective_payload_days": effective.payload_days, "source": effective.source,
        "updated_at": policy.updated_at if policy else None,
    }


@extend_schema_view(
    retrieve=extend_schema(summary="The project's retention: its setting and what the nightly job enforces (viewer)"),
    update=extend_schema(summary="Set the project's retention (admin); null keeps data (or the plan's days apply)",
                         request=s.RetentionWriteSerializer),
    partial_update=extend_schema(summary="Change the project's retention (admin)", request=s.RetentionWriteSerializer),
)
@extend_schema(tags=["privacy"], parameters=_PROJECT_PATH, responses={200: s.RetentionSerializer})
class RetentionViewSet(ProjectScopedViewSet):
    queryset = RetentionPolicy.objects.all()
    serializer_class = s.RetentionSerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []
    pagination_class = None

    def retrieve(self, request, *args, **kwargs):
        return Response(s.RetentionSerializer(retention_representation(self.project, self.get_queryset().first())).data)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        payload = s.RetentionWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        changes = dict(payload.validated_data)
        if not partial:
            changes = {"days": None, "payload_days": None, **changes}
        try:
            policy = retention_policy_update(project=self.project, actor=request.user, **changes)
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return Response(s.RetentionSerializer(retention_representation(self.project, policy)).data)

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)


@extend_schema(tags=["privacy"], parameters=_PROJECT_PATH, responses={200: s.RetentionRunSerializer},
               summary="The project's retention runs, newest first: what each deleted (viewer)")
class RetentionRunViewSet(mixins.ListModelMixin, ProjectScopedViewSet):
    queryset = RetentionRun.objects.order_by("-created_at")
    serializer_class = s.RetentionRunSerializer
    read_role = Role.VIEWER
    filter_backends: list = []


# --- re-redaction ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The project's re-redaction runs, newest first (admin)"),
    create=extend_schema(
        summary="Apply the current redaction policy to data already stored in a time range (admin)",
        description="Answers 202; a job in the project's region rewrites traces, observations and scores "
        "of [since, until) with the policy as ingestion would, in short batches. Fail closed: a row the "
        "policy cannot be applied to has its content emptied. Counts land in the run's record.",
        request=s.ReredactionCreateSerializer, responses={202: s.ReredactionRunSerializer},
    ),
)
@extend_schema(tags=["redaction"], parameters=_PROJECT_PATH, responses={200: s.ReredactionRunSerializer})
class ReredactionViewSet(mixins.ListModelMixin, ProjectScopedViewSet):
    queryset = ReredactionRun.objects.order_by("-created_at")
    serializer_class = s.ReredactionRunSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filter_backends: list = []

    def create(self, request, *args, **kwargs):
        payload = s.ReredactionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return _accepted(self, lambda: reredaction_create(
            project=self.project, actor=request.user, **payload.validated_data))


# --- exports ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The project's exports, newest first, with status and progress (admin)"),
    retrieve=extend_schema(
        summary="One export: status, progress, rows per table and, once done, a download link (admin)",
        parameters=[OpenApiParameter("data_export_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    ),
    create=extend_schema(
        summary="Export the project's data, a time range, or one end user's data as gzip JSONL (admin)",
        description="Answers 202 with the export; a job in the project's region writes every trace in it "
        "with its observations, scores, feedback events and eval results (one `{table, row}` per line) to "
        "the region's export storage. Poll it for `progress`; once `done`, `download_url` is a signed link "
        "valid EXPORT_LINK_SECONDS (from an S3-compatible bucket it redirects to a presigned URL expiring "
        "with it). Requests and downloads are audited; an end user's id is kept only in the region until "
        "the file is built.",
        request=s.ExportCreateSerializer, responses={202: s.ExportSerializer},
    ),
)
@extend_schema(tags=["privacy"], parameters=_PROJECT_PATH, responses={200: s.ExportSerializer})
class ExportViewSet(mixins.ListModelMixin, ProjectScopedViewSet):
    queryset = ExportJob.objects.select_related("requested_by").order_by("-created_at")
    serializer_class = s.ExportSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filter_backends: list = []
    lookup_field = "id"
    lookup_url_kwarg = "data_export_id"

    def retrieve(self, request, *args, **kwargs):
        export = selectors.export_get(project=self.project, export_id=kwargs.get("data_export_id"))
        if export is None:
            raise Http404
        return Response(self.get_serializer(export).data)

    def create(self, request, *args, **kwargs):
        payload = s.ExportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        return _accepted(self, lambda: export_create(
            project=self.project, since=data.get("since"), until=data.get("until"), user_id=data.get("user_id"),
            actor=request.user))
