"""Writes of datasets, items and runs (Langfuse rules), and "add to dataset" from production.

Every write runs in one transaction on the project's region database. Errors are `prompts.errors`
ApiErrors, which the Langfuse views answer in Langfuse's shape and the management API as DRF errors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import Counter

from django.db import IntegrityError, transaction
from django.utils import timezone

from evals import schemas
from evals.models import (
    MAX_RUN_ID_LENGTH,
    Dataset,
    DatasetItem,
    DatasetItemStatus,
    DatasetRun,
    DatasetRunItem,
)
from prompts.errors import Conflict, InvalidRequest, NotFound
from tenancy.models import Project
from tenancy.regions import region_database
from tenancy.services import audit_record
from traces.models import Observation, Trace

logger = logging.getLogger(__name__)

DATASET_NOT_FOUND = "Dataset not found"
ITEM_NOT_FOUND = "Dataset item not found"
RUN_NOT_FOUND = "Dataset run not found"
SCHEMA_FIELDS = (("input", "input_schema", "input"), ("expected_output", "expected_output_schema", "expectedOutput"))
# Enough examples for a person to fix the data; the rest are counted.
MAX_REPORTED_FAILURES = 5


def _db(project: Project) -> str:
    return region_database(project.region)


# --- JSON Schema --------------------------------------------------------------------------------


def _check_schema(schema, field: str) -> None:
    if schema is None:
        return
    try:
        schemas.check_schema(schema)
    except schemas.UnsupportedSchema as exc:
        raise InvalidRequest(f"`{field}` is not a valid JSON Schema: {exc}") from None


def _schema_error(schema, value) -> str | None:
    """Why `value` fails `schema`, or None. A null value is not checked: an item may leave out its
    input or expected output (Langfuse validates only what is present)."""
    if schema is None or value is None:
        return None
    return schemas.first_error(schema, value)


def _item_problems(dataset: Dataset, *, input, expected_output) -> list[str]:
    values = {"input": input, "expected_output": expected_output}
    problems = []
    for value_field, schema_field, wire_name in SCHEMA_FIELDS:
        reason = _schema_error(getattr(dataset, schema_field), values[value_field])
        if reason is not None:
            problems.append(f"{wire_name} does not match the dataset's {wire_name} schema at {reason}")
    return problems


def _validate_item(dataset: Dataset, *, input, expected_output) -> None:
    problems = _item_problems(dataset, input=input, expected_output=expected_output)
    if problems:
        raise InvalidRequest("Dataset item validation failed: " + "; ".join(problems))


# --- datasets -----------------------------------------------------------------------------------


def dataset_upsert(*, project: Project, fields: dict, actor) -> Dataset:
    """Create the dataset named `fields["name"]` or update the fields given. A schema set here is
    checked against every item already in the dataset: a schema the data does not meet is refused."""
    for field in ("input_schema", "expected_output_schema"):
        _check_schema(fields.get(field), "inputSchema" if field == "input_schema" else "expectedOutputSchema")
    name = fields["name"]
    changes = {key: value for key, value in fields.items() if key != "name"}
    db = _db(project)
    with transaction.atomic(using=db):
        dataset = Dataset.objects.for_project(project).select_for_update().filter(name=name).first()
        created = dataset is None
        if created:
            try:
                with transaction.atomic(using=db):
                    dataset = Dataset.objects.for_project(project).create(name=name, **changes)
            except IntegrityError:
                # Another request created it between our read and our insert: update that one.
                dataset = Dataset.objects.for_project(project).select_for_update().get(name=name)
                created = False
        if not created:
            for key, value in changes.items():
                setattr(dataset, key, value)
            dataset.updated_at = timezone.now()
            dataset.save(using=db)
        if not created and any(changes.get(f) is not None for f in ("input_schema", "expected_output_schema")):
            _validate_existing_items(project=project, dataset=dataset)
    with transaction.atomic(using="default"):
        audit_record(
            organization=project.organization,
            actor=actor,
            action="dataset.created" if created else "dataset.updated",
            target_type="dataset",
            target_id=dataset.id,
            data={"project": str(project.id), "name": dataset.name, "fields": sorted(changes)},
        )
    return dataset


def _validate_existing_items(*, project: Project, dataset: Dataset) -> None:
    failures, count = [], 0
    items = (
        DatasetItem.objects.for_project(project)
        .filter(dataset_id=dataset.id)
        .order_by("created_at", "id")
        .values_list("id", "input", "expected_output")
    )
    for item_id, input, expected_output in items.iterator(chunk_size=500):
        problems = _item_problems(dataset, input=input, expected_output=expected_output)
        if problems:
            count += 1
            if len(failures) < MAX_REPORTED_FAILURES:
                failures.append(f"item {item_id!r}: {'; '.join(problems)}")
    if count:
        more = f" (and {count - len(failures)} more)" if count > len(failures) else ""
        raise InvalidRequest(
            f"Dataset item validation failed: {count} existing item(s) do not match the new schema: "
            + " | ".join(failures)
            + more
        )


def _dataset_or_404(project: Project, name: str, *, lock: bool = False) -> Dataset:
    queryset = Dataset.objects.for_project(project)
    if lock:
        queryset = queryset.select_for_update()
    dataset = queryset.filter(name=name).first()
    if dataset is None:
        raise NotFound(DATASET_NOT_FOUND)
    return dataset


# --- items --------------------------------------------------------------------------------------


def dataset_item_upsert(*, project: Project, dataset_name: str, item_id: str | None, fields: dict) -> tuple[DatasetItem, Dataset]:
    """Create an item, or update the one with `item_id`: fields not sent (or sent as null) keep their
    stored values.
    Item ids are unique per project, so an id that belongs to another dataset is a 409."""
    db = _db(project)
    with transaction.atomic(using=db):
        dataset = _dataset_or_404(project, dataset_name)
        existing = None
        if item_id is not None:
            existing = DatasetItem.objects.for_project(project).select_for_update().filter(id=item_id).first()
        if existing is not None:
            if existing.dataset_id != dataset.id:
                raise Conflict(
                    f"Dataset item {item_id!r} already exists in another dataset; item ids are unique per project."
                )
            for key, value in fields.items():
                # null counts as "not sent": the SDKs send null for every argument left out, so
                # `create_dataset_item(id=…, expected_output=…)` must keep the stored input.
                if value is not None:
                    setattr(existing, key, value)
            _validate_item(dataset, input=existing.input, expected_output=existing.expected_output)
            existing.updated_at = timezone.now()
            existing.save(using=db)
            return existing, dataset
        _validate_item(dataset, input=fields.get("input"), expected_output=fields.get("expected_output"))
        try:
            with transaction.atomic(using=db):
                item = DatasetItem.objects.for_project(project).create(
                    id=item_id or str(uuid.uuid4()), dataset_id=dataset.id, **fields
                )
        except IntegrityError:
            raise Conflict(f"Dataset item {item_id!r} was created concurrently; retry the request.") from None
    return item, dataset


def dataset_item_delete(*, project: Project, item_id: str) -> bool:
    """Deletes the item and (by the composite foreign key's cascade) its run items."""
    deleted, _ = DatasetItem.objects.for_project(project).filter(id=item_id).delete()
    return bool(deleted)


def dataset_item_from_production(
    *, project: Project, dataset_name: str, trace_id: str, observation_id: str | None
) -> tuple[DatasetItem, Dataset]:
    """A new item copying a trace's (or one of its observations') input and output as the item's
    input and expected output, with the source ids recorded. The same source twice in one dataset
    is refused (409) rather than duplicated."""
    db = _db(project)
    trace = Trace.objects.for_project(project).filter(id=trace_id).only("id", "input", "output").first()
    if trace is None:
        raise NotFound("Trace not found")
    source = trace
    if observation_id:
        source = (
            Observation.objects.for_project(project)
            .filter(id=observation_id, trace_id=trace.id)
            .only("id", "input", "output")
            .first()
        )
        if source is None:
            raise NotFound("Observation not found in this trace")
    with transaction.atomic(using=db):
        # The dataset's row lock serialises adds to it, so two clicks cannot both pass the check.
        dataset = _dataset_or_404(project, dataset_name, lock=True)
        duplicate = (
            DatasetItem.objects.for_project(project)
            .filter(dataset_id=dataset.id, source_trace_id=trace.id, source_observation_id=observation_id or None)
            .values_list("id", flat=True)
            .first()
        )
        if duplicate is not None:
            what = "observation" if observation_id else "trace"
            raise Conflict(f"This {what} is already in dataset {dataset.name!r} (item {duplicate}).")
        _validate_item(dataset, input=source.input, expected_output=source.output)
        item = DatasetItem.objects.for_project(project).create(
            id=str(uuid.uuid4()),
            dataset_id=dataset.id,
            input=source.input,
            expected_output=source.output,
            source_trace_id=trace.id,
            source_observation_id=observation_id or None,
            status=DatasetItemStatus.ACTIVE,
        )
    return item, dataset


# --- runs ---------------------------------------------------------------------------------------


def stable_experiment_id(*, project_id, dataset_id, run_name: str) -> str:
    """The experiment id the Langfuse SDKs (v5 `_create_experiment_id`) and server
    (`createStableExperimentId`) derive for a dataset run: the first 16 hex characters of the SHA-256
    of `JSON.stringify(["langfuse-experiment-v1", projectId, datasetId, runName])`. Computing the same
    id here makes a run created over REST and the spans of a v5 re-run with that name one experiment."""
    payload = json.dumps(
        ["langfuse-experiment-v1", str(project_id), str(dataset_id), run_name],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # JSON.stringify escapes a lone surrogate as \uXXXX where Python keeps it: encode the same way.
    return hashlib.sha256(payload.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def run_item_create(
    *,
    project: Project,
    run_name: str,
    run_description: str | None,
    metadata,
    dataset_item_id: str,
    trace_id: str | None,
    observation_id: str | None,
    dataset_version=None,
    created_at=None,
) -> tuple[DatasetRunItem, DatasetRun]:
    """Link an item to what a run produced. The run is found or created by (dataset, name); a
    description or metadata sent updates it. With only an observation, its trace is looked up."""
    if not trace_id:
        trace_id = (
            Observation.objects.for_project(project).filter(id=observation_id).values_list("trace_id", flat=True).first()
        )
        if trace_id is None:
            raise NotFound("Observation not found")
    if dataset_version is not None:
        metadata = {**(metadata if isinstance(metadata, dict) else {}), "dataset_version": dataset_version.isoformat()}
    db = _db(project)
    now = timezone.now()
    with transaction.atomic(using=db):
        item = DatasetItem.objects.for_project(project).filter(id=dataset_item_id).only("id", "dataset_id").first()
        if item is None:
            raise NotFound(ITEM_NOT_FOUND)
        run = _run_for_update(project, dataset_id=item.dataset_id, name=run_name)
        if run is None:
            try:
                with transaction.atomic(using=db):
                    run = DatasetRun.objects.for_project(project).create(
                        id=stable_experiment_id(project_id=project.id, dataset_id=item.dataset_id, run_name=run_name),
                        dataset_id=item.dataset_id, name=run_name, description=run_description, metadata=metadata,
                    )
            except IntegrityError:
                # The SDKs link items concurrently: another request created the run first.
                run = _run_for_update(project, dataset_id=item.dataset_id, name=run_name)
        else:
            changed = False
            if run_description is not None:
                run.description, changed = run_description, True
            if metadata is not None:
                run.metadata, changed = metadata, True
            if changed:
                run.updated_at = now
                run.save(using=db)
        run_item = DatasetRunItem.objects.for_project(project).create(
            run_id=run.id,
            dataset_item_id=item.id,
            trace_id=trace_id,
            observation_id=observation_id,
            created_at=created_at or now,
            updated_at=now,
        )
    return run_item, run


def _run_for_update(project: Project, *, dataset_id, name: str) -> DatasetRun | None:
    return (
        DatasetRun.objects.for_project(project).select_for_update().filter(dataset_id=dataset_id, name=name).first()
    )


def run_delete(*, project: Project, dataset: Dataset, name: str) -> bool:
    """Deletes the run and (by the cascade) its run items; the dataset items stay."""
    deleted, _ = DatasetRun.objects.for_project(project).filter(dataset_id=dataset.id, name=name).delete()
    return bool(deleted)


# --- experiments sent as spans (Langfuse v4/v5 `run_experiment`) --------------------------------

EXPERIMENT_ITEM_NAMESPACE = uuid.UUID("3b0c6a52-7f1e-4d8a-9c55-6578706572ff")
MAX_RUN_NAME_LENGTH = 255


def experiment_run_item_id(*, run_id: str, trace_id: str, observation_id: str) -> uuid.UUID:
    """Deterministic, so a replayed span (an SDK retry, a re-sent export) finds its run item taken."""
    return uuid.uuid5(EXPERIMENT_ITEM_NAMESPACE, f"{run_id}\n{trace_id}\n{observation_id}")


def _experiment_problem(link: dict) -> str | None:
    experiment_id, run_name = link.get("experiment_id") or "", link.get("run_name") or ""
    if len(experiment_id) > MAX_RUN_ID_LENGTH or "\x00" in experiment_id:
        return "bad_experiment_id"
    if len(run_name) > MAX_RUN_NAME_LENGTH or "\x00" in run_name:
        return "bad_run_name"
    if not link.get("item_id") or "\x00" in link["item_id"]:
        return "no_item"
    return None


def _experiment_run(project: Project, *, link: dict, dataset_id) -> DatasetRun | None:
    """The run of `link`'s experiment, locked: by the experiment id, else by (dataset, run name) —
    names are unique per dataset, so a run created over REST under that name is the same experiment
    — else created with the SDK's id. None when the id is another dataset's experiment. Local data
    (`dataset_id` None) has only its id: the SDK draws a new one per call, and two calls with one run
    name are two experiments there."""
    db = _db(project)
    runs = DatasetRun.objects.for_project(project).select_for_update()

    def find():
        by_id = runs.filter(id=link["experiment_id"]).first()
        if by_id is not None or dataset_id is None:
            return by_id
        return runs.filter(dataset_id=dataset_id, name=link["run_name"]).first()

    run = find()
    if run is None:
        metadata = link.get("metadata")
        if link.get("item_version"):
            metadata = {**(metadata if isinstance(metadata, dict) else {}), "dataset_version": link["item_version"]}
        try:
            with transaction.atomic(using=db):
                return DatasetRun.objects.for_project(project).create(
                    id=link["experiment_id"], dataset_id=dataset_id, name=link["run_name"],
                    description=link.get("description"), metadata=metadata,
                )
        except IntegrityError:
            # Items of one experiment arrive in parallel exports: another worker created the run.
            run = find()
            if run is None:
                raise
    if run.dataset_id != dataset_id:
        return None
    if link.get("description") is not None and run.description != link["description"]:
        run.description, run.updated_at = link["description"], timezone.now()
        run.save(using=db, update_fields=["description", "updated_at"])
    return run


def record_experiment_items(*, project: Project, links: list[dict]) -> dict[str, int]:
    """Record the run items of experiments that arrived as spans (`ingest.contract.ExperimentLink`s,
    as dicts): the run (the experiment) is found or created, the item linked to the task span's trace
    and observation. Idempotent: replaying a span adds nothing. A link that cannot be recorded — an
    item or dataset this project does not have (another project's ids look the same as missing ones),
    an id no run can hold — is skipped and counted; the spans are stored regardless. Local data (no
    dataset id) makes a run in no dataset whose items keep the SDK's item id (`local_item_id`).

    Returns counts by outcome: linked, exists, and the reasons for skipping."""
    counts: Counter[str] = Counter()
    usable = []
    for link in links:
        problem = _experiment_problem(link)
        if problem:
            counts[problem] += 1
        else:
            usable.append(link)
    dataset_ids = set()
    for link in usable:
        if not link.get("dataset_id"):
            continue
        try:
            dataset_ids.add(uuid.UUID(str(link["dataset_id"])))
        except ValueError:
            continue
    datasets = {str(d): d for d in Dataset.objects.for_project(project).filter(id__in=dataset_ids).values_list("id", flat=True)}
    items = dict(
        DatasetItem.objects.for_project(project)
        .filter(id__in={link["item_id"] for link in usable})
        .values_list("id", "dataset_id")
    )
    db = _db(project)
    for link in usable:
        local = not link.get("dataset_id")
        dataset_id = None if local else datasets.get(str(link["dataset_id"]).lower())
        if not local and dataset_id is None:
            counts["no_dataset"] += 1
            continue
        if not local and items.get(link["item_id"]) != dataset_id:
            counts["no_item"] += 1
            continue
        with transaction.atomic(using=db):
            run = _experiment_run(project, link=link, dataset_id=dataset_id)
            if run is None:
                counts["experiment_of_another_dataset"] += 1
                continue
            run_item_id = experiment_run_item_id(
                run_id=run.id, trace_id=link["trace_id"], observation_id=link["observation_id"]
            )
            # By what it links, not only by id: SDK v4 also posts the run item over REST (a random id)
            # before its spans arrive with the same trace and task span.
            linked = DatasetRunItem.objects.for_project(project).filter(
                run_id=run.id, trace_id=link["trace_id"], observation_id=link["observation_id"]
            )
            if linked.exists():
                counts["exists"] += 1
                continue
            DatasetRunItem.objects.for_project(project).bulk_create(
                [DatasetRunItem(id=run_item_id, run_id=run.id, trace_id=link["trace_id"],
                                observation_id=link["observation_id"],
                                **{"local_item_id" if local else "dataset_item_id": link["item_id"]})],
                ignore_conflicts=True,  # a replay racing this one: the first insert wins, nothing doubles
            )
            counts["linked_local" if local else "linked"] += 1
    skipped = {k: n for k, n in counts.items() if k not in ("linked", "linked_local", "exists")}
    if skipped:
        logger.warning("experiment spans of project %s: links skipped %s (the spans are stored)", project.id, skipped)
    return dict(counts)
