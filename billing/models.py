"""Plans, subscriptions and rejected-event counts (control plane).

A plan is data: operators edit plans in the admin, and an organization's subscription points at one,
with per-organization `overrides` of any limit. An organization without a subscription is on the
self-hosting default, `unlimited`: no quota, no rate limit, nothing is ever refused for billing.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from tenancy.models import Organization
from tenancy.planes import Plane

UNLIMITED = "unlimited"

# The limit fields a subscription may override, with the type its JSON value must have.
OVERRIDABLE = {
    "included_units": int,
    "extra_unit_price": (int, float, str),
    "max_projects": int,
    "max_members": int,
    "retention_days": int,
    "eval_judge_calls": int,
    "ingest_rate_per_second": int,
    "key_rate_per_second": int,
    "soft_limit_share": (int, float),
}


class Plan(models.Model):
    """One plan's limits. A null limit means "no limit". A null `extra_unit_price` means the plan has
    no overage: ingestion past `included_units` is refused (429) until the period resets or the plan
    changes; with a price, usage past it is billed, never refused."""

    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=50, unique=True)
    included_units = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Billable units (traces + observations + scores) per month; empty = unlimited.",
    )
    extra_unit_price = models.DecimalField(
        max_digits=12, decimal_places=8, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="USD per unit past the included ones; empty = no overage (the included units are a hard limit).",
    )
    max_projects = models.PositiveIntegerField(null=True, blank=True)
    max_members = models.PositiveIntegerField(null=True, blank=True)
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    eval_judge_calls = models.PositiveIntegerField(null=True, blank=True, help_text="LLM-judge calls per month.")
    ingest_rate_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Ingest requests per second for the whole organization; empty = no limit."
    )
    key_rate_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Ingest requests per second per API key; empty = no per-key limit."
    )
    soft_limit_share = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of the included units at which ingest responses carry a quota warning.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """An organization's plan. Periods are monthly, anchored on `period_start`'s day of the month."""

    PLANE = Plane.CONTROL

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="subscription"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    period_start = models.DateTimeField(default=timezone.now)
    overrides = models.JSONField(default=dict, blank=True, help_text="Limits of the plan overridden for this organization.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.organization} on {self.plan}"

    def clean(self):
        super().clean()
        if not isinstance(self.overrides, dict):
            raise ValidationError({"overrides": "must be an object"})
        for key, value in self.overrides.items():
            kind = OVERRIDABLE.get(key)
            if kind is None:
                raise ValidationError({"overrides": f"unknown limit {key!r}; one of {', '.join(OVERRIDABLE)}"})
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
                raise ValidationError({"overrides": f"{key!r} has the wrong type"})
            if isinstance(value, (int, float)) and value < 0:
                raise ValidationError({"overrides": f"{key!r} cannot be negative"})


class RejectedEvents(models.Model):
    """Events ingestion refused for billing, per organization, project, day and reason (flushed from
    Redis counters by `billing.services.rejections_flush`)."""

    PLANE = Plane.CONTROL

    class Reason(models.TextChoices):
        QUOTA = "quota", "monthly quota"
        ORG_RATE = "org_rate", "organization rate limit"
        KEY_RATE = "key_rate", "API key rate limit"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project_id = models.UUIDField()
    day = models.DateField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    requests = models.BigIntegerField(default=0)
    events = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("organization", "project_id", "day", "reason"), name="billing_rejected_uniq")
        ]
        indexes = [models.Index(fields=("organization", "day"))]
        verbose_name_plural = "rejected events"


class Meter(models.TextChoices):
    """What the metering job counts per project and hour (`billing.metering`)."""

    TRACES = "traces", "traces"
    OBSERVATIONS = "observations", "observations"
    SCORES = "scores", "scores"
    BYTES = "bytes", "stored bytes of the hour's new rows"
    JUDGE_CALLS = "judge_calls", "LLM-judge calls"
    JUDGE_TOKENS = "judge_tokens", "LLM-judge tokens"


# The meters that make a billable unit (Langfuse's definition: traces + observations + scores).
UNIT_METERS = (Meter.TRACES, Meter.OBSERVATIONS, Meter.SCORES)


class UsageRecord(models.Model):
    """One meter's quantity for one project and hour, counted by creation time from the project's
    region database. Written once per (region, hour) by the metering job and never changed after:
    a rerun of the same hour finds its `MeteredHour` and writes nothing; a later erasure does not
    un-bill what was stored."""

    PLANE = Plane.CONTROL

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project_id = models.UUIDField()
    hour = models.DateTimeField()
    meter = models.CharField(max_length=20, choices=Meter.choices)
    quantity = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("project_id", "hour", "meter"), name="billing_usage_uniq"),
        ]
        indexes = [models.Index(fields=("organization", "hour"), name="billing_usage_org_hour")]


class MeteredHour(models.Model):
    """A (region, hour) the metering job has finished: its UsageRecords were written in the same
    transaction, so this row is the job's idempotency mark."""

    PLANE = Plane.CONTROL

    region = models.CharField(max_length=32)
    hour = models.DateTimeField()
    metered_at = models.DateTimeField(auto_now_add=True)
    records = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("region", "hour"), name="billing_metered_hour_uniq")]


class QuotaNotice(models.Model):
    """The soft-limit e-mail sent for an organization's period (at most one per period)."""

    PLANE = Plane.CONTROL

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    period_start = models.DateTimeField()
    sent_at = models.DateTimeField(auto_now_add=True)
    usage_units = models.BigIntegerField()
    recipients = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("organization", "period_start"), name="billing_quota_notice_uniq"),
        ]
