"""End-user feedback (`POST /api/v1/feedback`), score configs and feedback settings.

Score configs are enforced on every path that stores a score: `conform_score` checks one score
record against the project's configs, and the ingest pipeline's `conform_scores` stage
(`ingest.pipeline`) calls it for every score of every source — Langfuse batches, OTLP, REST scores
and the browser feedback stored here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import uuid
from dataclasses import dataclass

import orjson
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.models import (
    FeedbackEvent,
    FeedbackSettings,
    ScoreConfig,
    ScoreDataType,
)
from ingest import pipeline, writer
from ingest.adapters import feedback as feedback_adapter
from ingest.rules.environment import normalize_environment
from ingest.writer import InvalidRecord, NotUserFeedback
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
# Scores


def score_delete(*, project, score_id: str) -> bool:
    """Delete one of the project's scores; False when it has none with that id (another project's
    score counts as none). The scores table is written by `ingest.writer` only."""
    return writer.delete_score(project=project, score_id=score_id)


# =============================================================================================
# End-user feedback


class FeedbackRejected(Exception):
    """The submission cannot be stored; answered with `status` and `message` (and nothing stored)."""

    def __init__(self, message: str, *, status: int = 400, error: str = "InvalidRequestError"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error


DEFAULT_FEEDBACK_NAME = "user_feedback"
THUMBS = {"up": 1.0, "down": 0.0}
FEEDBACK_FIELDS = {
    "trace_id": "trace_id",
    "traceId": "trace_id",
    "observation_id": "observation_id",
    "observationId": "observation_id",
    "user_id": "user_id",
    "userId": "user_id",
    "rating": "rating",
    "comment": "comment",
    "name": "name",
    "metadata": "metadata",
    "environment": "environment",
}
MAX_METADATA_BYTES = 8 * 1024


@dataclass(frozen=True)
class Feedback:
    trace_id: str
    observation_id: str
    user_id: str
    name: str
    data_type: str
    value: float
    comment: str
    metadata: dict
    environment: str | None


@dataclass(frozen=True)
class FeedbackResult:
    score_id: str
    created: bool
    previous_value: float | None
    feedback: Feedback


def _text(body: dict, key: str, *, limit: int, required: bool = False) -> str:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise FeedbackRejected(f"`{key}` is required")
        return ""
    if not isinstance(value, str):
        raise FeedbackRejected(f"`{key}` must be a string")
    if len(value) > limit:
        raise FeedbackRejected(f"`{key}` is longer than {limit} characters")
    return value


def parse_feedback(payload, *, comment_max_length: int) -> Feedback:
    """A feedback body → `Feedback`, or FeedbackRejected naming the field at fault.

    `rating` is "up"/"down" (a thumb: BOOLEAN 1/0) or a number (NUMERIC); camelCase keys
    (`traceId`, `observationId`, `userId`) are accepted as browsers tend to send them."""
    if not isinstance(payload, dict):
        raise FeedbackRejected("the body must be a JSON object {trace_id, rating, …}")
    body: dict = {}
    for key, value in payload.items():
        target = FEEDBACK_FIELDS.get(key)
        if target is None:
            raise FeedbackRejected(
                f"unknown field {key[:60]!r}; expected trace_id, observation_id, rating, comment, user_id, "
                "name, metadata, environment"
            )
        if target in body and body[target] != value:
            raise FeedbackRejected(f"`{target}` is given twice with different values")
        body[target] = value
    trace_id = _text(body, "trace_id", limit=200, required=True)
    observation_id = _text(body, "observation_id", limit=200)
    user_id = _text(body, "user_id", limit=500)
    name = _text(body, "name", limit=500) or DEFAULT_FEEDBACK_NAME

    rating = body.get("rating")
    if isinstance(rating, str) and rating.strip().lower() in THUMBS:
        data_type, value = ScoreDataType.BOOLEAN.value, THUMBS[rating.strip().lower()]
    elif isinstance(rating, (int, float)) and not isinstance(rating, bool) and math.isfinite(rating):
        data_type, value = ScoreDataType.NUMERIC.value, float(rating)
    elif rating is None:
        raise FeedbackRejected('`rating` is required: "up", "down" or a number')
    else:
        raise FeedbackRejected('`rating` must be "up", "down" or a finite number')

    comment = body.get("comment")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise FeedbackRejected("`comment` must be a string")
    if len(comment) > comment_max_length:
        raise FeedbackRejected(
            f"`comment` is {len(comment)} characters; this project accepts at most {comment_max_length}",
            status=413,
            error="PayloadTooLargeError",
        )

    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise FeedbackRejected("`metadata` must be an object")
    if len(orjson.dumps(metadata)) > MAX_METADATA_BYTES:
        raise FeedbackRejected(
            f"`metadata` is larger than {MAX_METADATA_BYTES} bytes", status=413, error="PayloadTooLargeError"
        )
    environment = body.get("environment")
    if environment is not None and not isinstance(environment, str):
        raise FeedbackRejected("`environment` must be a string")
    return Feedback(
        trace_id=trace_id,
        observation_id=observation_id,
        user_id=user_id,
        name=name,
        data_type=data_type,
        value=value,
        comment=comment,
        metadata=metadata,
        environment=normalize_environment(environment),
    )


def feedback_score_id(*, project_id, trace_id: str, observation_id: str, user_id: str, name: str) -> str:
    """The one score an end user's rating of a trace (or observation) under a name lives in.

    Derived, not stored anywhere else: a changed mind lands on the same row. The parts are JSON-encoded
    before hashing so that no choice of ids can make two different tuples collide by concatenation."""
    key = orjson.dumps(["lookglass.feedback.v1", str(project_id), trace_id, observation_id, user_id, name])
    return "fb-" + hashlib.sha256(key).hexdigest()[:40]


def feedback_submit(*, project: Project, feedback: Feedback, origin: str = "") -> FeedbackResult:
    """Store an end user's rating as a USER score next to the trace, and its history.

    - With a `user_id`, one score per (trace, observation, user, name): a changed mind updates it.
      Without one, every submission is a rating of its own (nothing tells two anonymous people apart;
      a front end that wants updates for anonymous visitors sends a stable random id as `user_id`).
    - The score goes through the ingest pipeline like every other score (redaction, score configs,
      `ingest.writer`); every submission appends a FeedbackEvent with the value it replaced, in the
      same transaction.
    - The trace need not exist yet: feedback often arrives before the trace's batch is flushed.

    Raises FeedbackRejected (nothing stored) or StorageUnavailable.
    """
    score_id = (
        feedback_score_id(
            project_id=project.id,
            trace_id=feedback.trace_id,
            observation_id=feedback.observation_id,
            user_id=feedback.user_id,
            name=feedback.name,
        )
        if feedback.user_id
        else "fb-" + uuid.uuid4().hex
    )
    record = feedback_adapter.score_record(score_id=score_id, **dataclasses.asdict(feedback))

    def append_history(previous) -> None:
        # Runs after the pipeline's stages, in the write's transaction: the score as stored.
        stored = batch.scores[0].record
        FeedbackEvent.objects.for_project(project).create(
            score_id=score_id,
            trace_id=feedback.trace_id,
            observation_id=feedback.observation_id,
            user_id=feedback.user_id,
            name=stored["name"],
            data_type=stored["data_type"],
            value=stored.get("value"),
            string_value=stored.get("string_value", ""),
            comment=stored.get("comment", ""),
            is_update=previous is not None,
            previous_value=previous[1] if previous else None,
            previous_string_value=previous[2] if previous else "",
            previous_comment=previous[3] if previous else "",
            metadata=stored.get("metadata", {}),
            origin=origin[:255],
            created_at=timezone.now(),
        )

    batch = pipeline.Batch(
        project=project, source="feedback", write="user_feedback", after_write=append_history
    )
    # A score config is looked up by the score's name, so conforming keeps the name the id derives from.
    batch.add("score", record, ref=0, typed=True)
    try:
        pipeline.run(batch)
    except NotUserFeedback:
        raise FeedbackRejected(
            "a score that is not end-user feedback already uses this feedback's id",
            status=409,
            error="ConflictError",
        ) from None
    except InvalidRecord as exc:
        raise FeedbackRejected(f"the database refused the feedback: {exc}") from exc
    for refusal in batch.refused:
        if refusal.stage == "redact":
            raise FeedbackRejected(
                "the comment could not be checked for personal data, so the feedback was not stored",
                status=422,
                error="UnprocessableEntityError",
            )
        raise FeedbackRejected(refusal.message)
    previous = batch.written  # the rating this one replaced, as the writer found it
    return FeedbackResult(
        score_id=score_id,
        created=previous is None,
        previous_value=previous[1] if previous else None,
        feedback=feedback,
    )


# =============================================================================================
# Score config and feedback settings writes (audited)

_UNSET = object()
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


def feedback_settings_update(
    *, project: Project, actor, enabled=_UNSET, allowed_origins=_UNSET, comment_max_length=_UNSET
) -> FeedbackSettings:
    """Create or change the project's feedback settings; only the given arguments change.
    Origins are normalised (`https://App.example.com/` → `https://app.example.com`) and validated."""
    with transaction.atomic():
        current = FeedbackSettings.objects.select_for_update().filter(project=project).first()
        created = current is None
        settings_row = current or FeedbackSettings(project=project)
        before = {
            "enabled": settings_row.enabled,
            "allowed_origins": list(settings_row.allowed_origins),
            "comment_max_length": settings_row.comment_max_length,
        }
        for name, value in (
            ("enabled", enabled),
            ("allowed_origins", allowed_origins),
            ("comment_max_length", comment_max_length),
        ):
            if value is not _UNSET:
                setattr(settings_row, name, value)
        settings_row.full_clean(exclude=["project"])
        after = {
            "enabled": settings_row.enabled,
            "allowed_origins": list(settings_row.allowed_origins),
            "comment_max_length": settings_row.comment_max_length,
        }
        changes = {
            name: [before[name], after[name]] for name in after if created or before[name] != after[name]
        }
        if not created and not changes:
            return settings_row
        settings_row.updated_at = timezone.now()
        settings_row.save()
        audit_record(
            organization=project.organization,
            actor=actor,
            action="feedback_settings.updated",
            target_type="project",
            target_id=project.id,
            data={"changes": changes, "created": created},
        )
    return settings_row
