"""Experiments that arrive as spans become dataset runs.

The Langfuse v4/v5 SDKs' `run_experiment` (`dataset.run_experiment(...)`) write no run item over
REST: each item's spans carry `langfuse.experiment.*` attributes. The OTel adapter only translates
them: kept under the observation's `metadata["experiment"]`, with an `ingest.contract.ExperimentLink`
marking the task span's entry. This follower of stored records (`ingest.pipeline.on_stored`,
registered in `EvalsConfig.ready`) enqueues the task spans' ids on the project's region queue once
the spans are committed; the task reads the experiment back from the stored observations and
`evals.services.record_experiment_items` writes the run and its items — the one writer of runs,
shared with `POST /dataset-run-items`. The item and run scores the SDK sends go through
`POST /api/public/scores` as any score.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.db.models.fields.json import KeyTransform

from evals.services import record_experiment_items
from ingest.contract import Batch
from tenancy.models import Project
from tenancy.tasks import enqueue_for_project
from traces.models import Observation

# What the message holds of each link: ids, which name rows of ours (the dataset and its item) or the
# span itself. The run name, description and metadata are customer content: the task reads them from
# the stored span, redacted as every stored record, so the broker never holds them.
LINK_IDS = ("observation_id", "trace_id", "experiment_id", "dataset_id", "item_id")


def after_experiment_spans_stored(batch: Batch) -> None:
    task_spans = [
        {name: getattr(entry.experiment, name) for name in LINK_IDS}
        for entry in batch.observations if entry.experiment is not None
    ]
    if task_spans:
        enqueue_for_project(record_experiment_spans, project=batch.project, kwargs={"task_spans": task_spans})


def stored_experiment_links(project: Project, task_spans: list[dict]) -> tuple[list[dict], int]:
    """The links of these task spans (`LINK_IDS` each) completed from the project's stored span: its
    `metadata["experiment"]` gives the run name, description, metadata and item version. Returns the
    links and how many spans were skipped: a span this project has no observation for under that
    trace (another project's ids look the same as ones never stored), or one whose stored experiment
    has no run name any more (its payloads emptied since: a sampled-out trace)."""
    ids = {span.get("observation_id") for span in task_spans} - {None}
    stored = {
        observation_id: (trace_id, experiment if isinstance(experiment, dict) else {})
        for observation_id, trace_id, experiment in Observation.objects.for_project(project)
        .filter(id__in=[i for i in ids if isinstance(i, str)])
        .annotate(experiment=KeyTransform("experiment", "metadata"))
        .values_list("id", "trace_id", "experiment")
    }
    links, skipped = [], 0
    for span in task_spans:
        trace_id, experiment = stored.get(span.get("observation_id"), (None, {}))
        if trace_id is None or trace_id != span.get("trace_id") or not experiment.get("name"):
            skipped += 1
            continue
        links.append({
            **{name: span.get(name) for name in LINK_IDS}, "run_name": experiment["name"],
            "description": experiment.get("description"), "metadata": experiment.get("metadata"),
            "item_version": experiment.get("item_version"),
        })
    return links, skipped


@shared_task(
    name="evals.record_experiment_spans", acks_late=True,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=8,
)
def record_experiment_spans(*, project_id: str, task_spans: list[dict] | None = None,
                            links: list[dict] | None = None) -> dict[str, int]:
    """Record the experiment items of `task_spans` (see `LINK_IDS`). Idempotent (deterministic run
    item ids), so a redelivered task adds nothing.

    `links` is how messages queued before the ids-only ones carried the links, content and all: only
    their ids are read, so they record what the stored spans say, as new messages do."""
    if links is not None:
        task_spans = [{name: link.get(name) for name in LINK_IDS} for link in links if isinstance(link, dict)]
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not task_spans:
        return {}
    found, skipped = stored_experiment_links(project, task_spans)
    counts = record_experiment_items(project=project, links=found)
    if skipped:
        counts["not_stored"] = skipped
    return counts
