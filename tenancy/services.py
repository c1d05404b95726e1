"""Writes on the control plane. Every change that matters to security is audited here."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from tenancy import plan_limits
from tenancy.keys import hash_secret, hash_token, new_public_key, new_secret_key
from tenancy.models import (
    ApiKey,
    AuditAction,
    AuditLogEntry,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
    User,
    role_at_least,
)
from tenancy.regions import region_queue


def audit_record(
    *,
    organization: Organization,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: str,
    data: dict | None = None,
) -> AuditLogEntry:
    actor_user = actor if isinstance(actor, User) else None
    return AuditLogEntry.objects.create(
        organization_id=organization.id,
        organization_name=organization.name,
        actor_id=actor_user.id if actor_user else None,
        actor_email=actor_user.email if actor_user else (str(actor) if actor else ""),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        data=data or {},
    )


@transaction.atomic
def organization_create(*, name: str, owner: User | None) -> Organization:
    organization = Organization(name=name.strip())
    organization.full_clean()
    organization.save()
    audit_record(
        organization=organization, actor=owner, action=AuditAction.ORGANIZATION_CREATED,
        target_type="organization", target_id=organization.id, data={"name": organization.name},
    )
    if owner is not None:
        membership_add(organization=organization, user=owner, role=Role.OWNER, actor=owner)
    return organization


@transaction.atomic
def organization_update(*, organization: Organization, name: str, actor: User | None) -> Organization:
    old = organization.name
    organization.name = name.strip()
    organization.full_clean()
    organization.save(update_fields=["name"])
    audit_record(
        organization=organization, actor=actor, action=AuditAction.ORGANIZATION_UPDATED,
        target_type="organization", target_id=organization.id, data={"name": [old, organization.name]},
    )
    return organization


@transaction.atomic
def membership_add(*, organization: Organization, user: User, role: str, actor: User | None) -> Membership:
    if not Membership.objects.filter(organization=organization, user=user).exists():
        plan_limits.enforce(plan_limits.MEMBERS, organization)
    membership, created = Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    if created:
        audit_record(
            organization=organization, actor=actor, action=AuditAction.MEMBER_ADDED,
            target_type="membership", target_id=membership.id, data={"user": user.email, "role": role},
        )
    elif membership.role != role:
        membership_set_role(membership=membership, role=role, actor=actor)
    return membership


def _lock_membership(membership: Membership) -> Membership:
    """Lock the membership's organization, then re-read the membership under that lock.

    Every change that can take an owner away (demote, remove, leave) goes through here, so they run
    one at a time per organization: the second one sees the first one's committed result. Locking
    the owner rows with `select_for_update().count()` does not work — PostgreSQL cannot lock rows
    under an aggregate, so Django drops FOR UPDATE and two owners could each see the other and both
    go. NO KEY UPDATE still lets other transactions insert rows that reference the organization.
    """
    Organization.objects.select_for_update(no_key=True).only("pk").get(pk=membership.organization_id)
    current = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("organization", "user")
        .filter(pk=membership.pk)
        .first()
    )
    if current is None:
        raise ValidationError("this person is no longer a member of the organization")
    return current


def _assert_not_last_owner(membership: Membership) -> None:
    """`membership` must come from `_lock_membership` (the organization is locked)."""
    if membership.role != Role.OWNER:
        return
    owners = Membership.objects.filter(organization_id=membership.organization_id, role=Role.OWNER).count()
    if owners <= 1:
        raise ValidationError("an organization must keep at least one owner")


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str, actor: User | None) -> Membership:
    if role not in Role.values:
        raise ValidationError(f"unknown role {role!r}")
    membership = _lock_membership(membership)
    old = membership.role
    if old == role:
        return membership
    if role != Role.OWNER:
        _assert_not_last_owner(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        organization=membership.organization, actor=actor, action=AuditAction.MEMBER_ROLE_CHANGED,
        target_type="membership", target_id=membership.id,
        data={"user": membership.user.email, "role": [old, role]},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User | None) -> None:
    membership = _lock_membership(membership)
    _assert_not_last_owner(membership)
    audit_record(
        organization=membership.organization, actor=actor, action=AuditAction.MEMBER_REMOVED,
        target_type="membership", target_id=membership.id,
        data={"user": membership.user.email, "role": membership.role},
    )
    membership.delete()


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User | None
) -> tuple[Invitation, str]:
    """Returns the invitation and its one-time token; only the token's HMAC is stored."""
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": f"unknown role {role!r}"})
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": "this person is already a member of the organization"})
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organization=organization, email=email, role=role, token_hash=hash_token(token),
        invited_by=invited_by, expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    invitation.full_clean()
    invitation.save()
    audit_record(
        organization=organization, actor=invited_by, action=AuditAction.INVITATION_CREATED,
        target_type="invitation", target_id=invitation.id, data={"email": email, "role": role},
    )
    link = invitation_link(token)
    inviter = invited_by.email if invited_by else "An administrator"
    transaction.on_commit(
        lambda: send_mail(
            # A header cannot hold a line break and an organization name may: one line, or a 500.
            subject=" ".join(f"You are invited to {organization.name} on Lookglass".split()),
            message=(
                f"{inviter} invited you to join {organization.name} on Lookglass as {role}.\n\n"
                "Open this link to join (you can create your account there if you have none yet):\n"
                f"{link}\n\n"
                "Already signed in to the API? You can also POST the token to /api/v1/invitations/accept.\n"
                f"Token: {token}\n"
                f"The invitation expires in {settings.INVITATION_TTL_DAYS} days."
            ),
            from_email=None,
            recipient_list=[email],
            fail_silently=False,
        )
    )
    return invitation, token


