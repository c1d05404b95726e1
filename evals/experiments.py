"""Experiments that arrive as spans become dataset runs.

The Langfuse v4/v5 SDKs' `run_experiment` (`dataset.run_experiment(...)`) write no run item over
REST: each item's spans carry `langfuse.experiment.*` attributes. The OTel adapter only translates
them (`ingest.contract.ExperimentLink` on the task span's entry); this follower of stored records
(`ingest.pipeline.on_stored`, registered in `EvalsConfig.ready`) enqueues their recording on the
project's region queue once the spans are committed, and `evals.services.record_experiment_items`
writes the run and its items — the one writer of runs, shared with `POST /dataset-run-items`.
The item and run scores the SDK sends go through `POST /api/public/scores` as any score.
"""

from __future__ import annotations

import dataclasses

from celery import shared_task
from django.db import InterfaceError, OperationalError

from evals.services import record_experiment_items
from ingest.contract import Batch
from tenancy.models import Project
from tenancy.tasks import enqueue_for_project


def after_experiment_spans_stored(batch: Batch) -> None:
    links = [dataclasses.asdict(entry.experiment) for entry in batch.observations if entry.experiment is not None]
    if links:
        enqueue_for_project(record_experiment_spans, project=batch.project, kwargs={"links": links})


@shared_task(
    name="evals.record_experiment_spans", acks_late=True,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=8,
)
def record_experiment_spans(*, project_id: str, links: list[dict]) -> dict[str, int]:
    """Idempotent (deterministic run item ids), so a redelivered task adds nothing."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {}
    return record_experiment_items(project=project, links=links)
