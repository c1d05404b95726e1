"""End-user feedback. Data plane: `FeedbackEvent` (the history behind a feedback score) lives in the
project's region database next to the scores it explains. Control plane: `FeedbackSettings` (browser
origins, limits) is configuration. Scores and score configs are in scores/."""

import re
import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from scores.models import ScoreDataType
from tenancy.dataplane import DataPlaneModel
from tenancy.planes import Plane

# Hard ceiling for a project's comment limit: Score.comment is unbounded text, the feedback body is not.
MAX_COMMENT_LENGTH = 10_000
DEFAULT_COMMENT_LENGTH = 2_000
ANY_ORIGIN = "*"
# Scheme, host and optional port, and nothing else: what a browser sends in `Origin`.
_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$")


def normalise_origin(value: str) -> str:
    """`https://App.Example.com/` → `https://app.example.com`; raises ValidationError for anything
    that is not exactly an origin (paths, queries, wildcards inside a host, other schemes)."""
    if not isinstance(value, str):
        raise ValidationError("an origin must be a string")
    text = value.strip()
    if text == ANY_ORIGIN:
        return ANY_ORIGIN
    text = text.rstrip("/").lower()
    match = _ORIGIN.match(text)
    if match is None:
        raise ValidationError(
            f"{value!r} is not an origin: write scheme://host[:port] (e.g. https://app.example.com), "
            "or * for any"
        )
    port = match.group(3)
    if port and not 0 < int(port[1:]) < 65536:
        raise ValidationError(f"{value!r} has an invalid port")
    return text


class FeedbackSettings(models.Model):
    """How a project accepts feedback from browsers (with its public key alone).

    Control plane: it is configuration. No row means the defaults: enabled, no browser origin allowed
    (server-side callers send no `Origin` and are unaffected), comments up to 2,000 characters."""

    PLANE = Plane.CONTROL

    project = models.OneToOneField(
        "tenancy.Project", on_delete=models.CASCADE, related_name="feedback_settings"
    )
    # Off: the public key can no longer write feedback; secret-key callers (the project's own servers)
    # still can.
    enabled = models.BooleanField(default=True)
    # Exact origins (scheme://host[:port]) whose pages may call the feedback endpoints; "*" = any page.
    allowed_origins = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    comment_max_length = models.PositiveIntegerField(
        default=DEFAULT_COMMENT_LENGTH,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_COMMENT_LENGTH)],
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "feedback settings"
        # Preflights carry no key: they are answered by "does any enabled project allow this origin"
        # (`allowed_origins @> ARRAY[origin]`), which this index serves.
        indexes = [GinIndex(fields=["allowed_origins"], name="feedback_settings_origins")]

    def __str__(self) -> str:
        return f"feedback settings of project {self.project_id}"

    def clean(self) -> None:
        origins, errors = [], []
        for raw in self.allowed_origins or []:
            try:
                origin = normalise_origin(raw)
            except ValidationError as exc:
                errors.extend(exc.messages)
                continue
            if origin not in origins:
                origins.append(origin)
        if errors:
            raise ValidationError({"allowed_origins": errors})
        self.allowed_origins = origins

    def allows(self, origin: str) -> bool:
        return ANY_ORIGIN in self.allowed_origins or origin in self.allowed_origins


class FeedbackEvent(DataPlaneModel):
    """One end-user feedback submission, with the rating it replaced: the history behind a score
    that the latest submission keeps up to date.

    Append-only: the application never updates a row and the database refuses UPDATE (migration
    0004). Rows can be deleted, so that retention and erasure requests remain possible."""

    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField(default=uuid.uuid4)
    score_id = models.CharField(max_length=200)
    trace_id = models.CharField(max_length=200)
    observation_id = models.CharField(max_length=200, blank=True, default="")
    user_id = models.CharField(max_length=500, blank=True, default="")
    name = models.CharField(max_length=500)
    data_type = models.CharField(max_length=12, choices=ScoreDataType.choices)
    value = models.FloatField(null=True, blank=True)
    string_value = models.CharField(max_length=1000, blank=True, default="")
    comment = models.TextField(blank=True, default="")
    # The score as it was before this submission; `is_update` False = this submission created it.
    is_update = models.BooleanField(default=False)
    previous_value = models.FloatField(null=True, blank=True)
    previous_string_value = models.CharField(max_length=1000, blank=True, default="")
    previous_comment = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    origin = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project_id", "score_id", "created_at"], name="feedback_event_score"),
            models.Index(fields=["project_id", "trace_id"], name="feedback_event_trace"),
        ]

    def __str__(self) -> str:
        shown = self.value if self.string_value == "" else self.string_value
        return f"feedback {self.name}={shown} on {self.trace_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError("feedback events are append-only")
        super().save(*args, **kwargs)
