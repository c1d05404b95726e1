"""Score configs: the project's declared score names, cached for the ingest path, the check that a
score conforms to its config (`conform_score`, run by every path that stores a score), and the
audited config writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from scores.models import ScoreConfig, ScoreDataType
from tenancy.models import Project
from tenancy.services import audit_record

logger = logging.getLogger(__name__)


# =============================================================================================
# Score configs: lookup and conformance


class ScoreConfigError(ValueError):
    """A score breaks its score config; `message` names the score, the config and the rule."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ConfigIndex:
    by_id: dict[str, dict]  # every config of the project, archived ones too
    by_name: dict[str, dict]  # live configs only: what a score without `configId` is checked against

    def __bool__(self) -> bool:
        return bool(self.by_id)


CONFIG_CACHE_SECONDS = 60  # bounds staleness should an invalidation race a concurrent read
CONFIG_FIELDS = ("id", "name", "data_type", "min_value", "max_value", "categories", "is_archived")
MAX_CONFIGS_PER_PROJECT = 1000


def _config_cache_key(project_id) -> str:
    return f"score-configs:v1:{project_id}"


def invalidate_score_configs(project_id) -> None:
    def drop():
        try:
            cache.delete(_config_cache_key(project_id))
        except Exception:  # entries expire on their own; a cache outage must not block the write
            logger.warning("could not invalidate the score configs of project %s", project_id, exc_info=True)

    drop()
    # Again after commit: a reader between the two would otherwise cache the pre-commit list.
    transaction.on_commit(drop)


def project_score_configs(project) -> ConfigIndex:
    """The project's score configs, from the cache (one round trip) or one query."""
    key = _config_cache_key(project.id)
    try:
        rows = cache.get(key)
    except Exception:
        logger.warning("score config cache unavailable; reading the database", exc_info=True)
        rows = None
    if rows is None:
        rows = [
            {**row, "id": str(row["id"])}
            for row in ScoreConfig.objects.filter(project=project).values(*CONFIG_FIELDS)
        ]
        try:
            cache.set(key, rows, CONFIG_CACHE_SECONDS)
        except Exception:
            logger.warning("could not cache the score configs of project %s", project.id, exc_info=True)
    return ConfigIndex(
        by_id={row["id"]: row for row in rows},
        by_name={row["name"]: row for row in rows if not row["is_archived"]},
    )


def _number(value: float) -> str:
    return f"{value:g}"


def conform_score(record: dict, *, configs: ConfigIndex, explicit_type: bool) -> bool:
    """Check a score record (shaped as `ingest.contract`) against its config and bring it into
    the config's form, in place: the config's name and id, its data type when the client did not
    name one (1 → BOOLEAN, "good" → TEXT, 2 → the CATEGORICAL label whose value is 2). Returns whether
    a config applied; raises ScoreConfigError when the score breaks it.

    The config is the one `config_id` names (it must exist in the project and not be archived), else
    the live config with the score's name; a score with neither is not checked.
    """
    config_id = record.get("config_id")
    if config_id:
        config = configs.by_id.get(str(config_id))
        if config is None:
            raise ScoreConfigError(f"score config {config_id!r} does not exist in this project")
        if config["is_archived"]:
            raise ScoreConfigError(f"score config {config['name']!r} is archived: no new scores may use it")
        if record.get("data_type") == ScoreDataType.CORRECTION:
            raise ScoreConfigError("a CORRECTION score takes no score config")
    else:
        if record.get("data_type") == ScoreDataType.CORRECTION:
            return False
        config = configs.by_name.get(record.get("name"))
        if config is None:
            return False

    name, want, have = config["name"], config["data_type"], record.get("data_type")
    what = f"score {name!r}"
    if have != want and explicit_type:
        raise ScoreConfigError(f"{what} must be {want} (its score config), not {have}")

    if want == ScoreDataType.NUMERIC:
        if have != ScoreDataType.NUMERIC:
            raise ScoreConfigError(f"{what} must be a number (its score config is NUMERIC)")
        value = record["value"]
        low, high = config["min_value"], config["max_value"]
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (
                f"between {_number(low)} and {_number(high)}"
                if low is not None and high is not None
                else f"at least {_number(low)}"
                if low is not None
                else f"at most {_number(high)}"
            )
            raise ScoreConfigError(f"{what} must be {bounds} (its score config), got {_number(value)}")
    elif want == ScoreDataType.BOOLEAN:
        if have == ScoreDataType.NUMERIC and record["value"] in (0, 1):
            value = record["value"]
        elif have in (ScoreDataType.CATEGORICAL, ScoreDataType.TEXT) and record.get(
            "string_value", ""
        ).lower() in (
            "true",
            "false",
        ):
            value = 1.0 if record["string_value"].lower() == "true" else 0.0
        elif have == ScoreDataType.BOOLEAN:
            value = record["value"]
        else:
            raise ScoreConfigError(f"{what} must be true/false or 1/0 (its score config is BOOLEAN)")
        record["value"] = float(value)
        record["string_value"] = "True" if value == 1 else "False"
    elif want == ScoreDataType.CATEGORICAL:
        labels = [c["label"] for c in config["categories"]]
        if have == ScoreDataType.NUMERIC:
            label = next((c["label"] for c in config["categories"] if c["value"] == record["value"]), None)
        elif have in (ScoreDataType.CATEGORICAL, ScoreDataType.TEXT):
            label = record.get("string_value")
        else:
            label = None
        if label not in labels:
            shown = record.get("string_value") if have != ScoreDataType.NUMERIC else _number(record["value"])
            raise ScoreConfigError(
                f"{what} must be one of {', '.join(repr(x) for x in labels)} (its score config), "
                f"got {shown!r}"
            )
        record.pop("value", None)
        record["string_value"] = label
    elif want == ScoreDataType.TEXT:
        text = record.get("string_value") if have in (ScoreDataType.CATEGORICAL, ScoreDataType.TEXT) else None
        if not isinstance(text, str) or not 1 <= len(text) <= 500:
            raise ScoreConfigError(f"{what} must be a text of 1–500 characters (its score config is TEXT)")
        record.pop("value", None)
    record["data_type"] = want
    record["name"] = name
    record["config_id"] = config["id"]
    return True


