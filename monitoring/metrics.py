"""The Langfuse-compatible metrics query (`GET /api/public/metrics`, `/api/public/v2/metrics`): parsing
and validation of the JSON `query`, and its answer — from the hourly rollups whenever the query only
asks what they hold, from the raw rows otherwise.

Shapes follow Langfuse (reference evals-metrics-dataops.md §2.1): `{data: [{<dimension>…,
<aggregation>_<measure>: value, time_dimension?: ISO}]}`; counts (and sums, minima and maxima of
integer measures) come back as strings, as ClickHouse's UInt64 do; a histogram cell is
`[[lower, upper, height], …]`; a time series is zero-filled per step unless `orderBy` is given;
default ordering is time ascending, else the first metric descending, else the first dimension
ascending. Every bad query is a `MetricsQueryError` (a 400 with the reason), never a 500.

Rollup path (exact for counts, sums and averages; percentiles read from the rollups' fixed log-scale
histograms, ±9%): view `observations` filtered on `type` any of exactly GENERATION and EMBEDDING (the
LLM calls the rollups hold), dimensions and filters among `ROLLUP_COLUMNS`, measures among
`ROLLUP_MEASURES` and a granularity of an hour or coarser — whatever the window: one not on whole hours
reads its whole hours from the rollups and the LLM calls of its partial edge hours from the raw rows,
rolled up the way the rollups are, in the same statement (`_edge_rows_sql`). Anything else reads the
raw rows (project-scoped, by the time indexes, duplicates of a call counted once like the read API),
bounded by the row limit and a statement timeout.

The score views answer from the hourly score rollups (or, filtered on a user, the per-user daily score
rollup) when the query asks only what they hold (see `score_rollups_hold`): the same rows as the raw
path, in the same order; any window (its partial edge hours or days read from the score rows).

Lookglass extensions, all additive: dimensions `model` (as answered, else as requested) and `feature`
(the project's feature rule); measures `errors`, `refusals`, `cachedInputTokens`; the view
`billable-units` (traces + observations + scores by creation time, Langfuse's billable unit);
`orderBy` accepts `<measure>_<aggregation>` as well as `<aggregation>_<measure>`.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction

from monitoring.models import (
    DIMENSION_CHARS,
    HISTOGRAM_BUCKETS,
    DailyUserScoreRollup,
    HourlyRollup,
    HourlyScoreRollup,
)
from monitoring.rules import ROLLUP_TOKENS_CAP, ROLLUP_US_CAP, FeatureRule, bucket_sql, percentile_of
from monitoring.selectors import applied_feature_rule, hist_sum_sql
from scores.models import Score
from tenancy.dataplane import data_connection
from tenancy.http.body import without_lone_surrogates
from tenancy.http.params import parse_iso_datetime
from traces.models import Observation, Trace

AGGREGATIONS = ("sum", "avg", "count", "max", "min", "p50", "p75", "p90", "p95", "p99", "histogram")
QUANTILE = {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
GRANULARITIES = ("auto", "minute", "hour", "day", "week", "month")
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
HIGH_CARDINALITY = frozenset({"id", "traceId", "userId", "sessionId", "parentObservationId", "observationId"})
V1_VIEWS = ("traces", "observations", "scores-numeric", "scores-categorical", "scores-boolean", "billable-units")
V2_VIEWS = ("observations", "scores-numeric", "scores-boolean", "scores-categorical", "billable-units")
MAX_ROW_LIMIT = 1000
V2_DEFAULT_ROW_LIMIT = 100
MAX_BINS = 100
DEFAULT_BINS = 10
MAX_TIME_STEPS = 10_000  # zero-filled points in one answer
MAX_METRICS = 20
MAX_DIMENSIONS = 10
MAX_FILTERS = 50
MAX_FILTER_VALUES = 1000
RAW_STATEMENT_TIMEOUT_MS = 30_000
LLM_TYPES = frozenset({"GENERATION", "EMBEDDING"})

OBS = Observation._meta.db_table
TRACES = Trace._meta.db_table
SCORES = Score._meta.db_table
ROLLUP = HourlyRollup._meta.db_table
SCORE_ROLLUP = HourlyScoreRollup._meta.db_table
USER_SCORE_ROLLUP = DailyUserScoreRollup._meta.db_table


class MetricsQueryError(ValueError):
    """A query that cannot be answered; the message says why (a 400)."""


# --- views -----------------------------------------------------------------------------------------

INT, NUM, DEC = "int", "num", "dec"  # how a measure's values are rendered


@dataclass(frozen=True)
class View:
    name: str
    base: str  # FROM … (with %(trace_join)s where the trace columns may be joined)
    project_column: str
    time_column: str
    dimensions: dict  # name -> SQL
    measures: dict  # name -> (SQL, kind)
    extra_filters: dict = field(default_factory=dict)  # filterable columns that are not dimensions
    condition: str = "TRUE"
    trace_join: str = ""  # the join that `t.` columns need, added only when used


_MS = "extract(epoch from ({} - {})) * 1000"
_TRACE_ON = f'LEFT JOIN "{TRACES}" t ON t.project_id = {{alias}}.project_id AND t.id = {{alias}}.trace_id'
_TAGS_DIM = "t.tags"

OBSERVATIONS = View(
    name="observations",
    base=f'"{OBS}" o',
    project_column="o.project_id",
    time_column="o.start_time",
    condition="o.duplicate_of = ''",  # a call recorded twice counts once (as in the read API and rollups)
    trace_join=_TRACE_ON.format(alias="o"),
    dimensions={
        "environment": "o.environment",
        "type": "o.type",
        "name": "o.name",
        "level": "o.level",
        "version": "o.version",
        "tags": _TAGS_DIM,
        "release": "t.release",
        "traceName": "t.name",
        "traceRelease": "t.release",
        "traceVersion": "t.version",
        "providedModelName": "o.model",
        "promptName": "NULLIF(o.prompt_name, '')",
        "promptVersion": "o.prompt_version",
        "isRootObservation": "(o.parent_observation_id = '')",
        "startTimeMonth": "to_char(date_trunc('month', o.start_time, 'UTC'), 'YYYY-MM')",
        "model": "COALESCE(NULLIF(o.response_model, ''), o.model)",
        "feature": "%(feature)s",
        "id": "o.id",
        "traceId": "o.trace_id",
        "userId": "t.user_id",
        "sessionId": "t.session_id",
        "parentObservationId": "NULLIF(o.parent_observation_id, '')",
    },
    measures={
        "count": ("1", INT),
        "latency": (_MS.format("o.end_time", "o.start_time"), NUM),
        "streamingLatency": (_MS.format("o.end_time", "o.completion_start_time"), NUM),
        "timeToFirstToken": (_MS.format("o.completion_start_time", "o.start_time"), NUM),
        "inputTokens": ("o.input_tokens", INT),
        "outputTokens": ("o.output_tokens", INT),
        "totalTokens": ("o.total_tokens", INT),
        "cachedInputTokens": ("o.cached_input_tokens", INT),
        "outputTokensPerSecond": (
            "o.output_tokens / NULLIF(extract(epoch from (o.end_time - o.start_time)), 0)", NUM),
        "tokensPerSecond": ("o.total_tokens / NULLIF(extract(epoch from (o.end_time - o.start_time)), 0)", NUM),
        "inputCost": ("o.input_cost", DEC),
        "outputCost": ("o.output_cost", DEC),
        "totalCost": ("o.total_cost", DEC),
        "errors": ("(o.status = 'error')::int", INT),
        "refusals": ("(o.status = 'refused')::int", INT),
        "countScores": (
            f'(SELECT count(*) FROM "{SCORES}" s WHERE s.project_id = o.project_id AND s.observation_id = o.id)',
            INT),
    },
    extra_filters={"metadata": "o.metadata", "startTime": "o.start_time", "endTime": "o.end_time",
                   "traceTags": _TAGS_DIM},
)

_OBS_OF_TRACE = f'FROM "{OBS}" x WHERE x.project_id = t.project_id AND x.trace_id = t.id AND x.duplicate_of = \'\''
TRACES_VIEW = View(
    name="traces",
    base=f'"{TRACES}" t',
    project_column="t.project_id",
    time_column="t.timestamp",
    dimensions={
        "name": "t.name", "tags": "t.tags", "release": "t.release", "version": "t.version",
        "environment": "t.environment", "id": "t.id", "userId": "NULLIF(t.user_id, '')",
        "sessionId": "NULLIF(t.session_id, '')", "timestampMonth": "to_char(date_trunc('month', t.timestamp, 'UTC'), 'YYYY-MM')",
    },
    measures={
        "count": ("1", INT),
        "observationsCount": (f"(SELECT count(*) {_OBS_OF_TRACE})", INT),
        "scoresCount": (f'(SELECT count(*) FROM "{SCORES}" s WHERE s.project_id = t.project_id AND s.trace_id = t.id)', INT),
        "latency": (
            f"(SELECT extract(epoch from (max(COALESCE(x.end_time, x.start_time)) - min(x.start_time))) * 1000 "
            f"{_OBS_OF_TRACE})", NUM),
        "totalTokens": (f"(SELECT COALESCE(sum(x.total_tokens), 0) {_OBS_OF_TRACE})", INT),
        "totalCost": (f"(SELECT COALESCE(sum(x.total_cost), 0) {_OBS_OF_TRACE})", DEC),
    },
    extra_filters={"metadata": "t.metadata", "timestamp": "t.timestamp", "bookmarked": "FALSE"},
)

SCORE_VIEW_TYPES: dict[str, tuple[str, ...]] = {}  # view name -> the score data types it holds
_SCORE_DIMS = {
    "environment": "s.environment", "name": "s.name", "source": "s.source", "dataType": "s.data_type",
    "configId": "NULLIF(s.config_id, '')",
    "timestampMonth": "to_char(date_trunc('month', s.timestamp, 'UTC'), 'YYYY-MM')",
    "timestampDay": "to_char(date_trunc('day', s.timestamp, 'UTC'), 'YYYY-MM-DD')",
    "traceName": "t.name", "tags": "t.tags", "traceRelease": "t.release", "traceVersion": "t.version",
    "observationName": f'(SELECT x.name FROM "{OBS}" x WHERE x.project_id = s.project_id AND x.id = s.observation_id)',
    "observationModelName": f'(SELECT x.model FROM "{OBS}" x WHERE x.project_id = s.project_id AND x.id = s.observation_id)',
    "observationPromptName": (
        f'(SELECT NULLIF(x.prompt_name, \'\') FROM "{OBS}" x WHERE x.project_id = s.project_id AND x.id = s.observation_id)'),
    "observationPromptVersion": (
        f'(SELECT x.prompt_version FROM "{OBS}" x WHERE x.project_id = s.project_id AND x.id = s.observation_id)'),
    "id": "s.id", "traceId": "NULLIF(s.trace_id, '')", "observationId": "NULLIF(s.observation_id, '')",
    "sessionId": "NULLIF(s.session_id, '')", "userId": "NULLIF(t.user_id, '')",
    # The scored trace's feature under the project's rule (as for observations): feedback by feature.
    "feature": "%(feature)s",
}


def _score_view(name: str, data_types: tuple[str, ...], extra_dims: dict, measures: dict) -> View:
    SCORE_VIEW_TYPES[name] = data_types
    types = ", ".join(f"'{t}'" for t in data_types)
    return View(
        name=name, base=f'"{SCORES}" s', project_column="s.project_id", time_column="s.timestamp",
        condition=f"s.data_type IN ({types})", trace_join=_TRACE_ON.format(alias="s"),
        dimensions={**_SCORE_DIMS, **extra_dims}, measures=measures,
        extra_filters={"metadata": "s.metadata", "timestamp": "s.timestamp", "comment": "s.comment"},
    )


SCORE_VIEWS = {
    "scores-numeric": _score_view("scores-numeric", ("NUMERIC", "BOOLEAN"), {"value": "s.value"},
                                  {"count": ("1", INT), "value": ("s.value", NUM)}),
    "scores-boolean": _score_view("scores-boolean", ("BOOLEAN",), {"value": "s.value", "booleanValue": "(s.value = 1)",
                                                                   "stringValue": "s.string_value"},
                                  {"count": ("1", INT), "value": ("s.value", NUM)}),
    "scores-categorical": _score_view("scores-categorical", ("CATEGORICAL",), {"stringValue": "s.string_value"},
                                      {"count": ("1", INT)}),
}

# Billable units (Langfuse's: traces + observations + scores, counted by creation time; an update never
# counts again because `created_at` keeps its first value). Read from the rows themselves: exact.
_UNITS_BASE = (
    f"(SELECT project_id, created_at, 'trace' AS unit_type FROM \"{TRACES}\" "
    f"WHERE project_id = %(project)s::uuid AND created_at >= %(from)s AND created_at < %(to)s "
    f"UNION ALL SELECT project_id, created_at, 'observation' FROM \"{OBS}\" "
    f"WHERE project_id = %(project)s::uuid AND created_at >= %(from)s AND created_at < %(to)s "
    f"UNION ALL SELECT project_id, created_at, 'score' FROM \"{SCORES}\" "
    f"WHERE project_id = %(project)s::uuid AND created_at >= %(from)s AND created_at < %(to)s) u"
)
BILLABLE_UNITS = View(
    name="billable-units", base=_UNITS_BASE, project_column="u.project_id", time_column="u.created_at",
    dimensions={"unitType": "u.unit_type", "day": "to_char(date_trunc('day', u.created_at, 'UTC'), 'YYYY-MM-DD')"},
    measures={
        "count": ("1", INT), "units": ("1", INT),
        "traces": ("(u.unit_type = 'trace')::int", INT),
        "observations": ("(u.unit_type = 'observation')::int", INT),
        "scores": ("(u.unit_type = 'score')::int", INT),
    },
)

VIEWS = {v.name: v for v in (OBSERVATIONS, TRACES_VIEW, BILLABLE_UNITS, *SCORE_VIEWS.values())}

# Rollup path: query column -> rollup column (SQL), and measure -> how it is read.
ROLLUP_COLUMNS = {
    "environment": "r.environment",
    "traceName": "r.trace_name",
    "release": "r.release",
    "traceRelease": "r.release",
    "model": "r.model",
    "feature": "r.feature",
    "promptName": "NULLIF(r.prompt_name, '')",
    "promptVersion": "NULLIF(r.prompt_version, 0)",
}
ROLLUP_SUMS = {"count": "calls", "inputTokens": "input_tokens", "outputTokens": "output_tokens",
               "totalTokens": "total_tokens", "cachedInputTokens": "cached_input_tokens", "totalCost": "cost",
               "errors": "errors", "refusals": "refusals"}
ROLLUP_DISTRIBUTIONS = {"latency": ("latency_count", "latency_us_sum", "latency_hist"),
                        "timeToFirstToken": ("ttft_count", "ttft_us_sum", "ttft_hist")}
ROLLUP_MEASURES = frozenset(ROLLUP_SUMS) | frozenset(ROLLUP_DISTRIBUTIONS)


# --- the query -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    measure: str
    aggregation: str

    @property
    def alias(self) -> str:
        return f"{self.aggregation}_{self.measure}"


@dataclass(frozen=True)
class Filter:
    column: str
    operator: str
    value: object
    type: str
    key: str | None = None


@dataclass(frozen=True)
class Query:
    version: int
    view: View
    dimensions: tuple[str, ...]
    metrics: tuple[Metric, ...]
    filters: tuple[Filter, ...]
    granularity: str | None  # resolved (never "auto")
    since: datetime
    until: datetime
    order_by: tuple[tuple[str, str], ...] | None  # (output field, asc|desc)
    row_limit: int
    bins: int


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise MetricsQueryError(message)


def _list_of_objects(value, name: str, limit: int) -> list[dict]:
    if value is None:
        return []
    _require(isinstance(value, list), f"{name} must be an array")
    _require(len(value) <= limit, f"{name} holds at most {limit} entries")
    for item in value:
        _require(isinstance(item, dict), f"every entry of {name} must be an object")
    return value


def _timestamp(value, name: str) -> datetime:
    _require(isinstance(value, str), f"{name} is required: an ISO 8601 date-time with an offset")
    moment = parse_iso_datetime(value) if len(value) <= 64 else None
    _require(moment is not None, f"{name} is not an ISO 8601 date-time: {value[:64]!r}")
    _require(datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime(9000, 1, 1, tzinfo=UTC),
             f"{name} is out of range")
    return moment.astimezone(UTC)


def auto_granularity(since: datetime, until: datetime) -> str:
    """Langfuse's `determineTimeGranularity`: under 2 h → minute, 72 h → hour, 60 d → day, 1 y → week."""
    span = until - since
    if span < timedelta(hours=2):
        return "minute"
    if span < timedelta(hours=72):
        return "hour"
    if span < timedelta(days=60):
        return "day"
    if span < timedelta(days=365):
        return "week"
    return "month"


