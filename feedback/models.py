"""Scores: numeric, categorical and boolean judgements on a trace, observation or session.

Data plane: lives in the project's region database next to the traces it judges."""

from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel


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
        indexes = [
            models.Index(fields=["project_id", "trace_id"], name="score_project_trace"),
            models.Index(fields=["project_id", "observation_id"], name="score_project_observation"),
            models.Index(fields=["project_id", "session_id"], name="score_project_session"),
            models.Index(fields=["project_id", "name", "-timestamp"], name="score_project_name_time"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value if self.string_value == '' else self.string_value}"
