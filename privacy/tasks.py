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

    finished = erasure_run(erasure_id=erasure_id)
    if not finished:  # the time budget ran out: continue in a new message (counts are kept per batch)
        from privacy.models import ErasureRequest

        request = ErasureRequest.objects.filter(id=erasure_id).first()
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
