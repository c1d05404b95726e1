"""Langfuse v4 experiment read API: `GET /api/public/experiments` and `GET /api/public/experiment-items`
(reads in `evals.experiment_selectors`; key auth and Langfuse-shaped errors from the prompt API's
plumbing)."""

from __future__ import annotations

import uuid

from evals import experiment_selectors as selectors
from evals.payloads import parse_datetime
from prompts.errors import InvalidRequest
from prompts.views import int_param, json_response, langfuse_endpoint
from tenancy.http.body import loads_json

FILTER_COLUMNS = {"id", "name", "datasetId"}


def _list(request, name: str) -> list[str]:
    raw = request.GET.get(name) or ""
    if "\x00" in raw:
        raise InvalidRequest(f"`{name}` must not contain NUL characters.")
    return [part.strip() for part in raw.split(",") if part.strip()]


def _uuids(values: list[str]) -> list[str]:
    """Ids that cannot exist (not UUIDs) simply match nothing; an all-invalid list matches nothing."""
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return valid if valid or not values else [str(uuid.UUID(int=0))]


def _fields(request, allowed: frozenset, default: set[str]) -> set[str]:
    given = _list(request, "fields")
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidRequest(f"`fields` may hold {', '.join(sorted(allowed))}; not {', '.join(unknown)}.")
    return set(given) or default


def _filter(request) -> dict[str, list[str]]:
    """`filter`: a JSON array of {column, operator: "any of" | "=", value} on id, name, datasetId."""
    raw = request.GET.get("filter")
    if not raw:
        return {}
    try:
        conditions = loads_json(raw.encode())
    except ValueError:
        raise InvalidRequest("`filter` must be a JSON array.") from None
    if not isinstance(conditions, list):
        raise InvalidRequest("`filter` must be a JSON array.")
    found: dict[str, list[str]] = {}
    for condition in conditions:
        if not isinstance(condition, dict) or condition.get("column") not in FILTER_COLUMNS:
            raise InvalidRequest(f"each `filter` condition needs a `column` among {', '.join(sorted(FILTER_COLUMNS))}.")
        value = condition.get("value")
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise InvalidRequest("`filter` values must be strings.")
        found.setdefault(condition["column"], []).extend(values)
    return found


def _window(request):
    since = parse_datetime(request.GET.get("fromStartTime"), "fromStartTime")
    if since is None:
        raise InvalidRequest("`fromStartTime` is required (an ISO 8601 datetime).")
    until = parse_datetime(request.GET.get("toStartTime"), "toStartTime")
    return since, until


def _limits(request) -> tuple[int, int]:
    return (
        int_param(request, "limit", default=50, maximum=selectors.MAX_LIMIT),
        int_param(request, "scoreLimit", default=selectors.MAX_SCORE_LIMIT, maximum=selectors.MAX_SCORE_LIMIT),
    )


def _page(data: list[dict], cursor: str | None):
    return json_response({"data": data, "meta": {"cursor": cursor} if cursor else {}})


@langfuse_endpoint("GET")
def experiments(request, principal):
    since, until = _window(request)
    limit, score_limit = _limits(request)
    extra = _filter(request)
    data, cursor = selectors.experiment_page(
        project=principal.project,
        since=since,
        until=until,
        # Experiment ids are the SDKs' strings (the 16-hex stable hash; a UUID for older runs).
        ids=_list(request, "id") + extra.get("id", []),
        names=_list(request, "name") + extra.get("name", []),
        dataset_ids=_uuids(_list(request, "datasetId") + extra.get("datasetId", [])),
        fields=_fields(request, selectors.EXPERIMENT_FIELDS, {"core"}),
        limit=limit,
        score_limit=score_limit,
        cursor=request.GET.get("cursor") or None,
    )
    return _page(data, cursor)


@langfuse_endpoint("GET")
def experiment_items(request, principal):
    since, until = _window(request)
    limit, score_limit = _limits(request)
    extra = _filter(request)
    data, cursor = selectors.experiment_item_page(
        project=principal.project,
        since=since,
        until=until,
        experiment_ids=_list(request, "experimentId") + extra.get("id", []),
        experiment_names=_list(request, "experimentName") + extra.get("name", []),
        item_ids=_list(request, "experimentItemId"),
        dataset_ids=_uuids(_list(request, "datasetId") + extra.get("datasetId", [])),
        fields=_fields(request, selectors.ITEM_FIELDS, {"core", "dataset"}),
        limit=limit,
        score_limit=score_limit,
        cursor=request.GET.get("cursor") or None,
    )
    return _page(data, cursor)
