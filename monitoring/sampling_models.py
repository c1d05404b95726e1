"""Server-side trace sampling (off by default): the per-project policy (control plane) and the
decision taken for every trace while it is on (data plane, beside the traces).

Decisions are taken after the trace settles (`settle_minutes` without a write to it) by
`monitoring.sampling.decide_project`, never at ingest: a late error span must still keep its trace.
A dropped trace keeps its row and every call's numbers (the rollups counted them at ingest); only
its payloads (input, output, metadata of the trace and its observations) are emptied, through
`ingest.writer.empty_payloads`.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel
from tenancy.planes import Plane


class SamplingPolicy(models.Model):
    PLANE = Plane.CONTROL

    project = models.OneToOneField("tenancy.Project", on_delete=models.CASCADE, related_name="sampling_policy")
    enabled = models.BooleanField(default=False)
    # The share of the "normal" traces (no error, refusal or outlier) that keep their payloads.
    keep_share = models.FloatField(default=0.10)
    # A trace is decided once nothing was written to it for this long.
    settle_minutes = models.PositiveIntegerField(default=10)
    # Outliers, kept whatever the share: a call (or the trace's total) above a fixed cost or latency,
    # or a call slower than the recent pNN latency of the same feature and model (rollups, 7 days).
    cost_threshold = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    latency_threshold_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_percentile = models.PositiveSmallIntegerField(null=True, blank=True, default=99)
    percentile_min_calls = models.PositiveIntegerField(default=100)  # below this, no pNN is trusted
    # Only traces first written after sampling was (last) switched on are decided.
    enabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "sampling policies"

    def __str__(self) -> str:
        return f"{self.project_id}: {'on' if self.enabled else 'off'} {self.keep_share:.0%}"


class SamplingReason(models.TextChoices):
    ERROR = "error", "kept: an error"
    REFUSAL = "refusal", "kept: a refusal"
    COST = "cost_outlier", "kept: cost above the threshold"
    LATENCY = "latency_outlier", "kept: latency above the threshold"
    LATENCY_PNN = "latency_pnn", "kept: latency above the recent pNN of its feature and model"
    SHARE = "share", "kept: in the sampled share"
    DROPPED = "dropped", "dropped: payloads emptied"


class SamplingDecision(DataPlaneModel):
    """One per decided trace of a project with sampling on (what makes a trace "decided")."""

    pk = models.CompositePrimaryKey("project_id", "trace_id")
    trace_id = models.CharField(max_length=200)
    kept = models.BooleanField()
    reason = models.CharField(max_length=16, choices=SamplingReason.choices)
    # The client SDK's own sample rate for this trace when it told us (trace metadata `sample_rate`,
    # or an OTel `ot=th:` trace state), so that counts can be scaled by 1 / rate.
    client_sample_rate = models.FloatField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["project_id", "-decided_at"], name="sampling_project_time")]
