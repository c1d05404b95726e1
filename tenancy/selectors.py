"""Reads on the control plane, always relative to the person asking."""

from __future__ import annotations

from django.db.models import QuerySet

from tenancy.keys import hash_token
from tenancy.models import (
    ApiKey,
    AuditLogEntry,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
    User,
    role_at_least,
)


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user).distinct()


def role_in_organization(*, user: User, organization_id) -> str | None:
    """The user's role, or None when they are not a member. Superusers act as owners everywhere."""
    if not getattr(user, "is_authenticated", False) or not isinstance(user, User):
        return None
    if user.is_superuser:
        return Role.OWNER
    return (
        Membership.objects.filter(organization_id=organization_id, user=user).values_list("role", flat=True).first()
    )


def roles_by_organization(*, user: User) -> dict:
    if user.is_superuser:
        return {org_id: Role.OWNER for org_id in Organization.objects.values_list("id", flat=True)}
    return dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))


def organization_ids_with_role(*, user: User, role: str) -> list:
    return [org_id for org_id, r in roles_by_organization(user=user).items() if role_at_least(r, role)]


def projects_for_user(*, user: User, min_role: str = Role.VIEWER) -> QuerySet[Project]:
    if user.is_superuser:
        return Project.objects.select_related("organization")
    return Project.objects.select_related("organization").filter(
        organization_id__in=organization_ids_with_role(user=user, role=min_role)
    )


def api_keys_for_project(*, project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).select_related("created_by")


def audit_log_for_organization(*, organization: Organization) -> QuerySet[AuditLogEntry]:
    return AuditLogEntry.objects.filter(organization_id=organization.id)


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")


def invitation_for_token(*, token: str) -> Invitation | None:
    """The invitation a token opens, whatever its state (None for an unknown token)."""
    if not token:
        return None
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=hash_token(token))
        .first()
    )


def user_with_email(*, email: str) -> User | None:
    return User.objects.filter(email__iexact=email.strip()).first()


def has_any_membership(*, user: User) -> bool:
    return Membership.objects.filter(user=user).exists()
