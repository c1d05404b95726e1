"""Management API for a project's feedback settings: which browser origins may send feedback with the
public key, whether the public key may send it at all, and the comment limit.

The same object and roles as the console (feedback/admin.py): viewer reads, admin writes. A project
has one settings object, so the route names it with no id (like the redaction policy). Tenant
resolution and role checks happen in `tenancy.api.base`; writes go through
`feedback.services.feedback_settings_update`, which validates, normalises and audits them.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from feedback.models import DEFAULT_COMMENT_LENGTH, MAX_COMMENT_LENGTH, FeedbackSettings
from feedback.services import feedback_settings_update
from tenancy.api.base import ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role

_PROJECT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]
ORIGINS_HELP = (
    "Exact origins (scheme://host[:port], e.g. https://app.example.com) whose pages may send feedback "
    "with the public key; `*` allows any page. Normalised (lower case, no trailing slash) and deduplicated."
)


class FeedbackSettingsSerializer(serializers.Serializer):
    """The settings as they apply now; a project that never saved any reads as `configured: false`."""

    project_id = serializers.UUIDField()
    configured = serializers.BooleanField(help_text="False while the project runs on the defaults.")
    enabled = serializers.BooleanField(
        help_text="Whether the public key may write feedback (secret-key callers always may)."
    )
    allowed_origins = serializers.ListField(child=serializers.CharField(), help_text=ORIGINS_HELP)
    comment_max_length = serializers.IntegerField(help_text="Longest comment a browser may send.")
    updated_at = serializers.DateTimeField(allow_null=True)


class FeedbackSettingsWriteSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    allowed_origins = serializers.ListField(
        child=serializers.CharField(max_length=255, trim_whitespace=True),
        required=False,
        allow_empty=True,
        help_text=ORIGINS_HELP,
    )
    comment_max_length = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_COMMENT_LENGTH, help_text=f"1–{MAX_COMMENT_LENGTH}."
    )

    # PUT replaces the settings: what it leaves out goes back to these (the model's defaults).
    DEFAULTS = {"enabled": True, "allowed_origins": [], "comment_max_length": DEFAULT_COMMENT_LENGTH}

    def to_internal_value(self, data):
        # A misspelt setting (`allowedOrigins`) must not be silently ignored.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: ["unknown field; known: " + ", ".join(sorted(self.fields))] for key in unknown}
                )
        return super().to_internal_value(data)


def settings_representation(project, row: FeedbackSettings | None) -> dict:
    row_or_defaults = row or FeedbackSettings(project=project)
    return {
        "project_id": project.id,
        "configured": row is not None,
        "enabled": row_or_defaults.enabled,
        "allowed_origins": list(row_or_defaults.allowed_origins),
        "comment_max_length": row_or_defaults.comment_max_length,
        "updated_at": row.updated_at if row is not None else None,
    }


@extend_schema_view(
    retrieve=extend_schema(summary="The project's feedback settings (viewer)"),
    update=extend_schema(
        summary="Replace the feedback settings (admin); fields left out go back to their defaults",
        request=FeedbackSettingsWriteSerializer,
    ),
    partial_update=extend_schema(
        summary="Change some feedback settings (admin), e.g. the allowed browser origins",
        request=FeedbackSettingsWriteSerializer,
    ),
)
@extend_schema(tags=["feedback"], parameters=_PROJECT_PATH, responses={200: FeedbackSettingsSerializer})
class FeedbackSettingsViewSet(ProjectScopedViewSet):
    queryset = FeedbackSettings.objects.all()
    serializer_class = FeedbackSettingsSerializer
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []
    pagination_class = None

    def retrieve(self, request, *args, **kwargs):
        return Response(settings_representation(self.project, self.get_queryset().first()))

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        payload = FeedbackSettingsWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        changes = dict(payload.validated_data)
        if not partial:
            changes = {**FeedbackSettingsWriteSerializer.DEFAULTS, **changes}
        try:
            row = feedback_settings_update(project=self.project, actor=request.user, **changes)
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return Response(settings_representation(self.project, row))

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)
