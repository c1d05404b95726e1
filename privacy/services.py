"""Writes of the privacy app: redaction policies (validated, versioned, audited), erasure requests\nand their runs, retention settings and runs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from privacy import erasure
from privacy.models import (
    EXPORT_FILES,
    ErasureKind,
    ErasureRequest,
    ErasureTarget,
    JobStatus,
    RedactionPolicy,
)
from privacy.policy import new_pseudonym_salt
from tenancy.models import AuditAction, Project, User
from tenancy.services import audit_record
from tenancy.tasks import enqueue_for_project

_UNSET = object()
EDITABLE_FIELDS = ("enabled", "default_mode", "detector_modes", "phone_default_region", "custom_patterns")


@transaction.atomic
def redaction_policy_update(
    *,
    project: Project,
    actor: User | None,
    enabled=_UNSET,
    default_mode=_UNSET,
    detector_modes=_UNSET,
    phone_default_region=_UNSET,
    custom_patterns=_UNSET,
    rotate_salt: bool = False,
) -> RedactionPolicy:
    """Create or change the project's policy. Only the arguments given change; the first call
    creates the policy with the defaults (enabled, every detector in mask mode).

    Raises ValidationError (per field) for unknown detectors or modes, unknown phone regions and
    custom patterns that RE2 rejects or that exceed the limits. Rotating the salt changes every
    pseudonym the project produces from now on (old tokens no longer match new ones)."""
    policy = RedactionPolicy.objects.select_for_update().filter(project=project).first()
    created = policy is None
    if created:
        policy = RedactionPolicy(project=project)
    given = {
        "enabled": enabled, "default_mode": default_mode, "detector_modes": detector_modes,
        "phone_default_region": phone_default_region, "custom_patterns": custom_patterns,
    }
    before = {name: getattr(policy, name) for name in EDITABLE_FIELDS}
    for name, value in given.items():
        if value is not _UNSET:
            setattr(policy, name, value)
    if rotate_salt and not created:
        policy.pseudonym_salt = new_pseudonym_salt()
    policy.full_clean(exclude=["project"])
    changes = {
        name: [before[name], getattr(policy, name)]
        for name in EDITABLE_FIELDS
        if created or before[name] != getattr(policy, name)
    }
    if not created and not changes and not rotate_salt:
        return policy
    policy.save()
    data = {"version": policy.version, "changes": changes}
    if created:
        data["created"] = True
    if rotate_salt and not created:
        data["salt_rotated"] = True
    audit_record(
        organization=project.organization, actor=actor, action=AuditAction.REDACTION_POLICY_UPDATED,
        target_type="project", target_id=project.id, data=data,
    )
    return policy


# --- erasure requests ------------------------------------------------------------------------------

logger = logging.getLogger(__name__)

ERASURE_REQUESTED = "erasure.requested"
MAX_SUBJECT_CHARS = 1000  # the trace's user_id and session_id columns
MAX_TRACE_IDS = 10_000
MAX_GRACE_DAYS = 90
# A task works at most this long, then sends itself again (what it deleted stays counted): the
# Celery soft time limit (CELERY_TASK_SOFT_TIME_LIMIT, 60 s) must never cut a batch mid-way.
ERASURE_BUDGET_SECONDS = 40


def subject_hash(*, project: Project, kind: str, subjects: list[str]) -> str:
    """Keyed hash of what an erasure matched: the receipt can prove which subject it covers (hash the
    id again and compare) without the control plane ever holding the id."""
    message = "\x1f".join([str(project.id), kind, *sorted(subjects)]).encode()
    return hmac.new(settings.API_KEY_PEPPER.encode(), message, hashlib.sha256).hexdigest()


def clean_erasure_subjects(kind: str, subjects) -> list[str]:
    if kind not in ErasureKind.values:
        raise ValidationError({"kind": [f"must be one of {', '.join(ErasureKind.values)}"]})
    if not isinstance(subjects, list) or not subjects or not all(isinstance(s, str) and s for s in subjects):
        raise ValidationError({"subjects": ["give a non-empty id (or a non-empty list of trace ids)"]})
    if kind != ErasureKind.TRACES and len(subjects) != 1:
        raise ValidationError({"subjects": ["an erasure by user or session names exactly one id"]})
    if len(subjects) > MAX_TRACE_IDS:
        raise ValidationError({"subjects": [f"at most {MAX_TRACE_IDS} trace ids per request"]})
    if any(len(s) > MAX_SUBJECT_CHARS for s in subjects):
        raise ValidationError({"subjects": [f"ids are at most {MAX_SUBJECT_CHARS} characters"]})
    return sorted(set(subjects))


@transaction.atomic
def erasure_request_create(
    *, project: Project, kind: str, subjects: list[str], via: str, actor: User | None = None,
    api_key=None, grace_days: int | None = None,
) -> ErasureRequest:
    """Record an erasure request and queue its job on the project's region queue (after commit).

    The receipt (control plane) keeps a keyed hash of the subject; the subject itself is written to
    the project's region only (`ErasureTarget`). Raises ValidationError for an unusable request."""
    from privacy import tasks

    subjects = clean_erasure_subjects(kind, subjects)
    grace = settings.ERASURE_GRACE_DAYS if grace_days is None else grace_days
    if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= MAX_GRACE_DAYS:
        raise ValidationError({"grace_days": [f"a whole number of days from 0 to {MAX_GRACE_DAYS}"]})
    now = timezone.now()
    request = ErasureRequest.objects.create(
        project=project, region=project.region, kind=kind,
        subject_hash=subject_hash(project=project, kind=kind, subjects=subjects), subject_count=len(subjects),
        requested_by=actor if isinstance(actor, User) else None, requested_by_key=api_key, requested_via=via,
        created_at=now, grace_until=now + timedelta(days=grace),
    )
    # In the region's own database (outside this transaction): if it fails, the receipt rolls back.
    ErasureTarget.objects.for_project(project).create(id=request.id, kind=kind, subjects=subjects, created_at=now)
    audit_record(
        organization=project.organization, actor=actor or (f"api key {api_key.public_key}" if api_key else None),
        action=ERASURE_REQUESTED, target_type="erasure_request", target_id=request.id,
        data={"project_id": str(project.id), "kind": kind, "subject_hash": request.subject_hash,
              "subject_count": len(subjects), "via": via, "grace_days": grace},
    )
    enqueue_for_project(tasks.run_erasure, project=project, kwargs={"erasure_id": str(request.id)})
    return request


