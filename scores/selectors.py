"""Score reads, shaped as the Langfuse public API returns them, and score config reads. The score list,
which filters and annotates scores by their traces, is `traces.selectors.score_list` (traces sit above
scores)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from scores.models import Score, ScoreConfig

OPERATORS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "=": "exact", "==": "exact", "!=": "ne"}


@dataclass(frozen=True)
class ScoreFilters:
    name: str | None = None
    user_id: str | None = None
    trace_id: str | None = None
    observation_id: str | None = None
    session_id: str | None = None
    source: str | None = None
    data_type: str | None = None
    config_id: str | None = None
    queue_id: str | None = None
    environments: tuple[str, ...] = ()
    score_ids: tuple[str, ...] = ()
    trace_tags: tuple[str, ...] = ()
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    operator: str | None = None
    value: float | None = None


def score_get(*, project, score_id: str) -> dict | None:
    score = Score.objects.for_project(project).filter(id=score_id).first()
    return None if score is None else score_to_langfuse(score)


def page_meta(*, page: int, limit: int, total: int) -> dict:
    return {
        "page": page,
        "limit": limit,
        "totalItems": total,
        "totalPages": math.ceil(total / limit) if limit else 0,
    }


def score_to_langfuse(score: Score) -> dict:
    metadata = dict(score.metadata or {})
    item = {
        "id": score.id,
        "traceId": score.trace_id or None,
        "observationId": score.observation_id or None,
        "sessionId": score.session_id or None,
        "datasetRunId": metadata.get("datasetRunId"),
        "name": score.name,
        "value": score.value,
        "dataType": score.data_type,
        "source": score.source,
        "timestamp": _iso(score.timestamp),
        "createdAt": _iso(score.created_at),
        "updatedAt": _iso(score.updated_at),
        "authorUserId": score.author_user_id or None,
        "comment": score.comment or None,
        "metadata": metadata,
        "configId": score.config_id or None,
        "queueId": metadata.get("queueId"),
        "environment": score.environment,
    }
    if score.data_type != "NUMERIC":
        item["stringValue"] = score.string_value
    return item


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# --- score configs (control plane) ------------------------------------------------------------


def score_config_page(*, project, page: int, limit: int) -> tuple[list[ScoreConfig], int]:
    configs = ScoreConfig.objects.filter(project=project)
    total = configs.count()
    return list(configs.order_by("created_at", "id")[(page - 1) * limit : page * limit]), total


def score_config_get(*, project, config_id) -> ScoreConfig | None:
    return ScoreConfig.objects.filter(project=project, id=config_id).first()


def score_config_to_langfuse(config: ScoreConfig) -> dict:
    item = {
        "id": str(config.id),
        "name": config.name,
        "projectId": str(config.project_id),
        "dataType": config.data_type,
        "isArchived": config.is_archived,
        "createdAt": _iso(config.created_at),
        "updatedAt": _iso(config.updated_at),
        "description": config.description or None,
    }
    if config.data_type == "NUMERIC":
        item["minValue"] = config.min_value
        item["maxValue"] = config.max_value
    if config.data_type in ("CATEGORICAL", "BOOLEAN"):
        item["categories"] = stored_categories(config)
    return item


def stored_categories(config: ScoreConfig) -> list:
    """A config's categories, made encodable (see `_stored_category`)."""
    return [_stored_category(c) for c in config.categories or []]


_JSON_INT_RANGE = range(-(2**63), 2**64)  # what orjson encodes as an integer


def _stored_category(category):
    """A category as stored, made encodable: rows saved before values were bounded may hold integers
    beyond 64 bits (jsonb keeps them exact), which made every list of the configs a 500."""
    if not isinstance(category, dict):
        return category
    value = category.get("value")
    if isinstance(value, int) and not isinstance(value, bool) and value not in _JSON_INT_RANGE:
        try:
            value = float(value)
        except OverflowError:
            value = None
        return {**category, "value": value}
    return category