_ORDER_RE = re.compile(r"^(" + "|".join(AGGREGATIONS) + r")_(.+)$")
_ORDER_SUFFIX_RE = re.compile(r"^(.+)_(" + "|".join(AGGREGATIONS) + r")$")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_query(raw: str | None, *, version: int) -> Query:
    """The validated query from the `query` parameter's JSON text."""
    _require(raw is not None and raw != "", "the query parameter is required: URL-encoded JSON")
    try:
        # The standard library reads integers of any size (orjson stops at 64 bits), so an
        # out-of-range number is reported as such; NaN and Infinity are not JSON. It keeps a lone
        # surrogate escape as such, which no query can send to PostgreSQL (a UnicodeEncodeError, a
        # 500): U+FFFD instead, as every JSON body gets it (`tenancy.http.body.loads_json`).
        data = json.loads(without_lone_surrogates(raw.encode()), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise MetricsQueryError("Invalid JSON in query parameter") from None
    _require(isinstance(data, dict), "query must be a JSON object")
    views = V2_VIEWS if version == 2 else V1_VIEWS
    view_name = data.get("view")
    _require(isinstance(view_name, str) and view_name in views,
             f"view must be one of {', '.join(views)}")
    view = VIEWS[view_name]

    dimensions = []
    for entry in _list_of_objects(data.get("dimensions"), "dimensions", MAX_DIMENSIONS):
        name = entry.get("field")
        _require(isinstance(name, str) and name in view.dimensions,
                 f"unknown dimension {str(name)[:100]!r} for view {view.name}; one of {', '.join(view.dimensions)}")
        if version == 2:
            _require(name not in HIGH_CARDINALITY,
                     f"{name} is a high-cardinality field: use it as a filter, not as a dimension")
        if name not in dimensions:
            dimensions.append(name)

    _require("metrics" in data, "metrics is required")
    metrics = []
    for entry in _list_of_objects(data.get("metrics"), "metrics", MAX_METRICS):
        measure, aggregation = entry.get("measure"), entry.get("aggregation", entry.get("agg"))
        _require(isinstance(measure, str) and measure in view.measures,
                 f"unknown measure {str(measure)[:100]!r} for view {view.name}; one of {', '.join(view.measures)}")
        _require(isinstance(aggregation, str) and aggregation in AGGREGATIONS,
                 f"aggregation must be one of {', '.join(AGGREGATIONS)}")
        metric = Metric(measure, aggregation)
        if metric not in metrics:
            metrics.append(metric)
    _require(bool(metrics), "metrics must name at least one {measure, aggregation}")

    filters = tuple(_filter(entry, view) for entry in _list_of_objects(data.get("filters"), "filters", MAX_FILTERS))

    since = _timestamp(data.get("fromTimestamp"), "fromTimestamp")
    until = _timestamp(data.get("toTimestamp"), "toTimestamp")
    _require(since < until, "fromTimestamp must be before toTimestamp")

    granularity = None
    time_dimension = data.get("timeDimension")
    if time_dimension is not None:
        _require(isinstance(time_dimension, dict), "timeDimension must be an object {granularity} or null")
        granularity = time_dimension.get("granularity")
        _require(isinstance(granularity, str) and granularity in GRANULARITIES,
                 f"timeDimension.granularity must be one of {', '.join(GRANULARITIES)}")
        if granularity == "auto":
            granularity = auto_granularity(since, until)
        steps = _step_count(since, until, granularity)
        _require(steps <= MAX_TIME_STEPS,
                 f"{steps} {granularity} steps between fromTimestamp and toTimestamp; at most {MAX_TIME_STEPS}: "
                 "choose a coarser granularity or a shorter range")

    config = data.get("config")
    _require(config is None or isinstance(config, dict), "config must be an object")
    config = config or {}
    row_limit = config.get("row_limit", V2_DEFAULT_ROW_LIMIT if version == 2 else MAX_ROW_LIMIT)
    _require(isinstance(row_limit, int) and not isinstance(row_limit, bool) and 1 <= row_limit <= MAX_ROW_LIMIT,
             f"config.row_limit must be an integer from 1 to {MAX_ROW_LIMIT}")
    bins = config.get("bins", DEFAULT_BINS)
    _require(isinstance(bins, int) and not isinstance(bins, bool) and 1 <= bins <= MAX_BINS,
             f"config.bins must be an integer from 1 to {MAX_BINS}")

    order_by = None
    if data.get("orderBy") is not None:
        order_by = tuple(_order(entry, dimensions, metrics, granularity)
                         for entry in _list_of_objects(data.get("orderBy"), "orderBy", MAX_METRICS + MAX_DIMENSIONS + 1))
    return Query(version=version, view=view, dimensions=tuple(dimensions), metrics=tuple(metrics), filters=filters,
                 granularity=granularity, since=since, until=until, order_by=order_by, row_limit=row_limit, bins=bins)


def _order(entry: dict, dimensions: list, metrics: list, granularity) -> tuple[str, str]:
    name, direction = entry.get("field"), entry.get("direction", "asc")
    _require(direction in ("asc", "desc"), "orderBy direction must be asc or desc")
    _require(isinstance(name, str), "Invalid orderBy field")
    if name in dimensions or (name == "time_dimension" and granularity):
        return name, direction
    aliases = {m.alias: m for m in metrics}
    match = _ORDER_RE.match(name)
    if match is None or name not in aliases:
        # The docs' spelling, `<measure>_<aggregation>` (e.g. totalCost_sum), is accepted too.
        suffix = _ORDER_SUFFIX_RE.match(name)
        if suffix is not None:
            name = f"{suffix.group(2)}_{suffix.group(1)}"
    _require(name in aliases, f"Invalid orderBy field: {str(entry.get('field'))[:100]!r} names no dimension or metric "
             "of the query")
    _require(aliases[name].aggregation != "histogram", "a histogram cannot be ordered by")
    return name, direction


FILTER_TYPES = ("datetime", "string", "number", "stringOptions", "arrayOptions", "stringObject", "numberObject",
                "boolean", "null", "categoryOptions")
_COMPARE = {"=": "=", ">": ">", "<": "<", ">=": ">=", "<=": "<=", "!=": "<>", "<>": "<>"}


# What a filter column holds, and the filter types that apply to it (the rest are strings).
COLUMN_KINDS = {
    "tags": "array", "traceTags": "array",
    "startTime": "datetime", "endTime": "datetime", "timestamp": "datetime",
    "promptVersion": "number", "observationPromptVersion": "number", "value": "number",
    "isRootObservation": "boolean", "booleanValue": "boolean", "bookmarked": "boolean",
    "metadata": "json",
}
KIND_FILTERS = {
    "string": ("string", "stringOptions", "categoryOptions", "null"),
    "number": ("number", "null"),
    "datetime": ("datetime", "null"),
    "boolean": ("boolean", "null"),
    "array": ("arrayOptions", "null"),
    "json": ("stringObject", "numberObject", "null"),
}


def _filter(entry: dict, view: View) -> Filter:
    column, operator, value, kind = entry.get("column"), entry.get("operator"), entry.get("value"), entry.get("type")
    known = {**view.dimensions, **view.extra_filters}
    _require(isinstance(column, str) and column in known,
             f"unknown filter column {str(column)[:100]!r} for view {view.name}; one of {', '.join(known)}")
    _require(kind in FILTER_TYPES, f"filter type must be one of {', '.join(FILTER_TYPES)}")
    allowed_types = KIND_FILTERS[COLUMN_KINDS.get(column, "string")]
    _require(kind in allowed_types, f"a {kind} filter does not apply to {column}; use {', '.join(allowed_types)}")
    _require(isinstance(operator, str), "filter operator is required")
    key = entry.get("key")
    _require(key is None or (isinstance(key, str) and len(key) <= 500), "filter key must be a string")
    if kind in ("string",):
        _require(operator in ("=", "!=", "<>", "contains", "does not contain", "starts with", "ends with"),
                 f"operator {operator[:40]!r} does not apply to a string filter")
        _require(isinstance(value, str) and len(value) <= 10_000, "a string filter's value must be a string")
    elif kind in ("number", "numberObject"):
        _require(operator in _COMPARE, f"operator {operator[:40]!r} does not apply to a number filter")
        # Compared as a number first: a huge integer cannot even become a float.
        _require(isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300,
                 "a number filter's value must be a finite number (below 1e300)")
    elif kind == "datetime":
        _require(operator in _COMPARE, f"operator {operator[:40]!r} does not apply to a datetime filter")
        value = _timestamp(value, "a datetime filter's value")
    elif kind in ("stringOptions", "arrayOptions", "categoryOptions"):
        allowed = ("any of", "none of", "all of") if kind == "arrayOptions" else ("any of", "none of")
        _require(operator in allowed, f"operator {operator[:40]!r} does not apply to a {kind} filter")
        _require(isinstance(value, list) and len(value) <= MAX_FILTER_VALUES
                 and all(isinstance(v, str) and len(v) <= 10_000 for v in value),
                 f"a {kind} filter's value must be an array of strings")
    elif kind == "stringObject":
        _require(operator in ("=", "!=", "<>", "contains", "does not contain", "starts with", "ends with"),
                 f"operator {operator[:40]!r} does not apply to a stringObject filter")
        _require(isinstance(value, str) and len(value) <= 10_000, "a stringObject filter's value must be a string")
        _require(isinstance(key, str), "a stringObject filter needs a key")
    elif kind == "boolean":
        _require(operator in ("=", "<>", "!="), f"operator {operator[:40]!r} does not apply to a boolean filter")
        _require(isinstance(value, bool), "a boolean filter's value must be true or false")
    elif kind == "null":
        _require(operator in ("is null", "is not null"), "a null filter's operator is 'is null' or 'is not null'")
    if kind in ("stringObject", "numberObject"):
        _require(isinstance(key, str), f"a {kind} filter needs a key")
    return Filter(column=column, operator=operator, value=value, type=kind, key=key)


def _step_count(since: datetime, until: datetime, granularity: str) -> int:
    if granularity == "month":
        return (until.year - since.year) * 12 + until.month - since.month + 1
    return int((until - since) / STEP[granularity]) + 2


# --- SQL -------------------------------------------------------------------------------------------

def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_sql(f: Filter, expr: str, params: list) -> str:
    if f.type == "stringObject":
        params.append(f.key)
        expr = f"({expr} ->> %s)"
    elif f.type == "numberObject":
        params.append(f.key)
        # A metadata value that is not a number never matches (rather than failing the query).
        expr = (f"(SELECT CASE WHEN v ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN v::double precision END "
                f"FROM (SELECT {expr} ->> %s AS v) AS m)")
    if f.type == "null":
        return f"({expr} IS {'NOT ' if f.operator == 'is not null' else ''}NULL)"
    if f.type in ("string", "stringObject"):
        text = f"({expr})::text"
        if f.operator in ("=",):
            params.append(f.value)
            return f"{text} = %s"
        if f.operator in ("!=", "<>"):
            params.append(f.value)
            return f"{text} IS DISTINCT FROM %s"
        pattern = {"contains": "%{}%", "does not contain": "%{}%", "starts with": "{}%", "ends with": "%{}"}[f.operator]
        params.append(pattern.format(_escape_like(f.value)))
        negate = "NOT " if f.operator == "does not contain" else ""
        return f"{negate}COALESCE({text} LIKE %s, FALSE)"
    if f.type in ("number", "numberObject", "datetime"):
        params.append(f.value)
        return f"({expr}) {_COMPARE[f.operator]} %s"
    if f.type in ("stringOptions", "categoryOptions"):
        params.append(list(f.value))
        if f.operator == "any of":
            return f"({expr})::text = ANY(%s::text[])"
        return f"NOT COALESCE(({expr})::text = ANY(%s::text[]), FALSE)"
    if f.type == "arrayOptions":
        params.append(list(f.value))
        if f.operator == "any of":
            return f"COALESCE(({expr}) && %s::text[], FALSE)"
        if f.operator == "all of":
            return f"COALESCE(({expr}) @> %s::text[], FALSE)"
        return f"NOT COALESCE(({expr}) && %s::text[], FALSE)"
    if f.type == "boolean":
        params.append(f.value)
        op = "=" if f.operator == "=" else "IS DISTINCT FROM"
        return f"({expr}) {op} %s"
    raise MetricsQueryError(f"filter type {f.type} is not supported")


def _feature_sql(rule: FeatureRule, params: dict) -> str:
    """The feature of a call under the project's rule, as `ingest.rollups` computes it (truncated).
    One difference: a metadata value that is a JSON object or array reads as PostgreSQL's JSON text
    here (`{"a": 1}`) and as compact JSON in the rollups (`{"a":1}`); strings, numbers and booleans
    read the same."""
    if rule.source == "trace_name":
        return "left(COALESCE(t.name, ''), 200)"
    params["feature_key"] = rule.key
    if rule.source == "tag_prefix":
        return ("left(COALESCE((SELECT substr(x, length(%(feature_key)s) + 1) FROM unnest(t.tags) x "
                "WHERE starts_with(x, %(feature_key)s) LIMIT 1), ''), 200)")
    return ("left(COALESCE(CASE jsonb_typeof(t.metadata -> %(feature_key)s) WHEN 'string' THEN "
            "t.metadata ->> %(feature_key)s WHEN 'null' THEN NULL ELSE (t.metadata -> %(feature_key)s)::text END, ''), 200)")


def _time_bucket(expr: str, granularity: str) -> str:
    return f"date_trunc('{granularity}', {expr}, 'UTC')"


def _aggregate(metric: Metric, expr: str) -> str:
    if metric.aggregation in QUANTILE:
        return f"percentile_cont({QUANTILE[metric.aggregation]}) WITHIN GROUP (ORDER BY ({expr}))"
    if metric.aggregation == "count":
        return f"count({expr})"
    if metric.aggregation == "sum":
        return f"COALESCE(sum({expr}), 0)"
    return f"{metric.aggregation}({expr})"


def rollup_answers(query: Query) -> bool:
    """Whether the hourly rollups hold everything the query asks (see the module docstring). Any
    window: its whole hours are read from the rollups, its partial edge hours (at most two) are rolled
    up from the raw calls in the same statement (`_window_parts`, `_edge_rows_sql`). Score views: the
    score rollups (`score_rollups_hold`)."""
    if query.view.name in SCORE_VIEWS:
        return score_rollups_hold(query)
    if query.view is not OBSERVATIONS or query.granularity == "minute":
        return False
    typed = [f for f in query.filters if f.column == "type"]
    if len(typed) != 1 or typed[0].type != "stringOptions" or typed[0].operator != "any of" \
            or set(typed[0].value) != LLM_TYPES:
        return False
    if any(f.column != "type" and (f.column not in ROLLUP_COLUMNS or f.type in ("stringObject", "numberObject"))
           for f in query.filters):
        return False
    if any(d not in ROLLUP_COLUMNS for d in query.dimensions):
        return False
    for m in query.metrics:
        if m.measure in ROLLUP_SUMS:
            # Averages, minima and maxima of sums need the per-call values.
            if m.aggregation not in ("sum", "count") and not (m.measure == "count"):
                return False
        elif m.measure in ROLLUP_DISTRIBUTIONS:
            if m.aggregation not in ("avg", "count", *QUANTILE):
                return False
        else:
            return False
    return True


@dataclass
class _Plan:
    sql: str
    params: dict
    group_aliases: list
    metric_aliases: list


def _where(query: Query, view: View, columns: dict, params: dict, *, time_column: str, project_column: str) -> str:
    clauses = [f"{project_column} = %(project)s::uuid", f"{time_column} >= %(from)s", f"{time_column} < %(to)s"]
    if columns is not ROLLUP_COLUMNS:
        clauses.append(view.condition)
    filters = [f for f in query.filters if not (columns is ROLLUP_COLUMNS and f.column == "type")]
    clauses += _filter_clauses(filters, {**view.extra_filters, **columns}, params)
    return " AND ".join(clauses)


def _filter_clauses(filters, columns: dict, params: dict) -> list[str]:
    clauses = []
    positional: list = []
    for f in filters:
        clause = _filter_sql(f, columns[f.column], positional)
        # psycopg's pyformat wants named parameters throughout: name each positional one.
        while "%s" in clause:
            name = f"f{len(params)}"
            params[name] = positional.pop(0)
            clause = clause.replace("%s", f"%({name})s", 1)
        clauses.append(clause)
    return clauses


_USES_TRACE = re.compile(r"\bt\.")


def _raw_plan(query: Query, rule: FeatureRule) -> _Plan:
    view = query.view
    params: dict = {}
    dims = dict(view.dimensions)
    if "feature" in dims:
        dims["feature"] = _feature_sql(rule, params)
    select, groups = [], []
    for index, name in enumerate(query.dimensions):
        select.append(f"{dims[name]} AS d{index}")
        groups.append(f"d{index}")
    if query.granularity:
        select.append(f"{_time_bucket(view.time_column, query.granularity)} AS td")
        groups.append("td")
    metric_aliases = []
    for index, metric in enumerate(query.metrics):
        expr = view.measures[metric.measure][0]
        # A histogram is read by its own statement; its slot here only keeps the positions.
        aggregate = "count(*)" if metric.aggregation == "histogram" else _aggregate(metric, expr)
        select.append(f"{aggregate} AS m{index}")
        metric_aliases.append(f"m{index}")
    where = _where(query, view, dims, params, time_column=view.time_column, project_column=view.project_column)
    base = view.base
    if view.trace_join and _USES_TRACE.search(" ".join([*select, where])):
        base = f"{base} {view.trace_join}"
    sql = f"SELECT {', '.join(select)} FROM {base} WHERE {where}"
    if groups:
        sql += f" GROUP BY {', '.join(groups)}"
    return _Plan(sql=sql, params=params, group_aliases=groups, metric_aliases=metric_aliases)


def _order_sql(query: Query, plan: _Plan) -> str:
    names = {name: f"d{i}" for i, name in enumerate(query.dimensions)}
    names["time_dimension"] = "td"
    names.update({m.alias: f"m{i}" for i, m in enumerate(query.metrics)})
    parts = [f"{names[f]} {d.upper()} NULLS {'LAST' if d == 'desc' else 'FIRST'}" for f, d in _ordering(query)]
    # Ties broken by every group column, so an answer is stable from one call to the next.
    parts += [f"{g} ASC NULLS FIRST" for g in plan.group_aliases]
    return " ORDER BY " + ", ".join(parts) if parts else ""


def _ordering(query: Query) -> tuple[tuple[str, str], ...]:
    if query.order_by is not None:
        return query.order_by
    if query.granularity:
        return (("time_dimension", "asc"),)
    orderable = [m for m in query.metrics if m.aggregation != "histogram"]
    if orderable:
        return ((orderable[0].alias, "desc"),)
    if query.dimensions:
        return ((query.dimensions[0], "asc"),)
    return ()


# --- answering -------------------------------------------------------------------------------------

def run_query(*, project, query: Query) -> dict:
    """`{"data": [...]}` for the query, from the rollups when they hold it, else from the raw rows."""
    rule = applied_feature_rule(project=project)
    rows, source = None, "raw"
    if query.view.name in SCORE_VIEWS:
        if USE_SCORE_ROLLUPS and score_rollups_hold(query):
            rows = _scores_from_rollups(project, query, rule)
            source = "rollups" if rows is not None else "raw"
    elif rollup_answers(query):
        rows, source = _from_rollups(project, query, rule)
    if rows is None:
        rows = _from_raw(project, query, rule)
    if query.granularity and query.order_by is None:
        rows = _zero_fill(query, rows)
    return {"data": rows[: query.row_limit], "source": source}


def _params(project, query: Query, extra: dict) -> dict:
    return {"project": str(project.id), "from": query.since, "to": query.until, **extra}


def _from_raw(project, query: Query, rule: FeatureRule) -> list[dict]:
    plan = _raw_plan(query, rule)
    sql = plan.sql + _order_sql(query, plan) + " LIMIT %(limit)s"
    params = _params(project, query, {**plan.params, "limit": query.row_limit})
    connection = data_connection(project)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # A raw query over a large window must not hold a connection for minutes.
        cursor.execute(f"SET LOCAL statement_timeout = {RAW_STATEMENT_TIMEOUT_MS}")
        cursor.execute(sql, params)
        records = cursor.fetchall()
        histograms = {}
        for index, metric in enumerate(query.metrics):
            if metric.aggregation == "histogram":
                histograms[index] = _histogram(cursor, query, plan, metric, params)
    width = len(plan.group_aliases)
    rows = []
    for record in records:
        group = tuple(_hashable(v) for v in record[:width])
        values = list(record[width:])
        for index, hist in histograms.items():
            values[index] = hist.get(group, [])
        rows.append(_render(query, record[:width], values))
    return rows


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _histogram(cursor, query: Query, plan: _Plan, metric: Metric, params: dict) -> dict:
    """Equal-width bins between each group's minimum and maximum: {group: [[lower, upper, height]…]}."""
    expr = query.view.measures[metric.measure][0]
    inner_select = plan.sql.split(" FROM ", 1)
    select_head = inner_select[0][len("SELECT "):]
    group_exprs = [part for part in _split_select(select_head) if part.rsplit(" AS ", 1)[-1] in plan.group_aliases]
    rest = inner_select[1].rsplit(" GROUP BY ", 1)[0]
    values_sql = (f"SELECT {', '.join([*group_exprs, f'({expr})::double precision AS v'])} FROM {rest}")
    groups = ", ".join(plan.group_aliases)
    partition = f"PARTITION BY {groups}" if groups else ""
    sql = (
        f"WITH vals AS ({values_sql}), b AS (SELECT *, min(v) OVER ({partition}) AS lo, max(v) OVER ({partition}) AS hi "
        f"FROM vals WHERE v IS NOT NULL) SELECT {groups + ', ' if groups else ''}lo, hi, "
        f"LEAST(GREATEST(width_bucket(v, lo, CASE WHEN hi > lo THEN hi ELSE lo + 1 END, %(bins)s), 1), %(bins)s) AS bin, "
        f"count(*) FROM b GROUP BY {groups + ', ' if groups else ''}lo, hi, bin"
    )
    cursor.execute(sql, {**params, "bins": query.bins})
    width = len(plan.group_aliases)
    out: dict = {}
    for record in cursor.fetchall():
        group = tuple(_hashable(v) for v in record[:width])
        lo, hi, index, height = record[width:]
        out.setdefault(group, (lo, hi, {}))[2][index] = height
    result = {}
    for group, (lo, hi, heights) in out.items():
        bins = query.bins if hi > lo else 1
        size = (hi - lo) / bins if hi > lo else 0
        result[group] = [[lo + i * size, lo + (i + 1) * size if hi > lo else hi, heights.get(i + 1, 0)]
                         for i in range(bins)]
    return result


def _split_select(head: str) -> list[str]:
    """Top-level comma split of a SELECT list (expressions hold commas inside parentheses)."""
    parts, depth, current, quoted = [], 0, [], False
    for char in head:
        if char == "'":
            quoted = not quoted
        if not quoted:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            elif char == "," and depth == 0:
                parts.append("".join(current).strip())
                current = []
                continue
        current.append(char)
    if current:
        parts.append("".join(current).strip())
    return parts


def _from_rollups(project, query: Query, rule: FeatureRule) -> tuple[list[dict], str]:
    """(rows, source): the answer from the hourly rollups, plus the window's partial edge hours rolled
    up from the raw calls when the window is not on whole hours (source `rollups+edges`)."""
    params: dict = {}
    select, groups = [], []
    for index, name in enumerate(query.dimensions):
        select.append(f"{ROLLUP_COLUMNS[name]} AS d{index}")
        groups.append(f"d{index}")
    if query.granularity:
        select.append(f"{_time_bucket('r.hour', query.granularity)} AS td")
        groups.append("td")
    reads = ["sum(r.calls)"]
    slots = []  # per metric: how to compute it from the fetched sums
    for metric in query.metrics:
        if metric.measure in ROLLUP_SUMS:
            column = ROLLUP_SUMS[metric.measure]
            reads.append(f"sum(r.{column})")
            slots.append(("sum", len(reads) - 1, metric))
        else:
            count, total, hist = ROLLUP_DISTRIBUTIONS[metric.measure]
            reads.append(f"sum(r.{count})")
            reads.append(f"sum(r.{total})")
            # Only a percentile reads the histogram (80 sums per group).
            reads.append(hist_sum_sql(hist, "r") if metric.aggregation in QUANTILE else "NULL")
            slots.append(("dist", len(reads) - 3, metric))
    where = _where(query, OBSERVATIONS, ROLLUP_COLUMNS, params, time_column="r.hour", project_column="r.project_id")
    window = _window_parts(query)
    if window.edges:
        used = set(_ROLLUP_COLUMN_RE.findall(" ".join([*select, *reads, where])))
        source = f"({_rollup_rows_sql(used, window, params)} UNION ALL {_edge_rows_sql(used, window, rule, params)}) r"
        # The outer bounds are the covering whole hours; each part of the union keeps to its own.
        params.update({"from": window.cover_from, "to": window.cover_to})
        source_name = "rollups+edges"
    else:
        source = f'"{ROLLUP}" r'
        source_name = "rollups"
    sql = f"SELECT {', '.join(select + reads)} FROM {source} WHERE {where}"
    if groups:
        # A group whose calls all moved away keeps a zero row in the rollups: not a group.
        sql += f" GROUP BY {', '.join(groups)} HAVING sum(r.calls) <> 0"
    # Without groups, one row always (zero counts), as an aggregate over no rows answers.
    connection = data_connection(project)
    bounded = transaction.atomic(using=connection.alias) if window.edges else nullcontext()
    with bounded, connection.cursor() as cursor:
        if window.edges:
            # The edge hours read raw rows: bounded like the raw path.
            cursor.execute(f"SET LOCAL statement_timeout = {RAW_STATEMENT_TIMEOUT_MS}")
        cursor.execute(sql, {**_params(project, query, {}), **params})
        records = cursor.fetchall()
    width = len(groups)
    rows = []
    for record in records:
        fetched = record[width:]
        values = []
        for kind, at, metric in slots:
            if kind == "sum":
                value = fetched[0] if metric.measure == "count" or metric.aggregation == "count" else fetched[at]
                values.append(value or 0)
            else:
                count, total_us, hist = fetched[at] or 0, fetched[at + 1] or 0, fetched[at + 2]
                if metric.aggregation == "count":
                    values.append(count)
                elif metric.aggregation == "avg":
                    values.append(float(total_us) / float(count) / 1000 if count else None)
                else:
                    values.append(percentile_of(list(hist or ()), QUANTILE[metric.aggregation]))
        rows.append((record[:width], values))
    rows = _sort_python(query, rows)
    return [_render(query, group, values) for group, values in rows], source_name


# --- windows not on whole hours: the edge hours rolled up from the raw calls -----------------------
# The SDKs and dashboards send windows such as "now − 7 days" with seconds. Their whole hours come from
# the rollups; the calls of the (at most two) partial hours at the edges are read by the project/time
# index and turned into rows of the rollup's shape — the same dimensions and per-call contributions as
# `ingest.rollups.Deltas.add` computes them — then added to the rollup rows with UNION ALL before the
# one aggregation, so counts and sums stay exact and percentiles read the merged histograms.

HOUR = timedelta(hours=1)
_ROLLUP_COLUMN_RE = re.compile(r"\br\.([a-z_]+)")
_CUT = f"left(COALESCE({{}}, ''), {DIMENSION_CHARS})"  # `ingest.rollups._cut`
_LLM_SQL = ", ".join(f"'{t}'" for t in sorted(LLM_TYPES))


@dataclass(frozen=True)
class _Window:
    whole: tuple[datetime, datetime]  # the whole hours inside the window (may be empty: from == to)
    edges: tuple[tuple[datetime, datetime], ...]  # the partial hours' parts inside the window, [from, to)
    cover_from: datetime  # the whole hours covering the window
    cover_to: datetime


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _window_parts(query: Query) -> _Window:
    since, until = query.since, query.until
    first_whole = since if _floor_hour(since) == since else _floor_hour(since) + HOUR
    last_whole = _floor_hour(until)
    edges = []
    if since < first_whole:
        edges.append((since, min(first_whole, until)))
    tail_from = max(last_whole, first_whole)
    if tail_from < until:
        edges.append((tail_from, until))
    whole = (first_whole, last_whole) if first_whole < last_whole else (first_whole, first_whole)
    cover_to = until if _floor_hour(until) == until else last_whole + HOUR
    return _Window(whole=whole, edges=tuple(edges), cover_from=_floor_hour(since), cover_to=cover_to)


def _us_sql(end: str) -> str:
    """A call's duration from its start to `end` in whole µs, bounded as `ingest.rollups._us` does
    (extract gives a numeric: exact to the µs)."""
    return (f"CASE WHEN o.{end} IS NOT NULL THEN LEAST({ROLLUP_US_CAP}, GREATEST(0, "
            f"extract(epoch from (o.{end} - o.start_time)) * 1000000))::bigint ELSE 0 END")


# Rollup column -> the raw call's value (`o`, its trace `t`), as `ingest.rollups.Deltas.add` keys and
# counts it; `feature` is the project's rule (`_feature_sql`). In the rollup table's column order.
_EDGE_DIMENSIONS = {
    "hour": "date_trunc('hour', o.start_time, 'UTC')",
    "feature": None,
    "trace_name": _CUT.format("t.name"),
    "model": _CUT.format("NULLIF(o.response_model, ''), o.model"),
    "environment": _CUT.format("o.environment"),
    "release": _CUT.format("t.release"),
    "prompt_name": _CUT.format("o.prompt_name"),
    "prompt_version": "COALESCE(o.prompt_version, 0)",
}
_EDGE_SUMS = {
    "calls": "1",
    "errors": "(o.status = 'error')::int",
    "refusals": "(o.status = 'refused')::int",
    **{kind: f"LEAST(COALESCE(o.{kind}, 0), {ROLLUP_TOKENS_CAP})"
       for kind in ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
                    "reasoning_tokens", "total_tokens")},
    "unpriced_calls": "(o.total_cost IS NULL)::int",
    "cost": "COALESCE(o.total_cost, 0)",
    "latency_count": "(o.end_time IS NOT NULL)::int",
    "latency_us_sum": _us_sql("end_time"),
    "ttft_count": "(o.completion_start_time IS NOT NULL)::int",
    "ttft_us_sum": _us_sql("completion_start_time"),
}
_EDGE_HISTOGRAMS = {"latency_hist": "end_time", "ttft_hist": "completion_start_time"}
_TRACE_COLUMNS = frozenset({"feature", "trace_name", "release"})