def erasure_run(*, erasure_id, project_id=None, budget_seconds: float | None = ERASURE_BUDGET_SECONDS,
                on_batch=None) -> bool:
    """Run (or continue) an erasure: delete what its subject matches, then write the receipt's counts
    and verification. Idempotent; True when this run finished, False when the budget ran out (the
    caller sends it again). Closes the request once its grace period is over. With `project_id` (the
    task's message) only that project's request is run: any other id is one it does not have."""
    requests = ErasureRequest.objects.select_related("project").filter(id=erasure_id)
    if project_id is not None:
        requests = requests.filter(project_id=project_id)
    request = requests.first()
    if request is None or request.closed_at is not None:
        return True
    project = request.project
    target = ErasureTarget.objects.for_project(project).filter(id=request.id).first()
    if target is None:  # forgotten already (closed by another run): nothing can match any more
        _close(request)
        return True
    ErasureRequest.objects.filter(id=request.id).update(
        status=JobStatus.RUNNING, started_at=request.started_at or timezone.now(), error=""
    )
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    deleter = erasure.Deleter(project=project, job_id=request.id, deadline=deadline, on_batch=on_batch)
    try:
        erasure.erase_subject(deleter, kind=target.kind, subjects=list(target.subjects))
    except erasure.Incomplete:
        counts = erasure.job_counts(project, request.id)
        if request.counts.get(EXPORT_FILES):  # not a region batch: carried from the run that deleted them
            counts[EXPORT_FILES] = request.counts[EXPORT_FILES]
        ErasureRequest.objects.filter(id=request.id).update(counts=counts)
        return False
    except Exception as exc:
        ErasureRequest.objects.filter(id=request.id).update(
            status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
            counts=_counts_or(project, request),
        )
        raise
    verification = erasure.verify_subject(deleter, kind=target.kind, subjects=list(target.subjects))
    now = timezone.now()
    counts = erasure.job_counts(project, request.id)
    # Export files hold copies of what was just deleted: every export built before now goes too.
    files = request.counts.get(EXPORT_FILES, 0) + erase_exports(project=project, before=now)
    if files:
        counts[EXPORT_FILES] = files
    ErasureRequest.objects.filter(id=request.id).update(
        status=JobStatus.DONE if not any(verification.values()) else JobStatus.FAILED,
        error="" if not any(verification.values()) else "rows still matched after the erasure; it runs again",
        counts=counts, verification=verification, verified_at=now, finished_at=now,
    )
    if request.grace_until is None or request.grace_until <= now:
        request.refresh_from_db()
        _close(request)
    return True


def _counts_or(project, request) -> dict:
    try:
        return erasure.job_counts(project, request.id)
    except Exception:  # noqa: BLE001 - the region may be what failed; keep the last known counts
        return request.counts


