"""Region work that writes telemetry rows, and therefore runs here, through the one writer.

`ingest.reredact`: the privacy app records a re-redaction request (`privacy.ReredactionRun`, control
plane) and sends this task by name to the project's region queue; it applies the project's current
policy to the stored rows of the run's time range with `ingest.writer.reredact_stored` and writes the
counts into the run's record.

`ingest.reprice`: the admin's "Re-price stored calls" records a `pricing.RepriceRun` (control plane)
and sends this task to the project's region queue; it re-prices the run's calls batch by batch with
`ingest.writer.reprice_batches`, adding each batch's counts to the run (its progress), and continues
itself in a new message when the time budget runs out."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="ingest.reredact", acks_late=True)
def reredact(*, project_id: str, run_id: str) -> None:
    from ingest import writer
    from privacy.models import JobStatus, ReredactionRun

    run = ReredactionRun.objects.select_related("project").filter(id=run_id, project_id=project_id).first()
    if run is None or run.status == JobStatus.DONE:
        return
    ReredactionRun.objects.filter(id=run.id).update(status=JobStatus.RUNNING)
    try:
        # Idempotent: a rerun after a killed worker applies the same policy again; already redacted
        # values are left as they are (a mask is not found twice).
        report = writer.reredact_stored(project=run.project, since=run.since, until=run.until)
    except Exception as exc:
        ReredactionRun.objects.filter(id=run.id).update(
            status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now())
        raise
    ReredactionRun.objects.filter(id=run.id).update(status=JobStatus.DONE, counts=report, finished_at=timezone.now())


@shared_task(name="ingest.reprice", acks_late=True)
def reprice(*, project_id: str, run_id: str) -> bool:
    from ingest.services import reprice_run
    from pricing.models import RepriceRun
    from tenancy.regions import region_queue
    from tenancy.tasks import publish

    finished = reprice_run(run_id=run_id, project_id=project_id)
    if not finished:  # the time budget ran out: continue in a new message (the run keeps its position)
        run = RepriceRun.objects.select_related("project").filter(id=run_id, project_id=project_id).first()
        if run is not None:
            publish(reprice, kwargs={"project_id": project_id, "run_id": run_id}, queue=region_queue(run.project.region))
    return finished
