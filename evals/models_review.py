"""Review rules: per-project configuration (control plane) that turns scores — end-user thumbs-down,
or any score condition — into items of a review dataset, automatically.

A rule matches a stored score by its name, source, data type and a comparison of its value; the
dataset item it makes (in the project's region, data plane) has a deterministic id from (rule,
dataset, trace, observation), so the same trace judged bad twice, or the task run twice, gives one
item. Imported by `evals.models` so Django registers it in the `evals` app.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from scores.models import ScoreDataType, ScoreSource
from tenancy.planes import Plane


class ReviewOperator(models.TextChoices):
    LT = "lt", "<"
    LTE = "lte", "≤"
    EQ = "eq", "="
    NE = "ne", "≠"
    GTE = "gte", "≥"
    GT = "gt", ">"


class ReviewRule(models.Model):
    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="review_rules")
    name = models.CharField(max_length=200)
    # The review dataset, in the project's region; created by the first item if it does not exist.
    dataset_name = models.CharField(max_length=255)
    # Conditions on the score; empty = any.
    score_name = models.CharField(max_length=500, blank=True, default="")
    source = models.CharField(max_length=12, choices=ScoreSource.choices, blank=True, default="")
    data_type = models.CharField(max_length=12, choices=ScoreDataType.choices, blank=True, default="")
    operator = models.CharField(max_length=3, choices=ReviewOperator.choices, default=ReviewOperator.EQ)
    # Compared with a NUMERIC or BOOLEAN score's value (thumbs-down: BOOLEAN = 0) …
    value = models.FloatField(null=True, blank=True)
    # … or, when set, with a CATEGORICAL score's label (operators `eq` and `ne` only).
    string_value = models.CharField(max_length=1000, blank=True, default="")
    require_comment = models.BooleanField(default=False, help_text="Only scores that carry a comment.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="reviewrule_project_name_unique")]
        indexes = [models.Index(fields=["project", "enabled"], name="reviewrule_project_enabled")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if (self.value is None) == (self.string_value == ""):
            errors["value"] = "Give exactly one of `value` (a number) and `string_value` (a category label)."
        if self.string_value and self.operator not in (ReviewOperator.EQ, ReviewOperator.NE):
            errors["operator"] = "A category label is compared with `eq` or `ne` only."
        if self.value is not None and self.value != self.value:  # NaN never matches anything
            errors["value"] = "`value` must be a number."
        if not self.dataset_name.strip():
            errors["dataset_name"] = "This field may not be blank."
        if errors:
            raise ValidationError(errors)

    def matches(self, score: dict) -> bool:
        """Whether a score (a stored row's fields: name, source, data_type, value, string_value,
        comment, trace_id) meets the rule. Scores without a trace (session or run scores) never do:
        an item needs a source trace."""
        if not score.get("trace_id"):
            return False
        if self.score_name and score.get("name") != self.score_name:
            return False
        if self.source and (score.get("source") or ScoreSource.API) != self.source:
            return False
        if self.data_type and score.get("data_type") != self.data_type:
            return False
        if self.require_comment and not (score.get("comment") or "").strip():
            return False
        if self.string_value:
            equal = score.get("string_value") == self.string_value
            return equal if self.operator == ReviewOperator.EQ else not equal
        value = score.get("value")
        if value is None or self.value is None:
            return False
        return {
            ReviewOperator.LT: value < self.value,
            ReviewOperator.LTE: value <= self.value,
            ReviewOperator.EQ: value == self.value,
            ReviewOperator.NE: value != self.value,
            ReviewOperator.GTE: value >= self.value,
            ReviewOperator.GT: value > self.value,
        }[self.operator]