def _close(request: ErasureRequest) -> None:
    """End of the grace period: the region forgets the subject; the receipt keeps its hash."""
    ErasureTarget.objects.for_project(request.project).filter(id=request.id).delete()
    ErasureRequest.objects.filter(id=request.id, closed_at__isnull=True).update(closed_at=timezone.now())


# --- retention -------------------------------------------------------------------------------------

RETENTION_UPDATED = "retention.updated"
MAX_RETENTION_DAYS = 3650
_KEEP = object()


@transaction.atomic
def retention_policy_update(*, project: Project, actor: User | None, days=_KEEP, payload_days=_KEEP):
    """Set the project's retention (None = keep; the plan's days apply when `days` is None).
    `payload_days` must be shorter than `days` when both are set. Audited."""
    from privacy.models import RetentionPolicy

    policy = RetentionPolicy.objects.select_for_update().filter(project=project).first()
    created = policy is None
    if created:
        policy = RetentionPolicy(project=project)
    before = {"days": policy.days, "payload_days": policy.payload_days}
    if days is not _KEEP:
        policy.days = days
    if payload_days is not _KEEP:
        policy.payload_days = payload_days
    errors = {}
    for name in ("days", "payload_days"):
        value = getattr(policy, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_RETENTION_DAYS):
            errors[name] = [f"a whole number of days from 1 to {MAX_RETENTION_DAYS}, or null to keep"]
    if not errors and policy.days is not None and policy.payload_days is not None and policy.payload_days >= policy.days:
        errors["payload_days"] = ["must be shorter than days (payloads go first; rows and rollups stay longer)"]
    if errors:
        raise ValidationError(errors)
    after = {"days": policy.days, "payload_days": policy.payload_days}
    if not created and before == after:
        return policy
    policy.updated_at = timezone.now()
    policy.save()
    audit_record(
        organization=project.organization, actor=actor, action=RETENTION_UPDATED, target_type="project",
        target_id=project.id, data={"before": before, "after": after},
    )
    return policy


RETENTION_BUDGET_SECONDS = 40


def retention_run(*, project_id, run_id=None, budget_seconds: float | None = RETENTION_BUDGET_SECONDS,
                  now=None, on_batch=None):
    """Enforce the project's effective retention once: delete expired traces with everything
    attached, then empty expired payloads. Returns the RetentionRun (its `status` is `running` when
    the budget ran out: call again with its id). Nothing to enforce: no run is recorded (None)."""
    from privacy.models import RetentionPolicy, RetentionRun
    from privacy.retention import effective_retention

    project = Project.objects.select_related("organization").filter(id=project_id).first()
    if project is None:
        return None
    if run_id:
        run = RetentionRun.objects.filter(id=run_id, project=project).first()
    else:
        # A first message carries no run id; redelivered after its worker died (acks late), it goes on
        # with the run that worker left running instead of starting a second, so no receipt stays
        # `running` for ever and the counts of one enforcement are not split over two runs.
        run = RetentionRun.objects.filter(project=project, status=JobStatus.RUNNING).order_by("-created_at").first()
    if run is None:
        effective = effective_retention(project, RetentionPolicy.objects.filter(project=project).first())
        if effective.days is None and effective.payload_days is None:
            return None
        now = now or timezone.now()
        run = RetentionRun.objects.create(
            project=project, status=JobStatus.RUNNING,
            cutoff=now - timedelta(days=effective.days) if effective.days is not None else None,
            payload_cutoff=now - timedelta(days=effective.payload_days) if effective.payload_days is not None else None,
        )
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    deleter = erasure.Deleter(project=project, job_id=run.id, deadline=deadline, on_batch=on_batch)
    try:
        erasure.enforce_retention(deleter, cutoff=run.cutoff, payload_cutoff=run.payload_cutoff)
    except erasure.Incomplete:
        RetentionRun.objects.filter(id=run.id).update(counts=erasure.job_counts(project, run.id))
        run.refresh_from_db()
        return run
    except Exception as exc:
        RetentionRun.objects.filter(id=run.id).update(
            status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now())
        raise
    RetentionRun.objects.filter(id=run.id).update(
        status=JobStatus.DONE, counts=erasure.job_counts(project, run.id), finished_at=timezone.now())
    run.refresh_from_db()
    return run


# --- exports ---------------------------------------------------------------------------------------

EXPORT_REQUESTED = "export.requested"
EXPORT_DOWNLOADED = "export.downloaded"


