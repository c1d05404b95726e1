"""Reads of the Langfuse v4 experiment API (`GET /api/public/experiments`, `/experiment-items`).

An experiment is a dataset run, and its items are the run items (each the trace, and the task
observation when one was linked, that the run produced for a dataset item). Both lists are cursor
pages over a time window on the run items' creation time (`fromStartTime` is required, as in
Langfuse): an experiment's `startTime` is its first item in the window (so it is clipped to
`fromStartTime`), `endTime` its last, `itemCount` its items in the window; experiments are ordered
by latest activity. Cursors are opaque, versioned base64url JSON of the last row's sort key.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Max, Min, Q

from evals.models import DatasetItem, DatasetRun, DatasetRunItem
from prompts.errors import InvalidRequest
from scores.models import Score
from scores.selectors import score_to_langfuse
from tenancy.http.params import decode_token, encode_token
from traces.models import Observation, Trace

CURSOR_VERSION = 1
MAX_LIMIT = 100
MAX_SCORE_LIMIT = 50
EXPERIMENT_FIELDS = frozenset({"core", "metadata", "scores"})
ITEM_FIELDS = frozenset({"core", "dataset", "io", "metadata", "itemMetadata", "experimentMetadata", "scores"})


def encode_cursor(at: datetime, row_id: str) -> str:
    return encode_token({"v": CURSOR_VERSION, "t": at.isoformat(), "id": row_id})


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = decode_token(cursor)
        if raw.get("v") != CURSOR_VERSION:
            raise ValueError
        return datetime.fromisoformat(raw["t"]), str(raw["id"])
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
        raise InvalidRequest("`cursor` is not a cursor this server issued.") from None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _text(value) -> str | None:
    return None if value is None else str(value)


def _sent_expected_output(observation):
    experiment = (observation.metadata or {}).get("experiment") if observation is not None else None
    return experiment.get("expected_output") if isinstance(experiment, dict) else None


def _window(queryset, *, since: datetime, until: datetime | None, prefix: str = ""):
    queryset = queryset.filter(**{f"{prefix}created_at__gte": since})
    if until is not None:
        queryset = queryset.filter(**{f"{prefix}created_at__lt": until})
    return queryset


def _run_scores(project, run_ids: list[str], limit: int) -> dict[str, list[dict]]:
    """Experiment-level scores: written with `datasetRunId` and no trace (kept in metadata)."""
    if not run_ids:
        return {}
    found: dict[str, list[dict]] = {}
    scores = (
        Score.objects.for_project(project)
        .filter(trace_id="", metadata__datasetRunId__in=run_ids)
        .order_by("-timestamp", "id")
    )
    for score in scores:
        bucket = found.setdefault(score.metadata["datasetRunId"], [])
        if len(bucket) < limit:
            bucket.append(score_to_langfuse(score))
    return found


def experiment_page(
    *, project, since: datetime, until: datetime | None, ids: list[str], names: list[str], dataset_ids: list[str],
    fields: set[str], limit: int, score_limit: int, cursor: str | None,
) -> tuple[list[dict], str | None]:
    items = _window(DatasetRunItem.objects.for_project(project), since=since, until=until)
    runs = DatasetRun.objects.for_project(project)
    if ids:
        runs = runs.filter(id__in=ids)
    if names:
        runs = runs.filter(name__in=names)
    if dataset_ids:
        runs = runs.filter(dataset_id__in=dataset_ids)
    activity = (
        items.filter(run_id__in=runs.values("id"))
        .values("run_id")
        .annotate(start=Min("created_at"), end=Max("created_at"), count=Count("id"))
    )
    if cursor:
        at, last_id = decode_cursor(cursor)
        activity = activity.filter(Q(end__lt=at) | Q(end=at, run_id__lt=last_id))
    rows = list(activity.order_by("-end", "-run_id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    by_id = {r.id: r for r in runs.filter(id__in=[row["run_id"] for row in rows])}
    run_scores = _run_scores(project, [str(row["run_id"]) for row in rows], score_limit) if "scores" in fields else {}
    data = []
    for row in rows:
        run = by_id[row["run_id"]]
        entry = {
            "id": str(run.id),
            "name": run.name,
            "description": run.description,
            "startTime": _iso(row["start"]),
            "endTime": _iso(row["end"]),
            "itemCount": row["count"],
            "datasetId": _text(run.dataset_id),  # None: an experiment on local data
        }
        if "metadata" in fields:
            entry["metadata"] = run.metadata
        if "scores" in fields:
            entry["scores"] = run_scores.get(str(run.id), [])
        data.append(entry)
    next_cursor = encode_cursor(rows[-1]["end"], str(rows[-1]["run_id"])) if more and rows else None
    return data, next_cursor


def experiment_item_page(
    *, project, since: datetime, until: datetime | None, experiment_ids: list[str], experiment_names: list[str],
    item_ids: list[str], dataset_ids: list[str], fields: set[str], limit: int, score_limit: int, cursor: str | None,
) -> tuple[list[dict], str | None]:
    runs = DatasetRun.objects.for_project(project)
    if experiment_ids:
        runs = runs.filter(id__in=experiment_ids)
    if experiment_names:
        runs = runs.filter(name__in=experiment_names)
    if dataset_ids:
        runs = runs.filter(dataset_id__in=dataset_ids)
    queryset = _window(DatasetRunItem.objects.for_project(project), since=since, until=until).filter(
        run_id__in=runs.values("id")
    )
    if item_ids:
        queryset = queryset.filter(Q(dataset_item_id__in=item_ids) | Q(local_item_id__in=item_ids))
    if cursor:
        at, last_id = decode_cursor(cursor)
        queryset = queryset.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=last_id))
    rows = list(queryset.order_by("-created_at", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]

    run_by_id = {r.id: r for r in runs.filter(id__in={r.run_id for r in rows})}
    trace_ids = {r.trace_id for r in rows}
    traces = {t.id: t for t in Trace.objects.for_project(project).filter(id__in=trace_ids)}
    observations = {
        o.id: o for o in Observation.objects.for_project(project).filter(id__in={r.observation_id for r in rows if r.observation_id})
    }
    wants_items = fields & {"io", "itemMetadata"}
    dataset_items = (
        {i.id: i for i in DatasetItem.objects.for_project(project).filter(
            id__in={r.dataset_item_id for r in rows if r.dataset_item_id})}
        if wants_items
        else {}
    )
    scores: dict[str, list[dict]] = {}
    if "scores" in fields and trace_ids:
        # Item- and trace-level scores; experiment-level ones are on /experiments.
        for score in Score.objects.for_project(project).filter(trace_id__in=trace_ids).order_by("-timestamp", "id"):
            bucket = scores.setdefault(score.trace_id, [])
            if len(bucket) < score_limit:
                bucket.append(score_to_langfuse(score))

    data = []
    for row in rows:
        run, trace = run_by_id[row.run_id], traces.get(row.trace_id)
        observation = observations.get(row.observation_id) if row.observation_id else None
        source = observation or trace
        start = (observation.start_time if observation else trace.timestamp if trace else row.created_at)
        end = observation.end_time if observation else None
        entry = {
            "id": row.observation_id or row.trace_id,
            "traceId": row.trace_id,
            "startTime": _iso(start),
            "endTime": _iso(end),
            "level": observation.level if observation else "DEFAULT",
            "environment": trace.environment if trace else "default",
            "experimentId": str(run.id),
            "experimentName": run.name,
            "experimentItemId": row.item_key,
        }
        if "dataset" in fields:
            entry["experimentDatasetId"] = _text(run.dataset_id)
        if "io" in fields:
            item = dataset_items.get(row.dataset_item_id)
            entry["input"] = source.input if source else None
            entry["output"] = source.output if source else None
            # Local data has no dataset item: the expected output the task span carried.
            entry["expectedOutput"] = item.expected_output if item else _sent_expected_output(observation)
        if "metadata" in fields:
            entry["metadata"] = source.metadata if source else None
        if "itemMetadata" in fields:
            item = dataset_items.get(row.dataset_item_id)
            entry["experimentItemMetadata"] = item.metadata if item else None
        if "experimentMetadata" in fields:
            entry["experimentMetadata"] = run.metadata
            entry["experimentDescription"] = run.description
        if "scores" in fields:
            entry["scores"] = scores.get(row.trace_id, [])
        data.append(entry)
    next_cursor = encode_cursor(rows[-1].created_at, str(rows[-1].id)) if more and rows else None
    return data, next_cursor
