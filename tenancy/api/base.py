"""Tenant scoping, enforced once.

Views under `/api/v1/organizations/{organization_id}/…` subclass `OrganizationScopedViewSet`;
views under `…/projects/{project_id}/…` subclass `ProjectScopedViewSet`. The base class:

- resolves the organization (and project) from the URL for the caller, answering 404 when it does
  not exist *or* the caller is not a member, so the two cannot be told apart;
- checks the caller's role against the action (`read_role` for safe methods, `write_role`
  otherwise, `action_roles` for specifics);
- filters every queryset by the tenant after the subclass's `scope_queryset`, so a subclass cannot
  forget it. Subclasses may not override `get_queryset`, `get_object`, `get_permissions` or
  `initial`; a class that tries fails at import time.
"""

from __future__ import annotations

from django.http import Http404
from django.utils.functional import cached_property
from rest_framework import permissions, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated, PermissionDenied

from tenancy.authentication import ApiKeyAuthentication, KeyPrincipal
from tenancy.models import Organization, Project, Role, role_at_least
from tenancy.selectors import role_in_organization

GUARDED = ("get_queryset", "get_object", "get_permissions", "initial")


class IsAuthenticatedPersonOrKey(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)


# DRF takes the WWW-Authenticate challenge from the *first* class; SessionAuthentication has none, so
# with it first an anonymous caller would get 403 instead of 401.
MANAGEMENT_AUTHENTICATION = [ApiKeyAuthentication, SessionAuthentication]


class _ScopedMixin:
    authentication_classes = MANAGEMENT_AUTHENTICATION
    read_role: str = Role.VIEWER
    write_role: str = Role.MEMBER
    action_roles: dict[str, str] = {}
    # Machine keys are for the public API; management endpoints are for people unless they opt in.
    allow_api_keys: bool = False
    organization_field: str = "organization"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:
            return
        for name in GUARDED:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}(); implement scope_queryset()/perform_* instead so "
                    "tenant scoping stays in the base class"
                )

    def get_permissions(self):
        return [IsAuthenticatedPersonOrKey(), *[p() for p in self.permission_classes]]

    def scope_queryset(self, queryset):
        return queryset

    def required_role(self) -> str:
        action = getattr(self, "action", None)
        if action in self.action_roles:
            return self.action_roles[action]
        return self.read_role if self.request.method in permissions.SAFE_METHODS else self.write_role

    @property
    def principal(self) -> KeyPrincipal | None:
        auth = self.request.auth
        return auth if isinstance(auth, KeyPrincipal) else None

    @cached_property
    def organization(self) -> Organization:
        org_id = self.kwargs.get("organization_id")
        organization = Organization.objects.filter(pk=org_id).first() if is_uuid(org_id) else None
        if organization is None:
            raise Http404
        principal = self.principal
        if principal is not None:
            if not self.allow_api_keys or principal.public_only or principal.project.organization_id != organization.id:
                raise Http404
            self.role = Role.MEMBER
        else:
            self.role = role_in_organization(user=self.request.user, organization_id=organization.id)
            if self.role is None:
                raise Http404
        return organization

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated()
        self._resolve_tenant()
        if not role_at_least(self.role, self.required_role()):
            # Members can see the organization exists, so refusing with 403 reveals nothing new.
            raise PermissionDenied(f"this action needs the {self.required_role()} role in the organization")

    def _resolve_tenant(self) -> None:
        self.organization  # noqa: B018  (resolves, or raises 404)

    def tenant_filter(self) -> dict:
        return {self.organization_field: self.organization}

    def get_queryset(self):
        queryset = self.scope_queryset(super().get_queryset())
        return queryset.filter(**self.tenant_filter())

    def get_object(self):
        lookup = self.lookup_url_kwarg or self.lookup_field
        if not is_uuid(self.kwargs.get(lookup)) and self.lookup_field in ("pk", "id"):
            raise Http404
        return super().get_object()

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["organization"] = self.organization
        return context


class OrganizationScopedViewSet(_ScopedMixin, viewsets.GenericViewSet):
    pass


class ProjectScopedViewSet(_ScopedMixin, viewsets.GenericViewSet):
    project_field: str = "project"

    @cached_property
    def project(self) -> Project:
        project_id = self.kwargs.get("project_id")
        organization = self.organization
        project = (
            Project.objects.filter(pk=project_id, organization=organization).select_related("organization").first()
            if is_uuid(project_id)
            else None
        )
        if project is None:
            raise Http404
        principal = self.principal
        if principal is not None and principal.project.id != project.id:
            raise Http404
        return project

    def _resolve_tenant(self) -> None:
        self.project  # noqa: B018

    def tenant_filter(self) -> dict:
        return {self.project_field: self.project}

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["project"] = self.project
        return context


def is_uuid(value) -> bool:
    import uuid

    if value is None:
        return False
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
