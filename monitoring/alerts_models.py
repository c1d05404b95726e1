"""Regression alerts: rules, channels, state history and deliveries (all control plane: they are a
project's configuration and its audit trail; the numbers a rule reads come from the region's
rollups, `monitoring.alerts`).

A rule is evaluated every minute (`monitoring.tasks.evaluate_alerts`, one Celery beat entry per
region queue) over a window of whole hours: the current, partial hour and the `window_minutes / 60 − 1`
hours before it (the rollups are hourly). Its state is one of `AlertState`; every change is one
`AlertEvent`; every notification to one channel is one `AlertDelivery`.
"""

from __future__ import annotations

import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from tenancy.planes import Plane


class AlertMetric(models.TextChoices):
    ERROR_RATE = "error_rate", "error rate (errors / calls)"
    REFUSAL_RATE = "refusal_rate", "refusal rate (refusals / calls)"
    LATENCY_AVG = "latency_avg", "average latency (ms)"
    LATENCY_P50 = "latency_p50", "latency p50 (ms)"
    LATENCY_P95 = "latency_p95", "latency p95 (ms)"
    LATENCY_P99 = "latency_p99", "latency p99 (ms)"
    TTFT_AVG = "ttft_avg", "average time to first token (ms)"
    TTFT_P95 = "ttft_p95", "time to first token p95 (ms)"
    COST = "cost", "cost in the window (USD)"
    VOLUME = "volume", "calls in the window"
    THUMBS_DOWN_RATE = "thumbs_down_rate", "thumbs-down rate (end-user thumbs)"
    SCORE_AVG = "score_avg", "average of a score (e.g. an eval)"


# Metrics read from the score rollups (not the call rollups): filtered by score name and environment
# only.
SCORE_METRICS = frozenset({AlertMetric.THUMBS_DOWN_RATE, AlertMetric.SCORE_AVG})


class AlertMode(models.TextChoices):
    THRESHOLD = "threshold", "the value against the threshold"
    RATIO = "ratio", "the value against threshold × the baseline window's value"
    ANOMALY = "anomaly", "the value against mean ± threshold × stddev of the same window in past weeks"


class AlertBaseline(models.TextChoices):
    PREVIOUS_WINDOW = "previous_window", "the window just before"
    YESTERDAY = "yesterday", "the same window 24 hours earlier"


class AlertOperator(models.TextChoices):
    GT = "gt", ">"
    GTE = "gte", ">="
    LT = "lt", "<"
    LTE = "lte", "<="


class AlertState(models.TextChoices):
    OK = "ok", "ok"
    WARNING = "warning", "warning"
    FIRING = "firing", "firing"
    RESOLVED = "resolved", "resolved"  # was warning/firing, now ok (one evaluation, then ok)
    NO_DATA = "no_data", "no data"  # fewer calls than min_calls (or no baseline to compare with)


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "signed webhook"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "email"


def new_webhook_secret() -> str:
    return "lgwhsec_" + secrets.token_hex(32)


class AlertChannel(models.Model):
    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="alert_channels")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    # webhook and slack: checked by `tenancy.outbound.check_url` when saved and before every request.
    url = models.URLField(max_length=2000, blank=True, default="")
    # webhook: the HMAC key of `X-Lookglass-Signature` (shown to members, who configure the receiver).
    secret = models.CharField(max_length=100, blank=True, default="")
    emails = ArrayField(models.EmailField(), default=list, blank=True, size=20)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class AlertRule(models.Model):
    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    metric = models.CharField(max_length=24, choices=AlertMetric.choices)
    score_name = models.CharField(max_length=500, blank=True, default="")  # score_avg (required), thumbs (optional)
    # Filters ("" / null = any), on the rollup dimensions.
    feature = models.CharField(max_length=200, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    environment = models.CharField(max_length=200, blank=True, default="")
    prompt_name = models.CharField(max_length=200, blank=True, default="")
    prompt_version = models.IntegerField(null=True, blank=True)
    window_minutes = models.PositiveIntegerField(default=60)  # a multiple of 60 (hourly rollups)
    mode = models.CharField(max_length=16, choices=AlertMode.choices, default=AlertMode.THRESHOLD)
    baseline = models.CharField(max_length=16, choices=AlertBaseline.choices, default=AlertBaseline.PREVIOUS_WINDOW)
    anomaly_weeks = models.PositiveSmallIntegerField(default=4)
    operator = models.CharField(max_length=4, choices=AlertOperator.choices, default=AlertOperator.GT)
    # threshold mode: the value; ratio mode: the factor (1.5 = 50% above the baseline); anomaly mode:
    # the number of standard deviations.
    threshold = models.FloatField()
    warning_threshold = models.FloatField(null=True, blank=True)
    min_calls = models.PositiveIntegerField(default=20)  # fewer calls (or thumbs, or scores) = no data
    renotify_minutes = models.PositiveIntegerField(default=0)  # 0 = notify once per transition
    cooldown_minutes = models.PositiveIntegerField(default=10)  # no two transition notifications closer
    channels = models.ManyToManyField(AlertChannel, blank=True, related_name="rules")
    # The three rules every project starts with carry a key, so the data migration and the project
    # hook create each at most once.
    seed_key = models.CharField(max_length=40, blank=True, default="")
    # State, written only by the evaluator.
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.NO_DATA)
    state_since = models.DateTimeField(default=timezone.now)
    last_value = models.FloatField(null=True, blank=True)
    last_baseline = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    last_notified_state = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "seed_key"], condition=~models.Q(seed_key=""), name="alertrule_one_seed_per_project"
            )
        ]
        indexes = [models.Index(fields=["enabled", "project"], name="alertrule_enabled_project")]

    def __str__(self) -> str:
        return self.name


class AlertEvent(models.Model):
    """One state change of a rule (the history)."""

    PLANE = Plane.CONTROL

    id = models.BigAutoField(primary_key=True)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="+")
    from_state = models.CharField(max_length=16, choices=AlertState.choices)
    to_state = models.CharField(max_length=16, choices=AlertState.choices)
    value = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    limit = models.FloatField(null=True, blank=True)  # the effective alert threshold compared with
    calls = models.BigIntegerField(default=0)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["rule", "-created_at"], name="alertevent_rule_time")]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"


class AlertDelivery(models.Model):
    """One notification to one channel (a transition, a re-notification, or a test)."""

    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries")
    event = models.ForeignKey(AlertEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries")
    kind = models.CharField(max_length=16)  # firing, warning, resolved, renotify, test
    payload = models.JSONField()
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"], name="alertdelivery_project_time")]


@receiver(post_save, sender="tenancy.Project", dispatch_uid="monitoring.seed_alert_rules")
def _seed_new_project(sender, instance, created, raw=False, **kwargs):
    """Every new project starts with the seed's three rules, switched off (`alerts_seed`)."""
    if created and not raw:
        from monitoring.alerts_seed import seed_rules

        seed_rules(AlertRule, instance.pk)
