"""Region work of the privacy app: erasure runs, their grace-period sweep, and retention.

Tasks take ids only, re-fetch what they need scoped to the project, run on the project's region
queue (`region.<name>`) and are idempotent: a message redelivered after a killed worker (acks_late,
reject on worker lost) continues where the deletes stopped, and counts stay exact because each batch
is counted in its own transaction (privacy/erasure.py)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from tenancy.regions import region_queue
from tenancy.tasks import publish

logger = logging.getLogger(__name__)


@shared_task(name="privacy.run_erasure", acks_late=True)
def run_erasure(*, project_id: str, erasure_id: str) -> bool:
    from privacy.services import erasure_run

    finished = erasure_run(erasure_id=erasure_id, project_id=project_id)
    if not finished:  # the time budget ran out: continue in a new message (counts are kept per batch)
        from privacy.models import ErasureRequest

        request = ErasureRequest.objects.filter(id=erasure_id, project_id=project_id).first()
        if request is not None:
            publish(run_erasure, kwargs={"project_id": project_id, "erasure_id": erasure_id},
                    queue=region_queue(request.region))
    return finished


@shared_task(name="privacy.sweep_erasures")
def sweep_erasures() -> int:
    """Run every open erasure request again: those in their grace period erase late arrivals, those
    past it close (the region forgets the subject), and failed or lost runs are retried."""
    from privacy.models import ErasureRequest

    open_requests = ErasureRequest.objects.filter(closed_at__isnull=True)
    sent = 0
    for erasure_id, project_id, region in open_requests.values_list("id", "project_id", "region").iterator():
        if region not in settings.DATA_REGIONS:
            continue
        sent += publish(run_erasure, kwargs={"project_id": str(project_id), "erasure_id": str(erasure_id)},
                        queue=region_queue(region))
    return sent


@shared_task(name="privacy.enforce_retention", acks_late=True)
def enforce_retention(*, project_id: str, run_id: str | None = None) -> str | None:
    """One project's retention, on its region's queue; continues itself in a new message when the
    time budget runs out (same run: its counts are the sum of its batches)."""
    from privacy.models import JobStatus
    from privacy.services import retention_run

    run = retention_run(project_id=project_id, run_id=run_id)
    if run is not None and run.status == JobStatus.RUNNING:
        publish(enforce_retention, kwargs={"project_id": project_id, "run_id": str(run.id)},
                queue=region_queue(run.project.region))
    return str(run.id) if run is not None else None


@shared_task(name="privacy.schedule_retention")
def schedule_retention() -> int:
    """Nightly: enqueue the retention of every project that has one (its own, or its plan's) on its
    region's queue. Projects with nothing to enforce are skipped here already."""
    from privacy.models import RetentionPolicy
    from privacy.retention import effective_retention
    from tenancy.models import Project

    policies = {p.project_id: p for p in RetentionPolicy.objects.all()}
    sent = 0
    for project in Project.objects.select_related("organization").iterator():
        if project.region not in settings.DATA_REGIONS:
            continue
        effective = effective_retention(project, policies.get(project.id))
        if effective.days is None and effective.payload_days is None:
            continue
        sent += publish(enforce_retention, kwargs={"project_id": str(project.id)}, queue=region_queue(project.region))
    return sent


@shared_task(name="privacy.build_export", acks_late=True)
def build_export(*, project_id: str, export_id: str) -> None:
    from privacy.services import export_build

    export_build(export_id=export_id, project_id=project_id)
