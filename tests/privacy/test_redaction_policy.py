"""Redaction policies: validation, versioning, audit, the cached `get_policy`, and isolation between
projects."""

import pytest
from django.core.exceptions import ValidationError

from privacy.engine import get_policy, redact_records, redactor_for
from privacy.models import RedactionPolicy
from privacy.services import redaction_policy_update
from tenancy.models import AuditAction, AuditLogEntry

EMAIL = "maria.lopez@gmail.com"


def test_the_first_update_creates_an_enabled_mask_everything_policy_and_audits_it(project, owner):
    policy = redaction_policy_update(project=project, actor=owner)
    assert (policy.enabled, policy.default_mode, policy.detector_modes, policy.custom_patterns) == (True, "mask", {}, [])
    assert policy.phone_default_region == "US" and len(policy.pseudonym_salt) == 32 and policy.version == 1
    entry = AuditLogEntry.objects.get(organization_id=project.organization_id)
    assert (entry.action, entry.target_type, entry.target_id, entry.actor_id) == (
        AuditAction.REDACTION_POLICY_UPDATED, "project", str(project.id), owner.id)
    assert entry.data["created"] is True and entry.data["version"] == 1


def test_changes_bump_the_version_and_audit_old_and_new_values(project, owner):
    redaction_policy_update(project=project, actor=owner)
    patterns = [{"label": "EMPLOYEE_ID", "pattern": r"EMP-\d{6}", "mode": "pseudonymize"}]
    policy = redaction_policy_update(
        project=project, actor=owner, detector_modes={"email": "pseudonymize", "ip_address": "off"},
        phone_default_region="de", custom_patterns=patterns,
    )
    assert policy.version == 2 and policy.phone_default_region == "DE"
    policy.refresh_from_db()
    assert policy.detector_modes == {"email": "pseudonymize", "ip_address": "off"} and policy.custom_patterns == patterns
    entry = AuditLogEntry.objects.filter(organization_id=project.organization_id).order_by("-id").first()
    assert entry.data["version"] == 2
    assert entry.data["changes"]["phone_default_region"] == ["US", "DE"]
    assert entry.data["changes"]["custom_patterns"] == [[], patterns]
    assert set(entry.data["changes"]) == {"detector_modes", "phone_default_region", "custom_patterns"}


def test_an_update_that_changes_nothing_is_not_saved_or_audited(project, owner):
    redaction_policy_update(project=project, actor=owner)
    policy = redaction_policy_update(project=project, actor=owner, enabled=True, default_mode="mask")
    assert policy.version == 1
    assert AuditLogEntry.objects.filter(action=AuditAction.REDACTION_POLICY_UPDATED).count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"detector_modes": {"emial": "mask"}}, "detector_modes"),
        ({"detector_modes": {"email": "hash"}}, "detector_modes"),
        ({"default_mode": "shred"}, "default_mode"),
        ({"phone_default_region": "ZZ"}, "phone_default_region"),
        ({"custom_patterns": [{"label": "BAD", "pattern": "(a"}]}, "custom_patterns"),
        ({"custom_patterns": [{"label": "BAD", "pattern": "x*"}]}, "custom_patterns"),
    ],
)
def test_invalid_settings_are_rejected_per_field_and_nothing_is_saved(project, owner, kwargs, field):
    with pytest.raises(ValidationError) as exc:
        redaction_policy_update(project=project, actor=owner, **kwargs)
    assert field in exc.value.message_dict
    assert not RedactionPolicy.objects.filter(project=project).exists()
    assert not AuditLogEntry.objects.filter(action=AuditAction.REDACTION_POLICY_UPDATED).exists()


def test_model_clean_runs_the_same_validation(project):
    policy = RedactionPolicy(project=project, custom_patterns=[{"label": "X1", "pattern": "(?<=a)b"}])
    with pytest.raises(ValidationError) as exc:
        policy.full_clean()
    assert "custom_patterns" in exc.value.message_dict