def _edge_columns(used: set[str]) -> list[str]:
    """The union's columns, in one order for both parts: the project, the hour, then what the query reads."""
    known = [*_EDGE_DIMENSIONS, *_EDGE_SUMS, *_EDGE_HISTOGRAMS]
    return ["project_id", *(c for c in known if c in used or c in ("hour", "calls"))]


def _rollup_rows_sql(used: set[str], window: _Window, params: dict) -> str:
    params.update({"whole_from": window.whole[0], "whole_to": window.whole[1]})
    return (f'SELECT {", ".join(_edge_columns(used))} FROM "{ROLLUP}" WHERE project_id = %(project)s::uuid '
            "AND hour >= %(whole_from)s AND hour < %(whole_to)s")


def _edge_rows_sql(used: set[str], window: _Window, rule: FeatureRule, params: dict) -> str:
    """The LLM calls of the window's partial hours as rollup rows: one per hour and combination of the
    dimensions the query reads, with the per-call sums and 80-bucket histograms the rollups hold."""
    columns = _edge_columns(used)
    per_call, grouped, outer, groups = [], [], [], []
    for column in columns[1:]:
        if column in _EDGE_DIMENSIONS:
            expr = _feature_sql(rule, params) if column == "feature" else _EDGE_DIMENSIONS[column]
            per_call.append(f"{expr} AS {column}")
            grouped.append(f"c.{column}")
            groups.append(f"c.{column}")
            outer.append(f"g.{column}")
        elif column in _EDGE_HISTOGRAMS:
            end = _EDGE_HISTOGRAMS[column]
            per_call.append(f"CASE WHEN o.{end} IS NOT NULL THEN {bucket_sql(_us_sql(end))} END AS {column}")
            # Each group's bucket numbers, then counted into the dense 80-bucket array. (80 `count(*)
            # FILTER (…)` aggregates instead evaluated the flattened bucket expression 80 times a call.)
            grouped.append(f"array_agg(c.{column}) AS {column}")
            outer.append(_dense_histogram_sql(f"g.{column}") + f" AS {column}")
        else:
            per_call.append(f"{_EDGE_SUMS[column]} AS {column}")
            grouped.append(f"sum(c.{column}){'' if column == 'cost' else '::bigint'} AS {column}")
            outer.append(f"g.{column}")
    ranges = []
    for index, (start, end) in enumerate(window.edges):
        params[f"edge{index}_from"], params[f"edge{index}_to"] = start, end
        ranges.append(f"(o.start_time >= %(edge{index}_from)s AND o.start_time < %(edge{index}_to)s)")
    # A call counts under its stored trace, as in the rollups (every stored call has one: the writer
    # creates a placeholder); the join is made only when a trace dimension is read.
    join = (f'JOIN "{TRACES}" t ON t.project_id = o.project_id AND t.id = o.trace_id '
            if _TRACE_COLUMNS & set(columns) else "")
    calls = (f'SELECT {", ".join(per_call)} FROM "{OBS}" o {join}WHERE o.project_id = %(project)s::uuid '
             f"AND o.type IN ({_LLM_SQL}) AND o.duplicate_of = '' AND ({' OR '.join(ranges)})")
    return (f"SELECT %(project)s::uuid AS project_id, {', '.join(outer)} FROM (SELECT {', '.join(grouped)} "
            f"FROM ({calls}) c GROUP BY {', '.join(groups)}) g")


