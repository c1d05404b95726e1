"""Datasets and their runs: data plane (items hold customer content), in the project's region.

- `Dataset`: one per name in a project (names may contain `/`), with optional JSON Schemas that
  every item's input and expected output must satisfy.
- `DatasetItem`: ids are the client's (1–255 characters) and unique per project across all of its
  datasets, as in Langfuse, so a client can upsert an item by id without naming its dataset twice.
- `DatasetRun`: one per name in a dataset; created by the first run item that names it. It is the
  Langfuse *experiment*: its id is a string, the stable experiment id the SDKs compute (first 16 hex
  of a SHA-256 over project, dataset and run name; `evals.services.stable_experiment_id`), or the id
  an SDK chose; runs made before that keep their UUID (as text).
- `DatasetRunItem`: links an item to the trace (and optionally the observation) a run produced.

No Django foreign keys: composite primary keys cannot be their targets yet, so the relations are
plain columns with composite foreign keys (including project_id) added in SQL by migration 0002.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel

MAX_ITEM_ID_LENGTH = 255
# Experiment (run) ids are the SDK's: 16 hex from the stable hash, 32 hex from `create_trace_id`, a
# UUID for older runs. 64 is what an evaluation job stores of them (`EvalJob.dataset_run_id`).
MAX_RUN_ID_LENGTH = 64


def _new_run_id() -> str:
    return str(uuid.uuid4())


class DatasetItemStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class Dataset(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField(default=uuid.uuid4)
    name = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    input_schema = models.JSONField(null=True, blank=True)
    expected_output_schema = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project_id", "name"], name="dataset_project_name_unique")
        ]
        indexes = [models.Index(fields=["project_id", "-created_at"], name="dataset_project_created")]

    def __str__(self) -> str:
        return self.name


class DatasetItem(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.CharField(max_length=MAX_ITEM_ID_LENGTH)
    dataset_id = models.UUIDField()
    input = models.JSONField(null=True, blank=True)
    expected_output = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    source_trace_id = models.CharField(max_length=200, null=True, blank=True)
    source_observation_id = models.CharField(max_length=200, null=True, blank=True)
    status = models.CharField(
        max_length=8, choices=DatasetItemStatus.choices, default=DatasetItemStatus.ACTIVE
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The SDKs page a dataset's ACTIVE items; the list is ordered newest first.
            models.Index(fields=["project_id", "dataset_id", "status", "-created_at"], name="datasetitem_dataset"),
            models.Index(fields=["project_id", "source_trace_id"], name="datasetitem_source_trace"),
            models.Index(fields=["project_id", "source_observation_id"], name="datasetitem_source_obs"),
        ]

    def __str__(self) -> str:
        return self.id


class DatasetRun(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.CharField(max_length=MAX_RUN_ID_LENGTH, default=_new_run_id)
    # None: an experiment on local data (SDK v5 `langfuse.run_experiment(data=[…])`), in no dataset.
    dataset_id = models.UUIDField(null=True, blank=True)
    name = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project_id", "dataset_id", "name"], name="datasetrun_dataset_name_unique"
            )
        ]
        indexes = [models.Index(fields=["project_id", "dataset_id", "-created_at"], name="datasetrun_dataset")]

    def __str__(self) -> str:
        return self.name


class DatasetRunItem(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField(default=uuid.uuid4)
    run_id = models.CharField(max_length=MAX_RUN_ID_LENGTH)
    # Exactly one of the two: a dataset item, or (local data) the SDK's experiment item id, the first
    # 16 hex of the SHA-256 of the item's input, which names no row.
    dataset_item_id = models.CharField(max_length=MAX_ITEM_ID_LENGTH, null=True, blank=True)
    local_item_id = models.CharField(max_length=MAX_ITEM_ID_LENGTH, null=True, blank=True)
    trace_id = models.CharField(max_length=200)
    observation_id = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project_id", "run_id", "created_at"], name="datasetrunitem_run"),
            # Deleting an item deletes its run items (the composite foreign key cascades on this).
            models.Index(fields=["project_id", "dataset_item_id"], name="datasetrunitem_item"),
            models.Index(fields=["project_id", "trace_id"], name="datasetrunitem_trace"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(dataset_item_id__isnull=False) | models.Q(local_item_id__isnull=False),
                name="datasetrunitem_has_item",
            )
        ]

    @property
    def item_key(self) -> str:
        """The experiment item id: the dataset item's, or the local one."""
        return self.dataset_item_id or self.local_item_id or ""

    def __str__(self) -> str:
        return f"{self.item_key} → {self.trace_id}"


# --- evaluations: connections, evaluators, rules (control plane) and jobs (data plane) ----------
# Defined in evals/evaluation_models.py so this file stays the datasets' own; imported here so Django
# (and the migrations) see them as models of the evals app.
from evals.evaluation_models import (  # noqa: E402,F401
    EvalJob,
    EvalJobStatus,
    EvaluationRule,
    Evaluator,
    EvaluatorVersion,
    LlmConnection,
)

# Review rules (control plane) live in their own module; imported here so Django registers them.
from evals.models_review import ReviewOperator, ReviewRule  # noqa: E402,F401
