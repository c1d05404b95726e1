"""Score writes: Langfuse `POST /api/public/scores` (also reached through `score-create` events),
end-user feedback (`POST /api/v1/feedback`), score configs and feedback settings.

Score configs are enforced on every path that stores a score: `conform_score` checks one score
record against the project's configs, and
- `scores_create` (REST scores) and `feedback_submit` call it per score;
- `screen_ingestion_scores` runs it over the `score-create` events of a Langfuse batch before the batch
  is parsed, so a bad score is reported in the 207 while the other events are stored.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DataError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from feedback.models import (
    FeedbackEvent,
    FeedbackSettings,
    Score,
    ScoreConfig,
    ScoreDataType,
    ScoreSource,
)
from feedback.selectors import feedback_settings_for
from tenancy.dataplane import data_connection
from tenancy.models import Project
from tenancy.regions import region_database
from tenancy.services import audit_record
from ingest.adapters.langfuse import EventError, normalise_environment, score_record
from ingest.stages.redact import FAILURE_STATUS, redact_for_storage
from ingest.writer import StorageUnavailable, write_records

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


def _body_from_record(body: dict, record: dict) -> dict:
    """A Langfuse score body that `score_record` maps to `record`'s conformed name, type and value."""
    out = dict(body)
    out["name"] = record["name"]
    out["configId"] = record["config_id"]
    out["dataType"] = record["data_type"]
    numeric = record["data_type"] in (ScoreDataType.NUMERIC, ScoreDataType.BOOLEAN)
    out["value"] = record["value"] if numeric else record["string_value"]
    return out


def screen_ingestion_scores(*, project, payload) -> tuple[Any, list[dict]]:
    """The `score-create` events of a Langfuse ingestion payload, checked against score configs.

    Returns the payload to ingest (events breaking their config left out, conforming ones rewritten
    into their config's form) and a 207 `errors` entry for each event left out. Events that are
    malformed anyway are left for the batch parser to report. Costs nothing without score events and
    one cache read (or query) with them."""
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        return payload, []
    batch = payload["batch"]
    candidates = []
    for index, event in enumerate(batch):
        if not (
            isinstance(event, dict)
            and event.get("type") == "score-create"
            and isinstance(event.get("body"), dict)
            and isinstance(event.get("id"), str)
            and event["id"]
            and event.get("timestamp") is not None
        ):
            continue
        try:
            candidates.append((index, event, score_record(event["body"])))
        except EventError:
            continue  # reported by the batch parser with its own message
    if not candidates:
        return payload, []
    configs = project_score_configs(project)
    if not configs:
        return payload, []
    dropped: set[int] = set()
    rewritten: dict[int, dict] = {}
    errors = []
    for index, event, record in candidates:
        try:
            applied = conform_score(
                record, configs=configs, explicit_type=event["body"].get("dataType") is not None
            )
        except ScoreConfigError as exc:
            dropped.add(index)
            errors.append(
                {"id": event["id"], "status": 400, "message": "Invalid request data", "error": exc.message}
            )
            continue
        if applied:
            rewritten[index] = {**event, "body": _body_from_record(event["body"], record)}
    if not dropped and not rewritten:
        return payload, []
    kept = [rewritten.get(index, event) for index, event in enumerate(batch) if index not in dropped]
    return {**payload, "batch": kept}, errors


# =============================================================================================
# Langfuse REST scores


@dataclass
class ScoresResult:
    ids: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"index", "message"[, "status" when not 400]}