def _dense_histogram_sql(buckets: str) -> str:
    """SQL: the rollups' histogram (bigint[80], a count per bucket) of an array of bucket numbers (NULLs,
    calls without that duration, count nowhere). Plain expressions, no subquery: a correlated subquery
    is parallel-restricted and took the parallel scan of the rollup rows away from the whole statement."""
    counts = ", ".join(f"cardinality(array_positions({buckets}, {i}))" for i in range(HISTOGRAM_BUCKETS))
    return f"ARRAY[{counts}]::bigint[]"


# --- scores from the score rollups -----------------------------------------------------------------
#
# `monitoring_hourlyscorerollup` holds, per hour of a score's timestamp and per name, source, data type,
# environment and the scored trace's feature, name and release (as that trace is stored now): the
# scores, those with a value, and the exact (numeric) sum of their values. A score query that only
# asks for those is answered from it: the window's whole hours from the rollup rows and its partial
# hours at either edge (a window ending now) from the score rows themselves, both shaped as one
# relation `r` that the raw path's GROUP BY, ORDER BY (ties broken by every group) and LIMIT read, so
# groups, ordering and row limits are the raw path's. Counts are identical; a sum or an average is
# the exact sum of the values rounded once, where the raw path adds floats in scan order (the same
# whenever those additions are exact, e.g. 0/1, halves, integers; else within the last bits).