# =============================================================================================
# Score config writes (audited)

CONFIG_EDITABLE = ("name", "description", "min_value", "max_value", "categories", "is_archived")


def score_config_create(
    *,
    project: Project,
    actor,
    name: str,
    data_type: str,
    min_value: float | None = None,
    max_value: float | None = None,
    categories: list | None = None,
    description: str = "",
) -> ScoreConfig:
    """Declare a score name. Raises ValidationError (per field) for a bad definition or a name a live
    config of the project already has."""
    if ScoreConfig.objects.filter(project=project).count() >= MAX_CONFIGS_PER_PROJECT:
        raise ValidationError(f"a project has at most {MAX_CONFIGS_PER_PROJECT} score configs")
    config = ScoreConfig(
        project=project,
        name=name,
        data_type=data_type,
        min_value=min_value,
        max_value=max_value,
        categories=categories or [],
        description=description or "",
    )
    config.full_clean()
    with transaction.atomic():
        config.save()
        audit_record(
            organization=project.organization,
            actor=actor,
            action="score_config.created",
            target_type="score_config",
            target_id=config.id,
            data={"project_id": str(project.id), "name": config.name, "data_type": config.data_type},
        )
    invalidate_score_configs(project.id)
    return config


def score_config_update(*, config: ScoreConfig, actor, **changes) -> ScoreConfig:
    """Change a config's name, description, range, categories or archived flag (its data type is
    fixed: scores already stored under it keep meaning what they meant)."""
    unknown = set(changes) - set(CONFIG_EDITABLE)
    if unknown:
        raise ValidationError({name: ["cannot be changed"] for name in sorted(unknown)})
    with transaction.atomic():
        config = (
            ScoreConfig.objects.select_for_update().select_related("project__organization").get(pk=config.pk)
        )
        before = {name: getattr(config, name) for name in CONFIG_EDITABLE}
        for name, value in changes.items():
            if value is None and name in ("description", "categories"):
                value = "" if name == "description" else []
            setattr(config, name, value)
        config.full_clean()
        diff = {
            name: [before[name], getattr(config, name)]
            for name in CONFIG_EDITABLE
            if before[name] != getattr(config, name)
        }
        if not diff:
            return config
        config.updated_at = timezone.now()
        config.save()
        audit_record(
            organization=config.project.organization,
            actor=actor,
            action="score_config.updated",
            target_type="score_config",
            target_id=config.id,
            data={"changes": diff},
        )
    invalidate_score_configs(config.project_id)
    return config