def scores_create(*, project, bodies: list, public_only: bool = False) -> ScoresResult:
    """Validate each score body on its own and store the valid ones in one write.

    With only the public key (browser feedback), the source is USER and the id is always ours:
    a browser must not be able to overwrite an evaluation or annotation score whose id it learnt.
    Its comments are held to the project's feedback comment limit.
    """
    result = ScoresResult()
    records = []
    positions = []  # index in `bodies` of each record
    configs: ConfigIndex | None = None
    comment_limit = feedback_settings_for(project).comment_max_length if public_only else None
    for index, body in enumerate(bodies):
        try:
            if public_only and isinstance(body, dict):
                body = {k: v for k, v in body.items() if k != "id"}
            record = score_record(body, source=ScoreSource.USER.value if public_only else None)
            if comment_limit is not None and len(record.get("comment") or "") > comment_limit:
                raise EventError(
                    f"`comment` is longer than {comment_limit} characters (this project's limit)"
                )
            if configs is None:
                configs = project_score_configs(project)
            if configs:
                conform_score(record, configs=configs, explicit_type=body.get("dataType") is not None)
        except (EventError, ScoreConfigError) as exc:
            result.errors.append({"index": index, "message": exc.message})
            continue
        records.append(record)
        positions.append(index)
    if records:
        # PII redaction before storage (a no-op unless the project's policy is on): a score that
        # cannot be redacted is refused (422) and nothing of it is stored.
        redacted = redact_for_storage(project=project, scores=records)
        for failure in redacted.failures:
            result.errors.append(
                {"index": positions[failure.index], "message": failure.error, "status": FAILURE_STATUS}
            )
        result.errors.sort(key=lambda error: error["index"])
        result.ids = [record["id"] for record in redacted.scores]
        if redacted.scores:
            write_records(project=project, traces=[], observations=[], scores=redacted.scores)
    return result


def score_delete(*, project, score_id: str) -> bool:
    """Delete one of the project's scores; False when it has none with that id (another project's
    score counts as none)."""
    deleted, _ = Score.objects.for_project(project).filter(id=score_id).delete()
    return deleted > 0


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
        environment=normalise_environment(environment),
    )


def feedback_score_id(*, project_id, trace_id: str, observation_id: str, user_id: str, name: str) -> str:
    """The one score an end user's rating of a trace (or observation) under a name lives in.

    Derived, not stored anywhere else: a changed mind lands on the same row. The parts are JSON-encoded
    before hashing so that no choice of ids can make two different tuples collide by concatenation."""
    key = orjson.dumps(["lookglass.feedback.v1", str(project_id), trace_id, observation_id, user_id, name])
    return "fb-" + hashlib.sha256(key).hexdigest()[:40]


def _redact_comment(project, text: str, metadata: dict) -> tuple[str, dict, dict]:
    """The comment and metadata as the project's redaction policy lets them be stored, and the
    redaction counts. Fail closed: anything going wrong rejects the feedback, nothing is stored."""
    try:
        from traces.redaction.engine import redact_records

        record = {"id": "feedback", "comment": text, "metadata": metadata}
        result = redact_records(project=project, scores=[record])
    except (OperationalError, InterfaceError) as exc:
        raise FeedbackRejected(
            "the redaction policy could not be read; retry later", status=503, error="ServiceUnavailableError"
        ) from exc
    except Exception as exc:
        logger.error("redaction of feedback failed for project %s (%s)", project.id, type(exc).__name__)
        raise FeedbackRejected(
            "the comment could not be checked for personal data, so the feedback was not stored",
            status=422,
            error="UnprocessableEntityError",
        ) from exc
    if result.failures or not result.scores:
        raise FeedbackRejected(
            "the comment could not be checked for personal data, so the feedback was not stored",
            status=422,
            error="UnprocessableEntityError",
        )
    stored = result.scores[0]
    return stored.get("comment", ""), stored.get("metadata", {}), stored.get("redactions", {})


_SCORE_COLUMNS = (
    "project_id",
    "id",
    "trace_id",
    "observation_id",
    "session_id",
    "name",
    "value",
    "string_value",
    "data_type",
    "source",
    "comment",
    "author_user_id",
    "config_id",
    "metadata",
    "environment",
    "timestamp",
    "redactions",
    "created_at",
    "updated_at",
)
# A changed mind replaces the rating, comment and metadata and moves the timestamp to the latest
# rating; `created_at` keeps the first. Only USER scores are ever overwritten.
_UPSERT_SQL = (
    f"INSERT INTO feedback_score ({', '.join(_SCORE_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_SCORE_COLUMNS))}) "
    "ON CONFLICT (project_id, id) DO UPDATE SET value = EXCLUDED.value, "
    "string_value = EXCLUDED.string_value, "
    "data_type = EXCLUDED.data_type, comment = EXCLUDED.comment, config_id = EXCLUDED.config_id, "
    "metadata = EXCLUDED.metadata, environment = EXCLUDED.environment, timestamp = EXCLUDED.timestamp, "
    "redactions = EXCLUDED.redactions, updated_at = EXCLUDED.updated_at "
    "WHERE feedback_score.source = 'USER'"
)


