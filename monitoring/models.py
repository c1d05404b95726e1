"""Monitoring: exact rollups of every LLM call (data plane) and the per-project rule that names a
call's "feature" (control plane).

Scores have their own rollups (`HourlyScoreRollup`, `DailyUserScoreRollup`), and calls a daily copy
of the hourly table (`DailyRollup`) for reads of weeks and months.

The rollup tables are written only by `ingest.rollups`, inside the writer's transaction, as deltas
(new row state − old row state), so they always equal a recomputation from the raw rows. Their keys
lead with `project_id` like every data-plane table.

Dimensions (one row per combination per hour; each value truncated to `DIMENSION_CHARS`): feature,
trace name, model (as answered when known, else as requested), environment, release, prompt name
and version (0 = no prompt). Provider, user and session are not dimensions of the hourly table:
provider follows from the model, and users are high-cardinality, so they have their own daily table.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel
from tenancy.planes import Plane

DIMENSION_CHARS = 200

# Latency and time-to-first-token histograms: HISTOGRAM_BUCKETS fixed log-scale buckets, four per
# doubling. Bucket 0 holds values under 1 ms; bucket i ≥ 1 holds [2^((i-1)/4), 2^(i/4)) ms; the
# last bucket is open-ended (from about 12 minutes). Fixed bounds make histograms exact to add and
# subtract, so an update to a call moves its count from one bucket to another.
HISTOGRAM_BUCKETS = 80


class FeatureSource(models.TextChoices):
    METADATA = "metadata", "a trace metadata key"
    TAG_PREFIX = "tag_prefix", "the first trace tag with a prefix"
    TRACE_NAME = "trace_name", "the trace name"


class MonitoringSettings(models.Model):
    """Where a project's calls get their "feature" from. No row = the trace metadata key `feature`.
    Control plane (configuration). Writes go through `monitoring.services.monitoring_settings_update`
    (validated, audited); a change rebuilds the project's rollups so every call is counted under
    the new rule (`RollupRule` records the rule they are built with)."""

    PLANE = Plane.CONTROL

    project = models.OneToOneField(
        "tenancy.Project", on_delete=models.CASCADE, related_name="monitoring_settings"
    )
    feature_source = models.CharField(max_length=16, choices=FeatureSource.choices, default=FeatureSource.METADATA)
    # The metadata key (feature_source=metadata) or the tag prefix (tag_prefix), e.g. "feature:".
    feature_key = models.CharField(max_length=200, default="feature")
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "monitoring settings"

    def __str__(self) -> str:
        return f"{self.project_id}: {self.feature_source} {self.feature_key}"


class RollupRule(DataPlaneModel):
    """The feature rule the project's rollups are built with, beside them in the region database:
    every rollup write reads it under the project's rollup lock, and only a rebuild changes it (see
    `ingest.rollups`). It lags `MonitoringSettings` until the rebuild after a change has run."""

    project_id = models.UUIDField(primary_key=True)
    feature_source = models.CharField(max_length=16, choices=FeatureSource.choices, default=FeatureSource.METADATA)
    feature_key = models.CharField(max_length=200, default="feature")


class _Measures(models.Model):
    calls = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    refusals = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=30, decimal_places=10, default=0)
    unpriced_calls = models.BigIntegerField(default=0)  # calls with no cost (no client cost, no catalog price)

    class Meta:
        abstract = True


class HourlyRollup(DataPlaneModel, _Measures):
    """Every LLM call (observations of type GENERATION or EMBEDDING) of a project, by hour of its
    start time and by dimension combination."""

    pk = models.CompositePrimaryKey(
        "project_id", "hour", "feature", "trace_name", "model", "environment", "release", "prompt_name",
        "prompt_version",
    )
    hour = models.DateTimeField()
    feature = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    trace_name = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    model = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    environment = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    release = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    prompt_name = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    prompt_version = models.IntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)  # calls with an end time
    latency_us_sum = models.BigIntegerField(default=0)  # microseconds: exact to add and subtract
    latency_hist = ArrayField(models.BigIntegerField(), size=HISTOGRAM_BUCKETS)
    ttft_count = models.BigIntegerField(default=0)  # calls with a completion start time
    ttft_us_sum = models.BigIntegerField(default=0)
    ttft_hist = ArrayField(models.BigIntegerField(), size=HISTOGRAM_BUCKETS)

    class Meta:
        indexes = [models.Index(fields=["project_id", "-hour"], name="rollup_project_hour")]


class DailyRollup(DataPlaneModel, _Measures):
    """The hourly rollup summed by UTC day of the call's start time (same dimensions, same measures):
    what reads of weeks and months use, 24 times fewer rows to add up (the histograms above all).
    Written in the same statement as the hourly rows, from the same deltas."""

    pk = models.CompositePrimaryKey(
        "project_id", "day", "feature", "trace_name", "model", "environment", "release", "prompt_name",
        "prompt_version",
    )
    day = models.DateField()
    feature = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    trace_name = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    model = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    environment = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    release = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    prompt_name = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    prompt_version = models.IntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)
    latency_us_sum = models.BigIntegerField(default=0)
    latency_hist = ArrayField(models.BigIntegerField(), size=HISTOGRAM_BUCKETS)
    ttft_count = models.BigIntegerField(default=0)
    ttft_us_sum = models.BigIntegerField(default=0)
    ttft_hist = ArrayField(models.BigIntegerField(), size=HISTOGRAM_BUCKETS)

    class Meta:
        indexes = [models.Index(fields=["project_id", "-day"], name="dailyrollup_project_day")]


class DailyUserRollup(DataPlaneModel, _Measures):
    """Every LLM call of a project with an end user (the trace's user id), by day of its start time."""

    pk = models.CompositePrimaryKey("project_id", "day", "user_id")
    day = models.DateField()
    user_id = models.CharField(max_length=DIMENSION_CHARS)

    class Meta:
        indexes = [models.Index(fields=["project_id", "-day"], name="userrollup_project_day")]


class ExactDecimalField(models.DecimalField):
    """PostgreSQL `numeric` without precision or scale: any decimal, exactly (sums of score values,
    whose magnitudes range over a float's)."""

    def _check_decimal_places(self):
        return []

    def _check_max_digits(self):
        return []

    def _check_decimal_places_and_max_digits(self, **kwargs):
        return []

    def db_type(self, connection):
        return "numeric"


class _ScoreMeasures(models.Model):
    """Score aggregates. `value_sum` is exact: each score adds the decimal of its float value (the
    shortest text that reads back as that float), so a moved or deleted score subtracts exactly what
    it added, whatever the order. Thumbs are end-user feedback (source USER, data type BOOLEAN):
    1 = up, 0 = down, as the feedback app stores them."""

    scores = models.BigIntegerField(default=0)
    value_count = models.BigIntegerField(default=0)  # scores with a numeric value (NUMERIC, BOOLEAN, …)
    value_sum = ExactDecimalField(max_digits=None, decimal_places=None, default=0)
    thumbs_up = models.BigIntegerField(default=0)
    thumbs_down = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class HourlyScoreRollup(DataPlaneModel, _ScoreMeasures):
    """Every score of a project, by hour of its timestamp, by the dimensions of the trace it scores
    (feature, trace name, release: as that trace stands now; empty while the trace is not stored), its
    own environment, and its name, source and data type. The score's own name is not cut (alert
    rules name it in full)."""

    pk = models.CompositePrimaryKey(
        "project_id", "hour", "name", "source", "data_type", "feature", "trace_name", "environment", "release",
    )
    hour = models.DateTimeField()
    name = models.CharField(max_length=500)
    source = models.CharField(max_length=12)
    data_type = models.CharField(max_length=12)
    feature = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    trace_name = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    environment = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")
    release = models.CharField(max_length=DIMENSION_CHARS, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["project_id", "-hour"], name="scorerollup_project_hour")]


class DailyUserScoreRollup(DataPlaneModel, _ScoreMeasures):
    """Every score of a trace with an end user (the trace's user id), by day of the score's timestamp
    and by score name, source and data type."""

    pk = models.CompositePrimaryKey("project_id", "day", "user_id", "name", "source", "data_type")
    day = models.DateField()
    user_id = models.CharField(max_length=DIMENSION_CHARS)
    name = models.CharField(max_length=500)
    source = models.CharField(max_length=12)
    data_type = models.CharField(max_length=12)

    class Meta:
        indexes = [models.Index(fields=["project_id", "-day"], name="userscorerollup_project_day")]


# Alerts and sampling live in their own modules; imported here so Django registers their models.
from monitoring.alerts_models import (  # noqa: E402, F401
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertRule,
)
from monitoring.sampling_models import SamplingDecision, SamplingPolicy  # noqa: E402, F401