SCORE_ROLLUP_COLUMNS = {
    "name": "r.name", "source": "r.source", "dataType": "r.data_type", "environment": "r.environment",
    "traceName": "r.trace_name", "traceRelease": "r.release", "feature": "r.feature",
    "timestampMonth": "to_char(date_trunc('month', r.hour, 'UTC'), 'YYYY-MM')",
    "timestampDay": "to_char(date_trunc('day', r.hour, 'UTC'), 'YYYY-MM-DD')",
}
# A BOOLEAN score's value is 0 or 1 (every write path refuses anything else: ingest.adapters.langfuse,
# scores.services.conform_score, feedback's thumbs), so a rollup row's trues are its value sum and its
# falses the rest of its values: `scores-boolean` by (or filtered on) the value splits each row in three
# (1, 0, no value) and reads the split rows.
SCORE_SPLIT_COLUMNS = {"value": "r.bv", "booleanValue": "(r.bv = 1)"}
# The trace's name and release as the rollups hold them: cut to DIMENSION_CHARS, and '' for a score
# whose trace is not stored, where the raw rows' LEFT JOIN reads NULL. Exact when the window's rollup
# rows have no value that may be cut and none with every trace dimension empty (a stored trace without
# name, release or feature looks like a missing one): checked before answering, else the raw rows.
SCORE_TRACE_COLUMNS = frozenset({"traceName", "traceRelease"})
# False reads every score query from the raw rows again (`make bench-dashboards` times both, alternated).
USE_SCORE_ROLLUPS = True
# Scores of one end user (a `userId` filter) are in the per-user daily score rollup, by day, name, source
# and data type: a query filtered on a user that only asks for those reads it (days, weeks, months),
# its partial edge days from the score rows. Only filters that never match a score without a user (the
# raw rows' NULL): "none of" or "does not contain" a user also count every other score, which that
# table does not hold.
USER_SCORE_COLUMNS = {
    "name": "r.name", "source": "r.source", "dataType": "r.data_type", "userId": "r.user_id",
    "timestampMonth": SCORE_ROLLUP_COLUMNS["timestampMonth"], "timestampDay": SCORE_ROLLUP_COLUMNS["timestampDay"],
}
_USER_FILTERS = {"string": ("=", "contains", "starts with", "ends with"), "stringOptions": ("any of",),
                 "categoryOptions": ("any of",)}
