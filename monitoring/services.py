"""Writes of monitoring settings: validated, audited, and followed by a rebuild of the project's
rollups under the new feature rule (`ingest.rollups.rebuild`, which owns every rollup write)."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from ingest import rollups
from monitoring.models import FeatureSource, MonitoringSettings
from monitoring.rules import DEFAULT_FEATURE_KEY, FeatureRule
from tenancy.models import AuditAction, Project, User
from tenancy.services import audit_record

logger = logging.getLogger(__name__)
_UNSET = object()


def monitoring_settings_update(
    *, project: Project, actor: User | None, feature_source=_UNSET, feature_key=_UNSET
) -> tuple[MonitoringSettings, bool]:
    """Create or change the project's monitoring settings; only the arguments given change.

    A changed feature rule rebuilds the project's rollups from its raw rows after the commit.
    Returns (settings, applied): `applied` is False when that rebuild could not run now (the region
    database is unavailable); the rollups then keep the previous rule, consistently, and the next
    change — or the same request again — applies it. Raises ValidationError per field."""
    with transaction.atomic():
        settings = MonitoringSettings.objects.select_for_update().filter(project=project).first()
        created = settings is None
        if created:
            settings = MonitoringSettings(project=project)
        before = (settings.feature_source, settings.feature_key)
        if feature_source is not _UNSET:
            settings.feature_source = feature_source
        if feature_key is not _UNSET:
            settings.feature_key = feature_key
        if settings.feature_source == FeatureSource.TRACE_NAME:
            settings.feature_key = settings.feature_key or DEFAULT_FEATURE_KEY
        elif not (settings.feature_key or "").strip():
            raise ValidationError({"feature_key": ["a metadata key or tag prefix is required for this source"]})
        settings.full_clean(exclude=["project"])
        after = (settings.feature_source, settings.feature_key)
        if created or after != before:
            settings.updated_at = timezone.now()
            settings.save()
            audit_record(
                organization=project.organization, actor=actor, action=AuditAction.MONITORING_SETTINGS_UPDATED,
                target_type="project", target_id=project.id,
                data={"changes": {"feature_source": [before[0], after[0]], "feature_key": [before[1], after[1]]},
                      **({"created": True} if created else {})},
            )
    return settings, apply_feature_rule(project=project, rule=FeatureRule(*after))


def apply_feature_rule(*, project: Project, rule: FeatureRule) -> bool:
    """Rebuild the rollups under `rule` unless they are built with it already."""
    from monitoring.selectors import applied_feature_rule

    try:
        if applied_feature_rule(project=project) == rule:
            return True
        rollups.rebuild(project=project, rule=rule)
    except (OperationalError, InterfaceError):
        logger.warning("could not rebuild the rollups of project %s now", project.id, exc_info=True)
        return False
    return True
