"""Reads of traces, observations and sessions for one project.

Every query starts from `Model.objects.for_project(project)`, so it runs on the project's region
database and never sees another tenant's rows. List helpers compute per-trace aggregates (latency,
cost, status, usage, observation and score ids) with one grouped query per page, never per row.
"""

from __future__ import annotations

import binascii
import heapq
import re
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connections, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Greatest, NullIf

from privacy.detectors import DETECTORS
from scores.models import Score, ScoreDataType
from scores.selectors import OPERATORS, ScoreFilters, score_to_langfuse
from tenancy.http.params import InvalidParams, decode_token, encode_token
from traces.models import Observation, Status, Trace

# Worst status wins when a trace is summarised: one failed call makes the trace an error.
_STATUS_RANK = {Status.SUCCESS: 0, Status.REFUSED: 1, Status.ERROR: 2}
_RANK_STATUS = {rank: status for status, rank in _STATUS_RANK.items()}

TOKEN_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
)


class InvalidCursor(ValueError):
    pass


# --- page-numbered lists at volume (issue 13) ------------------------------------------------------
# Langfuse's page-numbered lists answer `meta.totalItems`/`totalPages`. An exact `count(*)` grows with
# the project (every matching row, every request), so the total is exact when it is cheap and an
# estimate otherwise:
# - a page that is not full ends the list: the total is exact (offset + rows on it), no count at all;
# - else, when PostgreSQL expects at most COUNT_EXACT_UP_TO rows, they are counted (up to that cap,
#   a bounded walk): exact;
# - else PostgreSQL's own row estimate for the query (EXPLAIN, no rows read), never less than what
#   the client has already seen plus one, so `page < totalPages` holds while there is more.
COUNT_EXACT_UP_TO = 2_000
# An OFFSET walks every skipped row, so deep page numbers cost what they skip (not what the table
# holds). Beyond this many rows skipped the lists answer 400 and point to time windows or the cursor
# API (v2 observations), which cost the same on any page.
MAX_PAGE_OFFSET = 10_000


class PageTooDeep(InvalidParams):
    def __init__(self, *, page: int, limit: int):
        super().__init__(
            f"page {page} with limit {limit} skips more than {MAX_PAGE_OFFSET:,} rows; narrow the list with "
            "fromTimestamp/toTimestamp (or fromStartTime/toStartTime), or page observations with the "
            "cursor of /api/public/v2/observations"
        )


def _small_count(queryset: QuerySet) -> tuple[int | None, int]:
    """(exact count or None, estimate): the rows are counted (up to COUNT_EXACT_UP_TO + 1, a bounded
    walk) only when PostgreSQL expects at most COUNT_EXACT_UP_TO of them. A count the planner expects
    to be large is never started: with a sparse filter, even a capped count walks much of the table."""
    estimate = planner_rows(queryset)
    if estimate > COUNT_EXACT_UP_TO:
        return None, estimate
    counted = queryset.order_by()[: COUNT_EXACT_UP_TO + 1].count()
    return (counted if counted <= COUNT_EXACT_UP_TO else None), max(estimate, counted)


def past_the_end(queryset: QuerySet, *, page: int, limit: int) -> int | None:
    """For a page deeper than MAX_PAGE_OFFSET: the (exact) total when the list is short and the page
    is simply past its end (an empty page, as before); PageTooDeep when the list is long. None for a
    page within reach."""
    if (page - 1) * limit <= MAX_PAGE_OFFSET:
        return None
    counted, _ = _small_count(queryset)
    if counted is not None:
        return counted
    raise PageTooDeep(page=page, limit=limit)