_TIME_BOUNDS = (">=", ">", "<", "<=")  # a `timestamp` filter that only narrows the window
_US = timedelta(microseconds=1)


def _by_user(query: Query) -> bool:
    return any(f.column == "userId" for f in query.filters)


# The scored observation's columns. The score rollups do not hold them, but a score without an
# observation id reads NULL in every one of them (the raw path's subquery finds no row; an observation
# id is never empty). So the window's whole hours read the rollup rows with these columns NULL, take
# back the scores that name an observation (negated, under the same rollup dimensions) and add them
# again under their observation as stored now: the raw answer row for row, reading raw only the scores
# on observations (partial index `score_project_on_obs_time`). A thumb on a whole trace stays under
# NULL ("on the trace"), as in the raw path; one on a generation counts under that generation. The
# taken-back rows carry the trace columns as the edges read them (`_feature_sql`, with its one
# difference: a feature from a JSON object or array in metadata), which matters only to a query that
# also groups or filters by feature.
SCORE_OBSERVATION_COLUMNS = {
    "observationName": "r.obs_name", "observationModelName": "r.obs_model",
    "observationPromptName": "r.obs_prompt_name", "observationPromptVersion": "r.obs_prompt_version",
}
_OBS_DIMS = "obs_name, obs_model, obs_prompt_name, obs_prompt_version"
_NO_OBS = "NULL::text, NULL::text, NULL::text, NULL::integer"
_NO_OBS_NAMED = ", ".join(f"{value} AS {name}" for value, name in zip(_NO_OBS.split(", "), _OBS_DIMS.split(", ")))
_OBS_OF_SCORE = f'LEFT JOIN "{OBS}" x ON x.project_id = s.project_id AND x.id = s.observation_id'
_OBS_VALUES = "x.name::text, x.model::text, NULLIF(x.prompt_name, '')::text, x.prompt_version"


