"""Management API for people: organizations, members, invitations, projects, API keys, audit log.

Views stay thin: tenant resolution and role checks happen in `tenancy.api.base`, writes in
`tenancy.services`, reads in `tenancy.selectors`.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from tenancy import selectors, services
from tenancy.api import schema  # noqa: F401  (registers the API-key security scheme)
from tenancy.api import serializers as s
from tenancy.api.base import (
    MANAGEMENT_AUTHENTICATION,
    OrganizationScopedViewSet,
    ProjectScopedViewSet,
    is_uuid,
)
from tenancy.authentication import KeyPrincipal
from tenancy.models import (
    ApiKey,
    AuditAction,
    AuditLogEntry,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
    role_at_least,
)

API_KEYS_REFUSED = "API keys cannot use the management API; sign in as a person."


def _path_params(*names: str, tag: str):
    # Routes use plain string segments so a malformed id gets the same JSON 404 as a missing one;
    # the schema still documents them as UUIDs.
    return extend_schema(
        tags=[tag],
        parameters=[OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH) for name in names],
    )


def _field_errors(field: str, exc: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(exc.message_dict)
    return serializers.ValidationError({field: exc.messages})


def _no_store(response: Response) -> Response:
    # Responses carrying a secret must not be kept by browsers or intermediaries.
    response["Cache-Control"] = "no-store"
    return response


class _PersonView(generics.GenericAPIView):
    """Endpoints not under an organization: for signed-in people only, never for machine keys."""

    authentication_classes = MANAGEMENT_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    allow_api_keys = False

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, KeyPrincipal):
            raise PermissionDenied(API_KEYS_REFUSED)


class OrganizationListCreateView(mixins.ListModelMixin, _PersonView):
    queryset = Organization.objects.none()
    serializer_class = s.OrganizationSerializer

    def get_queryset(self):
        return selectors.organizations_for_user(user=self.request.user).order_by("name")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self.request, "user", None) is not None and self.request.user.is_authenticated:
            context["roles"] = selectors.roles_by_organization(user=self.request.user)
        return context

    @extend_schema(summary="List your organizations (superusers: all)", tags=["organizations"])
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        summary="Create an organization; you become its owner",
        tags=["organizations"],
        request=s.OrganizationWriteSerializer,
        responses={201: s.OrganizationSerializer},
    )
    def post(self, request, *args, **kwargs):
        payload = s.OrganizationWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        organization = services.organization_create(
            name=payload.validated_data["name"], owner=request.user
        )
        data = s.OrganizationSerializer(organization, context={"roles": {organization.id: Role.OWNER}}).data
        return Response(data, status=status.HTTP_201_CREATED)


class MeView(_PersonView):
    serializer_class = s.MeSerializer

    @extend_schema(summary="The signed-in person and their memberships", tags=["me"])
    def get(self, request, *args, **kwargs):
        user = request.user
        data = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "is_superuser": user.is_superuser,
            "memberships": selectors.memberships_for_user(user=user),
        }
        return Response(s.MeSerializer(data).data)


class InvitationAcceptView(_PersonView):
    serializer_class = s.InvitationAcceptSerializer

    @extend_schema(
        summary="Accept an invitation sent to your email address",
        tags=["invitations"],
        request=s.InvitationAcceptSerializer,
        responses={200: s.MyMembershipSerializer},
    )
    def post(self, request, *args, **kwargs):
        payload = s.InvitationAcceptSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            membership = services.invitation_accept(
                token=payload.validated_data["token"], user=request.user
            )
        except DjangoValidationError as exc:
            raise _field_errors("token", exc) from None
        return Response(s.MyMembershipSerializer(membership).data)


@_path_params("organization_id", tag="organizations")
class OrganizationViewSet(OrganizationScopedViewSet):
    queryset = Organization.objects.all()
    serializer_class = s.OrganizationSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "organization_id"
    action_roles = {"retrieve": Role.VIEWER, "partial_update": Role.OWNER, "destroy": Role.OWNER}

    def tenant_filter(self) -> dict:
        return {"pk": self.organization.pk}

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["roles"] = {self.organization.id: self.role}
        return context

    @extend_schema(summary="An organization you belong to")
    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(summary="Rename the organization (owner)", request=s.OrganizationWriteSerializer)
    def partial_update(self, request, *args, **kwargs):
        organization = self.get_object()
        payload = s.OrganizationWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        organization = services.organization_update(
            organization=organization, name=payload.validated_data["name"], actor=request.user
        )
        return Response(self.get_serializer(organization).data)

    @extend_schema(summary="Delete the organization (owner; only once it has no projects)")
    def destroy(self, request, *args, **kwargs):
        services.organization_delete(organization=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@_path_params("organization_id", tag="members")
@extend_schema_view(
    list=extend_schema(summary="Members of the organization"),
    retrieve=extend_schema(
        summary="One member", parameters=[OpenApiParameter("user_id", OpenApiTypes.UUID, "path")]
    ),
    partial_update=extend_schema(
        summary="Change a member's role (owner)",
        request=s.MemberRoleSerializer,
        parameters=[OpenApiParameter("user_id", OpenApiTypes.UUID, "path")],
    ),
    destroy=extend_schema(
        summary="Remove a member (owner), or leave the organization (yourself)",
        parameters=[OpenApiParameter("user_id", OpenApiTypes.UUID, "path")],
    ),
)
class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Members are addressed by their user id, so `DELETE …/members/{your id}/` is how you leave."""

    queryset = Membership.objects.all()
    serializer_class = s.MemberSerializer
    lookup_field = "user_id"
    lookup_url_kwarg = "user_id"
    read_role = Role.VIEWER
    write_role = Role.OWNER
    action_roles = {"destroy": Role.VIEWER}

    def scope_queryset(self, queryset):
        user_id = self.kwargs.get("user_id")
        if user_id is not None and not is_uuid(user_id):
            # The base class only guards `pk`/`id` lookups; a malformed user id is simply not found.
            raise Http404
        return queryset.select_related("user", "organization").order_by("user__email")

    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        payload = s.MemberRoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            membership = services.membership_set_role(
                membership=membership, role=payload.validated_data["role"], actor=request.user
            )
        except DjangoValidationError as exc:
            raise _field_errors("role", exc) from None
        return Response(self.get_serializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        membership = self.get_object()
        if membership.user_id != request.user.id and not role_at_least(self.role, Role.OWNER):
            raise PermissionDenied("only an owner can remove other members; you can remove yourself to leave")
        services.membership_remove(membership=membership, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@_path_params("organization_id", tag="invitations")
@extend_schema_view(
    list=extend_schema(summary="Invitations of the organization (owner)"),
    create=extend_schema(
        summary="Invite someone by email (owner); the token is sent only by email",
        request=s.InvitationCreateSerializer,
        responses={201: s.InvitationSerializer},
    ),
    retrieve=extend_schema(
        summary="One invitation (owner)",
        parameters=[
            OpenApiParameter("invitation_id", OpenApiTypes.UUID, "path"),
        ],
    ),
    destroy=extend_schema(
        summary="Revoke an invitation (owner)",
        parameters=[
            OpenApiParameter("invitation_id", OpenApiTypes.UUID, "path"),
        ],
    ),
)
class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = Invitation.objects.all()
    serializer_class = s.InvitationSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "invitation_id"
    read_role = Role.OWNER
    write_role = Role.OWNER

    def scope_queryset(self, queryset):
        return queryset.select_related("invited_by", "organization").order_by("-created_at", "id")

    def create(self, request, *args, **kwargs):
        payload = s.InvitationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        invitation, _token = services.invitation_create(
            organization=self.organization, invited_by=request.user, **payload.validated_data
        )
        return Response(self.get_serializer(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        invitation = self.get_object()
        if invitation.accepted_at is not None:
            raise serializers.ValidationError(
                {"detail": "this invitation was already accepted; remove the member instead"}
            )
        services.invitation_revoke(invitation=invitation, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@_path_params("organization_id", tag="projects")
@extend_schema_view(
    list=extend_schema(summary="Projects of the organization"),
    create=extend_schema(
        summary="Create a project (admin); its region is fixed for life",
        request=s.ProjectCreateSerializer,
        responses={201: s.ProjectSerializer},
    ),
    retrieve=extend_schema(
        summary="One project", parameters=[OpenApiParameter("project_id", OpenApiTypes.UUID, "path")]
    ),
    partial_update=extend_schema(
        summary="Rename a project (admin); the region cannot change",
        request=s.ProjectUpdateSerializer,
        parameters=[OpenApiParameter("project_id", OpenApiTypes.UUID, "path")],
    ),
    destroy=extend_schema(
        summary="Delete a project (admin)",
        parameters=[OpenApiParameter("project_id", OpenApiTypes.UUID, "path")],
    ),
)
class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = Project.objects.all()
    serializer_class = s.ProjectSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "project_id"
    read_role = Role.VIEWER
    write_role = Role.ADMIN

    def scope_queryset(self, queryset):
        return queryset.select_related("organization").order_by("name")

    def create(self, request, *args, **kwargs):
        payload = s.ProjectCreateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        project = services.project_create(
            organization=self.organization,
            name=payload.validated_data["name"],
            region=payload.validated_data.get("region"),
            actor=request.user,
        )
        return Response(self.get_serializer(project).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        project = self.get_object()
        payload = s.ProjectUpdateSerializer(project, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        name = payload.validated_data.get("name")
        if name is not None and name != project.name:
            project = services.project_update(project=project, name=name, actor=request.user)
        return Response(self.get_serializer(project).data)

    def destroy(self, request, *args, **kwargs):
        services.project_delete(project=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


_API_KEY_ID = OpenApiParameter("api_key_id", OpenApiTypes.UUID, "path")


@_path_params("organization_id", "project_id", tag="api-keys")
@extend_schema_view(
    list=extend_schema(summary="API keys of the project (admin)"),
    create=extend_schema(
        summary="Create a key pair (admin); the secret is returned once, here",
        request=s.ApiKeyCreateSerializer,
        responses={201: s.ApiKeyCreatedSerializer},
    ),
    retrieve=extend_schema(summary="One API key (admin)", parameters=[_API_KEY_ID]),
    destroy=extend_schema(summary="Revoke a key (admin); the row is kept", parameters=[_API_KEY_ID]),
    revoke=extend_schema(
        summary="Revoke a key (admin); the row is kept",
        request=None,
        responses={200: s.ApiKeySerializer},
        parameters=[_API_KEY_ID],
    ),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = ApiKey.objects.all()
    serializer_class = s.ApiKeySerializer
    lookup_field = "pk"
    lookup_url_kwarg = "api_key_id"
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def scope_queryset(self, queryset):
        return queryset.select_related("created_by", "project__organization").order_by("-created_at", "id")

    def create(self, request, *args, **kwargs):
        payload = s.ApiKeyCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        api_key, secret = services.api_key_create(
            project=self.project, actor=request.user, **payload.validated_data
        )
        data = s.ApiKeyCreatedSerializer(api_key, context={"secret_key": secret}).data
        return _no_store(Response(data, status=status.HTTP_201_CREATED))

    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        api_key = services.api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(self.get_serializer(api_key).data)

    def destroy(self, request, *args, **kwargs):
        services.api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditLogFilter(django_filters.FilterSet):
    # The column has no `choices` (apps add actions freely); the filter still rejects unknown ones.
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)

    class Meta:
        model = AuditLogEntry
        fields = ["action"]


@_path_params("organization_id", tag="audit-log")
@extend_schema_view(list=extend_schema(summary="Audit log, newest first (owner, admin)"))
class AuditLogViewSet(mixins.ListModelMixin, OrganizationScopedViewSet):
    queryset = AuditLogEntry.objects.all()
    serializer_class = s.AuditLogEntrySerializer
    read_role = Role.ADMIN
    write_role = Role.OWNER
    filterset_class = AuditLogFilter

    def tenant_filter(self) -> dict:
        # Audit rows keep the organization as a plain id so they outlive it.
        return {"organization_id": self.organization.id}

    def scope_queryset(self, queryset):
        return queryset.order_by("-created_at", "-id")
