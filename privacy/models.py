"""The PII redaction policy of a project (control plane); erasure receipts, retention settings and
runs (control plane) with their region-side targets and per-batch counts (data plane)."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from privacy import policy as redaction_policy
from tenancy.dataplane import DataPlaneModel
from tenancy.planes import Plane


class RedactionPolicy(models.Model):
    """A project's PII redaction settings. Control plane: it is configuration, not customer content.

    No row, or `enabled=False`, means redaction is off. Saving bumps `version`, which retires the
    compiled redactors and the cached copy (see `privacy.engine`; privacy/signals.py drops the cached
    copy on every save and delete). Writes go through `privacy.services.redaction_policy_update`
    (validated and audited)."""

    PLANE = Plane.CONTROL

    project = models.OneToOneField("tenancy.Project", on_delete=models.CASCADE, related_name="redaction_policy")
    enabled = models.BooleanField(default=True)
    # Mode of every detector without an entry in `detector_modes`.
    default_mode = models.CharField(
        max_length=16, choices=redaction_policy.RedactionMode.choices, default=redaction_policy.RedactionMode.MASK
    )
    detector_modes = models.JSONField(default=dict, blank=True)  # detector name -> mode
    # Region for numbers written without +country code ("" = only international numbers).
    phone_default_region = models.CharField(max_length=2, blank=True, default=redaction_policy.DEFAULT_PHONE_REGION)
    custom_patterns = models.JSONField(default=list, blank=True)  # [{"label", "pattern", "mode"}]
    # Random per policy; with the server pepper and project id it keys pseudonym HMACs.
    pseudonym_salt = models.CharField(max_length=64, default=redaction_policy.new_pseudonym_salt, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        # Moved here from traces/; the table kept its name (no data moved).
        db_table = "traces_redactionpolicy"
        verbose_name_plural = "redaction policies"

    def __str__(self) -> str:
        return f"redaction policy of project {self.project_id} (v{self.version})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        for name, cleaner in (
            ("detector_modes", redaction_policy.clean_detector_modes),
            ("custom_patterns", redaction_policy.clean_custom_patterns),
            ("phone_default_region", redaction_policy.clean_phone_region),
        ):
            try:
                setattr(self, name, cleaner(getattr(self, name)))
            except ValidationError as exc:
                errors[name] = exc.messages
        if self.default_mode not in redaction_policy.MODES:
            errors["default_mode"] = [f"mode must be one of {', '.join(sorted(redaction_policy.MODES))}"]
        if not self.pseudonym_salt:
            errors["pseudonym_salt"] = ["a pseudonymization salt is required"]
        if errors:
            raise ValidationError(errors)

    def mode_for(self, detector: str) -> str:
        return self.detector_modes.get(detector, self.default_mode)

    def save(self, *args, **kwargs):
        if not self._state.adding:
            self.version += 1
        self.updated_at = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "version", "updated_at"}
        super().save(*args, **kwargs)

    def cache_payload(self) -> dict:
        return {
            "id": self.id, "project_id": self.project_id, "enabled": self.enabled, "default_mode": self.default_mode,
            "detector_modes": self.detector_modes, "phone_default_region": self.phone_default_region,
            "custom_patterns": self.custom_patterns, "pseudonym_salt": self.pseudonym_salt,
            "version": self.version, "created_at": self.created_at, "updated_at": self.updated_at,
        }


# --- erasure, retention and exports ----------------------------------------------------------
#
# The control-plane rows below are receipts and settings: they never hold an end user's id in the
# clear (a keyed hash only). What a job needs to find the rows — the raw user id, session id or trace
# ids — stays in the project's region (`ErasureTarget`), next to the data it names, and is deleted
# when the request closes. Per-batch counts live in the region too (`DeletionBatch`), written in the
# same transaction as the delete they count, so a job killed mid-way and run again never counts a
# row twice.


class ErasureKind(models.TextChoices):
    USER = "user", "end user"
    SESSION = "session", "session"
    TRACES = "traces", "trace ids"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobRecord(models.Model):
    """What the record of every background job on a project keeps (erasure requests, retention runs,
    exports, re-redactions, re-pricings; all control plane): its id, its state, why it failed, when it
    was asked for and when it ended. Each declares its own plane and project."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def in_progress(self) -> bool:
        """Queued or running: its counts may still grow (the pages showing it reload themselves)."""
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)


# The key of an erasure request's `counts` for the export files it deleted: files, not rows, and counted
# in the control plane (no region batch records them).
EXPORT_FILES = "privacy.ExportFile"