def _score_columns(query: Query) -> dict:
    columns = USER_SCORE_COLUMNS if _by_user(query) else {**SCORE_ROLLUP_COLUMNS, **SCORE_OBSERVATION_COLUMNS}
    if query.view.name == "scores-boolean":
        return {**columns, **SCORE_SPLIT_COLUMNS}
    return columns


def score_rollups_hold(query: Query) -> bool:
    """Whether the score rollups hold every dimension, filter and measure of a score view's query:
    dimensions and filters among `SCORE_ROLLUP_COLUMNS` and `SCORE_OBSERVATION_COLUMNS` (the latter not
    with a user), the value of a boolean score, `timestamp`
    bounds, an hour or coarser; counts of scores, and count, sum and average of their values."""
    if query.view.name not in SCORE_VIEWS or query.granularity == "minute":
        return False
    if _by_user(query):
        if query.granularity == "hour" or any(
                f.column == "userId" and f.operator not in _USER_FILTERS.get(f.type, ()) for f in query.filters):
            return False
    columns = _score_columns(query)
    if any(d not in columns for d in query.dimensions):
        return False
    for f in query.filters:
        if f.column == "timestamp":
            if f.type != "datetime" or f.operator not in _TIME_BOUNDS:
                return False
        elif f.column not in columns:
            return False
    for m in query.metrics:
        if m.aggregation == "histogram" or m.measure not in ("count", "value"):
            return False
        if m.measure == "value" and m.aggregation not in ("count", "sum", "avg"):
            return False
    return True


def _floor(moment: datetime, unit: str) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


def _ceil(moment: datetime, unit: str) -> datetime:
    floor = _floor(moment, unit)
    return floor if floor == moment else floor + (timedelta(days=1) if unit == "day" else timedelta(hours=1))


def _ceil_hour(moment: datetime) -> datetime:
    return _ceil(moment, "hour")


def _score_window(query: Query) -> tuple[datetime, datetime]:
    """The query's window narrowed by its `timestamp` bounds (timestamps are whole microseconds)."""
    since, until = query.since, query.until
    for f in query.filters:
        if f.column != "timestamp":
            continue
        if f.operator == ">=":
            since = max(since, f.value)
        elif f.operator == ">":
            since = max(since, f.value + _US)
        elif f.operator == "<":
            until = min(until, f.value)
        else:
            until = min(until, f.value + _US)
    return since, max(since, until)


def _score_aggregate(metric: Metric) -> str:
    if metric.measure == "count":
        if metric.aggregation in ("count", "sum"):
            return "COALESCE(sum(r.n), 0)"
        # avg, min, max, percentiles of the constant 1: 1 over any score, null over none.
        return "CASE WHEN sum(r.n) > 0 THEN 1 END"
    if metric.aggregation == "count":
        return "COALESCE(sum(r.vc), 0)"
    if metric.aggregation == "sum":
        return "COALESCE(sum(r.vs), 0)::double precision"
    # numeric -> float8 rounds the exact sum once; then one float division, as float8 avg does.
    return "sum(r.vs)::double precision / NULLIF(sum(r.vc), 0)::double precision"


def _scores_from_rollups(project, query: Query, rule: FeatureRule) -> list[dict] | None:
    """The answer from the score rollups, or None when the window's rows cannot tell a trace column
    or a user exactly (see SCORE_TRACE_COLUMNS): the caller then reads the raw rows."""
    columns = _score_columns(query)
    by_user = _by_user(query)
    on_obs = False
    unit = "day" if by_user else "hour"
    since, until = _score_window(query)
    units_from, units_to = _ceil(since, unit), _floor(until, unit)
    if units_from >= units_to:  # no whole hour (day): the score rows answer alone
        units_from = units_to = since
    params: dict = {"project": str(project.id), "from": since, "to": until, "units_from": units_from,
                    "units_to": units_to, "types": list(SCORE_VIEW_TYPES[query.view.name]), "cut": DIMENSION_CHARS}
    if by_user:
        dims = "hour, name, source, data_type, user_id"
        params.update(days_from=units_from.date(), days_to=units_to.date())
        # A rollup row covers [day, day + 1): only days whole inside the window (else none: from = to).
        rollup = (f"SELECT (day::timestamp AT TIME ZONE 'UTC') AS hour, name, source, data_type, user_id, scores AS n, "
                  f'value_count AS vc, value_sum AS vs FROM "{USER_SCORE_ROLLUP}" WHERE project_id = %(project)s::uuid '
                  f"AND day >= %(days_from)s AND day < %(days_to)s AND data_type = ANY(%(types)s)")
        edge_dims = "NULLIF(t.user_id, '')"
        doubt = (f'SELECT EXISTS (SELECT 1 FROM "{USER_SCORE_ROLLUP}" WHERE project_id = %(project)s::uuid '
                 f"AND day >= %(days_from)s AND day < %(days_to)s AND scores <> 0 AND length(user_id) >= %(cut)s)")
    else:
        dims = "hour, name, source, data_type, environment, trace_name, release, feature"
        uses = set(query.dimensions) | {f.column for f in query.filters}
        on_obs = bool(uses & set(SCORE_OBSERVATION_COLUMNS))
        rollup = (f"SELECT {dims}, {_NO_OBS_NAMED + ', ' if on_obs else ''}scores AS n, value_count AS vc, "
                  f"value_sum AS vs FROM \"{SCORE_ROLLUP}\" "
                  f"WHERE project_id = %(project)s::uuid AND hour >= %(units_from)s AND hour < %(units_to)s "
                  f"AND data_type = ANY(%(types)s)")
        edge_dims = f"s.environment, t.name, t.release, {_feature_sql(rule, params)}"
        if on_obs:
            # See SCORE_OBSERVATION_COLUMNS: the whole hours' scores on an observation, once out of
            # the NULL columns the rollup rows read, once in under their observation.
            obs_fix = (
                f"SELECT date_trunc('hour', s.timestamp, 'UTC'), s.name, s.source, s.data_type, {edge_dims}, "
                f"k.obs_name, k.obs_model, k.obs_prompt_name, k.obs_prompt_version, k.sign, "
                f"k.sign * (s.value IS NOT NULL)::int, k.sign * COALESCE(s.value::text::numeric, 0) "
                f"FROM \"{SCORES}\" s {_TRACE_ON.format(alias='s')} {_OBS_OF_SCORE} "
                f"CROSS JOIN LATERAL (VALUES (-1, {_NO_OBS}), (1, {_OBS_VALUES})) "
                f"AS k(sign, {_OBS_DIMS}) "
                f"WHERE s.project_id = %(project)s::uuid AND s.data_type = ANY(%(types)s) AND s.observation_id <> '' "
                f"AND s.timestamp >= %(units_from)s AND s.timestamp < %(units_to)s"
            )
            dims += f", {_OBS_DIMS}"
            edge_dims += f", {_OBS_VALUES}"
        doubt = None if not uses & SCORE_TRACE_COLUMNS else (
            f'SELECT EXISTS (SELECT 1 FROM "{SCORE_ROLLUP}" WHERE project_id = %(project)s::uuid '
            f"AND hour >= %(units_from)s AND hour < %(units_to)s AND data_type = ANY(%(types)s) AND scores <> 0 "
            f"AND ((trace_name = '' AND release = '' AND feature = '') OR length(trace_name) >= %(cut)s "
            f"OR length(release) >= %(cut)s))")
    connection = data_connection(project)
    with connection.cursor() as cursor:
        if doubt and units_from < units_to:
            cursor.execute(doubt, params)
            if cursor.fetchone()[0]:
                return None
        parts = [rollup]
        if on_obs and units_from < units_to:
            parts.append(obs_fix)
        if since < units_from or units_to < until:
            # The edges' scores, read as the raw path reads them (the trace joined as stored now).
            parts.append(
                f"SELECT date_trunc('hour', s.timestamp, 'UTC'), s.name, s.source, s.data_type, {edge_dims}, "
                # float8's text is its shortest exact decimal: the value the rollups add.
                f"1, (s.value IS NOT NULL)::int, COALESCE(s.value::text::numeric, 0) "
                f"FROM \"{SCORES}\" s {_TRACE_ON.format(alias='s')} "
                f"{_OBS_OF_SCORE if on_obs else ''} "
                f"WHERE s.project_id = %(project)s::uuid AND s.data_type = ANY(%(types)s) "
                f"AND ((s.timestamp >= %(from)s AND s.timestamp < %(units_from)s) "
                f"OR (s.timestamp >= %(units_to)s AND s.timestamp < %(to)s))"
            )
        relation = " UNION ALL ".join(parts)
        split = set(query.dimensions) | {f.column for f in query.filters}
        if split & set(SCORE_SPLIT_COLUMNS) and query.view.name == "scores-boolean":
            relation = (
                f"SELECT {', '.join('u.' + d for d in dims.split(', '))}, "
                f"x.bv, x.n, x.vc, x.vs FROM ({relation}) u CROSS JOIN LATERAL (VALUES "
                f"(1::double precision, u.vs, u.vs, u.vs), (0::double precision, u.vc - u.vs, u.vc - u.vs, 0::numeric), "
                f"(NULL::double precision, u.n - u.vc, 0::numeric, 0::numeric)) AS x(bv, n, vc, vs) WHERE x.n <> 0"
            )
        select, groups = [], []
        for index, name in enumerate(query.dimensions):
            select.append(f"{columns[name]} AS d{index}")
            groups.append(f"d{index}")
        if query.granularity:
            select.append(f"{_time_bucket('r.hour', query.granularity)} AS td")
            groups.append("td")
        select += [f"{_score_aggregate(metric)} AS m{index}" for index, metric in enumerate(query.metrics)]
        clauses = ["TRUE", *_filter_clauses([f for f in query.filters if f.column != "timestamp"], columns, params)]
        sql = f"SELECT {', '.join(select)} FROM ({relation}) r WHERE {' AND '.join(clauses)}"
        if groups:
            # A group is a group of scores: rollup rows left at zero (scores moved away) and the empty
            # split rows are none.
            sql += f" GROUP BY {', '.join(groups)} HAVING sum(r.n) <> 0"
        plan = _Plan(sql=sql, params=params, group_aliases=groups, metric_aliases=[])
        sql += _order_sql(query, plan) + " LIMIT %(limit)s"
        cursor.execute(sql, {**params, "limit": query.row_limit})
        records = cursor.fetchall()
    width = len(groups)
    return [_render(query, record[:width], list(record[width:])) for record in records]