def feedback_submit(*, project: Project, feedback: Feedback, origin: str = "") -> FeedbackResult:
    """Store an end user's rating as a USER score next to the trace, and its history.

    - With a `user_id`, one score per (trace, observation, user, name): a changed mind updates it.
      Without one, every submission is a rating of its own (nothing tells two anonymous people apart;
      a front end that wants updates for anonymous visitors sends a stable random id as `user_id`).
    - Every submission appends a FeedbackEvent with the value it replaced, in the same transaction.
    - The trace need not exist yet: feedback often arrives before the trace's batch is flushed.
    - Score configs apply; the comment and metadata go through the project's redaction policy.

    Raises FeedbackRejected (nothing stored) or StorageUnavailable.
    """
    record = {"name": feedback.name, "data_type": feedback.data_type, "value": feedback.value}
    if feedback.data_type == ScoreDataType.BOOLEAN:
        record["string_value"] = "True" if feedback.value == 1 else "False"
    configs = project_score_configs(project)
    if configs:
        try:
            conform_score(record, configs=configs, explicit_type=True)
        except ScoreConfigError as exc:
            raise FeedbackRejected(exc.message) from None
    name = record["name"]
    comment, metadata, redactions = (
        _redact_comment(project, feedback.comment, feedback.metadata)
        if feedback.comment or feedback.metadata
        else ("", {}, {})
    )
    score_id = (
        feedback_score_id(
            project_id=project.id,
            trace_id=feedback.trace_id,
            observation_id=feedback.observation_id,
            user_id=feedback.user_id,
            name=name,
        )
        if feedback.user_id
        else "fb-" + uuid.uuid4().hex
    )
    now = timezone.now()
    database = region_database(project.region)
    try:
        with transaction.atomic(using=database):
            with data_connection(project).cursor() as cursor:
                # Serialises submissions for one rating, so each history row names the value it replaced.
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{project.id}:{score_id}"]
                )
                cursor.execute(
                    "SELECT source, value, string_value, comment FROM feedback_score "
                    "WHERE project_id = %s AND id = %s",
                    [project.id, score_id],
                )
                previous = cursor.fetchone()
                if previous is not None and previous[0] != ScoreSource.USER:
                    raise FeedbackRejected(
                        "a score that is not end-user feedback already uses this feedback's id",
                        status=409,
                        error="ConflictError",
                    )
                cursor.execute(
                    _UPSERT_SQL,
                    [
                        project.id,
                        score_id,
                        feedback.trace_id,
                        feedback.observation_id,
                        "",
                        name,
                        record.get("value"),
                        record.get("string_value", ""),
                        record["data_type"],
                        ScoreSource.USER,
                        comment,
                        feedback.user_id,
                        record.get("config_id", ""),
                        orjson.dumps(metadata).decode(),
                        feedback.environment or "default",
                        now,
                        orjson.dumps(redactions).decode(),
                        now,
                        now,
                    ],
                )
            FeedbackEvent.objects.for_project(project).create(
                score_id=score_id,
                trace_id=feedback.trace_id,
                observation_id=feedback.observation_id,
                user_id=feedback.user_id,
                name=name,
                data_type=record["data_type"],
                value=record.get("value"),
                string_value=record.get("string_value", ""),
                comment=comment,
                is_update=previous is not None,
                previous_value=previous[1] if previous else None,
                previous_string_value=previous[2] if previous else "",
                previous_comment=previous[3] if previous else "",
                metadata=metadata,
                origin=origin[:255],
                created_at=now,
            )
    except DataError as exc:
        raise FeedbackRejected(f"the database refused the feedback: {exc}") from exc
    except (OperationalError, InterfaceError) as exc:
        logger.warning("region %s feedback write failed for project %s: %s", project.region, project.id, exc)
        raise StorageUnavailable(f"the {project.region} data region is unavailable; retry later") from exc
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