INVITATION_UNUSABLE = "this invitation is invalid, expired, revoked or already used"


def invitation_link(token: str) -> str:
    """The link emailed with an invitation: the page that shows it and lets the person join."""
    return f"{settings.PUBLIC_URL.rstrip('/')}{reverse('accept-invitation')}?{urlencode({'token': token})}"


def _pending_invitation_locked(token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if invitation is None or not invitation.is_pending:
        raise ValidationError(INVITATION_UNUSABLE)
    return invitation


def _accept(invitation: Invitation, user: User, *, new_account: bool) -> Membership:
    if invitation.email.lower() != user.email.lower():
        raise ValidationError("this invitation was sent to another email address")
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    data = {"email": user.email, "role": invitation.role}
    if new_account:
        data["account"] = "created"
    audit_record(
        organization=invitation.organization, actor=user, action=AuditAction.INVITATION_ACCEPTED,
        target_type="invitation", target_id=invitation.id, data=data,
    )
    existing = Membership.objects.filter(organization=invitation.organization, user=user).first()
    if existing is not None and role_at_least(existing.role, invitation.role):
        # Added to the organization since the invitation was sent, with as much or more: accepting
        # must not demote them (nor take away an owner).
        return existing
    return membership_add(organization=invitation.organization, user=user, role=invitation.role, actor=user)


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    return _accept(_pending_invitation_locked(token), user, new_account=False)


@transaction.atomic
def invitation_sign_up(*, token: str, name: str, password: str) -> Membership:
    """Create the account an invitation was sent to and accept the invitation, all or nothing.

    The email is the invitation's, never the caller's choice: holding the token is what proves the
    address. `password` must already have passed the password validators (the form does it).
    """
    invitation = _pending_invitation_locked(token)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ValidationError("an account with this email address already exists; sign in instead")
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=invitation.email, password=password, name=name.strip())
    except IntegrityError:
        # Another invitation for the same address was accepted with a new account at this moment.
        raise ValidationError("an account with this email address already exists; sign in instead") from None
    return _accept(invitation, user, new_account=True)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User | None) -> Invitation:
    # Accepting locks the invitation's row; revoking takes the same lock and decides on the row as
    # stored, not on the caller's copy, so an accept and a revoke at the same moment cannot both win.
    stored = Invitation.objects.select_for_update().get(pk=invitation.pk)
    invitation.accepted_at, invitation.revoked_at = stored.accepted_at, stored.revoked_at
    if stored.revoked_at is None and stored.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            organization=invitation.organization, actor=actor, action=AuditAction.INVITATION_REVOKED,
            target_type="invitation", target_id=invitation.id, data={"email": invitation.email},
        )
    return invitation