def _sort_python(query: Query, rows: list) -> list:
    positions = {name: i for i, name in enumerate(query.dimensions)}
    if query.granularity:
        positions["time_dimension"] = len(query.dimensions)
    metric_positions = {m.alias: i for i, m in enumerate(query.metrics)}

    def value_of(row, name):
        group, values = row
        return group[positions[name]] if name in positions else values[metric_positions[name]]

    def sortable(value):
        if isinstance(value, Decimal):
            return float(value)
        return value

    rows = sorted(rows, key=lambda r: tuple((v is not None, sortable(v) if v is not None else 0)
                                             for v in r[0]))
    for name, direction in reversed(_ordering(query)):
        present = [r for r in rows if value_of(r, name) is not None]
        missing = [r for r in rows if value_of(r, name) is None]
        present.sort(key=lambda r: sortable(value_of(r, name)), reverse=direction == "desc")
        rows = (missing + present) if direction == "asc" else (present + missing)
    return rows


def _render_value(metric: Metric, kind: str, value):
    if metric.aggregation == "histogram":
        return value
    if value is None:
        return None
    if metric.aggregation == "count" or (kind == INT and metric.aggregation in ("sum", "min", "max")):
        return str(int(value))
    return float(value)


def _render(query: Query, group, values) -> dict:
    row = {}
    for index, name in enumerate(query.dimensions):
        row[name] = group[index]
    for metric, value in zip(query.metrics, values, strict=True):
        row[metric.alias] = _render_value(metric, query.view.measures[metric.measure][1], value)
    if query.granularity:
        row["time_dimension"] = _iso(group[len(query.dimensions)])
    return row


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _truncate(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    if granularity == "minute":
        return moment.replace(second=0, microsecond=0)
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(moment: datetime, granularity: str) -> datetime:
    if granularity == "month":
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    return moment + STEP[granularity]


def time_steps(query: Query) -> list[datetime]:
    steps, moment = [], _truncate(query.since, query.granularity)
    while moment < query.until:
        steps.append(moment)
        moment = _next(moment, query.granularity)
    return steps


def _zero_fill(query: Query, rows: list[dict]) -> list[dict]:
    """Langfuse's `ORDER BY time_dimension WITH FILL`: a step with no row gets one, dimensions empty,
    counts and sums 0, other aggregations null. Rows arrive in time order."""
    present = {row["time_dimension"] for row in rows}
    fill = []
    for moment in time_steps(query):
        stamp = _iso(moment)
        if stamp in present:
            continue
        row = {name: None for name in query.dimensions}
        for metric in query.metrics:
            kind = query.view.measures[metric.measure][1]
            if metric.aggregation == "histogram":
                row[metric.alias] = []
            elif metric.aggregation in ("count", "sum"):
                row[metric.alias] = _render_value(metric, kind, 0)
            else:
                row[metric.alias] = None
        row["time_dimension"] = stamp
        fill.append(row)
    merged = rows + fill
    merged.sort(key=lambda r: r["time_dimension"])  # stable: rows of one step keep their order
    return merged


# --- daily metrics (`GET /api/public/metrics/daily`, legacy) ---------------------------------------

DAILY_MAX_LIMIT = 100


def daily_metrics(*, project, page: int, limit: int, trace_name: str | None, user_id: str | None,
                  tags: tuple[str, ...], environments: tuple[str, ...], since: datetime | None,
                  until: datetime | None) -> dict:
    """Langfuse's daily metrics: per UTC day of the traces' timestamps (newest first), the traces, their
    observations, their cost and the usage by model. Days without traces are not listed (as in Langfuse)."""
    params: dict = {"project": str(project.id), "limit": limit, "offset": (page - 1) * limit}
    clauses = ["t.project_id = %(project)s::uuid"]
    if trace_name is not None:
        clauses.append("t.name = %(name)s")
        params["name"] = trace_name
    if user_id is not None:
        clauses.append("t.user_id = %(user)s")
        params["user"] = user_id
    if tags:
        clauses.append("t.tags @> %(tags)s::text[]")
        params["tags"] = list(tags)
    if environments:
        clauses.append("t.environment = ANY(%(envs)s::text[])")
        params["envs"] = list(environments)
    if since is not None:
        clauses.append("t.timestamp >= %(since)s")
        params["since"] = since
    if until is not None:
        clauses.append("t.timestamp <= %(until)s")
        params["until"] = until
    traces = (f"SELECT t.id, (t.timestamp AT TIME ZONE 'UTC')::date AS d FROM \"{TRACES}\" t "
              f"WHERE {' AND '.join(clauses)}")
    connection = data_connection(project)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = {RAW_STATEMENT_TIMEOUT_MS}")
        cursor.execute(f"SELECT count(DISTINCT d) FROM ({traces}) tr", params)
        total_days = cursor.fetchone()[0]
        cursor.execute(
            f"WITH tr AS ({traces}), days AS (SELECT d, count(*) AS n FROM tr GROUP BY d ORDER BY d DESC "
            f"LIMIT %(limit)s OFFSET %(offset)s) "
            f"SELECT days.d, days.n, o.model, count(o.id), count(DISTINCT o.trace_id), "
            f"COALESCE(sum(o.total_cost), 0), COALESCE(sum(o.input_tokens), 0), COALESCE(sum(o.output_tokens), 0), "
            f"COALESCE(sum(o.total_tokens), 0) FROM days JOIN tr ON tr.d = days.d "
            f"LEFT JOIN \"{OBS}\" o ON o.project_id = %(project)s::uuid AND o.trace_id = tr.id AND o.duplicate_of = '' "
            f"GROUP BY days.d, days.n, o.model ORDER BY days.d DESC, o.model",
            params,
        )
        records = cursor.fetchall()
    days: dict = {}
    for day, n_traces, model, n_obs, n_obs_traces, cost, inp, out, total in records:
        entry = days.setdefault(day, {"date": day.isoformat(), "countTraces": n_traces, "countObservations": 0,
                                      "totalCost": 0.0, "usage": []})
        entry["countObservations"] += n_obs
        entry["totalCost"] += float(cost)
        if model:
            entry["usage"].append({
                "model": model, "inputUsage": int(inp), "outputUsage": int(out), "totalUsage": int(total),
                "countObservations": n_obs, "countTraces": n_obs_traces, "totalCost": float(cost),
            })
    return {
        "data": list(days.values()),
        "meta": {"page": page, "limit": limit, "totalItems": total_days,
                 "totalPages": math.ceil(total_days / limit) if total_days else 0},
    }
