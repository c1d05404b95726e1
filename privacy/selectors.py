"""Reads of redaction policies, and previews of what a policy removes (nothing is stored)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from privacy.engine import default_redactor, redactor_for
from privacy.models import RedactionPolicy

# --- Redaction policy and previews ---------------------------------------------------------------


def redaction_policy_of(*, project):
    """The project's saved redaction policy (enabled or not), or None when it has never had one."""
    return RedactionPolicy.objects.filter(project=project).first()


class RedactionPreviewFailed(Exception):
    """The policy could not be applied to this input (nothing about the input is in the message)."""


@dataclass(frozen=True)
class RedactionPreview:
    value: Any
    counts: dict[str, int]
    source: str  # "project": the project's saved policy; "defaults": every detector, mask mode
    applied_at_ingest: bool  # whether ingestion applies this policy now (saved and enabled)
    version: int | None


def redaction_preview(*, project, value) -> RedactionPreview:
    """`value` (a string or any JSON value) as the project's policy would store it, with counts by
    detector. The saved policy is applied even while disabled, so a team can try it before turning
    it on; a project without one gets the defaults its first policy starts from. Stores nothing.

    Raises RedactionPreviewFailed when the redactor fails (fail closed: nothing is returned) and lets
    database errors through (the caller answers 503)."""
    policy = redaction_policy_of(project=project)
    try:
        if policy is None:
            redactor = default_redactor()
        else:
            redactor = redactor_for(policy)
        if isinstance(value, str):
            redacted, counts = redactor.redact_text(value)
        else:
            counts = Counter()
            redacted = redactor.redact_value(value, counts)
    except Exception as exc:
        raise RedactionPreviewFailed(type(exc).__name__) from exc
    return RedactionPreview(
        value=redacted,
        counts={kind: n for kind, n in sorted(counts.items()) if n},
        source="defaults" if policy is None else "project",
        applied_at_ingest=bool(policy is not None and policy.enabled),
        version=None if policy is None else policy.version,
    )


# --- erasure receipts and retention -------------------------------------------------------------


def erasure_request_get(*, project, erasure_id):
    """The project's erasure request with that id, or None (another project's counts as none)."""
    import uuid

    from privacy.models import ErasureRequest

    try:
        erasure_id = uuid.UUID(str(erasure_id))
    except ValueError:
        return None
    return ErasureRequest.objects.filter(project=project, id=erasure_id).first()


@dataclass(frozen=True)
class DeletionProgress:
    """What an erasure request or a retention run has done so far."""

    deleted: int  # rows deleted
    emptied: int  # rows whose payloads were emptied (retention; their `<label>.payload` counts)
    files: int  # export files deleted (erasure requests)
    traces: int  # trace rows among `deleted`
    live: bool  # summed from the region's batch records just now; False: the counts the job saved last


def deletion_progress(*, job) -> DeletionProgress:
    """Progress of `job` (an ErasureRequest or a RetentionRun) for its admin page.

    While it is queued or running its saved `counts` lag behind: a run writes them when a time slice
    ends (about every 40 s). The region's batch records are exact at every committed batch and cheap
    to sum (one indexed row per batch of up to 2,000 rows), so they are read instead; a region that
    does not answer leaves the saved counts. Once the job has stopped its saved counts are final.

    How much is left is not known: neither job counts what it will delete beforehand (for a retention
    run, or an end user's or session's erasure, that is a count over the project's largest tables)."""
    from django.db import DatabaseError

    from privacy.erasure import job_counts
    from privacy.models import EXPORT_FILES

    counts = dict(job.counts or {})
    if job.in_progress:
        try:
            live = job_counts(job.project, job.id)
        except DatabaseError:
            pass
        else:
            return deletion_totals(counts={**live, **{k: v for k, v in counts.items() if k == EXPORT_FILES}},
                                   live=True)
    return deletion_totals(counts=counts)


def deletion_totals(*, counts: dict, live: bool = False) -> DeletionProgress:
    """A job's counts (table label -> rows) added up: rows deleted, payloads emptied, files deleted."""
    from privacy.models import EXPORT_FILES

    return DeletionProgress(
        deleted=sum(n for label, n in counts.items() if label != EXPORT_FILES and not label.endswith(".payload")),
        emptied=sum(n for label, n in counts.items() if label.endswith(".payload")),
        files=counts.get(EXPORT_FILES, 0),
        traces=counts.get("traces.Trace", 0),
        live=live,
    )


# --- exports ---------------------------------------------------------------------------------------


def export_list(*, project):
    """The project's exports, newest first."""
    from privacy.models import ExportJob

    return ExportJob.objects.filter(project=project).select_related("requested_by").order_by("-created_at")


def export_get(*, project, export_id):
    """The project's export with that id, or None (another project's counts as none)."""
    import uuid

    from privacy.models import ExportJob

    try:
        export_id = uuid.UUID(str(export_id))
    except ValueError:
        return None
    return ExportJob.objects.filter(project=project, id=export_id).select_related("requested_by").first()