@transaction.atomic
def project_create(
    *, organization: Organization, name: str, region: str | None = None, actor: User | None = None
) -> Project:
    project = Project(organization=organization, name=name.strip(), region=region or settings.DEFAULT_REGION)
    project.full_clean()
    plan_limits.enforce(plan_limits.PROJECTS, organization)
    project.save()
    audit_record(
        organization=organization, actor=actor, action=AuditAction.PROJECT_CREATED,
        target_type="project", target_id=project.id, data={"name": project.name, "region": project.region},
    )
    return project


@transaction.atomic
def project_update(*, project: Project, name: str, actor: User | None) -> Project:
    old = project.name
    project.name = name.strip()
    project.full_clean()
    project.save(update_fields=["name"])
    audit_record(
        organization=project.organization, actor=actor, action=AuditAction.PROJECT_UPDATED,
        target_type="project", target_id=project.id, data={"name": [old, project.name]},
    )
    return project


@transaction.atomic
def project_delete(*, project: Project, actor: User | None) -> None:
    audit_record(
        organization=project.organization, actor=actor, action=AuditAction.PROJECT_DELETED,
        target_type="project", target_id=project.id, data={"name": project.name, "region": project.region},
    )
    # The project's traces, scores and prompts live in its region database, out of reach of the
    # cascade: a task on that region's queue deletes them once this transaction has committed.
    from tenancy.tasks import publish, purge_project_data

    project_id, region = str(project.id), project.region
    project.delete()
    transaction.on_commit(
        lambda: publish(
            purge_project_data, kwargs={"project_id": project_id, "region": region}, queue=region_queue(region)
        )
    )


@transaction.atomic
def api_key_create(
    *, project: Project, actor: User | None = None, note: str = "", expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Returns the key and its secret. The secret is not stored and cannot be shown again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "must be in the future"})
    secret = new_secret_key()
    api_key = ApiKey.objects.create(
        project=project, public_key=new_public_key(), secret_hash=hash_secret(secret),
        secret_last4=secret[-4:], note=note, created_by=actor if isinstance(actor, User) else None,
        expires_at=expires_at,
    )
    audit_record(
        organization=project.organization, actor=actor, action=AuditAction.API_KEY_CREATED,
        target_type="api_key", target_id=api_key.id,
        data={"project": str(project.id), "public_key": api_key.public_key, "note": note},
    )
    return api_key, secret


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User | None = None) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            organization=api_key.project.organization, actor=actor, action=AuditAction.API_KEY_REVOKED,
            target_type="api_key", target_id=api_key.id,
            data={"project": str(api_key.project_id), "public_key": api_key.public_key},
        )
    return api_key


@transaction.atomic
def project_bootstrap(
    *, organization_name: str, project_name: str, region: str | None = None, note: str = ""
) -> tuple[Project, ApiKey, str]:
    """Create (or reuse) an organization and project, and issue a fresh key pair. For scripts."""
    organization = Organization.objects.filter(name=organization_name).first()
    if organization is None:
        organization = organization_create(name=organization_name, owner=None)
    project = Project.objects.filter(organization=organization, name=project_name).first()
    if project is None:
        project = project_create(organization=organization, name=project_name, region=region)
    elif region and project.region != region:
        raise ValidationError(
            f"project {project_name!r} already exists in region {project.region!r}; a project cannot move region"
        )
    api_key, secret = api_key_create(project=project, note=note)
    return project, api_key, secret


@transaction.atomic
def organization_delete(*, organization: Organization, actor: User | None) -> None:
    """Refused while projects exist: each project holds region data and is deleted (and audited) on its own."""
    if Project.objects.filter(organization=organization).exists():
        raise ValidationError("an organization with projects cannot be deleted; delete its projects first")
    # The entry outlives the organization: audit rows reference it by id, not by foreign key.
    audit_record(
        organization=organization, actor=actor, action=AuditAction.ORGANIZATION_DELETED,
        target_type="organization", target_id=organization.id, data={"name": organization.name},
    )
    organization.delete()
