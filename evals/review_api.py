"""Management API of review rules: `/api/v1/organizations/{org}/projects/{project}/review-rules/`.

Viewer reads, admin creates, changes and deletes (audited, through `evals.review_services`), as in
the console (evals/review_admin.py). Tenant resolution and roles are `tenancy.api.base`'s.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from evals import review_services
from evals.models_review import ReviewOperator, ReviewRule
from scores.models import ScoreDataType, ScoreSource
from tenancy.api.base import ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.models import Role

_PROJECT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]
_RULE_ID = OpenApiParameter("rule_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


# Plain strings in the schema rather than enums: the same field names carry other choice sets in
# other components (scores' `source`, `data_type`), and the help text lists the values.
SOURCES = ", ".join(ScoreSource.values)
DATA_TYPES = ", ".join(ScoreDataType.values)
OPERATORS = ", ".join(ReviewOperator.values)


class ReviewRuleSerializer(serializers.ModelSerializer):
    project_id = serializers.UUIDField(read_only=True)
    source = serializers.CharField(read_only=True, help_text=f"{SOURCES}, or empty: any")
    data_type = serializers.CharField(read_only=True, help_text=f"{DATA_TYPES}, or empty: any")
    operator = serializers.CharField(read_only=True, help_text=OPERATORS)

    class Meta:
        model = ReviewRule
        fields = [
            "id", "project_id", "name", "dataset_name", "score_name", "source", "data_type", "operator", "value",
            "string_value", "require_comment", "enabled", "created_at", "updated_at",
        ]
        read_only_fields = fields


class _Strict(serializers.Serializer):
    def to_internal_value(self, data):
        # A misspelt field must not be silently ignored: the rule would match other scores.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(sorted(self.fields))
                raise serializers.ValidationError({key: [f"unknown field; known: {known}"] for key in unknown})
        return super().to_internal_value(data)


class ReviewRuleWriteSerializer(_Strict):
    name = serializers.CharField(max_length=200)
    dataset_name = serializers.CharField(max_length=255, help_text="The review dataset; created on first use.")
    score_name = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                       help_text="Empty: any score name.")
    source = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text=f"{SOURCES} (USER for end-user feedback); empty: any source.")
    data_type = serializers.CharField(required=False, allow_blank=True, default="",
                                      help_text=f"{DATA_TYPES}; empty: any.")
    operator = serializers.CharField(required=False, default=ReviewOperator.EQ, help_text=OPERATORS)
    value = serializers.FloatField(required=False, allow_null=True, default=None,
                                   help_text="Compared with the score's value (thumbs-down: BOOLEAN, eq 0).")
    string_value = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="",
                                         help_text="Or compared with a CATEGORICAL score's label (eq, ne).")
    require_comment = serializers.BooleanField(required=False, default=False)
    enabled = serializers.BooleanField(required=False, default=True)

    def _one_of(self, value: str, allowed, *, blank: bool) -> str:
        if (value == "" and blank) or value in allowed:
            return value
        raise serializers.ValidationError(f"must be one of {', '.join(allowed)}" + (" or empty" if blank else ""))

    def validate_source(self, value):
        return self._one_of(value, ScoreSource.values, blank=True)

    def validate_data_type(self, value):
        return self._one_of(value, ScoreDataType.values, blank=True)

    def validate_operator(self, value):
        return self._one_of(value, ReviewOperator.values, blank=False)


class ReviewRuleUpdateSerializer(ReviewRuleWriteSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


@extend_schema_view(
    list=extend_schema(summary="Review rules of the project (viewer)"),
    retrieve=extend_schema(summary="One review rule (viewer)", parameters=[_RULE_ID]),
    create=extend_schema(
        summary="Turn matching scores (e.g. thumbs-down: source USER, BOOLEAN, eq 0) into review dataset "
        "items, with the source trace and the comment, one item per trace (admin)",
        request=ReviewRuleWriteSerializer,
        responses={201: ReviewRuleSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a review rule (admin)", request=ReviewRuleUpdateSerializer,
        responses={200: ReviewRuleSerializer}, parameters=[_RULE_ID],
    ),
    destroy=extend_schema(summary="Delete a review rule; its items stay (admin)", parameters=[_RULE_ID]),
)
@extend_schema(tags=["review-rules"], parameters=_PROJECT_PATH)
class ReviewRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = ReviewRule.objects.select_related("project__organization")
    serializer_class = ReviewRuleSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "rule_id"
    read_role = Role.VIEWER
    write_role = Role.ADMIN

    def scope_queryset(self, queryset):
        return queryset.order_by("name", "id")

    def create(self, request, *args, **kwargs):
        payload = ReviewRuleWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            rule = review_services.review_rule_create(project=self.project, actor=request.user, **payload.validated_data)
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return Response(self.get_serializer(rule).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        payload = ReviewRuleUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        try:
            rule = review_services.review_rule_update(rule=rule, actor=request.user, **payload.validated_data)
        except DjangoValidationError as exc:
            raise as_api_errors(exc) from None
        return Response(self.get_serializer(rule).data)

    def destroy(self, request, *args, **kwargs):
        review_services.review_rule_delete(rule=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