@transaction.atomic
def export_create(*, project: Project, since=None, until=None, user_id: str | None = None, actor: User | None = None,
                  api_key=None):
    """Record an export and queue its build on the project's region queue. One end user's export
    keeps the id in the region only (the control plane row holds its keyed hash)."""
    from privacy import tasks
    from privacy.models import ExportJob

    if since is not None and until is not None and since >= until:
        raise ValidationError({"until": ["must be after since"]})
    if user_id is not None:
        clean_erasure_subjects(ErasureKind.USER, [user_id])
    export = ExportJob.objects.create(
        project=project, region=project.region, since=since, until=until,
        user_hash=subject_hash(project=project, kind=ErasureKind.USER, subjects=[user_id]) if user_id else "",
        requested_by=actor if isinstance(actor, User) else None, requested_by_key=api_key,
    )
    if user_id is not None:
        ErasureTarget.objects.for_project(project).create(id=export.id, kind=ErasureKind.USER, subjects=[user_id])
    audit_record(
        organization=project.organization, actor=actor or (f"api key {api_key.public_key}" if api_key else None),
        action=EXPORT_REQUESTED, target_type="export", target_id=export.id,
        data={"project_id": str(project.id), "since": since.isoformat() if since else None,
              "until": until.isoformat() if until else None, "user_hash": export.user_hash},
    )
    enqueue_for_project(tasks.build_export, project=project, kwargs={"export_id": str(export.id)})
    return export


def export_build(*, export_id, project_id=None) -> None:
    """Build a queued export (idempotent: a finished one is left alone; a rerun rewrites the file).
    With `project_id` (the task's message) only that project's export is built."""
    from privacy import exports
    from privacy.models import ExportJob

    found = ExportJob.objects.select_related("project").filter(id=export_id)
    if project_id is not None:
        found = found.filter(project_id=project_id)
    export = found.first()
    if export is None or export.status == JobStatus.DONE or export.erased_at is not None:
        return
    ExportJob.objects.filter(id=export.id).update(status=JobStatus.RUNNING, traces_done=0)

    def progress(done: int, total: int) -> None:  # one short control-plane UPDATE per batch of traces
        ExportJob.objects.filter(id=export.id).update(traces_done=done, traces_total=total)

    try:
        exports.build(export=export, on_progress=progress)
    except Exception as exc:
        ExportJob.objects.filter(id=export.id).update(status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    ExportJob.objects.filter(id=export.id).update(
        status=JobStatus.DONE, file_name=export.file_name, size=export.size, counts=export.counts,
        finished_at=timezone.now(),
    )
    # The end user's id is needed no longer.
    ErasureTarget.objects.for_project(export.project).filter(id=export.id).delete()
    # An erasure that finished while this export was building found no file to delete yet but marked
    # the export erased: the file just written may hold the erased data, so it goes now.
    if ExportJob.objects.filter(id=export.id, erased_at__isnull=False).exists():
        exports.delete_file(export)


def export_downloaded(*, export, client: str) -> None:
    audit_record(
        organization=export.project.organization, actor=None, action=EXPORT_DOWNLOADED, target_type="export",
        target_id=export.id, data={"project_id": str(export.project_id), "client": client[:200]},
    )


def erase_exports(*, project: Project, before) -> int:
    """Delete the files of every export of the project built before `before` (exports are copies of
    the data an erasure removes; they can be built again). Returns how many files went."""
    from privacy import exports
    from privacy.models import ExportJob

    erased = 0
    for export in ExportJob.objects.filter(project=project, erased_at__isnull=True, created_at__lt=before):
        exports.delete_file(export)
        ExportJob.objects.filter(id=export.id).update(erased_at=timezone.now())
        ErasureTarget.objects.for_project(project).filter(id=export.id).delete()
        erased += 1
    return erased


# --- re-redaction ----------------------------------------------------------------------------------

REREDACTION_REQUESTED = "reredaction.requested"
# Runs in the ingest app (the only writer of telemetry rows), sent by name: this layer does not import it.
REREDACT_TASK = "ingest.reredact"


class _TaskByName:
    def __init__(self, name: str):
        self.name = name

    def apply_async(self, *, kwargs: dict, queue: str):
        from celery import current_app

        return current_app.send_task(self.name, kwargs=kwargs, queue=queue)


@transaction.atomic
def reredaction_create(*, project: Project, since, until, actor: User | None = None):
    """Record a re-redaction of the project's stored data in [since, until) and queue it (after commit)
    on the project's region queue."""
    from privacy.models import ReredactionRun

    if since is None or until is None or since >= until:
        raise ValidationError({"until": ["give since and until, until after since"]})
    run = ReredactionRun.objects.create(project=project, since=since, until=until,
                                        requested_by=actor if isinstance(actor, User) else None)
    audit_record(
        organization=project.organization, actor=actor, action=REREDACTION_REQUESTED, target_type="project",
        target_id=project.id, data={"run_id": str(run.id), "since": since.isoformat(), "until": until.isoformat()},
    )
    enqueue_for_project(_TaskByName(REREDACT_TASK), project=project, kwargs={"run_id": str(run.id)})
    return run