def planner_rows(queryset: QuerySet) -> int:
    """PostgreSQL's estimate of the rows `queryset` returns (EXPLAIN plans it, reads no rows)."""
    # Compiled for the queryset's own (region) database: a subquery on it is then the same database.
    sql, params = queryset.order_by().query.get_compiler(using=queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = orjson.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def page_total(queryset: QuerySet, *, offset: int, rows_on_page: int, more: bool) -> int:
    """`totalItems` of a page-numbered list (see COUNT_EXACT_UP_TO): exact when small, else estimated."""
    if not more and (rows_on_page or offset == 0):
        return offset + rows_on_page
    counted, estimate = _small_count(queryset)
    if counted is not None:
        return counted
    seen = offset + rows_on_page + (1 if more else 0)
    return max(estimate, COUNT_EXACT_UP_TO + 1, seen)


def _page(queryset: QuerySet, *, ordering, page: int, limit: int) -> tuple[list, int]:
    """One page (one more row is read to know whether the list goes on) and its `totalItems`."""
    if (total := past_the_end(queryset, page=page, limit=limit)) is not None:
        return [], total
    offset = (page - 1) * limit
    rows = list(queryset.order_by(*ordering)[offset : offset + limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, page_total(queryset, offset=offset, rows_on_page=len(rows), more=more)


# --- JSON `filter` conditions (Langfuse's structured filter, a documented subset) ----------------


@dataclass(frozen=True)
class Column:
    """A filterable column: its kind decides the allowed condition types and operators."""

    kind: str  # string | datetime | number | boolean | array | object
    path: str  # ORM path on the entity; "trace." prefix = a column of the observation's trace
    duration: bool = False  # number columns that are durations (seconds on the wire)
    blank_is_null: bool = True


@dataclass(frozen=True)
class Condition:
    column: str
    type: str
    operator: str
    value: Any = None
    key: str | None = None


OBSERVATION_COLUMNS: dict[str, Column] = {
    "id": Column("string", "id"),
    "type": Column("string", "type"),
    "name": Column("string", "name"),
    "traceId": Column("string", "trace_id"),
    "parentObservationId": Column("string", "parent_observation_id"),
    "startTime": Column("datetime", "start_time"),
    "endTime": Column("datetime", "end_time"),
    "completionStartTime": Column("datetime", "completion_start_time"),
    "environment": Column("string", "environment"),
    "level": Column("string", "level"),
    "statusMessage": Column("string", "status_message"),
    "version": Column("string", "version"),
    "status": Column("string", "status"),
    "model": Column("string", "model"),
    "providedModelName": Column("string", "model"),
    "responseModel": Column("string", "response_model"),
    "promptName": Column("string", "prompt_name"),
    "promptVersion": Column("number", "prompt_version"),
    "isRootObservation": Column("boolean", "parent_observation_id"),
    "latency": Column("number", "_latency", duration=True),
    "timeToFirstToken": Column("number", "_ttft", duration=True),
    "inputTokens": Column("number", "input_tokens"),
    "cachedInputTokens": Column("number", "cached_input_tokens"),
    "outputTokens": Column("number", "output_tokens"),
    "reasoningTokens": Column("number", "reasoning_tokens"),
    "totalTokens": Column("number", "total_tokens"),
    "tokens": Column("number", "total_tokens"),
    "inputCost": Column("number", "input_cost"),
    "outputCost": Column("number", "output_cost"),
    "totalCost": Column("number", "total_cost"),
    "metadata": Column("object", "metadata"),
    "userId": Column("string", "trace.user_id"),
    "sessionId": Column("string", "trace.session_id"),
    "traceName": Column("string", "trace.name"),
    "traceTags": Column("array", "trace.tags"),
    "tags": Column("array", "trace.tags"),
}

TRACE_COLUMNS: dict[str, Column] = {
    "id": Column("string", "id"),
    "name": Column("string", "name"),
    "timestamp": Column("datetime", "timestamp"),
    "userId": Column("string", "user_id"),
    "sessionId": Column("string", "session_id"),
    "environment": Column("string", "environment"),
    "version": Column("string", "version"),
    "release": Column("string", "release"),
    "tags": Column("array", "tags"),
    "metadata": Column("object", "metadata"),
}

CONDITION_TYPES: dict[str, dict[str, frozenset[str]]] = {
    # column kind -> condition type -> operators
    "string": {
        "string": frozenset({"=", "contains", "does not contain", "starts with", "ends with"}),
        "stringOptions": frozenset({"any of", "none of"}),
        "categoryOptions": frozenset({"any of", "none of"}),
        "null": frozenset({"is null", "is not null"}),
    },
    "datetime": {
        "datetime": frozenset({">", "<", ">=", "<="}),
        "null": frozenset({"is null", "is not null"}),
    },
    "number": {
        "number": frozenset({"=", ">", "<", ">=", "<="}),
        "null": frozenset({"is null", "is not null"}),
    },
    "boolean": {"boolean": frozenset({"=", "<>"})},
    "array": {"arrayOptions": frozenset({"any of", "none of", "all of"})},
    "object": {
        "stringObject": frozenset(
            {"=", "contains", "does not contain", "starts with", "ends with", "is set", "is not set"}
        ),
        "numberObject": frozenset({"=", ">", "<", ">=", "<="}),
        "categoryOptions": frozenset({"any of", "none of"}),
    },
}

_COMPARISON = {"=": "exact", ">": "gt", "<": "lt", ">=": "gte", "<=": "lte"}
_NUMERIC_TEXT = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"


def _string_q(path: str, operator: str, value: str) -> Q:
    if operator == "=":
        return Q(**{path: value})
    lookup = {
        "contains": "icontains",
        "does not contain": "icontains",
        "starts with": "istartswith",
        "ends with": "iendswith",
    }[operator]
    q = Q(**{f"{path}__{lookup}": value})
    return ~q if operator == "does not contain" else q


def _null_q(path: str, column: Column, operator: str) -> Q:
    q = Q(**{f"{path}__isnull": True})
    if column.kind == "string" and column.blank_is_null:
        q |= Q(**{path: ""})
    return q if operator == "is null" else ~q


class _Compiler:
    """Turns validated conditions into annotations and a Q for one queryset."""

    def __init__(self, *, project, columns: dict[str, Column]):
        self.project = project
        self.columns = columns
        self.annotations: dict[str, Any] = {}
        self.trace_q = Q()
        self.has_trace_q = False

    def _annotate(self, expression) -> str:
        name = f"_cond{len(self.annotations)}"
        self.annotations[name] = expression
        return name

    def _path(self, column: Column) -> str:
        if column.path == "_latency":
            self.annotations.setdefault(
                "_latency", ExpressionWrapper(F("end_time") - F("start_time"), output_field=DurationField())
            )
        elif column.path == "_ttft":
            self.annotations.setdefault(
                "_ttft",
                ExpressionWrapper(F("completion_start_time") - F("start_time"), output_field=DurationField()),
            )
        return column.path

    def condition(self, cond: Condition) -> Q:
        column = self.columns[cond.column]
        if column.path.startswith("trace."):
            # Trace attributes filter observations through their trace: one subquery, same region DB.
            inner = Column(
                column.kind, column.path.removeprefix("trace."), column.duration, column.blank_is_null
            )
            q = _Compiler(project=self.project, columns={cond.column: inner}).condition(cond)
            traces = Trace.objects.for_project(self.project).filter(q).values("id")
            return Q(trace_id__in=traces)
        if cond.column == "isRootObservation":
            is_root = Q(parent_observation_id="") | Q(parent_observation_id__isnull=True)
            wanted = bool(cond.value) if cond.operator == "=" else not bool(cond.value)
            return is_root if wanted else ~is_root
        path = self._path(column)
        if cond.type == "null":
            return _null_q(path, column, cond.operator)
        if column.kind == "string":
            if cond.type in ("stringOptions", "categoryOptions"):
                q = Q(**{f"{path}__in": list(cond.value)})
                return ~q if cond.operator == "none of" else q
            return _string_q(path, cond.operator, cond.value)
        if column.kind == "datetime":
            return Q(**{f"{path}__{_COMPARISON[cond.operator]}": cond.value})
        if column.kind == "number":
            value = timedelta(seconds=float(cond.value)) if column.duration else cond.value
            return Q(**{f"{path}__{_COMPARISON[cond.operator]}": value})
        if column.kind == "array":
            values = list(cond.value)
            if cond.operator == "all of":
                return Q(**{f"{path}__contains": values})
            q = Q(**{f"{path}__overlap": values})
            return ~q if cond.operator == "none of" else q
        if column.kind == "object":
            return self._object_condition(path, cond)
        raise AssertionError(f"unhandled column kind {column.kind}")  # validated by the parser

    def _object_condition(self, path: str, cond: Condition) -> Q:
        key = cond.key or ""
        if cond.type == "stringObject" and cond.operator in ("is set", "is not set"):
            q = Q(**{f"{path}__has_key": key})
            return q if cond.operator == "is set" else ~q
        if cond.type == "numberObject":
            # Only numbers (or numeric strings) are cast, so a text value never aborts the query.
            kind = self._annotate(
                Func(KeyTransform(key, path), function="jsonb_typeof", output_field=CharField())
            )
            text = self._annotate(KeyTextTransform(key, path))
            number = self._annotate(
                Case(
                    When(Q(**{kind: "number"}), then=Cast(KeyTextTransform(key, path), FloatField())),
                    When(
                        Q(**{kind: "string", f"{text}__regex": _NUMERIC_TEXT}),
                        then=Cast(KeyTextTransform(key, path), FloatField()),
                    ),
                    default=Value(None),
                    output_field=FloatField(),
                )
            )
            return Q(**{f"{number}__{_COMPARISON[cond.operator]}": float(cond.value)})
        text = self._annotate(KeyTextTransform(key, path))
        if cond.type == "categoryOptions":
            q = Q(**{f"{text}__in": list(cond.value)})
            return ~q if cond.operator == "none of" else q
        return _string_q(text, cond.operator, cond.value)


def _apply_conditions(queryset: QuerySet, *, project, columns, conditions) -> QuerySet:
    if not conditions:
        return queryset
    compiler = _Compiler(project=project, columns=columns)
    q = Q()
    for cond in conditions:
        q &= compiler.condition(cond)
    if compiler.annotations:
        queryset = queryset.annotate(**compiler.annotations)
    return queryset.filter(q)


# --- Redaction counts ----------------------------------------------------------------------------
# `redactions` is {field: {detector: count}} (see privacy.engine.redact_records).

REDACTION_KIND_PATTERN = re.compile(r"^custom:[A-Z][A-Z0-9_]{1,31}$")


def is_redaction_kind(kind: str) -> bool:
    """A built-in detector name (email, phone, credit_card, …) or a tenant pattern `custom:LABEL`."""
    return kind in DETECTORS or bool(REDACTION_KIND_PATTERN.match(kind))


class _HasRedactionKind(Func):
    """`redactions` counts the kind in some field. Compiled from the column expression, so it works
    unchanged inside the aliased subqueries of trace filters."""

    output_field = BooleanField()

    def __init__(self, column: str, kind: str):
        super().__init__(F(column), Value(kind))

    def as_sql(self, compiler, connection, **extra):
        column, column_params = compiler.compile(self.source_expressions[0])
        kind, kind_params = compiler.compile(self.source_expressions[1])
        sql = (
            f"EXISTS (SELECT 1 FROM jsonb_each(CASE WHEN jsonb_typeof({column}) = 'object' THEN {column} "
            f"ELSE '{{}}'::jsonb END) AS r(field, counts) WHERE jsonb_typeof(r.counts) = 'object' "
            f"AND r.counts ? {kind})"
        )
        return sql, (*column_params, *column_params, *kind_params)


def _redaction_condition(*, redacted: bool | None, kind: str | None) -> Q:
    """Rows with something (of `kind`) redacted, or (redacted=False, no kind) rows with nothing."""
    if kind is not None:
        return Q(_HasRedactionKind("redactions", kind))
    nothing = Q(redactions={})
    return nothing if redacted is False else ~nothing


def redaction_totals(redactions) -> dict[str, int]:
    """{detector: count} summed over the fields of a `redactions` value."""
    totals: dict[str, int] = {}
    if not isinstance(redactions, dict):
        return totals
    for counts in redactions.values():
        if isinstance(counts, dict):
            for kind, n in counts.items():
                if isinstance(n, int) and not isinstance(n, bool):
                    totals[kind] = totals.get(kind, 0) + n
    return dict(sorted(totals.items()))


# --- Traces --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceFilters:
    user_id: str | None = None
    name: str | None = None
    session_id: str | None = None
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    tags: tuple[str, ...] = ()
    version: str | None = None
    release: str | None = None
    environments: tuple[str, ...] = ()
    # Lookglass additions, computed from the trace's observations.
    status: str | None = None
    model: str | None = None
    min_cost: Decimal | None = None
    min_latency_ms: float | None = None
    conditions: tuple[Condition, ...] = ()
    # PII redaction: the trace or one of its observations had something (of this kind) redacted.
    redacted: bool | None = None
    redacted_kind: str | None = None


TRACE_ORDER_FIELDS = {
    "id": "id",
    "timestamp": "timestamp",
    "name": "name",
    "userId": "user_id",
    "release": "release",
    "version": "version",
    "public": "public",
    "sessionId": "session_id",
}


def _observations(project) -> QuerySet[Observation]:
    return Observation.objects.for_project(project)


def _per_trace(project, output_field=None, **aggregate):
    ((name, expression),) = aggregate.items()
    inner = (
        _observations(project)
        .filter(trace_id=OuterRef("id"))
        .order_by()
        .values("trace_id")
        .annotate(**{name: expression})
        .values(name)
    )
    return Subquery(inner, output_field=output_field) if output_field else Subquery(inner)


def traces_filtered(*, project, filters: TraceFilters) -> QuerySet[Trace]:
    qs = Trace.objects.for_project(project)
    f = filters
    if f.user_id is not None:
        qs = qs.filter(user_id=f.user_id)
    if f.name is not None:
        qs = qs.filter(name=f.name)
    if f.session_id is not None:
        qs = qs.filter(session_id=f.session_id)
    if f.from_timestamp is not None:
        qs = qs.filter(timestamp__gte=f.from_timestamp)
    if f.to_timestamp is not None:
        qs = qs.filter(timestamp__lt=f.to_timestamp)
    if f.tags:
        qs = qs.filter(tags__contains=list(f.tags))
    if f.version is not None:
        qs = qs.filter(version=f.version)
    if f.release is not None:
        qs = qs.filter(release=f.release)
    if f.environments:
        qs = qs.filter(environment__in=list(f.environments))
    if f.status is not None:
        # EXISTS (anti-)semi-joins that probe only the partial index of failed calls
        # (obs_project_trace_failed): `status = X` implies its predicate, and `FAILED` is it. (Adding
        # FAILED to `status = X` as well would make the planner count the condition twice and
        # underestimate the rows by two orders of magnitude.)
        def having(status):
            return Exists(_observations(project).filter(trace_id=OuterRef("id"), status=status))

        if f.status == Status.ERROR:
            qs = qs.filter(having(Status.ERROR))
        elif f.status == Status.REFUSED:
            qs = qs.filter(having(Status.REFUSED)).exclude(having(Status.ERROR))
        else:
            qs = qs.exclude(Exists(_observations(project).filter(FAILED, trace_id=OuterRef("id"))))
    if f.model is not None:
        qs = qs.filter(_with_model(_observations(project), f.model, one_project=True))
    # The trace's own `cost` (its counted observations' sum, kept by the writer): no observation read.
    if f.min_cost is not None and f.min_cost > 0:
        qs = qs.filter(cost__gte=f.min_cost)
    # Correlated per trace (the project/trace index answers each), so a narrow page of traces never
    # aggregates every observation in the project.
    if f.min_latency_ms is not None and f.min_latency_ms > 0:
        latency = Greatest(Max("end_time"), Max("start_time")) - Min("start_time")
        qs = qs.annotate(_latency=_per_trace(project, latency=latency, output_field=DurationField())).filter(
            _latency__gte=timedelta(milliseconds=f.min_latency_ms)
        )
    if f.redacted is not None or f.redacted_kind is not None:
        # Trace-level fields and each observation are redacted on their own, so a trace counts as
        # redacted when its own row or any of its observations is (EXISTS on the trace index).
        anything = _redaction_condition(redacted=True, kind=f.redacted_kind)
        in_observations = Exists(_observations(project).filter(anything, trace_id=OuterRef("id")))
        if f.redacted is False:
            qs = qs.exclude(anything).exclude(in_observations)
        else:
            qs = qs.filter(anything | Q(in_observations))
    return _apply_conditions(qs, project=project, columns=TRACE_COLUMNS, conditions=f.conditions)


# A model this rare (calls, as PostgreSQL estimates them from the model indexes) is looked up from its
# calls: their trace ids first, then those traces. A common one is found walking traces newest first.
RARE_MODEL_CALLS = 5_000


class _IsAnyOf(Func):
    """`column = ANY(ARRAY(subquery))`: the subquery runs once (an InitPlan) and the outer rows are
    looked up by primary key, a plan PostgreSQL would not choose itself for a filter it expects to
    match uniformly (it would walk the newest traces and probe each one's calls)."""

    template = "(%(expressions)s))"
    arg_joiner = " = ANY("
    output_field = BooleanField()


def _with_model(observations: QuerySet, model: str, *, one_project: bool) -> Q:
    """Traces with a call to `model`, as requested or as answered (both sides are indexed).
    `observations` are those of the traces' project(s)."""
    calls = observations.filter(Q(model=model) | Q(response_model=model))
    exists = Q(Exists(calls.filter(project_id=OuterRef("project_id"), trace_id=OuterRef("id"))))
    if planner_rows(calls) > RARE_MODEL_CALLS:
        return exists
    rare = Q(_IsAnyOf(F("id"), ArraySubquery(calls.order_by().values("trace_id"))))
    # Over several projects a trace id may repeat: EXISTS on (project, trace) then decides.
    return rare if one_project else rare & exists


def trace_page(
    *,
    project,
    filters: TraceFilters,
    order_by: tuple[str, str] = ("timestamp", "desc"),
    page: int,
    limit: int,
) -> tuple[list[Trace], int]:
    """One page of traces and the total number matching."""
    qs = traces_filtered(project=project, filters=filters)
    field_name, direction = order_by
    column = TRACE_ORDER_FIELDS[field_name]
    prefix = "-" if direction == "desc" else ""
    # id breaks ties so pages never overlap or skip rows with equal sort keys.
    ordering = [f"{prefix}{column}"] + ([f"{prefix}id"] if column != "id" else [])
    return _page(qs, ordering=ordering, page=page, limit=limit)


# A failed call (error or refusal): the predicate of the partial index obs_project_trace_failed, written
# the same way so that PostgreSQL can prove a query's condition implies it and probe that small index.
FAILED = Q(status__in=[Status.ERROR, Status.REFUSED])


# A call that should have a cost and has none: a model and tokens, but no price (catalog or client).
# Its cost is unknown, not zero; totals that leave it out say so (`unpriced_*`).
UNPRICED = (
    (~Q(model="") | ~Q(response_model=""))
    & (
        Q(input_tokens__gt=0)
        | Q(cached_input_tokens__gt=0)
        | Q(cache_write_tokens__gt=0)
        | Q(output_tokens__gt=0)
        | Q(reasoning_tokens__gt=0)
    )
    & Q(total_cost__isnull=True)
)
# The name a call is priced by (pricing uses the response model when there is one).
PRICED_NAME = Coalesce(NullIf("response_model", Value("")), "model")


# A generation that repeats its parent's model call (`Observation.duplicate_of`, set by the writer) is
# shown but not counted again: trace tokens, cost and unpriced calls leave it out.
COUNTED = Q(duplicate_of="")


def is_counted(o: Observation) -> bool:
    return not o.duplicate_of


def is_unpriced(o: Observation) -> bool:
    return (
        bool(o.model or o.response_model)
        and any((getattr(o, f) or 0) > 0 for f in TOKEN_FIELDS)
        and o.total_cost is None
    )


@dataclass
class TraceSummary:
    """What a trace's observations add up to."""

    latency_seconds: float = 0.0
    total_cost: Decimal = Decimal(0)
    input_cost: Decimal | None = None
    output_cost: Decimal | None = None
    status: str = Status.SUCCESS
    models: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    observation_ids: list[str] = field(default_factory=list)
    observation_count: int = 0
    # Calls without a price: `total_cost` leaves them out (their cost is unknown, not zero).
    unpriced_observations: int = 0
    unpriced_models: list[str] = field(default_factory=list)


def _latency_seconds(first_start, last_start, last_end) -> float:
    if first_start is None:
        return 0.0
    end = max(t for t in (last_start, last_end) if t is not None)
    return max((end - first_start).total_seconds(), 0.0)


def trace_summaries(*, project, trace_ids: list[str], with_ids: bool = True) -> dict[str, TraceSummary]:
    """Latency, cost, status, models, token usage and observation ids of many traces, in one query."""
    if not trace_ids:
        return {}
    aggregates: dict[str, Any] = {
        "first_start": Min("start_time"),
        "last_start": Max("start_time"),
        "last_end": Max("end_time"),
        "total_cost_sum": Sum("total_cost", filter=COUNTED),
        "input_cost_sum": Sum("input_cost", filter=COUNTED),
        "output_cost_sum": Sum("output_cost", filter=COUNTED),
        "status_rank": Max(
            Case(
                *(When(status=status, then=Value(rank)) for status, rank in _STATUS_RANK.items() if rank),
                default=Value(0),
                output_field=IntegerField(),
            )
        ),
        "models": ArrayAgg("model", distinct=True, filter=~Q(model=""), order_by="model", default=Value([])),
        "n": Count("id"),
        "unpriced": Count("id", filter=UNPRICED & COUNTED),
        "unpriced_models": ArrayAgg(PRICED_NAME, distinct=True, filter=UNPRICED & COUNTED, default=Value([])),
        **{f"sum_{name}": Sum(name, filter=COUNTED) for name in TOKEN_FIELDS},
    }
    if with_ids:
        aggregates["ids"] = ArrayAgg("id", order_by=("start_time", "id"))
    rows = (
        _observations(project)
        .filter(trace_id__in=trace_ids)
        .order_by()
        .values("trace_id")
        .annotate(**aggregates)
    )
    summaries: dict[str, TraceSummary] = {}
    for row in rows:
        summaries[row["trace_id"]] = TraceSummary(
            latency_seconds=_latency_seconds(row["first_start"], row["last_start"], row["last_end"]),
            total_cost=row["total_cost_sum"] or Decimal(0),
            input_cost=row["input_cost_sum"],
            output_cost=row["output_cost_sum"],
            status=_RANK_STATUS[row["status_rank"] or 0],
            models=[m for m in row["models"] if m],
            usage={name: row[f"sum_{name}"] for name in TOKEN_FIELDS if row[f"sum_{name}"] is not None},
            observation_ids=list(row.get("ids") or []),
            observation_count=row["n"],
            unpriced_observations=row["unpriced"],
            unpriced_models=sorted(m for m in row["unpriced_models"] if m),
        )
    return summaries


def summarize_observations(observations: list[Observation]) -> TraceSummary:
    """The same summary as `trace_summaries`, from observations already loaded."""
    if not observations:
        return TraceSummary()
    starts = [o.start_time for o in observations]
    ends = [o.end_time for o in observations if o.end_time is not None]

    counted = [o for o in observations if is_counted(o)]

    def total(name):
        values = [getattr(o, name) for o in counted if getattr(o, name) is not None]
        return sum(values, Decimal(0) if name.endswith("cost") else 0) if values else None

    ordered = sorted(observations, key=lambda o: (o.start_time, o.id))
    return TraceSummary(
        latency_seconds=_latency_seconds(min(starts), max(starts), max(ends) if ends else None),
        total_cost=total("total_cost") or Decimal(0),
        input_cost=total("input_cost"),
        output_cost=total("output_cost"),
        status=_RANK_STATUS[max(_STATUS_RANK.get(o.status, 0) for o in observations)],
        models=sorted({o.model for o in observations if o.model}),
        usage={name: value for name in TOKEN_FIELDS if (value := total(name)) is not None},
        observation_ids=[o.id for o in ordered],
        observation_count=len(observations),
        unpriced_observations=sum(1 for o in counted if is_unpriced(o)),
        unpriced_models=sorted({o.response_model or o.model for o in counted if is_unpriced(o)}),
    )


# Langfuse's v1 score model has no CORRECTION variant: one in a trace would fail the SDK's parse of it.
V1_SCORE_TYPES = (ScoreDataType.NUMERIC, ScoreDataType.CATEGORICAL, ScoreDataType.BOOLEAN, ScoreDataType.TEXT)


def trace_score_ids(*, project, trace_ids: list[str], data_types=V1_SCORE_TYPES) -> dict[str, list[str]]:
    if not trace_ids:
        return {}
    rows = (
        Score.objects.for_project(project)
        .filter(trace_id__in=trace_ids, data_type__in=list(data_types))
        .order_by()
        .values("trace_id")
        .annotate(ids=ArrayAgg("id", order_by=("timestamp", "id")))
    )
    return {row["trace_id"]: list(row["ids"]) for row in rows}


def trace_get(*, project, trace_id: str) -> Trace | None:
    return Trace.objects.for_project(project).filter(id=trace_id).first()


def trace_project(*, projects, trace_id: str):
    """The first of `projects` that holds a trace with this id (one indexed look-up each), or None."""
    for project in projects:
        if Trace.objects.for_project(project).filter(id=trace_id).exists():
            return project
    return None


def trace_observations(*, project, trace_id: str) -> list[Observation]:
    return list(_observations(project).filter(trace_id=trace_id).order_by("start_time", "id"))


def trace_scores(*, project, trace_id: str, data_types=V1_SCORE_TYPES) -> list[Score]:
    return list(
        Score.objects.for_project(project)
        .filter(trace_id=trace_id, data_type__in=list(data_types))
        .order_by("timestamp", "id")
    )


# --- Observations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservationFilters:
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    type: str | None = None
    trace_id: str | None = None
    level: str | None = None
    # None: any; "": only observations without a parent; otherwise that parent.
    parent_observation_id: str | None = None
    is_root: bool | None = None
    environments: tuple[str, ...] = ()
    from_start_time: datetime | None = None
    to_start_time: datetime | None = None
    version: str | None = None
    status: str | None = None
    model: str | None = None
    min_cost: Decimal | None = None
    min_latency_ms: float | None = None
    conditions: tuple[Condition, ...] = ()
    redacted: bool | None = None
    redacted_kind: str | None = None


def observations_filtered(*, project, filters: ObservationFilters) -> QuerySet[Observation]:
    qs = _observations(project)
    f = filters
    if f.name is not None:
        qs = qs.filter(name=f.name)
    if f.type is not None:
        qs = qs.filter(type=f.type)
    if f.trace_id is not None:
        qs = qs.filter(trace_id=f.trace_id)
    if f.level is not None:
        qs = qs.filter(level=f.level)
    if f.parent_observation_id is not None:
        qs = qs.filter(parent_observation_id=f.parent_observation_id)
    if f.is_root is not None:
        qs = qs.filter(parent_observation_id="") if f.is_root else qs.exclude(parent_observation_id="")
    if f.environments:
        qs = qs.filter(environment__in=list(f.environments))
    if f.from_start_time is not None:
        qs = qs.filter(start_time__gte=f.from_start_time)
    if f.to_start_time is not None:
        qs = qs.filter(start_time__lt=f.to_start_time)
    if f.version is not None:
        qs = qs.filter(version=f.version)
    if f.user_id is not None or f.session_id is not None:
        traces = Trace.objects.for_project(project)
        if f.user_id is not None:
            traces = traces.filter(user_id=f.user_id)
        if f.session_id is not None:
            traces = traces.filter(session_id=f.session_id)
        qs = qs.filter(trace_id__in=traces.values("id"))
    if f.status is not None:
        qs = qs.filter(status=f.status)
    if f.model is not None:
        qs = qs.filter(Q(model=f.model) | Q(response_model=f.model))
    if f.min_cost is not None and f.min_cost > 0:
        qs = qs.filter(total_cost__gte=f.min_cost)
    if f.min_latency_ms is not None and f.min_latency_ms > 0:
        qs = qs.filter(
            end_time__isnull=False, end_time__gte=F("start_time") + timedelta(milliseconds=f.min_latency_ms)
        )
    if f.redacted is not None or f.redacted_kind is not None:
        anything = _redaction_condition(redacted=True, kind=f.redacted_kind)
        qs = qs.exclude(anything) if f.redacted is False else qs.filter(anything)
    return _apply_conditions(qs, project=project, columns=OBSERVATION_COLUMNS, conditions=f.conditions)


def observation_page(
    *, project, filters: ObservationFilters, page: int, limit: int
) -> tuple[list[Observation], int]:
    qs = observations_filtered(project=project, filters=filters)
    return _page(qs, ordering=("-start_time", "-id"), page=page, limit=limit)


def observation_get(*, project, observation_id: str) -> Observation | None:
    return _observations(project).filter(id=observation_id).first()


def encode_cursor(observation: Observation) -> str:
    return encode_token({"t": observation.start_time.isoformat(), "i": observation.id})


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        data = decode_token(cursor)
        start = datetime.fromisoformat(data["t"])
        observation_id = data["i"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise InvalidCursor(
            "cursor is not one this server returned; pass meta.cursor from the previous page"
        ) from None
    if start.tzinfo is None or not isinstance(observation_id, str):
        raise InvalidCursor("cursor is not one this server returned; pass meta.cursor from the previous page")
    return start, observation_id


def observation_cursor_page(
    *, project, filters: ObservationFilters, cursor: str | None, limit: int
) -> tuple[list[Observation], str | None]:
    """Newest first, keyset-paginated on (start_time, id): stable while new rows arrive."""
    qs = observations_filtered(project=project, filters=filters)
    if cursor:
        start, observation_id = decode_cursor(cursor)
        qs = qs.filter(Q(start_time__lt=start) | Q(start_time=start, id__lt=observation_id))
    rows = list(qs.order_by("-start_time", "-id")[: limit + 1])
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1])
    return rows, None


def traces_by_id(*, project, trace_ids) -> dict[str, Trace]:
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return {}
    return {t.id: t for t in Trace.objects.for_project(project).filter(id__in=ids)}


# --- Sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    id: str
    created_at: datetime
    environment: str


def session_page(
    *,
    project,
    from_timestamp: datetime | None,
    to_timestamp: datetime | None,
    environments: tuple[str, ...],
    page: int,
    limit: int,
) -> tuple[list[SessionRow], int]:
    """Sessions exist implicitly through their traces; createdAt is the first trace's timestamp.

    Newest session first without grouping every trace of the project: a session is listed through
    its first trace, and traces are read newest first from the project/time index, so a page costs
    what it skips and shows, not what the project holds. The environment shown is the smallest of the
    session's (as before), read for the page's sessions only.
    """
    traces = Trace.objects.for_project(project).exclude(session_id="")
    if environments:
        traces = traces.filter(environment__in=list(environments))
    # The same set, grouped: only for the planner's estimate of the total (n_distinct of session_id).
    grouped = traces.order_by().values("session_id").annotate(created_at=Min("timestamp"))
    if from_timestamp is not None:
        grouped = grouped.filter(created_at__gte=from_timestamp)
    if to_timestamp is not None:
        grouped = grouped.filter(created_at__lt=to_timestamp)
    if (total := past_the_end(grouped, page=page, limit=limit)) is not None:
        return [], total
    offset = (page - 1) * limit
    rows = _first_traces_walk(
        traces=traces, project=project, environments=environments, from_timestamp=from_timestamp,
        to_timestamp=to_timestamp, offset=offset, limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    env = dict(
        traces.filter(session_id__in=[session_id for session_id, _ in rows])
        .order_by()
        .values("session_id")
        .annotate(env=Min("environment"))
        .values_list("session_id", "env")
    ) if rows else {}
    total = page_total(grouped, offset=offset, rows_on_page=len(rows), more=more)
    return [SessionRow(id=sid, created_at=created, environment=env[sid]) for sid, created in rows], total


def _first_traces_walk(
    *, traces, project, environments: tuple[str, ...], from_timestamp: datetime | None,
    to_timestamp: datetime | None, offset: int, limit: int,
) -> list[tuple[str, datetime]]:
    """(session id, first trace time) of the sessions' first traces, newest first, one slice.

    The walk reads traces newest first (`trace_project_sessions_time`, index-only) and keeps a trace
    whose time is its session's first: the session's earliest time is one backward probe of
    `trace_project_session_cover` (index-only), a LATERAL read that depends on the session alone, so
    PostgreSQL memoizes it — a session with several traces in the walk is probed once, not once per
    trace (page 1 of the 10M console seed: 11,058 probes instead of 55,552, 131 instead of ~450 ms of
    EXPLAIN ANALYZE). The comparison stays outside the probe (IS NOT DISTINCT FROM over a LEFT JOIN is
    not pushed into it, which would add the trace's time to the cache key); DISTINCT ON keeps a session
    whose first traces share a timestamp once, in the walk's own order (a Unique step, no sort).
    Without the memo (the planner's choice) it is one probe per walked trace, as before."""
    table = Trace._meta.db_table
    env = "AND {alias}.environment = ANY(%s)" if environments else ""
    window = "".join(
        clause for clause, value in (("AND t.timestamp >= %s ", from_timestamp), ("AND t.timestamp < %s ", to_timestamp))
        if value is not None
    )
    sql = (
        f'SELECT DISTINCT ON (t.timestamp, t.session_id) t.session_id, t.timestamp FROM "{table}" t '
        f'LEFT JOIN LATERAL (SELECT u.timestamp FROM "{table}" u WHERE u.project_id = %s '
        f"AND u.session_id = t.session_id AND u.session_id <> '' {env.format(alias='u')} "
        "ORDER BY u.timestamp LIMIT 1) AS earliest ON true "
        f"WHERE t.project_id = %s AND t.session_id <> '' {env.format(alias='t')} {window}"
        "AND earliest.timestamp IS NOT DISTINCT FROM t.timestamp "
        "ORDER BY t.timestamp DESC, t.session_id DESC OFFSET %s LIMIT %s"
    )
    envs = [list(environments)] if environments else []
    params = [project.id, *envs, project.id, *envs]
    params += [value for value in (from_timestamp, to_timestamp) if value is not None]
    with connections[traces.db].cursor() as cursor:
        cursor.execute(sql, [*params, offset, limit])
        return cursor.fetchall()


def session_traces(*, project, session_id: str) -> list[Trace]:
    if not session_id:
        return []
    return list(Trace.objects.for_project(project).filter(session_id=session_id).order_by("timestamp", "id"))


# --- scores with their traces (the Langfuse score list) ----------------------------------------


def score_list(*, project, filters: ScoreFilters, page: int, limit: int) -> tuple[list[dict], int]:
    """One page of scores, newest first, with the Langfuse `trace` summary; and the total count."""
    qs = Score.objects.for_project(project)
    f = filters
    for column, value in (
        ("name", f.name),
        ("trace_id", f.trace_id),
        ("observation_id", f.observation_id),
        ("session_id", f.session_id),
        ("source", f.source),
        ("data_type", f.data_type),
        ("config_id", f.config_id),
    ):
        if value is not None:
            qs = qs.filter(**{column: value})
    if f.queue_id is not None:
        qs = qs.filter(metadata__queueId=f.queue_id)
    if f.environments:
        qs = qs.filter(environment__in=f.environments)
    if f.score_ids:
        qs = qs.filter(id__in=f.score_ids)
    if f.from_timestamp is not None:
        qs = qs.filter(timestamp__gte=f.from_timestamp)
    if f.to_timestamp is not None:
        qs = qs.filter(timestamp__lt=f.to_timestamp)
    if f.operator is not None and f.value is not None:
        lookup = OPERATORS[f.operator]
        qs = qs.exclude(value=f.value) if lookup == "ne" else qs.filter(**{f"value__{lookup}": f.value})
    if f.user_id is not None or f.trace_tags:
        traces = Trace.objects.for_project(project)
        if f.user_id is not None:
            traces = traces.filter(user_id=f.user_id)
        if f.trace_tags:
            traces = traces.filter(tags__contains=list(f.trace_tags))
        qs = qs.filter(trace_id__in=traces.values("id"))
    scores, total = _page(qs, ordering=("-timestamp", "id"), page=page, limit=limit)
    trace_ids = {s.trace_id for s in scores if s.trace_id}
    traces = (
        {
            row["id"]: row
            for row in Trace.objects.for_project(project)
            .filter(id__in=trace_ids)
            .values("id", "user_id", "tags", "environment")
        }
        if trace_ids
        else {}
    )
    data = []
    for score in scores:
        item = score_to_langfuse(score)
        trace = traces.get(score.trace_id)
        item["trace"] = (
            {"userId": trace["user_id"] or None, "tags": trace["tags"], "environment": trace["environment"]}
            if trace
            else {}
        )
        data.append(item)
    return data, total
# --- models seen without a price -----------------------------------------------------------------


@dataclass
class UnpricedModel:
    project: Any
    model: str
    calls: int
    tokens: int
    first_seen: datetime
    last_seen: datetime


def unpriced_models(*, projects, since: datetime, limit: int = 100) -> list[UnpricedModel]:
    """Model names (as priced: the response model, else the model) of recent calls that have tokens
    but no cost, per project, most calls first. One grouped query per region of `projects`."""
    by_region: dict[str, list] = {}
    for project in projects:
        by_region.setdefault(project.region, []).append(project)
    found: list[UnpricedModel] = []
    for region, region_projects in by_region.items():
        index = {p.id: p for p in region_projects}
        rows = (
            Observation.objects.dangerously_in_region(region)
            .filter(UNPRICED, project_id__in=list(index), start_time__gte=since)
            .annotate(priced_name=PRICED_NAME)
            .values("project_id", "priced_name")
            .annotate(calls=Count("id"), tokens=Sum("total_tokens"), first=Min("start_time"), last=Max("start_time"))
            .order_by("-calls", "priced_name")[:limit]
        )
        for row in rows:
            found.append(
                UnpricedModel(
                    project=index[row["project_id"]], model=row["priced_name"], calls=row["calls"],
                    tokens=row["tokens"] or 0, first_seen=row["first"], last_seen=row["last"],
                )
            )
    found.sort(key=lambda m: (-m.calls, m.model, str(m.project.id)))
    return found[:limit]


def model_names_seen(*, project, since: datetime, until: datetime) -> list[str]:
    """Distinct model and response-model names of `project`'s calls that started in [since, until)."""
    rows = (
        _observations(project)
        .filter(start_time__gte=since, start_time__lt=until)
        .order_by()
        .values_list("model", "response_model")
        .distinct()
    )
    return sorted({name for pair in rows for name in pair if name})


# --- traces across projects and regions (the console's list) -----------------------------------

# Past this many projects in one region (operators, big organizations) one plain query is cheaper
# to plan than a UNION branch per project.
UNION_BRANCHES_UP_TO = 50
TRACE_LIST_FIELDS = ("project_id", "id", "name", "timestamp", "user_id", "session_id", "environment", "tags")


@dataclass
class TraceListRow:
    trace: Trace
    project: Any
    observation_count: int = 0
    total_tokens: int | None = None
    total_cost: Decimal | None = None
    latency_ms: float | None = None
    models: list[str] = field(default_factory=list)
    status: str = Status.SUCCESS
    # Calls without a price, left out of `total_cost` (unknown, not zero).
    unpriced: int = 0
    unpriced_models: list[str] = field(default_factory=list)


def _observations_of_outer_trace(region: str):
    return Observation.objects.dangerously_in_region(region).filter(
        project_id=OuterRef("project_id"), trace_id=OuterRef("id")
    )


def _filtered_traces(region: str, project_ids: list, filters: dict):
    """A region's traces of these projects, narrowed by the list's filters."""
    queryset = Trace.objects.dangerously_in_region(region).filter(project_id__in=project_ids)
    for name in ("user_id", "session_id", "environment"):
        if filters.get(name):
            queryset = queryset.filter(**{name: filters[name]})
    if filters.get("since"):
        queryset = queryset.filter(timestamp__gte=filters["since"])
    if filters.get("until"):
        queryset = queryset.filter(timestamp__lt=filters["until"])
    if filters.get("model"):
        observations = Observation.objects.dangerously_in_region(region).filter(project_id__in=project_ids)
        queryset = queryset.filter(_with_model(observations, filters["model"], one_project=len(project_ids) == 1))
    status = filters.get("status")
    if status:
        # Probes of the partial index of failed calls only (see `traces_filtered`).
        failed = _observations_of_outer_trace(region).filter(FAILED)
        has_error = Exists(_observations_of_outer_trace(region).filter(status=Status.ERROR))
        has_refusal = Exists(_observations_of_outer_trace(region).filter(status=Status.REFUSED))
        if status == Status.ERROR:
            queryset = queryset.filter(has_error)
        elif status == Status.REFUSED:
            queryset = queryset.filter(has_refusal).exclude(has_error)
        else:
            queryset = queryset.exclude(Exists(failed))
    return queryset.only(*TRACE_LIST_FIELDS)


def _sort_key(trace: Trace):
    # Ties on (timestamp, project) only happen inside one region's list, whose database order
    # heapq.merge keeps, so the id tiebreak follows the database collation, as the cursor does.
    return (trace.timestamp, trace.project_id)


def traces_across_projects(
    *, projects: list, filters: dict, after=None, before=None, page_size: int = 50, row_class=None,
) -> tuple[list[TraceListRow], bool, bool]:
    """One page of traces, newest first, across the projects' regions: (rows, has_newer, has_older).
    The console's trace list (and any list over several projects) reads through this.

    `after`/`before` are cursors with `older()`/`newer()` Q bounds on (timestamp, project_id, id).
    Per region: one query for the page and one grouped query for its traces' aggregates.
    """
    row_class = row_class or TraceListRow
    # Cursor positions and merge order use (timestamp, project_id, id), a total order.
    by_region: dict[str, list] = defaultdict(list)
    for project in projects:
        by_region[project.region].append(project)

    if before is not None:
        ordering, position = ("timestamp", "project_id", "id"), before.newer()
    else:
        ordering, position = ("-timestamp", "-project_id", "-id"), (after.older() if after else Q())

    per_region: list[list[Trace]] = []
    for region, region_projects in by_region.items():
        if len(region_projects) == 1 or len(region_projects) > UNION_BRANCHES_UP_TO:
            queryset = _filtered_traces(region, [p.id for p in region_projects], filters).filter(position)
        else:
            # One statement per region, but a branch per project: each branch walks the project's
            # (project_id, -timestamp) index and stops at the page size, where a single
            # `project_id IN (…)` query would sort every matching row of every project.
            branches = [
                _filtered_traces(region, [p.id], filters).filter(position).order_by(*ordering)[: page_size + 1]
                for p in region_projects
            ]
            queryset = branches[0].union(*branches[1:], all=True)
        per_region.append(list(queryset.order_by(*ordering)[: page_size + 1]))

    merged = list(heapq.merge(*per_region, key=_sort_key, reverse=before is None))
    more = len(merged) > page_size
    traces = merged[:page_size]
    if before is not None:
        traces.reverse()
        has_newer, has_older = more, True
    else:
        has_newer, has_older = after is not None, more

    projects_by_id = {p.id: p for p in projects}
    rows = [row_class(trace=t, project=projects_by_id[t.project_id]) for t in traces]
    _attach_aggregates(rows)
    return rows, has_newer, has_older


def _attach_aggregates(rows: list[TraceListRow]) -> None:
    by_region: dict[str, list[TraceListRow]] = defaultdict(list)
    for row in rows:
        by_region[row.project.region].append(row)
    for region, region_rows in by_region.items():
        index = {(row.trace.project_id, row.trace.id): row for row in region_rows}
        aggregates = (
            Observation.objects.dangerously_in_region(region)
            # A superset of the page's (project, trace) pairs; pairs not on the page are ignored.
            .filter(
                project_id__in={row.trace.project_id for row in region_rows},
                trace_id__in={row.trace.id for row in region_rows},
            )
            .values("project_id", "trace_id")
            .annotate(
                # Before `total_cost` below: that name then means the sum, not the column.
                # A nested generation repeating its parent's call is not counted again (COUNTED).
                unpriced=Count("id", filter=UNPRICED & COUNTED),
                unpriced_models=ArrayAgg(PRICED_NAME, distinct=True, filter=UNPRICED & COUNTED),
                observation_count=Count("id"),
                total_tokens=Sum("total_tokens", filter=COUNTED),
                total_cost=Sum("total_cost", filter=COUNTED),
                first_start=Min("start_time"),
                last_end=Max(Coalesce("end_time", "start_time")),
                errors=Count("id", filter=Q(status=Status.ERROR)),
                refusals=Count("id", filter=Q(status=Status.REFUSED)),
                models=ArrayAgg("model", distinct=True, filter=~Q(model="")),
            )
            .order_by()
        )
        for aggregate in aggregates:
            row = index.get((aggregate["project_id"], aggregate["trace_id"]))
            if row is None:
                continue
            row.observation_count = aggregate["observation_count"]
            row.total_tokens = aggregate["total_tokens"]
            row.total_cost = aggregate["total_cost"]
            row.latency_ms = (aggregate["last_end"] - aggregate["first_start"]).total_seconds() * 1000
            row.models = sorted(aggregate["models"] or [])
            row.status = trace_status(errors=aggregate["errors"], refusals=aggregate["refusals"])
            row.unpriced = aggregate["unpriced"]
            row.unpriced_models = sorted(m for m in aggregate["unpriced_models"] or [] if m)


def trace_status(*, errors: int, refusals: int) -> str:
    if errors:
        return Status.ERROR
    if refusals:
        return Status.REFUSED
    return Status.SUCCESS


# --- the console's trace explorer (console/) ------------------------------------------------------
import dataclasses  # noqa: E402 (this section is appended; the module's head is edited elsewhere)

# Full-text search runs on PostgreSQL text search over an expression that the indexes of
# console/migrations/0002_search_indexes.py were built on: a query uses an index only when it names the
# very same expression, so both come from SEARCH_DOCUMENT. The text is cut to SEARCH_TEXT_CHARS
# characters first: a tsvector has a 1 MB ceiling, and an input past it would make the index (and so
# the ingest write) fail; output and input are cut on their own, so a huge prompt never hides the
# answer. JSON escapes (\n, \t, \") are blanked so "a\nb" is the words a and b.
SEARCH_TEXT_CHARS = 50_000
SEARCH_DOCUMENT = (
    f"to_tsvector('simple'::regconfig, regexp_replace(left(coalesce({{output}}::text, ''), {SEARCH_TEXT_CHARS}) "
    f"|| ' ' || left(coalesce({{input}}::text, ''), {SEARCH_TEXT_CHARS}), '\\\\[nrtbf\"\\\\/]', ' ', 'g'))"
)
SEARCH_QUERY = "websearch_to_tsquery('simple'::regconfig, %s)"
# Observations carrying the answer: the generations (their input/output are the model call's).
SEARCHED_OBSERVATION_TYPES = ("GENERATION",)
# Counting every match of a broad query would scan them all; past this the count says "more than".
SEARCH_COUNT_CAP = 10_000
# A word found in half the project's traces matches millions of rows at volume: the newest page is
# looked for in growing windows (the last hour, day, week, month, then all time), each an index scan
# bounded by time, and the first window holding a full page answers it.
SEARCH_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7), timedelta(days=30), None)
SEARCH_WINDOW_MARGIN = timedelta(hours=1)


def search_document(*, input_sql: str = "input", output_sql: str = "output") -> str:
    """The indexed text-search expression over these two column references."""
    return SEARCH_DOCUMENT.format(input=input_sql, output=output_sql)


class _Matches(Func):
    """`<document of input, output> @@ websearch_to_tsquery(text)` on the model's own table."""

    output_field = BooleanField()

    def __init__(self, text: str):
        super().__init__(F("input"), F("output"))
        self.text = text

    def as_sql(self, compiler, connection, **extra):
        (input_sql, input_params), (output_sql, output_params) = (
            compiler.compile(e) for e in self.source_expressions
        )
        sql = f"({search_document(input_sql=input_sql, output_sql=output_sql)} @@ {SEARCH_QUERY})"
        return sql, [*input_params, *output_params, self.text]


def _prefix(value: str) -> str:
    # LIKE wildcards in user input are literal.
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _TagPrefix(Func):
    """Some tag of the trace starts with the text, any case."""

    output_field = BooleanField()

    def __init__(self, text: str):
        super().__init__(F("tags"))
        self.text = text

    def as_sql(self, compiler, connection, **extra):
        tags_sql, params = compiler.compile(self.source_expressions[0])
        sql = f"EXISTS (SELECT 1 FROM unnest({tags_sql}) AS lg_t(tag) WHERE lg_t.tag ILIKE %s)"
        return sql, [*params, _prefix(self.text) + "%"]


class _MetadataPrefix(Func):
    """Some top-level metadata key starts with `key` (and its value, as text, with `value`), any case.
    A non-object metadata has no keys (jsonb_each_text would raise on it)."""

    output_field = BooleanField()

    def __init__(self, key: str, value: str = ""):
        super().__init__(F("metadata"))
        self.key, self.value = key, value

    def as_sql(self, compiler, connection, **extra):
        meta_sql, params = compiler.compile(self.source_expressions[0])
        sql = (f"EXISTS (SELECT 1 FROM jsonb_each_text(CASE WHEN jsonb_typeof({meta_sql}) = 'object' "
               f"THEN {meta_sql} ELSE '{{}}'::jsonb END) AS lg_m(key, value) WHERE lg_m.key ILIKE %s")
        params = [*params, *params, _prefix(self.key) + "%"]
        if self.value:
            sql += " AND lg_m.value ILIKE %s"
            params.append(_prefix(self.value) + "%")
        return sql + ")", params


@dataclass(frozen=True)
class TraceSearch:
    """The explorer's query. Text filters forgive case and match prefixes; `text` is full-text."""

    text: str = ""
    name: str = ""
    user_id: str = ""
    session_id: str = ""
    model: str = ""
    environment: str = ""
    release: str = ""
    tag: str = ""
    metadata_key: str = ""
    metadata_value: str = ""
    status: str | None = None
    score_name: str = ""
    score_min: float | None = None
    score_max: float | None = None
    thumbs_down: bool = False
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Annotation queues: only traces no reviewer has scored yet (no ANNOTATION score on them).
    unreviewed: bool = False
    # Traces with a generation of this prompt (exact name; any version when None).
    prompt_name: str = ""
    prompt_version: int | None = None
    # Full-text matches only from this time on (see SEARCH_WINDOWS).
    text_since: datetime | None = None


SEARCH_ORDER_FIELDS = {
    "time": "timestamp",
    "name": "name",
    "user": "user_id",
    "session": "session_id",
    "environment": "environment",
    "cost": "cost",
    "latency": "_latency",
}
# Sort keys that can be NULL (no call with a cost; no observation): they sort last either way.
_NULLABLE_ORDER = frozenset({"cost", "_latency"})


def _text_filter(column: str, value: str) -> dict:
    """A filter field forgives case and takes a beginning (`bob` finds `Bobby`); in double quotes it
    is the exact value (`"bob"`), which is how a user's or session's page links to its own traces
    only."""
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return {column: value[1:-1]}
    return {f"{column}__istartswith": value}


def trace_search(*, project, search: TraceSearch, order: str = "-time") -> QuerySet[Trace]:
    """The project's traces matching `search`, ordered by `order` (a SEARCH_ORDER_FIELDS key, "-"
    for descending), with `input_preview`/`output_preview` (the last message's text, cut) and
    without loading the full input, output and metadata."""
    from scores.models import ScoreSource

    s = search
    # What TraceFilters already answers (status, cost and latency floors, time range) goes through it.
    qs = traces_filtered(
        project=project,
        filters=TraceFilters(
            from_timestamp=s.since, to_timestamp=s.until, status=s.status or None,
            min_cost=s.min_cost, min_latency_ms=s.min_latency_ms,
        ),
    )
    for column, value in (
        ("name", s.name), ("user_id", s.user_id), ("session_id", s.session_id),
        ("environment", s.environment), ("release", s.release),
    ):
        if value:
            qs = qs.filter(**_text_filter(column, value))
    if s.text:
        # One id list from both GIN indexes (a UNION), so each side is an index scan; an OR of the
        # two conditions would make PostgreSQL walk every trace of the project instead. The indexes
        # hold the time too (btree_gin), so a window (`text_since`) narrows the index scan itself.
        own = Trace.objects.for_project(project).filter(_Matches(s.text))
        generations = _observations(project).filter(_Matches(s.text), type__in=SEARCHED_OBSERVATION_TYPES)
        if s.text_since is not None:
            own = own.filter(timestamp__gte=s.text_since)
            # A generation may start a little before its trace's timestamp (a placeholder time).
            generations = generations.filter(start_time__gte=s.text_since - SEARCH_WINDOW_MARGIN)
            qs = qs.filter(timestamp__gte=s.text_since)
        matching = own.values("id").union(generations.values("trace_id"))
        qs = qs.filter(id__in=matching)
    if s.model:
        qs = qs.filter(
            Exists(
                _observations(project).filter(
                    Q(model__istartswith=s.model) | Q(response_model__istartswith=s.model), trace_id=OuterRef("id")
                )
            )
        )
    if s.tag:
        qs = qs.filter(_TagPrefix(s.tag))
    if s.prompt_name:
        # A version number belongs to one prompt: with it (the prompt page's links) the name is whole,
        # which the (project_id, prompt_name, prompt_version) index answers; without, any case, a beginning.
        if s.prompt_version is not None:
            generations = _observations(project).filter(
                trace_id=OuterRef("id"), prompt_name=s.prompt_name, prompt_version=s.prompt_version
            )
        else:
            generations = _observations(project).filter(trace_id=OuterRef("id"), prompt_name__istartswith=s.prompt_name)
        qs = qs.filter(Exists(generations))
    if s.metadata_key:
        qs = qs.filter(_MetadataPrefix(s.metadata_key, s.metadata_value))
    if s.score_name or s.score_min is not None or s.score_max is not None:
        scores = Score.objects.for_project(project).filter(trace_id=OuterRef("id"))
        if s.score_name:
            scores = scores.filter(name__istartswith=s.score_name)
        if s.score_min is not None:
            scores = scores.filter(value__gte=s.score_min)
        if s.score_max is not None:
            scores = scores.filter(value__lte=s.score_max)
        qs = qs.filter(Exists(scores))
    if s.thumbs_down:
        qs = qs.filter(
            Exists(
                Score.objects.for_project(project).filter(
                    trace_id=OuterRef("id"), source=ScoreSource.USER, data_type=ScoreDataType.BOOLEAN, value=0
                )
            )
        )
    if s.unreviewed:
        qs = qs.exclude(
            Exists(Score.objects.for_project(project).filter(trace_id=OuterRef("id"), source=ScoreSource.ANNOTATION))
        )
    key = order.lstrip("-")
    needs_latency = s.max_latency_ms is not None or key == "latency"
    # Cost filters and the cost sort read the trace's own `cost` (kept by the writer from its counted
    # observations): summing the observations of every trace in a day was 5.5 s at 10M observations.
    if s.max_cost is not None:
        qs = qs.filter(Q(cost__lte=s.max_cost) | Q(cost__isnull=True))
    if needs_latency:
        latency = Greatest(Max("end_time"), Max("start_time")) - Min("start_time")
        qs = qs.annotate(_latency=_per_trace(project, latency=latency, output_field=DurationField()))
        if s.max_latency_ms is not None:
            qs = qs.filter(_latency__lte=timedelta(milliseconds=s.max_latency_ms))
    column = SEARCH_ORDER_FIELDS.get(key, "timestamp")
    descending = order.startswith("-")
    # Only cost and latency can be NULL; NULLS LAST on `timestamp` would keep PostgreSQL from
    # walking the (project_id, -timestamp) index.
    nulls = {"nulls_last": True} if column in _NULLABLE_ORDER else {}
    ordering = [F(column).desc(**nulls) if descending else F(column).asc(**nulls)]
    ordering.append("-id" if descending else "id")
    return (
        qs.defer("input", "output", "metadata")
        .annotate(input_preview=_preview("input"), output_preview=_preview("output"))
        .order_by(*ordering)
    )


PREVIEW_CHARS = 240


def _preview(column: str):
    """The text a person reads first: a chat's last message, an answer's content, else the JSON."""
    paths = ("{-1,content}", "{messages,-1,content}", "{content}", "{choices,0,message,content}", "{refusal}", "{}")
    return Func(
        Func(
            *[KeyPathText(column, path) for path in paths],
            function="COALESCE",
            output_field=CharField(),
        ),
        Value(PREVIEW_CHARS),
        function="LEFT",
        output_field=CharField(),
    )


class KeyPathText(Func):
    """`column #>> 'path'` (NULL when the path is not there)."""

    output_field = CharField()

    def __init__(self, column: str, path: str):
        super().__init__(F(column))
        self.path = path

    def as_sql(self, compiler, connection, **extra):
        column_sql, params = compiler.compile(self.source_expressions[0])
        return f"({column_sql} #>> %s::text[])", [*params, self.path]


def search_count(queryset: QuerySet, *, cap: int = SEARCH_COUNT_CAP) -> tuple[int, bool]:
    """(count, capped): the number of rows, counting at most `cap` + 1."""
    n = queryset.order_by().values("id")[: cap + 1].count()
    return min(n, cap), n > cap


def scores_by_trace(*, project, trace_ids: list[str], limit_per_trace: int = 20) -> dict[str, list[Score]]:
    """The scores of each trace (on it or its observations), oldest first, in one query."""
    if not trace_ids:
        return {}
    found: dict[str, list[Score]] = defaultdict(list)
    rows = (
        Score.objects.for_project(project)
        .filter(trace_id__in=list(trace_ids))
        .only("project_id", "id", "trace_id", "name", "value", "string_value", "data_type", "source")
        .order_by("trace_id", "timestamp", "id")
    )
    for score in rows:
        if len(found[score.trace_id]) < limit_per_trace:
            found[score.trace_id].append(score)
    return dict(found)


# --- sessions and end users with their totals (the console's lists) ------------------------------


def _thumbs_by(project, *, column: str, values: list[str]) -> dict[str, dict[str, int]]:
    from scores.models import ScoreSource

    rows = (
        Score.objects.for_project(project)
        .filter(
            source=ScoreSource.USER, data_type=ScoreDataType.BOOLEAN,
            trace_id__in=Trace.objects.for_project(project).filter(**{f"{column}__in": values}).values("id"),
        )
        .annotate(owner=Subquery(
            Trace.objects.for_project(project).filter(id=OuterRef("trace_id")).values(column)[:1]
        ))
        .values("owner")
        .annotate(up=Count("id", filter=Q(value=1)), down=Count("id", filter=Q(value=0)))
        .order_by()
    )
    return {row["owner"]: {"up": row["up"], "down": row["down"]} for row in rows}


@dataclass
class TraceGroupTotals:
    key: str
    traces: int = 0
    first: datetime | None = None
    last: datetime | None = None
    cost: Decimal | None = None
    errors: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0

    @property
    def duration_seconds(self) -> float | None:
        if self.first is None or self.last is None:
            return None
        return (self.last - self.first).total_seconds()


def trace_group_totals(
    *, project, column: str, keys: list[str], costs: bool = True, thumbs: bool = True
) -> dict[str, TraceGroupTotals]:
    """Per session (`column="session_id"`) or end user (`"user_id"`): traces, first and last trace
    time, counted cost, traces with an error, thumbs up/down. Three grouped queries for all `keys`.
    `costs=False` leaves the cost out and counts errors from the failed calls alone (their partial
    index), not from every observation; `thumbs=False` leaves the thumbs out (a caller reading them
    from the rollups: the console's users list)."""
    if column not in ("session_id", "user_id"):
        raise ValueError("column must be session_id or user_id")
    keys = [k for k in dict.fromkeys(keys) if k]
    if not keys:
        return {}
    traces = Trace.objects.for_project(project).filter(**{f"{column}__in": keys})
    totals = {
        row[column]: TraceGroupTotals(key=row[column], traces=row["n"], first=row["first"], last=row["last"])
        # count(*), not count(id): the (project, key, time) index answers it alone (no heap read per trace).
        for row in traces.order_by().values(column).annotate(n=Count("*"), first=Min("timestamp"), last=Max("timestamp"))
    }
    # One grouped join of the keys' traces to their observations (each trace's observations through
    # the (project, trace) index). A correlated lookup of each observation's trace, as before, probed
    # the trace index once per observation: 100,000 probes for a page of users at 10M observations.
    # A transaction only for the setting below (SET LOCAL); the costs read needs none.
    with (
        nullcontext() if costs else transaction.atomic(using=traces.db),
        connections[traces.db].cursor() as cursor,
    ):
        if not costs:
            # A page of users holds ~20,000 traces at 10M observations. The planner prices a bitmap scan
            # of them below the covering index, but the bitmap reads a heap page per trace (~20,000
            # pages: 200–350 ms of the users page) where the index answers alone (10–15 ms). For this
            # statement only, and put back after it (a caller's transaction keeps its own setting).
            cursor.execute("SELECT current_setting('enable_bitmapscan')")
            previous = cursor.fetchone()[0]
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(
            f"SELECT t.{column}, sum(o.total_cost) FILTER (WHERE o.duplicate_of = ''), "
            "count(DISTINCT o.trace_id) FILTER (WHERE o.status = %s) "
            f'FROM "{Trace._meta.db_table}" t JOIN "{Observation._meta.db_table}" o '
            "ON o.project_id = t.project_id AND o.trace_id = t.id "
            # Without costs only the failed calls are read: `status = 'error'` is within the predicate
            # of the partial index obs_project_trace_failed, a few percent of the observations.
            f"WHERE t.project_id = %s AND t.{column} = ANY(%s) {'' if costs else 'AND o.status = %s'} GROUP BY 1",
            [Status.ERROR, project.id, keys, *([] if costs else [Status.ERROR])],
        )
        for key, cost, errors in cursor.fetchall():
            if key in totals:
                totals[key].cost = cost if costs else None
                totals[key].errors = errors
        if not costs:
            cursor.execute("SELECT set_config('enable_bitmapscan', %s, true)", [previous])
    for key, counted in (_thumbs_by(project, column=column, values=keys) if thumbs else {}).items():
        if key in totals:
            totals[key].thumbs_up, totals[key].thumbs_down = counted["up"], counted["down"]
    return totals


# The lists of sessions and users walk the newest traces (an index in time order) and keep each key the
# first time it shows up: that is the key's latest trace, so keys come most recently active first, and
# a page costs the traces walked to fill it (~ a few per key), not the project's. A walk that reads
# RECENT_WALK_ROWS traces without filling the page (a key with a long run of traces, a rare prefix)
# answers by grouping instead: same list, the old cost.
RECENT_WALK_CHUNK = 500
RECENT_WALK_ROWS = 20_000


def _recent_keys_page(*, project, column: str, contains: str, page: int, limit: int) -> tuple[list[str], bool]:
    """Keys of `column` (session or user id), most recently active first (ties: the greater key first),
    one page, and whether there is a next one."""
    qs = Trace.objects.for_project(project).exclude(**{column: ""})
    if contains:
        qs = qs.filter(**{f"{column}__istartswith": contains})
    wanted = page * limit + 1
    seen: dict[str, None] = {}
    walked, after = 0, None
    while len(seen) < wanted:
        chunk = qs.order_by("-timestamp", f"-{column}")
        if after is not None:
            moment, key = after
            # `timestamp <= t` bounds the index range; the tie on the key is a filter inside it.
            chunk = chunk.filter(Q(timestamp__lt=moment) | Q(**{f"{column}__lt": key}), timestamp__lte=moment)
        rows = list(chunk.values_list(column, "timestamp")[:RECENT_WALK_CHUNK])
        for key, _ in rows:
            seen.setdefault(key, None)
        walked += len(rows)
        if len(rows) < RECENT_WALK_CHUNK:
            break  # the whole list was walked
        if walked >= RECENT_WALK_ROWS and len(seen) < wanted:
            grouped = list(
                qs.order_by().values(column).annotate(last=Max("timestamp"))
                .order_by("-last", f"-{column}").values_list(column, flat=True)[(page - 1) * limit : wanted]
            )
            return grouped[:limit], len(grouped) > limit
        after = (rows[-1][1], rows[-1][0])
    keys = list(seen)[(page - 1) * limit : wanted]
    return keys[:limit], len(keys) > limit


def session_ids_page(*, project, contains: str = "", page: int, limit: int) -> tuple[list[str], bool]:
    """Session ids, most recently active first (one page, and whether there is a next one)."""
    return _recent_keys_page(project=project, column="session_id", contains=contains, page=page, limit=limit)


def user_ids_page(*, project, contains: str = "", page: int, limit: int) -> tuple[list[str], bool]:
    """End-user ids, most recently active first (one page, and whether there is a next one)."""
    return _recent_keys_page(project=project, column="user_id", contains=contains, page=page, limit=limit)


def review_next(*, project, search: TraceSearch, after: tuple[datetime, str] | None = None) -> Trace | None:
    """The next trace of an annotation queue: the oldest unreviewed trace matching `search`, after
    the (timestamp, id) position `after` (the ones a reviewer skipped stay behind it)."""
    qs = trace_search(project=project, search=dataclasses.replace(search, unreviewed=True), order="time")
    if after is not None:
        moment, trace_id = after
        qs = qs.filter(Q(timestamp__gt=moment) | Q(timestamp=moment, id__gt=trace_id))
    return qs.first()


def trace_observations_first(*, project, trace_id: str, limit: int) -> list[Observation]:
    """The first `limit` observations of a trace by start time (a page stays usable on huge traces)."""
    return list(_observations(project).filter(trace_id=trace_id).order_by("start_time", "id")[:limit])


# Below this many estimated matches a text search reads every match at once (the index scan is
# cheap); above it the newest page is looked for window by window (SEARCH_WINDOWS).
SEARCH_WINDOWED_ABOVE = 5_000


def estimated_rows(queryset: QuerySet) -> int:
    """PostgreSQL's estimate of the rows `queryset` returns (from the statistics, nothing is read).
    For text search the statistics of the expression indexes make it close (a word's frequency)."""
    from django.db import connections

    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = orjson.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


# --- a prompt version's generations (the console's "open its generations") --------------------------
VERSION_GENERATIONS_PAGE = 50


def version_generations(
    *, project, prompt_name: str, prompt_version: int, since: datetime, until: datetime,
    before: tuple[datetime, str] | None = None, limit: int = VERSION_GENERATIONS_PAGE,
) -> tuple[list[Observation], bool]:
    """The generations of one prompt version in [since, until), newest first, from the (start_time,
    id) position `before` on: the calls the version metrics count (a repeated call marked as the same
    call is not one), so a page of them is what the metrics were computed from. One page and whether
    there is a next one. The rows come off `obs_project_prompt_cover` (the prompt's calls by time);
    only the page's rows are read from the heap, for their previews: asked for in one statement, the
    previews made PostgreSQL sort every call of the version instead (1.3-2.9 s at 10M observations for
    an older version, against 7-70 ms in two)."""
    qs = _observations(project).filter(
        type="GENERATION", prompt_name=prompt_name, prompt_version=prompt_version,
        start_time__gte=since, start_time__lt=until, duplicate_of="",
    )
    if before is not None:
        moment, observation_id = before
        qs = qs.filter(Q(start_time__lt=moment) | Q(start_time=moment, id__lt=observation_id))
    keys = list(qs.order_by("-start_time", "-id").values_list("id", flat=True)[: limit + 1])
    page = {
        o.id: o
        for o in _observations(project)
        .filter(id__in=keys[:limit])
        .only(
            "project_id", "id", "trace_id", "name", "start_time", "end_time", "completion_start_time", "model",
            "response_model", "status", "total_cost", "input_tokens", "cached_input_tokens", "output_tokens",
        )
        .annotate(input_preview=_preview("input"), output_preview=_preview("output"))
    }
    return [page[k] for k in keys[:limit] if k in page], len(keys) > limit


# --- one page of the explorer ---------------------------------------------------------------------
# A word in a large share of the documents (`refund` in ~75%) matches hundreds of thousands of rows at
# volume, and the GIN indexes can only hand over all of them, to be sorted for the newest 50 and
# counted again. Newest first, such a page is found by walking the traces by time instead (the
# (project, -timestamp) index, every other filter applied) and testing each one's document and its
# generations' documents, in chunks, until the page is full: ~70 traces for a page of 50 at 75%. The
# count is then estimated from the share of matches walked (shown as "about N"). One SQL statement
# doing the same walk is planned as a scan of every match: hence the explicit chunks. The walk is
# tried when the planner expects more than SEARCH_WALK_ABOVE documents with the words (in the project,
# whatever the other filters), and gives up for the index path (every match, no window) when the
# share it sees says the page would need more than SEARCH_WALK_ROWS traces (a word in under ~1% of
# the traces, a deep page): one chunk of ~100 traces for a rare word the planner overestimates
# (`needle-<i>`). The windows of SEARCH_WINDOWS now answer only a search the walk was not tried for
# whose matches the planner still expects to be many.
SEARCH_WALK_ABOVE = 5_000
SEARCH_WALK_FIRST = 100
SEARCH_WALK_CHUNK_MAX = 2_000
SEARCH_WALK_ROWS = 5_000


@dataclass(frozen=True)
class SearchPage:
    """One page of the explorer and its count: `count_kind` "exact" (counted), "capped" (more than
    `total`: counting stopped there) or "estimated" (about `total`, not counted). `window` is set when
    the page came from a window of SEARCH_WINDOWS (then `total` counts that window only)."""

    traces: list
    total: int
    count_kind: str
    window: timedelta | None = None
    walked: int = 0


def _walk_text_page(*, project, search: TraceSearch, offset: int, limit: int) -> SearchPage | None:
    """The newest-first page of a text search found by walking the traces by time (see above), or
    None when the walk does not apply (too few matches in what it walked)."""
    base = trace_search(project=project, search=dataclasses.replace(search, text="", text_since=None), order="-time")
    # The match is computed in the SELECT list, never a WHERE condition: as a condition the planner
    # answers it from the GIN index, all matches at once (a "hashed SubPlan" for the generations),
    # which is the very cost walked around here. A trace's own document first; its generations'
    # only for the walked traces whose own did not match (by the (project, trace) index).
    matches = ExpressionWrapper(_Matches(search.text), output_field=BooleanField())
    wanted = offset + limit + 1
    hits: list[str] = []
    walked, after = 0, None
    size = min(SEARCH_WALK_CHUNK_MAX, max(SEARCH_WALK_FIRST, 2 * wanted))
    while True:
        chunk = base
        if after is not None:
            moment, last_id = after
            # `timestamp <= t` bounds the index range; the tie on the id is a filter inside it.
            chunk = chunk.filter(Q(timestamp__lt=moment) | Q(id__lt=last_id), timestamp__lte=moment)
        rows = list(chunk.annotate(_hit=matches).values_list("id", "timestamp", "_hit")[:size])
        missed = [trace_id for trace_id, _, matched in rows if not matched]
        in_generations = set()
        if missed:
            in_generations = {
                trace_id
                for trace_id, matched in _observations(project)
                .filter(trace_id__in=missed, type__in=SEARCHED_OBSERVATION_TYPES)
                .annotate(_hit=matches)
                .values_list("trace_id", "_hit")
                if matched
            }
        walked += len(rows)
        hits.extend(trace_id for trace_id, _, matched in rows if matched or trace_id in in_generations)
        if len(hits) >= wanted or len(rows) < size:
            break
        # The traces the rest of the page would take at the share seen so far.
        needed = (wanted - len(hits)) * walked / len(hits) if hits else float("inf")
        if walked + needed > SEARCH_WALK_ROWS:
            return None
        size = int(min(SEARCH_WALK_CHUNK_MAX, max(SEARCH_WALK_FIRST, needed * 1.25)))
        after = (rows[-1][1], rows[-1][0])
    page_ids = hits[offset : offset + limit]
    traces = list(base.filter(id__in=page_ids)) if page_ids else []
    if len(rows) < size:  # walked to the end: every match was seen
        return SearchPage(traces=traces, total=len(hits), count_kind="exact", walked=walked)
    # Two significant figures: the share comes from the newest ~100 traces, more digits would claim
    # a precision the estimate does not have.
    estimate = int(float(f"{planner_rows(base) * len(hits) / walked:.2g}"))
    return SearchPage(traces=traces, total=max(estimate, len(hits)), count_kind="estimated", walked=walked)


def trace_search_page(*, project, search: TraceSearch, order: str = "-time", page: int = 1, limit: int = 50) -> SearchPage:
    """One page of `trace_search` and its count, the way the explorer shows it: newest first with a
    text, a dense word by the walk, else the smallest window of SEARCH_WINDOWS holding the page (the
    count is then that window's); otherwise every match, counted up to SEARCH_COUNT_CAP."""
    from django.utils import timezone

    offset = (page - 1) * limit
    windows: tuple = (None,)
    if search.text and order == "-time":
        # How common the word is in the project, whatever the other filters: a dense word with a
        # narrow filter (one user's traces) is walked too, along that filter's index; the estimate of
        # the whole search would be small there, and its index path read every match of the word.
        own = Trace.objects.for_project(project).filter(_Matches(search.text))
        generations = _observations(project).filter(_Matches(search.text), type__in=SEARCHED_OBSERVATION_TYPES)
        if estimated_rows(own) + estimated_rows(generations) > SEARCH_WALK_ABOVE:
            found = _walk_text_page(project=project, search=search, offset=offset, limit=limit)
            if found is not None:
                return found
            # Few matches among the newest traces: every match from the indexes, without windows. A
            # window narrows nothing for a rare word and costs its rows: the `btree_gin` time column
            # makes `timestamp >= X` a partial match over every timestamp in the window (3.4 s for
            # `needle-1000000` at 10M observations, whose phrase the planner expects ~10,000 times).
        elif estimated_rows(trace_search(project=project, search=search, order="-time")) > SEARCH_WINDOWED_ABOVE:
            windows = SEARCH_WINDOWS
    now = timezone.now()
    for window in windows:
        since = now - window if window is not None else None
        queryset = trace_search(project=project, search=dataclasses.replace(search, text_since=since), order=order)
        traces = list(queryset[offset : offset + limit])
        if len(traces) == limit or window is None:
            break
    total, capped = search_count(queryset)
    return SearchPage(traces=traces, total=total, count_kind="capped" if capped else "exact", window=window)
