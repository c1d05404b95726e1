"""End-user feedback (`POST /api/v1/feedback`) and feedback settings.

The feedback score goes through the ingest pipeline like every other score: its `conform_scores`
stage (`ingest.pipeline`) checks it against the project's score configs (`scores.services`), its
redact stage redacts the comment, and `ingest.writer` stores it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import uuid
from dataclasses import dataclass

import orjson
from django.db import transaction
from django.utils import timezone

from feedback.models import FeedbackEvent, FeedbackSettings
from ingest import pipeline
from ingest.adapters import feedback as feedback_adapter
from ingest.contract import RecordError, check_json
from ingest.pipeline import InvalidRecord, NotUserFeedback
from ingest.rules.environment import normalize_environment
from scores.models import ScoreDataType
from tenancy.models import Project
from tenancy.services import audit_record

logger = logging.getLogger(__name__)


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
    try:
        check_json(metadata, "metadata")  # the limits every stored JSON value keeps (depth, integers)
    except RecordError as exc:
        raise FeedbackRejected(exc.message) from None
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


def feedback_submit(
    *, project: Project, feedback: Feedback, origin: str = "", api_key_id=None
) -> FeedbackResult:
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
        project=project, source="feedback", write="user_feedback", after_write=append_history,
        api_key_id=api_key_id,
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
# Feedback settings writes (audited)

_UNSET = object()


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
