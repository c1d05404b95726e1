"""Writes of redaction policies: validated, versioned and audited."""

from __future__ import annotations

from django.db import transaction

from privacy.models import RedactionPolicy
from privacy.policy import new_pseudonym_salt
from tenancy.models import AuditAction, Project, User
from tenancy.services import audit_record

_UNSET = object()
EDITABLE_FIELDS = ("enabled", "default_mode", "detector_modes", "phone_default_region", "custom_patterns")


@transaction.atomic
def redaction_policy_update(
    *,
    project: Project,
    actor: User | None,
    enabled=_UNSET,
    default_mode=_UNSET,
    detector_modes=_UNSET,
    phone_default_region=_UNSET,
    custom_patterns=_UNSET,
    rotate_salt: bool = False,
) -> RedactionPolicy:
    """Create or change the project's policy. Only the arguments given change; the first call
    creates the policy with the defaults (enabled, every detector in mask mode).

    Raises ValidationError (per field) for unknown detectors or modes, unknown phone regions and
    custom patterns that RE2 rejects or that exceed the limits. Rotating the salt changes every
    pseudonym the project produces from now on (old tokens no longer match new ones)."""
    policy = RedactionPolicy.objects.select_for_update().filter(project=project).first()
    created = policy is None
    if created:
        policy = RedactionPolicy(project=project)
    given = {
        "enabled": enabled, "default_mode": default_mode, "detector_modes": detector_modes,
        "phone_default_region": phone_default_region, "custom_patterns": custom_patterns,
    }
    before = {name: getattr(policy, name) for name in EDITABLE_FIELDS}
    for name, value in given.items():
        if value is not _UNSET:
            setattr(policy, name, value)
    if rotate_salt and not created:
        policy.pseudonym_salt = new_pseudonym_salt()
    policy.full_clean(exclude=["project"])
    changes = {
        name: [before[name], getattr(policy, name)]
        for name in EDITABLE_FIELDS
        if created or before[name] != getattr(policy, name)
    }
    if not created and not changes and not rotate_salt:
        return policy
    policy.save()
    data = {"version": policy.version, "changes": changes}
    if created:
        data["created"] = True
    if rotate_salt and not created:
        data["salt_rotated"] = True
    audit_record(
        organization=project.organization, actor=actor, action=AuditAction.REDACTION_POLICY_UPDATED,
        target_type="project", target_id=project.id, data=data,
    )
    return policy
