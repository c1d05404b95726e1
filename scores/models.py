"""Scores: numeric, categorical and boolean judgements on a trace, observation or session.

Data plane: `Score` lives in the project's region database next to the traces it judges. Control
plane: `ScoreConfig` (declared score names and their allowed values) is configuration.

Both moved here from feedback/; their tables kept their names (`feedback_score`,
`feedback_scoreconfig`), so no data moved."""

import math
import re
import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel
from tenancy.planes import Plane


class ScoreDataType(models.TextChoices):
    NUMERIC = "NUMERIC"
    CATEGORICAL = "CATEGORICAL"
    BOOLEAN = "BOOLEAN"
    # Free text (1–500 characters) and corrections of an output, as Langfuse's newer SDKs send them.
    TEXT = "TEXT"
    CORRECTION = "CORRECTION"


class ScoreSource(models.TextChoices):
    API = "API"
    EVAL = "EVAL"
    ANNOTATION = "ANNOTATION"
    USER = "USER"


class Score(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.CharField(max_length=200)
    trace_id = models.CharField(max_length=200, blank=True, default="")
    observation_id = models.CharField(max_length=200, blank=True, default="")
    session_id = models.CharField(max_length=1000, blank=True, default="")
    name = models.CharField(max_length=500)
    # NUMERIC and BOOLEAN (0/1) scores set `value`; CATEGORICAL sets `string_value`
    # (BOOLEAN also keeps "True"/"False" there, as the Langfuse API reports it).
    value = models.FloatField(null=True, blank=True)
    string_value = models.CharField(max_length=1000, blank=True, default="")
    data_type = models.CharField(max_length=12, choices=ScoreDataType.choices, default=ScoreDataType.NUMERIC)
    source = models.CharField(max_length=12, choices=ScoreSource.choices, default=ScoreSource.API)
    comment = models.TextField(blank=True, default="")
    author_user_id = models.CharField(max_length=500, blank=True, default="")
    config_id = models.CharField(max_length=200, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    environment = models.CharField(max_length=100, blank=True, default="default")
    timestamp = models.DateTimeField(default=timezone.now)
    redactions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "feedback_score"
        indexes = [
            # The metering job counts rows by creation hour (billing/metering.py): a BRIN index is a
            # few pages and costs ingestion next to nothing, since rows arrive in created_at order.
            BrinIndex(fields=["project_id", "created_at"], name="score_project_created_brin", autosummarize=True),
            models.Index(fields=["project_id", "trace_id"], name="score_project_trace"),
            models.Index(fields=["project_id", "observation_id"], name="score_project_observation"),
            models.Index(fields=["project_id", "session_id"], name="score_project_session"),
            models.Index(fields=["project_id", "name", "-timestamp"], name="score_project_name_time"),
            # The score list, newest first, and its time windows (issue 13).
            models.Index(fields=["project_id", "-timestamp"], name="score_project_time"),
            # The end-user feedback lists (thumbs-down, daily rate) read only USER thumbs.
            models.Index(
                fields=["project_id", "-timestamp"],
                name="score_project_user_thumbs",
                condition=models.Q(source="USER", data_type="BOOLEAN"),
            ),
            # The scores on an observation, by time: the metrics views by the scored observation's
            # model or prompt version read only these raw (the score rollups hold the others,
            # `monitoring.metrics.SCORE_OBSERVATION_COLUMNS`). Trace-level scores never enter it.
            models.Index(
                fields=["project_id", "-timestamp"],
                name="score_project_on_obs_time",
                condition=~models.Q(observation_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value if self.string_value == '' else self.string_value}"


# --- score configs ---------------------------------------------------------------------------


class ScoreConfigDataType(models.TextChoices):
    NUMERIC = "NUMERIC"
    CATEGORICAL = "CATEGORICAL"
    BOOLEAN = "BOOLEAN"
    TEXT = "TEXT"


SCORE_CONFIG_NAME = re.compile(r"^[A-Za-z0-9_ .()-]{1,35}$")
MAX_CATEGORIES = 100
# Category values are JSON numbers that scores (floats) are compared with. Beyond 2**53 a float is no
# longer exact, and PostgreSQL's jsonb writes 1.8e19 back as the integer 18446744073709551616, which
# the JSON encoder then refuses (> 64 bits): one such value made every list of the configs a 500.
MAX_CATEGORY_VALUE = 2**53
# Langfuse: "Categories are autogenerated for boolean configs and cannot be passed".
BOOLEAN_CATEGORIES = [{"label": "True", "value": 1}, {"label": "False", "value": 0}]


class ScoreConfig(models.Model):
    """A score name the project declares, with its data type and allowed values (Langfuse's score
    config). Scores naming it (by `configId`, or by name while it is not archived) must conform.

    Control plane: it is configuration, read on the ingest path next to the API key."""

    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="score_configs")
    name = models.CharField(max_length=35)
    data_type = models.CharField(max_length=12, choices=ScoreConfigDataType.choices)
    min_value = models.FloatField(null=True, blank=True)
    max_value = models.FloatField(null=True, blank=True)
    # CATEGORICAL: [{"label": str, "value": number}]; BOOLEAN: fixed True=1 / False=0.
    categories = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True, default="", max_length=2000)
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "feedback_scoreconfig"
        ordering = ["name", "created_at"]
        constraints = [
            # Scores find their config by name: among live configs a name means one config.
            models.UniqueConstraint(
                fields=["project", "name"],
                condition=models.Q(is_archived=False),
                name="score_config_live_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.data_type})"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if not SCORE_CONFIG_NAME.match(self.name or ""):
            errors["name"] = ["1–35 characters of letters, digits, spaces and _ . ( ) -"]
        if self.data_type not in ScoreConfigDataType.values:
            errors["data_type"] = [f"must be one of {', '.join(ScoreConfigDataType.values)}"]
        ranged = self.min_value is not None or self.max_value is not None
        for name in ("min_value", "max_value"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                errors[name] = ["must be a finite number"]
        if self.data_type == ScoreConfigDataType.NUMERIC:
            if self.categories:
                errors["categories"] = ["a NUMERIC config has no categories"]
            if (
                "min_value" not in errors
                and "max_value" not in errors
                and self.min_value is not None
                and self.max_value is not None
                and self.min_value > self.max_value
            ):
                errors["max_value"] = ["must not be less than min_value"]
        elif self.data_type == ScoreConfigDataType.CATEGORICAL:
            if ranged:
                errors["min_value"] = ["a CATEGORICAL config has categories, not a range"]
            try:
                self.categories = clean_categories(self.categories)
            except ValidationError as exc:
                errors["categories"] = exc.messages
        elif self.data_type == ScoreConfigDataType.BOOLEAN:
            if ranged:
                errors["min_value"] = ["a BOOLEAN config has no range"]
            # The fixed mapping sent back unchanged (a GET body round-tripped) is accepted as a no-op.
            if self.categories and not _same_categories(self.categories, BOOLEAN_CATEGORIES):
                errors["categories"] = [
                    "a BOOLEAN config has the fixed categories True = 1 and False = 0; do not pass categories"
                ]
            self.categories = [dict(category) for category in BOOLEAN_CATEGORIES]
        elif self.data_type == ScoreConfigDataType.TEXT and (ranged or self.categories):
            errors["categories"] = ["a TEXT config has neither categories nor a range"]
        if errors:
            raise ValidationError(errors)


def _same_categories(given, expected: list[dict]) -> bool:
    if not isinstance(given, list) or len(given) != len(expected):
        return False
    pairs = set()
    for item in given:
        value = item.get("value") if isinstance(item, dict) else None
        if set(item or ()) != {"label", "value"} or isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        pairs.add((item["label"], float(value)))
    return pairs == {(item["label"], float(item["value"])) for item in expected}


def clean_categories(categories) -> list[dict]:
    if not isinstance(categories, list) or not categories:
        raise ValidationError("a CATEGORICAL config needs at least one category {label, value}")
    if len(categories) > MAX_CATEGORIES:
        raise ValidationError(f"at most {MAX_CATEGORIES} categories")
    out, labels, values = [], set(), set()
    for item in categories:
        if not isinstance(item, dict) or set(item) - {"label", "value"}:
            raise ValidationError("each category is an object {label: string, value: number}")
        label, value = item.get("label"), item.get("value")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise ValidationError("a category label is a string of 1–200 characters")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValidationError(f"category {label!r} needs a finite number as value")
        if abs(value) > MAX_CATEGORY_VALUE:
            raise ValidationError(
                f"category {label!r}: the value must be between -{MAX_CATEGORY_VALUE} and {MAX_CATEGORY_VALUE}"
            )
        if label in labels or value in values:
            raise ValidationError(
                f"category labels and values must be unique ({label!r} = {value!r} repeats)"
            )
        labels.add(label)
        values.add(value)
        out.append({"label": label, "value": value})
    return out