def test_get_policy_is_none_without_a_policy_and_when_disabled(project, owner):
    assert get_policy(project) is None
    redaction_policy_update(project=project, actor=owner)
    assert get_policy(project).version == 1
    redaction_policy_update(project=project, actor=owner, enabled=False)
    assert get_policy(project) is None


def test_get_policy_is_served_from_the_cache_and_invalidated_on_save(project, owner, django_assert_num_queries):
    redaction_policy_update(project=project, actor=owner)
    get_policy(project)
    with django_assert_num_queries(0):
        cached = get_policy(project)
    assert cached.version == 1 and cached.project_id == project.id
    redaction_policy_update(project=project, actor=owner, default_mode="pseudonymize")
    assert get_policy(project).default_mode == "pseudonymize"
    # "No policy" is cached too: projects without redaction cost no query per request.
    RedactionPolicy.objects.filter(project=project).delete()
    from privacy.engine import invalidate_policy_cache

    invalidate_policy_cache(project.id)
    assert get_policy(project) is None
    with django_assert_num_queries(0):
        assert get_policy(project) is None


def test_a_policy_deleted_by_any_path_leaves_the_cache(project, owner):
    """Cache invalidation is a signal receiver, not the model's delete(): a queryset delete (admin bulk
    action) and a project's cascade delete drop the cached copy too, so ingestion stops redacting."""
    redaction_policy_update(project=project, actor=owner)
    assert get_policy(project) is not None  # now cached
    RedactionPolicy.objects.filter(project=project).delete()
    assert get_policy(project) is None


def test_a_changed_policy_gets_a_new_compiled_redactor(project, owner):
    first = redactor_for(redaction_policy_update(project=project, actor=owner))
    assert redactor_for(get_policy(project)) is first
    second = redactor_for(redaction_policy_update(project=project, actor=owner, detector_modes={"email": "off"}))
    assert second is not first
    assert second.redact_text(EMAIL)[0] == EMAIL


def test_policies_and_pseudonyms_are_per_project(project, other_project, owner, other_owner):
    redaction_policy_update(project=project, actor=owner, default_mode="pseudonymize")
    assert get_policy(other_project) is None
    redaction_policy_update(project=other_project, actor=other_owner, default_mode="pseudonymize")

    def token(p):
        record = {"id": "o1", "trace_id": "t1", "input": f"mail {EMAIL}"}
        redact_records(project=p, observations=[record])
        return record["input"]

    assert token(project) == token(project)
    assert token(project) != token(other_project)
    assert get_policy(project).pseudonym_salt != get_policy(other_project).pseudonym_salt


def test_rotating_the_salt_changes_the_pseudonyms(project, owner):
    redaction_policy_update(project=project, actor=owner, default_mode="pseudonymize")
    before = redactor_for(get_policy(project)).redact_text(EMAIL)[0]
    redaction_policy_update(project=project, actor=owner, rotate_salt=True)
    after = redactor_for(get_policy(project)).redact_text(EMAIL)[0]
    assert before != after and before.startswith("[EMAIL:") and after.startswith("[EMAIL:")
    entry = AuditLogEntry.objects.filter(action=AuditAction.REDACTION_POLICY_UPDATED).order_by("-id").first()
    assert entry.data["salt_rotated"] is True and "pseudonym_salt" not in str(entry.data["changes"])


def test_redact_records_reads_the_projects_policy(project, owner):
    record = {"id": "o1", "trace_id": "t1", "input": f"mail {EMAIL}"}
    result = redact_records(project=project, observations=[record])
    assert not result.enabled and record["input"] == f"mail {EMAIL}"
    redaction_policy_update(project=project, actor=owner)
    result = redact_records(project=project, observations=[record])
    assert result.enabled and result.policy_version == 1 and record["input"] == "mail [EMAIL]"
