"""Management API for a prompt's labels, for people: what the console's prompt page does (move a
label to a version, take it off), with the console's roles (any role reads, member and up move).

The Langfuse route `PATCH /api/public/v2/prompts/{name}/versions/{n}` moves labels for project keys
but cannot remove one; this is the people's equivalent of the console form. Writes go through
`prompts.services` (label history and audit log, cache invalidation).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from prompts import selectors, services
from prompts.errors import InvalidRequest, PromptNotFound, not_found_message
from prompts.payloads import validate_labels
from tenancy.api.base import ProjectScopedViewSet
from tenancy.models import Role

# The console's rule (prompts/admin.py): moving labels needs the member role.
LABEL_WRITE_ROLE = Role.MEMBER
_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter(
        "prompt_name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The prompt's name; folders separated by `/`"
    ),
]
_LABEL = OpenApiParameter(
    "label", OpenApiTypes.STR, OpenApiParameter.PATH, description="1–36 characters of a-z 0-9 _ - . (not `latest`)"
)


class PromptLabelSerializer(serializers.Serializer):
    label = serializers.CharField()
    version = serializers.IntegerField()


class PromptLabelsSerializer(serializers.Serializer):
    name = serializers.CharField()
    labels = PromptLabelSerializer(many=True, help_text="Every label and the version it points at.")


class PromptLabelMoveSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The version the label should point at.")


@extend_schema_view(
    update=extend_schema(
        summary="Point a label at a version (member); it leaves the version it was on",
        parameters=[_LABEL], request=PromptLabelMoveSerializer, responses={200: PromptLabelsSerializer},
    ),
    destroy=extend_schema(summary="Take a label off the prompt (member); `latest` cannot be removed",
                          parameters=[_LABEL], responses={204: None}),
)
@extend_schema(tags=["prompts"], parameters=_PATH)
class PromptLabelViewSet(ProjectScopedViewSet):
    serializer_class = PromptLabelsSerializer
    read_role = Role.VIEWER
    write_role = LABEL_WRITE_ROLE
    filter_backends: list = []
    pagination_class = None

    def _prompt(self):
        name = self.kwargs["prompt_name"]
        prompt = selectors.prompt_by_name(project=self.project, name=name)
        if prompt is None:
            raise PromptNotFound(not_found_message(name))
        return prompt

    def _labels(self, prompt) -> Response:
        labels = [{"label": label, "version": version}
                  for label, version in selectors.prompt_labels(project=self.project, prompt=prompt)]
        return Response(PromptLabelsSerializer({"name": prompt.name, "labels": labels}).data)

    def handle_exception(self, exc):
        # The prompt services speak the Langfuse layer's errors; here they are the management API's.
        if isinstance(exc, PromptNotFound):
            return Response({"detail": exc.message}, status=status.HTTP_404_NOT_FOUND)
        if isinstance(exc, InvalidRequest):
            return Response({"detail": exc.message}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    @extend_schema(summary="A prompt's labels and the versions they point at (viewer)",
                   responses={200: PromptLabelsSerializer})
    def labels(self, request, *args, **kwargs):
        return self._labels(self._prompt())

    def update(self, request, *args, **kwargs):
        prompt = self._prompt()  # first: a prompt the project does not have is a 404, whatever the body
        label = validate_labels([self.kwargs["label"]], field="label", allow_latest=False)[0]
        payload = PromptLabelMoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        prompt = services.prompt_version_add_labels(
            project=self.project, name=prompt.name, version=payload.validated_data["version"],
            labels=[label], actor=request.user,
        )
        return self._labels(prompt)

    def destroy(self, request, *args, **kwargs):
        prompt = self._prompt()
        services.prompt_label_remove(project=self.project, name=prompt.name, label=self.kwargs["label"], actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