class ErasureRequest(JobRecord):
    """The receipt of one erasure request (control plane): who asked, when, what was matched (as a
    keyed hash), the rows deleted per kind, when it finished and what the verification query found."""

    PLANE = Plane.CONTROL

    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="erasure_requests")
    region = models.CharField(max_length=32, editable=False)
    kind = models.CharField(max_length=8, choices=ErasureKind.choices)
    # HMAC-SHA256 (key: API_KEY_PEPPER) of the project, kind and subject (trace ids: sorted, joined):
    # proves later which subject a receipt covers without keeping it.
    subject_hash = models.CharField(max_length=64, editable=False)
    subject_count = models.PositiveIntegerField(default=1, editable=False)  # trace ids asked for
    requested_by = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    requested_by_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    requested_via = models.CharField(max_length=32, editable=False)  # public-api, api, admin, langfuse-delete
    counts = models.JSONField(default=dict, blank=True)  # table label -> rows deleted (late arrivals too)
    verification = models.JSONField(default=dict, blank=True)  # table label -> rows still matching (all 0)
    started_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # Until then a periodic job erases late arrivals for the same subject; after it the region forgets
    # the subject (`ErasureTarget` deleted) and `closed_at` is set.
    grace_until = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "-created_at"], name="erasure_project_created"),
            models.Index(fields=["closed_at", "grace_until"], name="erasure_open"),
        ]

    def __str__(self) -> str:
        return f"erasure {self.id} ({self.kind}, {self.status})"


class ErasureTarget(DataPlaneModel):
    """What an open erasure request matches, in the clear, in the project's region only: the user id,
    session id or trace ids. Deleted when the request closes (after its grace period)."""

    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField()  # the ErasureRequest's id
    kind = models.CharField(max_length=8, choices=ErasureKind.choices)
    subjects = ArrayField(models.TextField())
    created_at = models.DateTimeField(default=timezone.now)


class DeletionBatch(DataPlaneModel):
    """Rows one batch of an erasure or retention job deleted (or emptied) from one table, written in
    the transaction that deleted them: a job's counts are the sum of its batches, exact across crashes."""

    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField(default=uuid.uuid4)
    job_id = models.UUIDField()
    table = models.CharField(max_length=100)  # model label, e.g. traces.Observation
    rows = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["project_id", "job_id"], name="deletionbatch_job")]


class RetentionPolicy(models.Model):
    """How long a project keeps its data (control plane). `days`: traces older than that are deleted
    with everything attached. `payload_days` (shorter): after it inputs, outputs and metadata are
    emptied but rows and rollups stay, so metrics outlive prompts. None = keep (or the plan's days)."""

    PLANE = Plane.CONTROL

    project = models.OneToOneField("tenancy.Project", on_delete=models.CASCADE, related_name="retention_policy")
    days = models.PositiveIntegerField(null=True, blank=True)
    payload_days = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"retention of project {self.project_id}: {self.days} days (payloads {self.payload_days})"


class RetentionRun(JobRecord):
    """One enforcement run of a project's retention: what it deleted (rows per table) and emptied."""

    PLANE = Plane.CONTROL

    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="retention_runs")
    cutoff = models.DateTimeField(null=True, blank=True)
    payload_cutoff = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"], name="retentionrun_project_created")]

    def __str__(self) -> str:
        return f"retention run {self.id} ({self.status})"


class ExportJob(JobRecord):
    """An export of a project's data (all of it, a time range, or one end user's) as gzip JSONL, built
    in the project's region and stored there; downloaded through an expiring signed link."""

    PLANE = Plane.CONTROL

    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="exports")
    region = models.CharField(max_length=32, editable=False)
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    # One end user's export: the id itself waits in the region (`ErasureTarget`, same id) until built.
    user_hash = models.CharField(max_length=64, blank=True, default="")
    file_name = models.CharField(max_length=300, blank=True, default="")
    size = models.BigIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)  # rows per table
    # Progress of the build: traces written of those the export matched when it started (traces that
    # arrive during the build may push `traces_done` past `traces_total`).
    traces_total = models.BigIntegerField(null=True, blank=True)
    traces_done = models.BigIntegerField(default=0)
    requested_by = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    requested_by_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    erased_at = models.DateTimeField(null=True, blank=True)  # its file deleted by an erasure request

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"], name="export_project_created")]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"

    @property
    def percent(self) -> int | None:
        """How far the build is, 0-100 (100 once done; None before it counted what it matches)."""
        if self.status == JobStatus.DONE:
            return 100
        if not self.traces_total:
            return None if self.traces_total is None else 0
        return min(99, int(100 * self.traces_done / self.traces_total))


class ReredactionRun(JobRecord):
    """An on-demand pass of the project's current redaction policy over its stored data of a time range
    (after the policy was tightened), run by the ingest writer in the project's region."""

    PLANE = Plane.CONTROL

    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="reredaction_runs")
    since = models.DateTimeField()
    until = models.DateTimeField()
    counts = models.JSONField(default=dict, blank=True)  # examined, changed, emptied, findings, policy_version
    requested_by = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"], name="reredaction_project_created")]

    def __str__(self) -> str:
        return f"re-redaction {self.id} ({self.status})"
