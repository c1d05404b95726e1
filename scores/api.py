"""Management API for a project's score configs (the console's "Score configs", for people).

The same object and roles as the console (scores/admin.py): viewer reads, admin creates and
changes; nobody deletes (archive instead: stored scores keep pointing at their config), and a
config's data type is fixed once created. The Langfuse-compatible `/api/public/score-configs`
(scores/views.py) serves the same rows to project keys. Tenant resolution and role checks happen in
`tenancy.api.base`; writes go through `scores.services`, which validates and audits them.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from scores import selectors, services
from scores.models import MAX_CATEGORIES, ScoreConfig, ScoreConfigDataType
from tenancy.api.base import ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role

_PROJECT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]
_CONFIG_ID = OpenApiParameter("config_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


@extend_schema_field(
    {
        "type": "array",
        "maxItems": MAX_CATEGORIES,
        "items": {
            "type": "object",
            "properties": {"label": {"type": "string"}, "value": {"type": "number"}},
            "required": ["label", "value"],
            "additionalProperties": False,
        },
    }
)
class CategoriesField(serializers.JSONField):
    """Validated by the model (`ScoreConfig.clean`), so the console, both APIs and the services say the
    same thing about a bad category."""


class ScoreConfigSerializer(serializers.ModelSerializer):
    project_id = serializers.UUIDField(read_only=True)
    categories = serializers.SerializerMethodField(
        help_text="CATEGORICAL: the labels and their values; BOOLEAN: the fixed True = 1, False = 0."
    )

    class Meta:
        model = ScoreConfig
        fields = [
            "id",
            "project_id",
            "name",
            "data_type",
            "min_value",
            "max_value",
            "categories",
            "description",
            "is_archived",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CategoriesField)
    def get_categories(self, config) -> list:
        return selectors.stored_categories(config)


class _Strict(serializers.Serializer):
    def to_internal_value(self, data):
        # A misspelt or read-only field must not be silently ignored.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: [self.unknown_message] for key in unknown}
                )
        return super().to_internal_value(data)

    @property
    def unknown_message(self) -> str:
        return "unknown or read-only field; known: " + ", ".join(sorted(self.fields))


class ScoreConfigCreateSerializer(_Strict):
    name = serializers.CharField(max_length=35, help_text="1–35 characters of letters, digits, spaces and _ . ( ) -")
    data_type = serializers.ChoiceField(choices=ScoreConfigDataType.choices)
    min_value = serializers.FloatField(required=False, allow_null=True, help_text="NUMERIC only.")
    max_value = serializers.FloatField(required=False, allow_null=True, help_text="NUMERIC only.")
    categories = CategoriesField(required=False, allow_null=True, help_text="CATEGORICAL only (required there).")
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ScoreConfigUpdateSerializer(_Strict):
    """Everything but the data type: scores already stored under a config keep meaning what they meant."""

    name = serializers.CharField(max_length=35, required=False)
    min_value = serializers.FloatField(required=False, allow_null=True)
    max_value = serializers.FloatField(required=False, allow_null=True)
    categories = CategoriesField(required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=2000)
    is_archived = serializers.BooleanField(
        required=False, help_text="Archived: no new score may use it, and its name is free again."
    )

    @property
    def unknown_message(self) -> str:
        return "cannot be changed; changeable: " + ", ".join(sorted(self.fields))


class ScoreConfigFilter(django_filters.FilterSet):
    data_type = django_filters.ChoiceFilter(choices=ScoreConfigDataType.choices)
    is_archived = django_filters.BooleanFilter()
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="part of the name")

    class Meta:
        model = ScoreConfig
        fields = ["data_type", "is_archived", "name"]


@extend_schema_view(
    list=extend_schema(summary="Score configs of the project (viewer)"),
    retrieve=extend_schema(summary="One score config (viewer)", parameters=[_CONFIG_ID]),
    create=extend_schema(
        summary="Declare a score name with its type and allowed values (admin)",
        request=ScoreConfigCreateSerializer,
        responses={201: ScoreConfigSerializer},
    ),
    partial_update=extend_schema(
        summary="Rename, re-describe, change the range or categories of, or archive a score config (admin)",
        request=ScoreConfigUpdateSerializer,
        responses={200: ScoreConfigSerializer},
        parameters=[_CONFIG_ID],
    ),
)
@extend_schema(tags=["score-configs"], parameters=_PROJECT_PATH)
class ScoreConfigViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = ScoreConfig.objects.all()
    serializer_class = ScoreConfigSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "config_id"
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filterset_class = ScoreConfigFilter

    def scope_queryset(self, queryset):
        return queryset.order_by("name", "created_at", "id")

    def create(self, request, *args, **kwargs):
        payload = ScoreConfigCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            config = services.score_config_create(project=self.project, actor=request.user, **payload.validated_data)
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return Response(self.get_serializer(config).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        config = self.get_object()
        payload = ScoreConfigUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        try:
            config = services.score_config_update(config=config, actor=request.user, **payload.validated_data)
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return Response(self.get_serializer(config).data)
