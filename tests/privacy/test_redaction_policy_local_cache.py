"""Each web process keeps a project's redaction policy for REDACTION_POLICY_LOCAL_SECONDS instead of
reading the shared cache (Redis) on every request. What that may cost is bounded and documented: a
policy saved by another node applies here within that time; a policy saved by this process applies at
once; 0 turns the local copy off."""

import time

import pytest
from django.core.cache import cache

from privacy.engine import get_policy, policy_cache_key
from privacy.models import RedactionPolicy
from privacy.services import redaction_policy_update


def _saved_on_another_node(project, **changes):
    """What a save on another web node leaves behind for this one: the row changed and the shared
    cache entry dropped (its signal), but nothing said to this process."""
    RedactionPolicy.objects.filter(project=project).update(**changes)
    cache.delete(policy_cache_key(project.id))


@pytest.fixture
def local_seconds(settings):
    settings.REDACTION_POLICY_LOCAL_SECONDS = 0.5
    return 0.5


def test_a_policy_enabled_on_another_node_applies_here_within_the_local_seconds(project, owner, local_seconds):
    redaction_policy_update(project=project, actor=owner, enabled=False)
    assert get_policy(project) is None  # read once: this process now keeps "off"
    _saved_on_another_node(project, enabled=True)
    assert get_policy(project) is None  # within REDACTION_POLICY_LOCAL_SECONDS: the copy it kept
    time.sleep(local_seconds + 0.1)
    policy = get_policy(project)
    assert policy is not None and policy.enabled


def test_a_policy_disabled_or_changed_on_another_node_applies_here_within_the_local_seconds(
    project, owner, local_seconds
):
    redaction_policy_update(project=project, actor=owner, default_mode="mask")
    assert get_policy(project).default_mode == "mask"
    _saved_on_another_node(project, default_mode="pseudonymize")
    assert get_policy(project).default_mode == "mask"
    time.sleep(local_seconds + 0.1)
    assert get_policy(project).default_mode == "pseudonymize"
    _saved_on_another_node(project, enabled=False)
    time.sleep(local_seconds + 0.1)
    assert get_policy(project) is None


def test_a_policy_saved_in_this_process_applies_at_once(project, owner, settings):
    settings.REDACTION_POLICY_LOCAL_SECONDS = 3600
    assert get_policy(project) is None
    redaction_policy_update(project=project, actor=owner)
    assert get_policy(project).version == 1
    redaction_policy_update(project=project, actor=owner, default_mode="pseudonymize")
    assert get_policy(project).default_mode == "pseudonymize"
    redaction_policy_update(project=project, actor=owner, enabled=False)
    assert get_policy(project) is None


def test_zero_local_seconds_reads_the_shared_cache_on_every_request(project, owner, settings):
    settings.REDACTION_POLICY_LOCAL_SECONDS = 0
    redaction_policy_update(project=project, actor=owner, enabled=False)
    assert get_policy(project) is None
    _saved_on_another_node(project, enabled=True)
    assert get_policy(project) is not None


def test_the_local_copy_is_per_project(project, other_project, owner, other_owner, settings):
    settings.REDACTION_POLICY_LOCAL_SECONDS = 3600
    redaction_policy_update(project=project, actor=owner)
    assert get_policy(project) is not None
    assert get_policy(other_project) is None
    redaction_policy_update(project=other_project, actor=other_owner, default_mode="pseudonymize")
    assert get_policy(other_project).default_mode == "pseudonymize"
    assert get_policy(project).default_mode == "mask"


def test_the_local_copies_stay_bounded(project, owner, settings, monkeypatch):
    from privacy import engine

    settings.REDACTION_POLICY_LOCAL_SECONDS = 3600
    monkeypatch.setattr(engine, "_LOCAL_MAX", 3)
    for index in range(3):
        engine._local[f"other-{index}"] = (time.monotonic(), "none")
    redaction_policy_update(project=project, actor=owner)
    assert get_policy(project) is not None
    assert set(engine._local) == {str(project.id)}


def test_a_re_redaction_applies_the_policy_saved_on_another_node_at_once(project, owner, settings):
    """A re-redaction applies one policy to a whole range of rows: it never takes this process's copy."""
    from datetime import UTC, datetime

    from ingest.writer import reredact_stored

    settings.REDACTION_POLICY_LOCAL_SECONDS = 3600
    redaction_policy_update(project=project, actor=owner, enabled=False)
    assert get_policy(project) is None  # this process keeps "off"
    _saved_on_another_node(project, enabled=True)
    report = reredact_stored(
        project=project, since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 12, 31, tzinfo=UTC)
    )
    assert report["policy_version"] == 1
