"""Reads of datasets, items and runs, and their Langfuse wire shapes (keyword-only arguments).

Every query goes through `for_project`, so another project's dataset is as absent as a missing one.
"""

from __future__ import annotations

import uuid

from evals.models import (
    MAX_RUN_ID_LENGTH,
    Dataset,
    DatasetItem,
    DatasetItemStatus,
    DatasetRun,
    DatasetRunItem,
)


def page_meta(*, page: int, limit: int, total: int) -> dict:
    # The SDKs stop paging when `totalPages <= page`: a wrong count truncates datasets.
    return {"page": page, "limit": limit, "totalItems": total, "totalPages": -(-total // limit)}


def _page(queryset, *, page: int, limit: int) -> tuple[list, int]:
    total = queryset.count()
    offset = (page - 1) * limit
    return (list(queryset[offset : offset + limit]) if offset < total else []), total


# --- datasets -----------------------------------------------------------------------------------


def dataset_by_name(*, project, name: str) -> Dataset | None:
    if "\x00" in name:  # PostgreSQL text cannot hold NUL: no such name exists
        return None
    return Dataset.objects.for_project(project).filter(name=name).first()


def dataset_by_id(*, project, dataset_id: str) -> Dataset | None:
    try:
        key = uuid.UUID(str(dataset_id))
    except ValueError:
        return None
    return Dataset.objects.for_project(project).filter(id=key).first()


def dataset_page(*, project, page: int, limit: int) -> tuple[list[Dataset], int]:
    return _page(Dataset.objects.for_project(project).order_by("-created_at", "id"), page=page, limit=limit)


def dataset_names(*, project) -> list[str]:
    return list(Dataset.objects.for_project(project).order_by("name").values_list("name", flat=True))


def dataset_names_by_id(*, project, ids) -> dict:
    ids = set(ids)
    if not ids:
        return {}
    return dict(Dataset.objects.for_project(project).filter(id__in=ids).values_list("id", "name"))


# --- items --------------------------------------------------------------------------------------


def dataset_item_get(*, project, item_id: str) -> DatasetItem | None:
    if "\x00" in item_id:
        return None
    return DatasetItem.objects.for_project(project).filter(id=item_id).first()


def dataset_item_page(
    *,
    project,
    dataset: Dataset | None,
    source_trace_id: str | None,
    source_observation_id: str | None,
    created_before=None,
    page: int,
    limit: int,
) -> tuple[list[DatasetItem], int]:
    """ACTIVE items only, newest first: Langfuse hides archived items from lists (and so from SDK runs).

    `created_before` serves the SDKs' `version`: items are not versioned here, so a pinned version
    leaves out the items created after it but shows the others as they are now."""
    queryset = DatasetItem.objects.for_project(project).filter(status=DatasetItemStatus.ACTIVE)
    if created_before is not None:
        queryset = queryset.filter(created_at__lte=created_before)
    if dataset is not None:
        queryset = queryset.filter(dataset_id=dataset.id)
    if source_trace_id is not None:
        queryset = queryset.filter(source_trace_id=source_trace_id)
    if source_observation_id is not None:
        queryset = queryset.filter(source_observation_id=source_observation_id)
    return _page(queryset.order_by("-created_at", "id"), page=page, limit=limit)


def dataset_items_of(*, project, dataset: Dataset, active_only: bool) -> list[DatasetItem]:
    queryset = DatasetItem.objects.for_project(project).filter(dataset_id=dataset.id)
    if active_only:
        queryset = queryset.filter(status=DatasetItemStatus.ACTIVE)
    return list(queryset.order_by("-created_at", "id"))


def trace_dataset_memberships(*, project, trace_id: str) -> list[tuple[str, str | None, str]]:
    """(dataset name, source observation id or None, item id) of the items made from this trace."""
    rows = list(
        DatasetItem.objects.for_project(project)
        .filter(source_trace_id=trace_id)
        .order_by("created_at")
        .values_list("dataset_id", "source_observation_id", "id")
    )
    names = dataset_names_by_id(project=project, ids={row[0] for row in rows})
    return [(names.get(dataset_id, "?"), observation_id, item_id) for dataset_id, observation_id, item_id in rows]


# --- runs ---------------------------------------------------------------------------------------


def run_page(*, project, dataset: Dataset, page: int, limit: int) -> tuple[list[DatasetRun], int]:
    queryset = DatasetRun.objects.for_project(project).filter(dataset_id=dataset.id).order_by("-created_at", "id")
    return _page(queryset, page=page, limit=limit)


def run_by_name(*, project, dataset: Dataset, name: str) -> DatasetRun | None:
    if "\x00" in name:
        return None
    return DatasetRun.objects.for_project(project).filter(dataset_id=dataset.id, name=name).first()


def run_get(*, project, run_id: str) -> DatasetRun | None:
    """The project's run (experiment) with this id, in any dataset or none; None for another project's."""
    if not run_id or len(run_id) > MAX_RUN_ID_LENGTH or "\x00" in run_id:
        return None
    return DatasetRun.objects.for_project(project).filter(id=run_id).first()


def run_exists(*, project, run_id: str) -> bool:
    if not run_id or len(run_id) > MAX_RUN_ID_LENGTH or "\x00" in run_id:
        return False
    return DatasetRun.objects.for_project(project).filter(id=run_id).exists()


def run_item_page(*, project, run: DatasetRun, page: int, limit: int) -> tuple[list[DatasetRunItem], int]:
    queryset = DatasetRunItem.objects.for_project(project).filter(run_id=run.id).order_by("-created_at", "id")
    return _page(queryset, page=page, limit=limit)


def run_items_of(*, project, run: DatasetRun) -> list[DatasetRunItem]:
    return list(DatasetRunItem.objects.for_project(project).filter(run_id=run.id).order_by("-created_at", "id"))


# --- wire shapes (Langfuse's zod response schemas are strict: exactly these keys) --------------


def dataset_payload(dataset: Dataset) -> dict:
    return {
        "id": str(dataset.id),
        "name": dataset.name,
        "description": dataset.description,
        "metadata": dataset.metadata,
        "inputSchema": dataset.input_schema,
        "expectedOutputSchema": dataset.expected_output_schema,
        "projectId": str(dataset.project_id),
        "createdAt": dataset.created_at,
        "updatedAt": dataset.updated_at,
    }


def item_payload(item: DatasetItem, *, dataset_name: str) -> dict:
    return {
        "id": item.id,
        "status": item.status,
        "input": item.input,
        "expectedOutput": item.expected_output,
        "metadata": item.metadata,
        "sourceTraceId": item.source_trace_id,
        "sourceObservationId": item.source_observation_id,
        "datasetId": str(item.dataset_id),
        "datasetName": dataset_name,
        "createdAt": item.created_at,
        "updatedAt": item.updated_at,
        # Media uploads are not stored yet, so no item references any; v5 requires the key.
        "mediaReferences": [],
    }


def run_payload(run: DatasetRun, *, dataset_name: str) -> dict:
    return {
        "id": str(run.id),
        "name": run.name,
        "description": run.description,
        "metadata": run.metadata,
        "datasetId": str(run.dataset_id),
        "datasetName": dataset_name,
        "createdAt": run.created_at,
        "updatedAt": run.updated_at,
    }


def run_item_payload(run_item: DatasetRunItem, *, run_name: str) -> dict:
    return {
        "id": str(run_item.id),
        "datasetRunId": str(run_item.run_id),
        "datasetRunName": run_name,
        "datasetItemId": run_item.dataset_item_id,
        "traceId": run_item.trace_id,
        "observationId": run_item.observation_id,
        "createdAt": run_item.created_at,
        "updatedAt": run_item.updated_at,
    }


def run_by_id(*, project, dataset: Dataset, run_id) -> DatasetRun | None:
    # Run ids are text: the SDK's stable experiment id (16 hex), an id it chose, or an older UUID.
    key = str(run_id or "")
    if not key or len(key) > MAX_RUN_ID_LENGTH or "\x00" in key:
        return None
    return DatasetRun.objects.for_project(project).filter(dataset_id=dataset.id, id=key).first()


def runs_of(*, project, dataset: Dataset, limit: int = 200) -> list[DatasetRun]:
    """The dataset's runs, newest first (the console's run pickers)."""
    return list(DatasetRun.objects.for_project(project).filter(dataset_id=dataset.id).order_by("-created_at", "id")[:limit])
