"""The writer: the ONLY module that writes the telemetry tables (traces, observations, scores). Every
source reaches it through `ingest.pipeline.run`, whose write stage calls it.

    write_records(project=project, traces=[...], observations=[...], scores=[...])

Records follow `ingest.contract`. Per table and request the writer issues a constant number of
statements, whatever the batch size:

1. records with the same id are merged in memory, in order (Postgres refuses one key twice in a
   single ON CONFLICT statement, and it saves round trips);
2. `INSERT … SELECT … FROM jsonb_populate_recordset(…) ON CONFLICT (project_id, id) DO NOTHING
   RETURNING id` stores the new rows with their derived fields computed here;
3. the ids that already existed get one `UPDATE … FROM jsonb_populate_recordset(…)` applying the merge
   rules in SQL against the *current* row (so concurrent writers never lose each other's fields),
   `RETURNING` what derivations need;
4. only if a merged row's derived fields (total tokens, status, catalog cost) changed, one more UPDATE.

The INSERT/UPDATE split (instead of a single INSERT … ON CONFLICT DO UPDATE) is what lets an update
tell "not sent" from a column default: the UPDATE source holds NULL for every key the client did not
send, while the INSERT source holds the defaults. Both run in READ COMMITTED, so a row another
request inserts between them is seen by the UPDATE and merged, not lost.

Merge rules (Langfuse's, see reference §3.5): later non-null values win; absent or null keys never
clear a value; `metadata` (and `redactions`) deep-merged; `tags` unioned and sorted; empty
usage/cost/parameter maps never overwrite; `trace_id`, `created_at` keep their first value;
`environment` keeps the first value other than "default"; observation start_time keeps the earliest
value seen — the first write in order, and also correct when an update arrived before the create;
the trace timestamp keeps the earliest value the client sent for the trace, and a placeholder's (a
trace created from its observations before its trace-create arrived: their earliest start) gives way
to the trace's own timestamp whichever order they arrive in (`timestamp_is_placeholder`); a score's
timestamp keeps its first value.
Replaying the same records is a no-op apart from `updated_at`.
"""

from __future__ import annotations

import logging
import operator
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone
from psycopg import adapters as psycopg_adapters
from psycopg.adapt import Dumper

from ingest import rollups, timing
from ingest.contract import OBSERVATION_KEYS, SCORE_KEYS, TRACE_KEYS
from ingest.rules.environment import DEFAULT_ENVIRONMENT
from ingest.rules.ids import MAX_ID_LENGTH
from ingest.rules.status import derive_status
from ingest.rules.values import strip_nul
from ingest.stages import price as costs
from scores.models import Score
from tenancy.dataplane import data_connection
from tenancy.regions import region_database
from traces.models import CostSource, Observation, Trace

logger = logging.getLogger(__name__)

TOKEN_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
COST_FIELDS = ("input_cost", "output_cost", "total_cost")
CLIENT_COST_GROUP = (*COST_FIELDS, "cost_details")
_BIGINT = 2**63 - 1
NUMERIC_LIMITS = {
    **{f: _BIGINT for f in (*TOKEN_FIELDS, "total_tokens")},
    **{f: Decimal(10) ** 10 for f in COST_FIELDS},  # numeric(20, 10)
    "prompt_version": 2**31 - 1,
}


INTEGER_FIELDS = frozenset({*TOKEN_FIELDS, "total_tokens", "prompt_version"})


def _within(value, limit) -> bool:
    try:
        return -limit < value < limit if not isinstance(value, bool) else False
    except TypeError:
        return False
# Fields whose change can change the catalog cost of a merged row.
PRICING_INPUTS = frozenset({"model", "response_model", *TOKEN_FIELDS, "usage_details"})
STATUS_INPUTS = frozenset({"level", "error_type", "error_message", "finish_reason"})
DEADLOCK_RETRIES = 3
# The cost sources as stored (an enum member's `.value` is a property call, read per row otherwise).
_CLIENT, _CATALOG, _UNPRICED = CostSource.CLIENT.value, CostSource.CATALOG.value, CostSource.NONE.value


class StorageUnavailable(Exception):
    """The region database cannot take the write now; callers answer 503 with Retry-After."""

    retry_after = 5

    def __init__(self, message: str = "storage is temporarily unavailable"):
        super().__init__(message)
        self.message = message


class InvalidRecord(ValueError):
    """A record breaks the contract in `ingest.contract` (a caller bug, not bad client input)."""


# ---------------------------------------------------------------------------------------------
# Table descriptions


@dataclass(frozen=True)
class _Table:
    model: type
    keys: frozenset
    rules: dict  # column -> merge rule; columns not listed: "replace"
    insert_defaults: dict  # column -> default for new rows (callables are called)
    truncate: dict  # char column -> max_length

    @property
    def db_table(self) -> str:
        return self.model._meta.db_table


def _char_limits(model) -> dict:
    return {
        f.column: f.max_length
        for f in model._meta.concrete_fields
        if f.get_internal_type() == "CharField"
        and f.max_length
        and f.column not in ("id", "trace_id", "project_id")
    }


def _defaults(model) -> dict:
    out = {}
    for f in model._meta.concrete_fields:
        if f.column in ("project_id", "id"):
            continue
        if f.has_default():
            out[f.column] = f.default
        elif f.null:
            out[f.column] = None
        elif f.get_internal_type() in ("CharField", "TextField"):
            out[f.column] = ""  # e.g. a score update that arrives before its create has no name yet
    return out


_COMMON_RULES = {
    "metadata": "deep",
    "redactions": "deep",
    "environment": "env",
    "created_at": "first",
}

TRACES = _Table(
    model=Trace,
    keys=TRACE_KEYS,
    rules={
        **_COMMON_RULES,
        "tags": "union",
        "timestamp": "trace_time",
        "timestamp_is_placeholder": "placeholder",
        # Kept by `ingest.rollups` from the trace's calls, never sent: a trace update keeps them.
        "cost": "first",
        "cost_calls": "first",
    },
    insert_defaults=_defaults(Trace),
    truncate=_char_limits(Trace),
)
OBSERVATIONS = _Table(
    model=Observation,
    keys=OBSERVATION_KEYS,
    rules={
        **_COMMON_RULES,
        "trace_id": "first",
        "start_time": "least",
        "usage_details": "nonempty",
        "cost_details": "nonempty",
        "model_parameters": "nonempty",
        "tool_calls": "nonempty",
    },
    insert_defaults=_defaults(Observation),
    truncate=_char_limits(Observation),
)
SCORES = _Table(
    model=Score,
    keys=SCORE_KEYS,
    rules={**_COMMON_RULES, "timestamp": "first", "trace_id": "first"},
    insert_defaults=_defaults(Score),
    truncate=_char_limits(Score),
)


# ---------------------------------------------------------------------------------------------
# In-memory normalisation and merging


def deep_merge(base: Any, patch: Any) -> Any:
    """`patch` onto `base`: objects merge key by key, recursively; anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = deep_merge(merged[key], value) if key in merged else value
        return merged
    return patch


def _normalise(record: dict, table: _Table, actions: dict) -> dict:
    rec_id = record.get("id")
    if not isinstance(rec_id, str) or not rec_id:
        raise InvalidRecord(f"{table.model.__name__} record without a string id: {record!r:.200}")
    if len(rec_id) > MAX_ID_LENGTH:
        raise InvalidRecord(f"{table.model.__name__} id longer than {MAX_ID_LENGTH} characters")
    if not table.keys.issuperset(record):
        unknown = record.keys() - table.keys
        raise InvalidRecord(f"{table.model.__name__} record has unknown keys {sorted(unknown)}")
    # A copy of the record, changed where a value is not stored as sent: most values are, and the copy
    # (in C) is cheaper than storing every value again one key at a time. Same keys, same order.
    out = dict(record)
    for key, value in record.items():
        if value is None:
            del out[key]
            continue
        # Most values pass as sent: one look-up (`_key_actions`) says which keys `_normalised_value`
        # may change or refuse; the text of a char column and a whole number within its column's
        # range are taken here (what `_normalised_value` does with them), every other value of those
        # keys goes through it, and a value of any other key only has its time-zone checked.
        action = actions.get(key)
        if action is None:
            if isinstance(value, datetime) and value.tzinfo is None:
                raise InvalidRecord(f"{table.model.__name__}.{key} must be timezone-aware")
        elif action.__class__ is int:  # a char column's max_length
            if isinstance(value, str):
                if len(value) > action:
                    out[key] = value[:action]
            else:
                _store_normalised(out, key, value, table)
        elif action.__class__ is _Range:
            if value.__class__ is not int or not -action.limit < value < action.limit:
                out[key] = _normalised_value(key, value, table)
        elif action is _NONEMPTY:
            # A JSON map or list is stored as sent unless empty; anything else takes the whole rule.
            if value.__class__ is dict or value.__class__ is list:
                if not value:
                    del out[key]
            else:
                _store_normalised(out, key, value, table)
        elif action is _METADATA:
            if value.__class__ is not dict:  # a map is stored as sent
                out[key] = _normalised_value(key, value, table)
        else:
            _store_normalised(out, key, value, table)
    if table is OBSERVATIONS:
        if "trace_id" in out and len(out["trace_id"]) > MAX_ID_LENGTH:
            raise InvalidRecord(f"trace_id longer than {MAX_ID_LENGTH} characters")
        if not out.keys().isdisjoint(CLIENT_COST_GROUP):
            _client_cost(out)
    return out


_SKIP = object()


def _store_normalised(out: dict, key: str, value, table: _Table) -> None:
    """`out[key]` as `_normalised_value` has it, or no `key` for a value not to store."""
    value = _normalised_value(key, value, table)
    if value is _SKIP:
        del out[key]
    else:
        out[key] = value


def _normalised_value(key: str, value, table: _Table):
    """A record's (non-null) value as the writer stores it, or _SKIP for a value not to store."""
    if key == "metadata" and not isinstance(value, dict):
        value = {"metadata": value}
    elif key == "tags":
        value = sorted({str(tag) for tag in value})
    elif key in table.truncate and isinstance(value, str) and len(value) > table.truncate[key]:
        value = value[: table.truncate[key]]
    elif table.rules.get(key) == "nonempty" and not value:
        return _SKIP
    elif isinstance(value, datetime) and value.tzinfo is None:
        raise InvalidRecord(f"{table.model.__name__}.{key} must be timezone-aware")
    elif key in NUMERIC_LIMITS:
        if not _within(value, NUMERIC_LIMITS[key]):
            raise InvalidRecord(f"{table.model.__name__}.{key}={value!r} is out of range")
        if key in INTEGER_FIELDS and isinstance(value, float):
            if not value.is_integer():
                raise InvalidRecord(f"{table.model.__name__}.{key}={value!r} must be an integer")
            value = int(value)
    return value


@dataclass(frozen=True)
class _Range:
    """A numeric column's bound (`NUMERIC_LIMITS`): a whole number strictly within it is stored as sent."""

    limit: Any


_KEY_ACTIONS: dict[str, dict] = {}
# `_key_actions` values for keys whose common values `_normalise` takes itself: a "nonempty" key's
# non-empty map or list, and a metadata map (each passes `_normalised_value` unchanged).
_NONEMPTY = "nonempty"
_METADATA = "metadata"


def _key_actions(table: _Table) -> dict:
    """{key: what `_normalise` does with its value} for the keys `_normalised_value` may change or
    refuse beyond the time-zone check (every other value is stored as sent): a char column's
    max_length (text is cut there), a `_Range`, `_NONEMPTY`, `_METADATA`, or True
    (`_normalised_value` decides)."""
    actions = _KEY_ACTIONS.get(table.db_table)
    if actions is None:
        # Later entries win: `_normalised_value` tests metadata, tags and the nonempty rule first.
        actions = {key: _Range(limit) for key, limit in NUMERIC_LIMITS.items()}
        actions.update(table.truncate)
        actions.update({key: _NONEMPTY for key, rule in table.rules.items() if rule == "nonempty"})
        actions.update(metadata=_METADATA, tags=True)
        _KEY_ACTIONS[table.db_table] = actions
    return actions


def _client_cost(rec: dict) -> None:
    """A cost the client sent wins over the catalog; fill its total as Langfuse does."""
    details = rec.get("cost_details") or {}
    sent = [f for f in COST_FIELDS if rec.get(f) is not None]
    if not sent and not details:
        return
    rec["cost_source"] = _CLIENT
    for field, key in (("input_cost", "input"), ("output_cost", "output"), ("total_cost", "total")):
        if rec.get(field) is None and isinstance(details.get(key), (int, float, Decimal)):
            rec[field] = details[key]
    if rec.get("total_cost") is None:
        numbers = [v for k, v in details.items() if isinstance(v, (int, float, Decimal)) and k != "total"]
        if numbers:
            rec["total_cost"] = sum(Decimal(str(v)) for v in numbers)
        elif rec.get("input_cost") is not None or rec.get("output_cost") is not None:
            rec["total_cost"] = Decimal(str(rec.get("input_cost") or 0)) + Decimal(
                str(rec.get("output_cost") or 0)
            )


def _merge_pair(acc: dict, rec: dict, table: _Table) -> None:
    if rec.get("cost_source") == _CLIENT:
        # A client cost replaces the previous cost as a whole (Langfuse keeps the last costDetails).
        for key in CLIENT_COST_GROUP:
            acc.pop(key, None)
    for key, value in rec.items():
        if key not in acc:
            acc[key] = value
            continue
        rule = table.rules.get(key, "replace")
        if rule == "deep":
            acc[key] = deep_merge(acc[key], value)
        elif rule == "union":
            acc[key] = sorted(set(acc[key]) | set(value))
        elif rule in ("least", "trace_time"):  # in one batch, every trace timestamp was sent
            acc[key] = min(acc[key], value)
        elif rule == "first":
            pass
        elif rule == "env":
            if acc[key] == DEFAULT_ENVIRONMENT:
                acc[key] = value
        else:
            acc[key] = value


def _collapse(records: list[dict], table: _Table) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    actions = _key_actions(table)
    for record in records:
        rec = _normalise(record, table, actions)
        current = merged.get(rec["id"])
        if current is None:
            merged[rec["id"]] = rec
        else:
            _merge_pair(current, rec, table)
    return merged


# ---------------------------------------------------------------------------------------------
# Derived fields (one implementation, used for new rows and for merged rows)


def derive_total(row: dict) -> int | None:
    """The sum of the token counts reported (None when none is): 0 plus each one, in order."""
    total = None
    for field in TOKEN_FIELDS:
        part = row.get(field)
        if part is not None:
            total = (0 if total is None else total) + part
    return total


def _usage_of(row: dict) -> dict:
    # Unreported kinds stay None so the catalog prices (and details list) only what was reported.
    return {
        "input": row.get("input_tokens"),
        "cached_input": row.get("cached_input_tokens"),
        "cache_write": row.get("cache_write_tokens"),
        "output": row.get("output_tokens"),
        "reasoning": row.get("reasoning_tokens"),
    }


def _priceable(row: dict) -> bool:
    # A model, and a non-zero count of some `TOKEN_FIELDS` kind (a loop, not a generator: every row).
    if not (row.get("model") or row.get("response_model")):
        return False
    for field in TOKEN_FIELDS:
        if row.get(field):
            return True
    return False


def _catalog_costs(project, rows: list[dict], pricer=None) -> list[dict]:
    """Cost columns for rows the client sent no cost for: catalog price, or `none`. `pricer` is the
    pipeline's price stage (`ingest.stages.price.catalog_costs` when called directly)."""
    wanted = [row for row in rows if _priceable(row)]
    with timing.stage("price"):
        results = (pricer or costs.catalog_costs)(
            project_id=project.id,
            items=[
                (
                    row.get("response_model") or row.get("model"),
                    _usage_of(row),
                    row.get("start_time") or timezone.now(),
                )
                for row in wanted
            ],
        )
    priced = {id(row): result for row, result in zip(wanted, results)}
    out = []
    for row in rows:
        result = priced.get(id(row))
        if result is None:
            out.append(
                {
                    "input_cost": None,
                    "output_cost": None,
                    "total_cost": None,
                    "cost_details": {},
                    "cost_source": _UNPRICED,
                }
            )
        else:
            out.append({**result, "cost_source": _CATALOG})
    return out


# ---------------------------------------------------------------------------------------------
# SQL


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a record")


# orjson writes a NUL character as this escape (and a literal backslash as two, so a "\\u0000" in the
# text is seen too: a false alarm, whose rows `strip_nul` then leaves as they were). A compiled search
# scans the document a third faster than `bytes.__contains__`, which stops at every backslash and digit.
_NUL_ESCAPE = re.compile(rb"\\u0000")


def _document(rows: list[dict]) -> bytes:
    """Rows as one JSON document (UTF-8). PostgreSQL text and jsonb refuse NUL characters, which
    models do emit, so those (rare) rows are cleaned; everything else passes through untouched."""
    try:
        # Without OPT_NON_STR_KEYS orjson encodes a third faster (measured on the bench's OpenInference
        # rows: 25.7 -> 17.5 µs per row); a record holding a non-string key (rare) pays a second pass.
        data = orjson.dumps(rows, default=_json_default)
    except orjson.JSONEncodeError:
        data = orjson.dumps(rows, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    if _NUL_ESCAPE.search(data) is not None:
        data = orjson.dumps(strip_nul(rows), default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    return data


def _dump(rows: list[dict]) -> str:
    """`_document` as text, for a parameter of any cursor."""
    return _document(rows).decode()


class _JsonText:
    """A `_document` sent by the writer's server-bound cursor (`_server_bound`) exactly as the text
    `_dump` would be: the same bytes, as a text-format parameter of unknown type, which is how psycopg
    sends a `str`. It skips decoding the document into a `str` and psycopg encoding it back (with
    its NUL check, needless on orjson's output, which escapes every control character): three
    passes over hundreds of KB per statement (OpenInference workload: 3.4 µs per span)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


def _json_param(rows: list[dict]) -> _JsonText:
    return _JsonText(_document(rows))


def _columns(table: _Table) -> list[str]:
    return [f.column for f in table.model._meta.concrete_fields if f.column != "project_id"]


def _insert_sql(table: _Table, returning: tuple[str, ...] = ()) -> str:
    cols = _columns(table)
    col_list = ", ".join(f'"{c}"' for c in cols)
    select = ", ".join(f's."{c}"' for c in cols)
    ret = ", ".join(f'"{c}"' for c in ("id", *returning))
    return (
        f'INSERT INTO "{table.db_table}" ("project_id", {col_list}) '
        f'SELECT %s::uuid, {select} FROM jsonb_populate_recordset(NULL::"{table.db_table}", %s::jsonb) AS s '
        f'ORDER BY s."id" ON CONFLICT ("project_id", "id") DO NOTHING RETURNING {ret}'
    )


def _insert_scored_sql(table: _Table, extra: tuple) -> str:
    """The traces' INSERT, also saying of each trace it inserts whether a stored score names it
    (`rollups.scored_trace_sql`, one more `%s`: the project), so the rollups move the scores of new
    traces only when there are some (`rollups.Tracker.traces_scored`)."""
    scored = rollups.scored_trace_sql(f'"{table.db_table}"."id"')
    return f"{_insert_sql(table, extra)}, {scored}"


def _merge_expr(column: str, rule: str, table: _Table) -> str:
    t, s = f't."{column}"', f's."{column}"'
    if table is OBSERVATIONS and column in CLIENT_COST_GROUP:
        sent = "'{}'::jsonb" if column == "cost_details" else "NULL"
        client = CostSource.CLIENT.value
        return f"""CASE WHEN s."cost_source" = '{client}' THEN COALESCE({s}, {sent}) ELSE {t} END"""
    if rule == "deep":
        return f"lookglass_jsonb_deep_merge({t}, {s})"
    if rule == "union":
        union = f"ARRAY(SELECT DISTINCT x FROM unnest({t} || {s}) AS x ORDER BY x)"
        return f"CASE WHEN {s} IS NULL THEN {t} ELSE {union} END"
    if rule == "least":
        return f"LEAST({t}, {s})"
    if rule == "trace_time":
        # A timestamp the client sent replaces a placeholder's; among sent ones the earliest stays.
        placeholder = 't."timestamp_is_placeholder"'
        return f"CASE WHEN {s} IS NULL THEN {t} WHEN {placeholder} THEN {s} ELSE LEAST({t}, {s}) END"
    if rule == "placeholder":
        return 't."timestamp_is_placeholder" AND s."timestamp" IS NULL'
    if rule == "first":
        if column == "trace_id":  # a score first sent for a session may be tied to its trace later
            return f"CASE WHEN {t} = '' THEN COALESCE({s}, {t}) ELSE {t} END"
        return t
    if rule == "env":
        return f"CASE WHEN {t} = '{DEFAULT_ENVIRONMENT}' THEN COALESCE({s}, {t}) ELSE {t} END"
    return f"COALESCE({s}, {t})"


def _source(table: _Table, *, locked: bool) -> str:
    """The UPDATE's FROM and WHERE: the batch's rows (`s`) and the stored rows they change (`t`).

    `locked`: every stored row the UPDATE changes is locked by an earlier statement of this
    transaction (traces, observations and scores: the rollups' snapshots; the fix UPDATE: the merge
    UPDATE before it). Then each row is found by one primary-key probe (the form of `_ROWS_BY_ID_SQL`, whose
    comment says why) and joined by its physical address (`ctid`), which can only be a TID lookup. As
    a join on (project_id, id) the planner picked, for a project grown since its last ANALYZE, a hash
    join over the whole project or a scan of an index leading with project_id: 9,000-11,000 rows read
    to update 20 calls (tests/ingest/test_update_path_cost.py). The lock is what makes the address
    safe: a row updated by another transaction after this statement's snapshot has a new address this
    snapshot cannot see, and would be skipped (a lost merge; seen when scores took this form before
    the rollups locked them: tests/ingest/test_update_path_cost.py) — so rows not locked beforehand
    keep the join, with the project as an InitPlan parameter."""
    if not locked:
        return (
            f'jsonb_populate_recordset(NULL::"{table.db_table}", %s::jsonb) AS s '
            f'WHERE t."project_id" = (SELECT %s::uuid) AND t."id" = s."id"'
        )
    probe = rollups.pk_probe("o", table.db_table, 's."id"', 'o.ctid AS "_tid"')
    return (
        f'(SELECT s.*, x."_tid" FROM jsonb_populate_recordset(NULL::"{table.db_table}", %s::jsonb) AS s '
        f'CROSS JOIN LATERAL ({probe}) AS x) AS s WHERE t.ctid = s."_tid"'
    )


def _update_sql(table: _Table, extra: tuple) -> str:
    locked, returning = extra
    sets = []
    for column in _columns(table):
        if column == "id":
            continue
        if column == "updated_at":
            sets.append('"updated_at" = %s')
            continue
        if column == "end_time":
            # Langfuse clamps an end before the start to the start.
            start = _merge_expr("start_time", "least", table)
            sets.append(
                f'"end_time" = CASE WHEN COALESCE(s."end_time", t."end_time") IS NULL THEN NULL '
                f'ELSE GREATEST(COALESCE(s."end_time", t."end_time"), {start}) END'
            )
            continue
        sets.append(f'"{column}" = {_merge_expr(column, table.rules.get(column, "replace"), table)}')
    ret = ", ".join(f't."{c}"' for c in ("id", *returning))
    return (
        f'UPDATE "{table.db_table}" AS t SET {", ".join(sets)} '
        f'FROM {_source(table, locked=locked)} RETURNING {ret}'
    )


def _fix_sql(table: _Table, columns: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{c}" = s."{c}"' for c in columns)
    return (
        f'UPDATE "{table.db_table}" AS t SET {sets} '
        f'FROM {_source(table, locked=True)}'
    )


_SQL_CACHE: dict[tuple, str] = {}
_ID = operator.itemgetter("id")


def _sql(kind: str, table: _Table, extra: tuple = ()) -> str:
    key = (kind, table.db_table, extra)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        builders = {"insert": _insert_sql, "insert_scored": _insert_scored_sql, "update": _update_sql, "fix": _fix_sql}
        sql = builders[kind](table, extra)
        _SQL_CACHE[key] = sql
    return sql


def _server_bound(cursor):
    """The same kind of Django cursor as `cursor`, on the same connection, but sending parameters
    apart from the statement (server-side binding).

    The batch document (hundreds of KB) then reaches PostgreSQL as a parameter and is parsed once,
    straight into jsonb, rather than escaped into the SQL text here, scanned as a string literal
    there and parsed again per JSON column: a third less database CPU for the INSERT, a fifth end to
    end in `make bench-ingest`. Django's wrapper stays around it, so errors become Django's
    exceptions and the statements are logged (and counted) like any other. Its statements are
    prepared only inside `_preparing` (Django's prepare_threshold=None elsewhere)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    raw = ServerBindingCursor(cursor.cursor.connection)
    raw.adapters.register_dumper(_JsonText, _JsonTextDumper)
    return type(cursor)(raw, cursor.db)


class _JsonTextDumper(Dumper):
    """`_JsonText` as psycopg's `StrDumperUnknown` sends a `str` on a UTF-8 connection (text format,
    unknown type, the UTF-8 bytes; Django's connections are always UTF-8)."""

    oid = 0

    def dump(self, obj: _JsonText) -> bytes:
        return obj.data


# Also for connections opened from now on, so that quoting one into SQL text (Django's
# `last_executed_query` with server-side binding on, under DEBUG) works as for a `str`.
psycopg_adapters.register_dumper(_JsonText, _JsonTextDumper)


@contextmanager
def _preparing(connection, enabled: bool):
    """Server-side prepared statements for what the writer's server-bound cursor runs meanwhile.

    A request's statements (here and in `rollups`, on the same cursor) are the same texts every
    time; prepared, PostgreSQL parses and analyses each once per pooled connection instead of per
    request, and after five runs most are planned once too (a generic plan, when the planner finds
    it no dearer than the custom ones; the plan cache does not replan for planner settings, so it
    matters that every statement after the first runs under the transaction's
    `rollups.KEY_PROBE_SETTINGS`, as every writer transaction sets them first). Measured (stages
    benchmark, old vs new alternated): database CPU 231 → 214 µs per span on the OpenInference
    workload, 197 → 173 on the Langfuse one. They stay in psycopg's per-connection cache
    (`prepared_max`, least recently used closed) for the next write on this connection; psycopg
    drops them all on any ROLLBACK of the connection, so a failed transaction costs one
    re-preparation. The threshold goes back afterwards, so everything else on the shared pooled
    connection stays unprepared (Django's choice, for poolers); client-bound cursors never prepare."""
    if not enabled:
        yield
        return
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 0  # prepared from the first run: the cache outlives this request
    try:
        yield
    finally:
        raw.prepare_threshold = threshold


def _is_stale_prepared(exc: Exception) -> bool:
    """A prepared statement the server can no longer run as prepared: the type of a column it
    returns changed (a rolling deploy's migration widened or retyped it while this node ran:
    "cached plan must not change result type"; an added column is only replanned, the writer names
    every column it reads), or its name is unknown to the session (a pooler or failover handed the
    connection another one)."""
    return getattr(exc.__cause__, "sqlstate", None) in ("0A000", "26000")  # feature_not_supported, invalid_sql_statement_name


def _forget_prepared(connection) -> None:
    """Drop every statement prepared on this connection: on the server and in psycopg's cache, which
    would otherwise keep naming them. psycopg already does both on the ROLLBACK of the failed
    transaction; this makes it certain however that ended. psycopg only notices a DEALLOCATE ALL
    (and then forgets its names) while preparing is on, hence the threshold for its duration."""
    raw = connection.connection
    if raw is None or raw.closed:
        return  # a new connection starts with no prepared statements
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 0
    try:
        raw.execute("DEALLOCATE ALL", prepare=False)
    except Exception:  # noqa: BLE001 - the connection's own failure is the retry's to report
        # The retry runs unprepared whatever psycopg still names, and fails as any write on a lost
        # connection does if that is what this was.
        logger.warning("region connection: DEALLOCATE ALL failed", exc_info=True)
    finally:
        raw.prepare_threshold = threshold


def _default_plan(table: _Table) -> tuple[dict, tuple, tuple]:
    """The table's insert defaults split once: (constants, columns defaulting to the time of the write,
    (column, factory) pairs that need a fresh value per row — `dict`, `list`)."""
    plan = _DEFAULT_PLANS.get(table.db_table)
    if plan is None:
        constants, at_now, factories = {}, [], []
        for column, default in table.insert_defaults.items():
            if default is timezone.now:
                at_now.append(column)
            elif callable(default):
                factories.append((column, default))
            else:
                constants[column] = default
        plan = _DEFAULT_PLANS[table.db_table] = (constants, tuple(at_now), tuple(factories))
    return plan


_DEFAULT_PLANS: dict[str, tuple[dict, tuple, tuple]] = {}


def _insert_rows(recs, table: _Table, now: datetime) -> list[dict]:
    """The new rows of `recs` (merged records of `table`): every column, its default where the record
    sent nothing, and the write's time as `created_at` / `updated_at`."""
    # Defaults computed per column and row (a clock read for each `timezone.now` column) were a tenth of
    # the writer's Python; a `now` default is the write's own `now`, the moment `created_at` records.
    base, factories = _insert_base(table, now)
    rows = []
    for rec in recs:
        row = base.copy()
        for column, factory in factories:
            if column not in rec:
                row[column] = factory()
        row.update(rec)
        row["created_at"] = now
        row["updated_at"] = now
        rows.append(row)
    return rows


def _insert_row(rec: dict, table: _Table, now: datetime) -> dict:
    return _insert_rows((rec,), table, now)[0]


_INSERT_BASES: dict[int, tuple] = {}  # id(table) -> (now, base row, factories): the last write's


def _insert_base(table: _Table, now: datetime) -> tuple[dict, tuple]:
    """The constant defaults and the `now` ones of a new row of `table` at `now`, built once per write."""
    cached = _INSERT_BASES.get(id(table))
    if cached is not None and cached[0] is now:
        return cached[1], cached[2]
    constants, at_now, factories = _default_plan(table)
    base = {**constants, **dict.fromkeys(at_now, now)}
    _INSERT_BASES[id(table)] = (now, base, factories)
    return base, factories


# ---------------------------------------------------------------------------------------------
# Per-table writes


def _write_table(
    cursor,
    project,
    table: _Table,
    merged: dict[str, dict],
    now: datetime,
    *,
    insert_rows: list[dict],
    returning: tuple[str, ...] = (),
    insert_returning: tuple[str, ...] = (),
    before_update=None,
    locked: bool = False,
    scored: bool = False,
) -> tuple[dict[str, tuple], list[tuple]]:
    """Insert new rows, merge into existing ones. Returns ({inserted id: RETURNING row of the
    insert, or None with `insert_returning`}, RETURNING rows of the update). `before_update(inserted ids)` runs between the two (the
    rollups lock and read the rows the UPDATE is about to change); `locked`: it locks every one of
    them (see `_source`); `scored`: each RETURNING row of the insert ends with whether a stored score
    names the row (`_insert_scored_sql`)."""
    pid = str(project.id)
    inserted: dict[str, tuple | None] = {}
    if insert_rows:
        insert_rows.sort(key=_ID)
        if scored:
            cursor.execute(_sql("insert_scored", table, insert_returning), [pid, _json_param(insert_rows), pid])
        else:
            cursor.execute(_sql("insert", table, insert_returning), [pid, _json_param(insert_rows)])
        if insert_returning and all(map(_stored_as_sent, insert_rows)):
            # The rows hold what the INSERT stored (`_inserted_states`): only the ids are loaded.
            inserted = dict.fromkeys(_returned_ids(cursor))
        else:
            inserted = {row[0]: row for row in cursor.fetchall()}
    if before_update is not None:
        before_update(inserted.keys())
    existing = sorted(rec_id for rec_id in merged if rec_id not in inserted)
    updated: list[tuple] = []
    if existing:
        rows = [merged[rec_id] for rec_id in existing]
        cursor.execute(_sql("update", table, (locked, returning)), [now, _json_param(rows), pid])
        updated = cursor.fetchall()
    return inserted, updated


def _trace_insert_rows(merged: dict[str, dict], placeholders: dict[str, dict], now) -> list[dict]:
    rows = _insert_rows(merged.values(), TRACES, now)
    for rec, row in zip(merged.values(), rows):
        row["timestamp_is_placeholder"] = "timestamp" not in rec  # the insert default (now) stands in
    # A placeholder only creates a missing trace; it never merges into an existing one.
    for tid, rec in placeholders.items():
        if tid not in merged:
            rows.append({**_insert_row(rec, TRACES, now), "timestamp_is_placeholder": True})
    return rows


def _write_traces(cursor, project, merged: dict[str, dict], placeholders: dict[str, dict], now, tracker, costs=None):
    rows = _trace_insert_rows(merged, placeholders, now)
    # A new trace is stored with the cost of the batch's new calls of it (`rollups.Tracker.insert_costs`).
    for row in rows:
        if costs and row["id"] in costs:
            row["cost"], row["cost_calls"] = costs[row["id"]]
    ids = set(merged) | set(placeholders)
    inserted, _ = _write_table(
        cursor, project, TRACES, merged, now, insert_rows=rows,
        before_update=lambda inserted: tracker.inserted(traces=rows, ids=inserted, snapshot=ids - inserted),
        locked=True, scored=True,
    )
    tracker.traces_scored([tid for tid, row in inserted.items() if row[-1]])


_OBS_RETURNING = (
    "model",
    "response_model",
    "start_time",
    "level",
    "error_type",
    "error_message",
    "finish_reason",
    "status",
    *TOKEN_FIELDS,
    "total_tokens",
    "cost_source",
    *COST_FIELDS,
    "cost_details",
    # for duplicate-call marking (`_SAME_CALL_COLUMNS`)
    "type",
    "trace_id",
    "parent_observation_id",
    "end_time",
    "duplicate_of",
)
# What deciding "the same call as its parent" reads of a row (see `_same_call`).
_SAME_CALL_COLUMNS = (
    "type",
    "trace_id",
    "parent_observation_id",
    "model",
    "response_model",
    "start_time",
    "end_time",
    *TOKEN_FIELDS,
    "duplicate_of",
)


def _observation_insert_rows(project, merged: dict[str, dict], now, pricer=None) -> list[dict]:
    insert_rows = _insert_rows(merged.values(), OBSERVATIONS, now)
    needs_catalog = []
    for rec, row in zip(merged.values(), insert_rows):
        if "total_tokens" not in rec:
            row["total_tokens"] = derive_total(row)
        if "status" not in rec:
            row["status"] = derive_status(row)
        end = row["end_time"]  # every column is in the row
        if end is not None and end < row["start_time"]:
            row["end_time"] = row["start_time"]
        if row["cost_source"] != _CLIENT:
            needs_catalog.append(row)
    for row, cost in zip(needs_catalog, _catalog_costs(project, needs_catalog, pricer)):
        row.update(cost)
    return insert_rows


def _write_observations(
    cursor, project, merged: dict[str, dict], now, tracker, pricer=None, insert_rows=None
) -> dict[str, dict]:
    """Store the batch's observations; returns {id: the row's `_SAME_CALL_COLUMNS` as stored now}."""
    if insert_rows is None:
        insert_rows = _observation_insert_rows(project, merged, now, pricer)
    inserted, updated = _write_table(
        cursor, project, OBSERVATIONS, merged, now, insert_rows=insert_rows, returning=_OBS_RETURNING,
        insert_returning=_SAME_CALL_COLUMNS,
        before_update=lambda inserted: tracker.inserted(
            observations=insert_rows, ids=inserted, snapshot=merged.keys() - inserted
        ),
        locked=True,
    )
    # Every batch row as it now stands (the later fix UPDATE changes none of these columns): what
    # duplicate-call marking compares, without reading the rows again.
    names = ("id", *_OBS_RETURNING)
    states = _inserted_states(insert_rows, inserted)
    for values in updated:
        row = dict(zip(names, values))
        states[row["id"]] = {c: row[c] for c in ("id", *_SAME_CALL_COLUMNS)}
    if not updated:
        return states
    fixes: dict[str, dict] = {}
    reprice: list[dict] = []
    updated = [_decode_json_columns(dict(zip(names, values))) for values in updated]
    for row in updated:
        rec = merged[row["id"]]
        fix = {}
        if "total_tokens" not in rec and any(f in rec for f in TOKEN_FIELDS):
            total = derive_total(row)
            if total != row["total_tokens"]:
                fix["total_tokens"] = total
        if "status" not in rec and STATUS_INPUTS & rec.keys():
            status = derive_status(row)
            if status != row["status"]:
                fix["status"] = status
        if fix:
            fixes[row["id"]] = fix
        if row["cost_source"] != _CLIENT and PRICING_INPUTS & rec.keys():
            reprice.append(row)
    for row, cost in zip(reprice, _catalog_costs(project, reprice, pricer)):
        if (
            any(_differs(row.get(k), cost[k]) for k in (*COST_FIELDS, "cost_source"))
            or (row.get("cost_details") or {}) != cost["cost_details"]
        ):
            fixes.setdefault(row["id"], {}).update(cost)
    if not fixes:
        return states
    columns = tuple(sorted({c for fix in fixes.values() for c in fix}))
    # Columns a row does not fix keep their value, taken from the RETURNING snapshot; it is current
    # because this transaction has held the row locks since the UPDATE above.
    snapshot = {row["id"]: row for row in updated}
    rows = []
    for rec_id, fix in sorted(fixes.items()):
        rows.append({"id": rec_id, **{c: fix[c] if c in fix else snapshot[rec_id][c] for c in columns}})
    cursor.execute(_sql("fix", OBSERVATIONS, columns), [_json_param(rows), str(project.id)])
    return states


def _returned_ids(cursor) -> list[str]:
    """The first column (the id, text) of the rows the last statement returned, without loading the
    others: loading a row's timestamps in Python costs more than anything else in reading it."""
    result = cursor.cursor.pgresult  # Django's wrapper around the psycopg cursor
    encoding = cursor.cursor.connection.info.encoding
    return [result.get_value(i, 0).decode(encoding) for i in range(result.ntuples)]


# The text columns of `_SAME_CALL_COLUMNS`.
_STATE_TEXT = tuple(c for c in _SAME_CALL_COLUMNS if c not in (*TOKEN_FIELDS, "start_time", "end_time"))


def _stored_as_sent(row: dict) -> bool:
    """Whether the INSERT stores `row`'s `_SAME_CALL_COLUMNS` as they are: every text one a string
    without NUL (which `_dump` replaces; a value of another JSON type is stored as its text). The
    others are as the contract and `_normalise` leave them: aware datetimes, whole numbers or None."""
    for column in _STATE_TEXT:
        value = row[column]
        if value.__class__ is not str or "\x00" in value:
            return False
    return True


def _inserted_states(insert_rows: list[dict], inserted: dict) -> dict[str, dict]:
    """{id: the row as the INSERT stored it (at least `_SAME_CALL_COLUMNS`)} of the rows it inserted:
    the RETURNING row when `_write_table` loaded it, else the row sent, which holds every column
    (`_insert_row`) as stored (`_stored_as_sent`)."""
    states = {}
    for row in insert_rows:
        rec_id = row["id"]
        if rec_id in inserted:
            returned = inserted[rec_id]
            states[rec_id] = row if returned is None else dict(zip(("id", *_SAME_CALL_COLUMNS), returned))
    return states


def _decode_json_columns(row: dict) -> dict:
    value = row.get("cost_details")
    if isinstance(value, (str, bytes)):
        row["cost_details"] = orjson.loads(value)
    return row


def _differs(a, b) -> bool:
    if a is None or b is None:
        return a is not b
    try:
        return Decimal(str(a)) != Decimal(str(b))
    except Exception:
        return a != b


def _placeholders(observations: dict[str, dict], now: datetime) -> dict[str, dict]:
    """Traces that observations point to, as Langfuse creates them when the trace-create is missing
    or late: id, earliest observation start, and the observation's environment."""
    out: dict[str, dict] = {}
    for rec in observations.values():
        tid = rec["trace_id"]
        start = rec.get("start_time") or now
        current = out.get(tid)
        if current is None:
            out[tid] = {
                "id": tid,
                "timestamp": start,
                "environment": rec.get("environment", DEFAULT_ENVIRONMENT),
            }
        elif start < current["timestamp"]:
            current["timestamp"] = start
    return out


# ---------------------------------------------------------------------------------------------
# One call counted once

# A child generation is the same model call as its parent generation when both are generations of
# the same model (as requested or as answered), the child's time span lies within the parent's and
# their token counts are equal: `AnthropicInstrumentor().instrument()` on a global tracer provider
# nests the anthropic SDK's own span under OpenInference's span for the one API call, and the trace
# doubled its tokens and cost. The inner one is marked `duplicate_of` = the outer one's id; readers
# leave marked rows out of totals (traces.selectors) and the console shows the pair as one call.
def _same_call(c: dict, p: dict) -> bool:
    if c["type"] != "GENERATION" or p["type"] != "GENERATION":
        return False
    models = (p["model"], p["response_model"])
    if not ((c["model"] and c["model"] in models) or (c["response_model"] and c["response_model"] in models)):
        return False
    if c["start_time"] is None or p["start_time"] is None or c["start_time"] < p["start_time"]:
        return False
    if c["end_time"] is None or p["end_time"] is None or c["end_time"] > p["end_time"]:
        return False
    tokens = [c[f] or 0 for f in TOKEN_FIELDS]
    return tokens == [p[f] or 0 for f in TOKEN_FIELDS] and sum(tokens[:4]) > 0


# Both directions, as spans arrive in any order (an inner span usually ends, and is exported, first):
# every batch row as the inner one (its parent: in the batch, or read by primary key — an update need
# not repeat the parent, the stored row has it) and the batch's possible generations as the outer one
# (children stored by earlier batches: the partial index `obs_project_children`).
# A pair that no longer matches after an update is unmarked.
#
# Only lookups by a full key reach the table, one key at a time: the project as an InitPlan
# parameter `(SELECT %s::uuid)` and LATERAL … OFFSET 0 (which keeps the planner from flattening the
# probes into a join it may hash). Why: on a table filling faster than its statistics (a new
# project, or one grown since the last ANALYZE) the planner believes the project holds a row or two,
# so for `id = ANY(…)`, a join, or even `project_id = X AND id = Y`, any index leading with
# project_id looks as cheap as the primary key, and it may scan the whole project and filter — one
# statement doing that made every batch cost more the more the project held (`make bench-ingest`
# 6,600 → 1,800 spans/s; README, Benchmarks). Against a parameter it cannot look up, the planner
# estimates the project as an average one, and the full key is then always its cheapest path.
# (Issue 13's Citus plan will want the constant instead: a distributed table has no such misestimate
# per shard to fear, and routes on the literal.)
_STATE_SELECT = ", ".join(f'o."{c}"' for c in ("id", *_SAME_CALL_COLUMNS))
# Each probe asks for its index's order, in a transaction that disables sorts, sequential and bitmap
# scans (`rollups.KEY_PROBE_SETTINGS`, which says why): the statistics can then no longer send a
# probe through another index leading with project_id (a whole-project read per key).
_ROWS_BY_ID_SQL = (
    f"SELECT {_STATE_SELECT} FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL ("
    f'{rollups.pk_probe("o", "traces_observation", "k.id", "*")}) AS o'
)
# The children are locked (FOR UPDATE): their marks are decided here from what is read, and written
# below; the batch's own rows are locked already (this transaction wrote them) and left out. Found
# through the partial index `obs_project_children` (in its order), then locked by primary key in id
# order (a sort every plan of the statement has).
_CHILDREN_SQL = (
    f"SELECT {_STATE_SELECT} FROM (SELECT c.id FROM unnest(%s::text[], %s::text[]) AS k(trace_id, parent) "
    "CROSS JOIN LATERAL ("
    'SELECT o."id" FROM "traces_observation" AS o WHERE o."project_id" = (SELECT %s::uuid) '
    f'AND {rollups.key_range("o.trace_id", "k.trace_id")} '
    f'AND {rollups.key_range("o.parent_observation_id", "k.parent")} '
    "AND o.\"parent_observation_id\" <> '' AND NOT (o.\"id\" = ANY(%s)) "
    'ORDER BY o."project_id", o."trace_id", o."parent_observation_id" OFFSET 0) AS c ORDER BY c.id) AS k '
    f'CROSS JOIN LATERAL ({rollups.pk_probe("o", "traces_observation", "k.id", "*")} FOR UPDATE) AS o'
)
# Every row marked here is locked (the batch's rows were written by this transaction, the others
# locked by `_CHILDREN_SQL`), so it is joined by its address, found by one primary-key probe (the
# form of `_source`'s locked UPDATE, which says why).
_SET_MARK_SQL = (
    'UPDATE "traces_observation" AS t SET "duplicate_of" = k.mark FROM (SELECT %s::text AS mark, %s::text AS id) '
    f'AS k CROSS JOIN LATERAL ({rollups.pk_probe("o", "traces_observation", "k.id", "o.ctid AS _tid")}) AS x '
    "WHERE t.ctid = x._tid"
)


def _mark_duplicates(
    cursor, project, obs_recs: dict[str, dict], states: dict[str, dict], new_traces=frozenset()
) -> dict[str, str]:
    """Mark (or unmark) the batch's calls and their children; {id: previous duplicate_of} of every row
    whose mark changed. `states`: the batch's rows as this transaction stored them (and locked).
    `new_traces`: the traces this transaction inserted.

    A pair lies within one trace, and a trace this transaction inserted held no stored call before
    it: every call is stored with its trace (a placeholder when the trace is not sent; erasure
    deletes a trace's calls before the trace), and a concurrent batch storing a call of the same
    trace either inserted the trace first (our INSERT waited for its commit, found the row, and the
    trace is not new to us) or waits for ours. So the calls of new traces are paired within the batch
    only: no parent or child probe for them (issue 13: the children probe was a statement per batch,
    mostly planning, for the common batch of whole new traces)."""
    project_id = str(project.id)
    names = ("id", *_SAME_CALL_COLUMNS)
    # As a possible parent, those records that may be generations (a record without a type is an update)
    # and of a trace that may hold stored calls.
    parents = sorted(
        i for i, rec in obs_recs.items()
        if rec.get("type", "GENERATION") == "GENERATION" and i in states
        and states[i]["trace_id"] not in new_traces
    )
    rows = dict(states)
    wanted = sorted(
        {
            s["parent_observation_id"] for s in states.values()
            if s["parent_observation_id"] and s["trace_id"] not in new_traces
        } - rows.keys()
    )
    if wanted:
        cursor.execute(_ROWS_BY_ID_SQL, [rollups.text_array(wanted), project_id])
        for values in cursor.fetchall():
            rows[values[0]] = dict(zip(names, values))
    children = [s for s in states.values() if s["parent_observation_id"]]
    if parents:
        cursor.execute(
            _CHILDREN_SQL,
            [rollups.text_array([states[i]["trace_id"] for i in parents]), rollups.text_array(parents), project_id,
             rollups.text_array(sorted(states)), project_id],
        )
        children.extend(dict(zip(names, values)) for values in cursor.fetchall())
    marks: dict[str, str] = {}
    before: dict[str, str] = {}
    for child in children:
        parent = rows.get(child["parent_observation_id"])
        if parent is None or parent["trace_id"] != child["trace_id"]:
            continue
        mark = parent["id"] if _same_call(child, parent) else ""
        if child["duplicate_of"] != mark:
            marks[child["id"]] = mark
            before[child["id"]] = child["duplicate_of"]
    if marks:
        # Rare (a changed pair), and every row is locked: one statement per row, by primary key,
        # sent together (psycopg pipelines executemany).
        cursor.executemany(_SET_MARK_SQL, [(marks[i], i, project_id) for i in sorted(marks)])
    return before


# ---------------------------------------------------------------------------------------------
# Entry point


def write_records(
    *, project, traces: list[dict], observations: list[dict], scores: list[dict], pricer=None
) -> None:
    """Store trace, observation and score records for `project` in its region database.

    Raises InvalidRecord for records that break the contract, StorageUnavailable when the database
    cannot take the write (never a partial write: everything happens in one transaction).
    """
    now = timezone.now()
    trace_recs = _collapse(traces, TRACES)
    obs_recs = _collapse(observations, OBSERVATIONS)
    score_recs = _collapse(scores, SCORES)
    for rec in obs_recs.values():
        if "trace_id" not in rec:
            # Langfuse gives an observation without a trace a fresh trace of its own.
            rec["trace_id"] = uuid.uuid4().hex
    if not (trace_recs or obs_recs or score_recs):
        return
    placeholders = _placeholders(obs_recs, now)

    database = region_database(project.region)
    inside_caller = _in_outer_atomic(database)
    # Prepared only in a transaction of its own: a prepared statement that no longer fits the
    # server fails the transaction, and only then can the write run again (below).
    prepared = settings.INGEST_PREPARED_STATEMENTS and not inside_caller
    attempt = 0
    while True:
        attempt += 1
        try:
            with transaction.atomic(using=database):
                connection = data_connection(project)
                with (
                    connection.cursor() as plain,
                    _server_bound(plain) as cursor,
                    _preparing(connection, prepared),
                ):
                    # Lock order is always traces → observations → scores → rollups, each sorted by
                    # key, so concurrent batches touching the same rows wait for each other instead
                    # of deadlocking. The rollups move by (new − old) of what this transaction wrote.
                    tracker = rollups.Tracker(cursor, project)
                    if score_recs:
                        # Key probes only from the first statement on (`rollups.KEY_PROBE_SETTINGS`;
                        # `begin` sets them for the other batches, in its own statement).
                        tracker.key_probes_only()
                        tracker.prepare_scores(score_recs, batch_traces={*trace_recs, *placeholders})
                    tracker.begin(creates_traces=bool(trace_recs), key_probes=True)
                    # Priced before the traces are written: a new trace is stored with its new calls' cost.
                    obs_rows = _observation_insert_rows(project, obs_recs, now, pricer) if obs_recs else []
                    if trace_recs or placeholders:
                        _write_traces(cursor, project, trace_recs, placeholders, now, tracker,
                                      costs=tracker.insert_costs(obs_rows))
                    elif score_recs:
                        tracker.lock_score_traces()
                    if obs_recs:
                        states = _write_observations(cursor, project, obs_recs, now, tracker, pricer, obs_rows)
                        # Before the rollups read what was written: a call marked as the duplicate
                        # of its parent contributes nothing, and marking moves its contribution.
                        tracker.duplicates_changed(
                            _mark_duplicates(cursor, project, obs_recs, states, tracker.inserted_traces.keys())
                        )
                    if score_recs:
                        _write_table(
                            cursor,
                            project,
                            SCORES,
                            score_recs,
                            now,
                            insert_rows=_insert_rows(score_recs.values(), SCORES, now),
                            before_update=lambda inserted, t=tracker: t.snapshot_scores(set(score_recs) - set(inserted)),
                            # The rollups' score snapshot locks every stored score the UPDATE changes.
                            locked=True,
                        )
                    if obs_recs or tracker.old_traces or score_recs or tracker.inserted_traces:
                        tracker.apply(obs_recs.keys())
                    if inside_caller:
                        # SET LOCAL would outlive this write in the caller's transaction.
                        tracker.restore_settings()
            return
        except (IntegrityError, DataError) as exc:
            # Records are validated before this point; a value the database still refuses must fail
            # this request as bad input (4xx), not crash it.
            # Its first line: the lines after it quote the statement, which is not the client's business.
            first_line = str(exc).partition("\n")[0]
            raise InvalidRecord(f"the database refused a record: {first_line}") from exc
        except (DatabaseError, InterfaceError) as exc:
            # One rule for running the whole transaction again, never inside a caller's (the failure
            # aborted it): a deadlock or serialization failure, up to DEADLOCK_RETRIES times; a
            # prepared statement that no longer fits the server (a rolling deploy's migration retyped a
            # column it returns) or that the session lost, once, unprepared, after dropping them all —
            # the next write prepares afresh.
            if prepared and _is_stale_prepared(exc):
                logger.info("region %s: dropping prepared statements after %s", project.region, exc)
                prepared = False
                _forget_prepared(data_connection(project))
                continue
            if _is_transient_conflict(exc) and attempt < DEADLOCK_RETRIES and not _in_outer_atomic(database):
                time.sleep(0.05 * attempt)
                continue
            if not isinstance(exc, (OperationalError, InterfaceError)):
                if _is_connection_error(exc):
                    raise StorageUnavailable(
                        f"the {project.region} data region is unavailable; retry later"
                    ) from exc
                raise
            logger.warning("region %s write failed for project %s: %s", project.region, project.id, exc)
            raise StorageUnavailable(f"the {project.region} data region is unavailable; retry later") from exc


def rows_as_stored(*, project, traces: list[dict], observations: list[dict]) -> tuple[list[dict], list[dict]]:
    """The trace and observation rows `write_records` inserts for these records when none of them is
    stored yet (merged, normalised, derived and priced as it does), without writing anything: what
    `make bench-ingest` stores through a bare merge-upsert for its PostgreSQL baseline."""
    now = timezone.now()
    obs_recs = _collapse(observations, OBSERVATIONS)
    for rec in obs_recs.values():
        rec.setdefault("trace_id", uuid.uuid4().hex)
    return (
        _trace_insert_rows(_collapse(traces, TRACES), _placeholders(obs_recs, now), now),
        _observation_insert_rows(project, obs_recs, now),
    )


def _is_transient_conflict(exc: Exception) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    return sqlstate in ("40P01", "40001")  # deadlock_detected, serialization_failure


def _is_connection_error(exc: Exception) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc.__cause__, (psycopg.OperationalError, psycopg.InterfaceError))


def _in_outer_atomic(database: str) -> bool:
    from django.db import connections

    return connections[database].in_atomic_block


# ---------------------------------------------------------------------------------------------
# End-user feedback: one USER score per rating, replaced when the user changes their mind


class NotUserFeedback(Exception):
    """A score that is not end-user feedback already holds the id a rating would be stored under."""


# Every column of the scores table but the two timestamps the upsert sets itself.
_FEEDBACK_COLUMNS = tuple(c for c in _columns(SCORES) if c not in ("created_at", "updated_at"))
# A changed mind replaces the rating, comment and metadata and moves the timestamp to the latest
# rating; `created_at` keeps the first. Only USER scores are ever overwritten.
_FEEDBACK_UPSERT_SQL = (
    f'INSERT INTO "{SCORES.db_table}" (project_id, {", ".join(_FEEDBACK_COLUMNS)}, created_at, updated_at) '
    f"VALUES ({', '.join(['%s'] * (len(_FEEDBACK_COLUMNS) + 3))}) "
    "ON CONFLICT (project_id, id) DO UPDATE SET value = EXCLUDED.value, "
    "string_value = EXCLUDED.string_value, "
    "data_type = EXCLUDED.data_type, comment = EXCLUDED.comment, config_id = EXCLUDED.config_id, "
    "metadata = EXCLUDED.metadata, environment = EXCLUDED.environment, timestamp = EXCLUDED.timestamp, "
    "redactions = EXCLUDED.redactions, updated_at = EXCLUDED.updated_at "
    f"WHERE \"{SCORES.db_table}\".source = 'USER'"
)
_FEEDBACK_DEFAULTS = {
    "observation_id": "",
    "session_id": "",
    "string_value": "",
    "comment": "",
    "author_user_id": "",
    "config_id": "",
    "metadata": {},
    "environment": DEFAULT_ENVIRONMENT,
    "redactions": {},
}


def write_user_feedback(*, project, record: dict, after_write=None) -> tuple | None:
    """Store an end user's rating (a USER score record) under its id, replacing the rating it holds.

    Submissions for one id are serialised, so `after_write(previous)` — run in the same transaction,
    where the feedback app appends its history row — sees the row this one replaced: `previous` is
    (source, value, string_value, comment) or None. Raises NotUserFeedback when the id belongs to a
    score of another source, InvalidRecord when the database refuses a value and StorageUnavailable
    when the region database cannot take the write (nothing stored in every case)."""
    now = timezone.now()
    row = {**_FEEDBACK_DEFAULTS, "timestamp": now, **{k: v for k, v in record.items() if v is not None}}
    database = region_database(project.region)
    try:
        with transaction.atomic(using=database):
            with data_connection(project).cursor() as cursor:
                # Serialises submissions for one rating, so each history row names the value it replaced.
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{project.id}:{row['id']}"]
                )
                cursor.execute(
                    f'SELECT source, value, string_value, comment FROM "{SCORES.db_table}" '
                    "WHERE project_id = %s AND id = %s",
                    [project.id, row["id"]],
                )
                previous = cursor.fetchone()
                if previous is not None and previous[0] != "USER":
                    raise NotUserFeedback(row["id"])
                # The rollups move the rating (new − old), under its trace's dimensions.
                tracker = rollups.Tracker(cursor, project)
                tracker.prepare_scores({row["id"]: row})
                tracker.begin()
                tracker.lock_score_traces()
                tracker.snapshot_scores([row["id"]])
                values = [
                    orjson.dumps(row[c]).decode() if c in ("metadata", "redactions") else row.get(c)
                    for c in _FEEDBACK_COLUMNS
                ]
                cursor.execute(_FEEDBACK_UPSERT_SQL, [project.id, *values, now, now])
                tracker.apply()
            if after_write is not None:
                after_write(previous)
    except DataError as exc:
        raise InvalidRecord(str(exc).partition("\n")[0]) from exc  # the first line, as above
    except (OperationalError, InterfaceError) as exc:
        logger.warning("region %s feedback write failed for project %s: %s", project.region, project.id, exc)
        raise StorageUnavailable(f"the {project.region} data region is unavailable; retry later") from exc
    return previous


# ---------------------------------------------------------------------------------------------
# Deletes


def delete_score(*, project, score_id: str) -> bool:
    """Delete one of the project's scores; False when it has none with that id (another project's
    score counts as none). The rollups take its contribution back in the same transaction."""
    with transaction.atomic(using=region_database(project.region)):
        with data_connection(project).cursor() as cursor:
            tracker = rollups.Tracker(cursor, project)
            tracker.prepare_scores({score_id: {"id": score_id}})
            tracker.begin()
            tracker.lock_score_traces()
            tracker.snapshot_scores([score_id])
            cursor.execute(
                f'DELETE FROM "{SCORES.db_table}" WHERE "project_id" = %s::uuid AND "id" = %s',
                [str(project.id), score_id],
            )
            deleted = cursor.rowcount
            if deleted:
                tracker.apply()
    return deleted > 0
# Re-pricing stored calls


REPRICE_BATCH = 1000
_REPRICE_COLUMNS = ("id", "model", "response_model", "start_time", *TOKEN_FIELDS, "cost_source", *COST_FIELDS, "cost_details")


@dataclass
class RepriceReport:
    examined: int = 0
    repriced: int = 0  # rows whose cost changed (newly priced, price changed, or price removed)
    newly_priced: int = 0
    still_unpriced: int = 0


def reprice_observations(
    *, project, since: datetime, until: datetime, models: list[str] | None = None, batch_size: int = REPRICE_BATCH
) -> RepriceReport:
    """Recompute catalog costs of `project`'s stored calls that started in [since, until), after a
    price was added or changed, with the same pricing code as ingestion (`_catalog_costs`: the price
    in force at each call's start time, project overrides first).

    Costs the client sent (`cost_source = client`) are never touched. `models` narrows to calls whose
    model or response model is one of these names as sent. Works in batches of `batch_size` rows, one
    short transaction each (keyset on start time and id), so a long range never holds locks for long.
    """
    report = RepriceReport()
    for batch, _position in reprice_batches(project=project, since=since, until=until, models=models,
                                            batch_size=batch_size):
        report.examined += batch.examined
        report.repriced += batch.repriced
        report.newly_priced += batch.newly_priced
        report.still_unpriced += batch.still_unpriced
    return report


def reprice_batches(
    *, project, since: datetime, until: datetime, models: list[str] | None = None,
    batch_size: int = REPRICE_BATCH, after: tuple | None = None,
) -> Iterator[tuple[RepriceReport, tuple]]:
    """`reprice_observations` one committed batch at a time: yields each batch's counts and its
    keyset position (start time, id of its last row). `after` (a position yielded before) carries on
    behind it, so a background run (`ingest.reprice`) shows progress and resumes where it stopped."""
    database = region_database(project.region)
    pid = str(project.id)
    select = ", ".join(f'"{c}"' for c in _REPRICE_COLUMNS)
    model_filter = ""
    params_models: list = []
    if models is not None:
        names = sorted({m for m in models if m})
        if not names:
            return
        model_filter = ' AND ("model" = ANY(%s) OR "response_model" = ANY(%s))'
        params_models = [names, names]
    position: tuple | None = tuple(after) if after else None
    while True:
        report = RepriceReport()
        keyset = ' AND ("start_time", "id") > (%s, %s)' if position else ""
        sql = (
            f'SELECT {select} FROM "{OBSERVATIONS.db_table}" WHERE "project_id" = %s::uuid '
            f'AND "start_time" >= %s AND "start_time" < %s AND "cost_source" <> %s{model_filter}{keyset} '
            f'ORDER BY "start_time", "id" LIMIT %s FOR UPDATE'
        )
        params = [pid, since, until, CostSource.CLIENT.value, *params_models, *(position or ()), batch_size]
        try:
            with transaction.atomic(using=database):
                connection = data_connection(project)
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = [_decode_json_columns(dict(zip(_REPRICE_COLUMNS, values))) for values in cursor.fetchall()]
                    fixes = []
                    now = timezone.now()
                    for row, cost in zip(rows, _catalog_costs(project, rows)):
                        if cost["cost_source"] == CostSource.NONE.value and _priceable(row):
                            report.still_unpriced += 1
                        if (
                            any(_differs(row.get(k), cost[k]) for k in (*COST_FIELDS, "cost_source"))
                            or (row.get("cost_details") or {}) != cost["cost_details"]
                        ):
                            if row["cost_source"] == CostSource.NONE.value:
                                report.newly_priced += 1
                            fixes.append({"id": row["id"], **cost, "updated_at": now})
                    if fixes:
                        # The rollups move each re-priced call's cost (new − old), as ingestion does.
                        tracker = rollups.Tracker(cursor, project)
                        tracker.begin()
                        fixed_ids = [fix["id"] for fix in fixes]
                        tracker.snapshot_observations(fixed_ids)
                        columns = tuple(sorted(c for c in fixes[0] if c != "id"))
                        cursor.execute(_sql("fix", OBSERVATIONS, columns), [_dump(fixes), pid])
                        tracker.apply(fixed_ids)
        except (OperationalError, InterfaceError) as exc:
            raise StorageUnavailable(f"the {project.region} data region is unavailable; retry later") from exc
        report.examined = len(rows)
        report.repriced = len(fixes)
        if rows:
            position = (rows[-1]["start_time"], rows[-1]["id"])
        yield report, position
        if len(rows) < batch_size:
            return


SAMPLED_OUT = {"sampled_out": True}


def empty_payloads(*, project, trace_ids: list[str], keep_metadata_keys: tuple[str, ...] = ()) -> int:
    """Sampling (`monitoring.sampling`): empty the payloads — input, output, metadata — of dropped
    traces and of their observations, marking both `metadata = {"sampled_out": true}`. Every
    number stays (status, times, model, tokens, cost), so the rollups, counted at ingest, stay exact
    without a delta; the trace keeps the metadata key its feature comes from (the rollups' rule, read
    under their lock, so a rebuild recomputes the same feature) and `keep_metadata_keys`. Error and
    refusal observations keep theirs (a late error span of a dropped trace is still readable).
    Idempotent: a second call (late spans of a dropped trace) empties only what is new. Locks
    traces then observations, in id order, like every writer. Returns the observations emptied."""
    ids = sorted(set(trace_ids))
    if not ids:
        return 0
    pid = str(project.id)
    try:
        with transaction.atomic(using=region_database(project.region)):
            with data_connection(project).cursor() as cursor:
                tracker = rollups.Tracker(cursor, project)
                tracker.begin()
                keep = sorted({*keep_metadata_keys, tracker.rule.metadata_key} - {""})
                cursor.execute(
                    f'SELECT "id" FROM "{TRACES.db_table}" WHERE "project_id" = %s::uuid AND "id" = ANY(%s) '
                    f'ORDER BY "id" FOR UPDATE', [pid, ids],
                )
                cursor.execute(
                    f'UPDATE "{TRACES.db_table}" AS t SET "input" = NULL, "output" = NULL, "metadata" = %s::jsonb || '
                    f"COALESCE((SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(t.\"metadata\") AS e "
                    f'WHERE e.key = ANY(%s)), \'{{}}\'::jsonb) WHERE t."project_id" = %s::uuid AND t."id" = ANY(%s) '
                    f'AND NOT t."metadata" @> %s::jsonb',
                    [orjson.dumps(SAMPLED_OUT).decode(), keep, pid, ids, orjson.dumps(SAMPLED_OUT).decode()],
                )
                cursor.execute(
                    f'SELECT "id" FROM "{OBSERVATIONS.db_table}" WHERE "project_id" = %s::uuid AND "trace_id" = ANY(%s) '
                    f"AND \"status\" NOT IN ('error', 'refused') AND NOT \"metadata\" @> %s::jsonb "
                    f'ORDER BY "id" FOR UPDATE', [pid, ids, orjson.dumps(SAMPLED_OUT).decode()],
                )
                obs_ids = [row[0] for row in cursor.fetchall()]
                if obs_ids:
                    cursor.execute(
                        f'UPDATE "{OBSERVATIONS.db_table}" SET "input" = NULL, "output" = NULL, "metadata" = %s::jsonb '
                        f'WHERE "project_id" = %s::uuid AND "id" = ANY(%s)',
                        [orjson.dumps(SAMPLED_OUT).decode(), pid, obs_ids],
                    )
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(f"the {project.region} data region is unavailable; retry later") from exc
    return len(obs_ids)
# ---------------------------------------------------------------------------------------------
# Re-redaction of stored rows


REREDACT_BATCH = 500
_REREDACT_TABLES = (("trace", TRACES, "timestamp"), ("observation", OBSERVATIONS, "start_time"),
                    ("score", SCORES, "timestamp"))
_JSON_FIELDS = frozenset({"input", "output", "metadata", "tool_calls", "redactions"})
# What a field holds once emptied: a row the policy cannot be applied to keeps none of its content
# (fail closed, as ingestion refuses such a record).
_EMPTIED = {"input": None, "output": None, "metadata": {}, "tool_calls": [], "status_message": "",
            "error_message": "", "error_stack": "", "comment": ""}


def _added_counts(stored: dict | None, found: dict) -> dict:
    """Stored redaction counts ({field: {detector: n}}) plus what a new pass found."""
    merged = {field: dict(per) for field, per in (stored or {}).items() if isinstance(per, dict)}
    for field, per in (found or {}).items():
        for detector, count in per.items():
            merged.setdefault(field, {})
            merged[field][detector] = merged[field].get(detector, 0) + count
    return merged


def reredact_stored(*, project, since: datetime, until: datetime, batch_size: int = REREDACT_BATCH) -> dict:
    """Apply the project's current redaction policy (privacy's engine, as the ingest stage does) to its
    stored traces, observations and scores of [since, until), in short transactions of `batch_size`
    rows (keyset on time and id, rows locked while rewritten). Fail closed: a row the policy cannot be
    applied to has its content fields emptied. Returns counts: examined, changed, emptied, and findings
    by detector. Rollups are untouched (only content columns change)."""
    from privacy import engine

    policy = engine.get_policy(project, fresh=True)  # the policy as saved now, wherever it was saved
    report = {"examined": 0, "changed": 0, "emptied": 0, "findings": {}, "policy_version": None}
    if policy is None:
        return report
    report["policy_version"] = policy.version
    database = region_database(project.region)
    pid = str(project.id)
    for kind, table, time_column in _REREDACT_TABLES:
        fields = engine.RECORD_FIELDS[kind]
        columns = ("id", time_column, *fields, "redactions")
        select = ", ".join(f'"{c}"' for c in columns)
        position = None
        while True:
            keyset = f' AND ("{time_column}", "id") > (%s, %s)' if position else ""
            sql = (
                f'SELECT {select} FROM "{table.db_table}" WHERE "project_id" = %s::uuid AND "{time_column}" >= %s '
                f'AND "{time_column}" < %s{keyset} ORDER BY "{time_column}", "id" LIMIT %s FOR UPDATE'
            )
            try:
                with transaction.atomic(using=database), data_connection(project).cursor() as cursor:
                    cursor.execute(sql, [pid, since, until, *(position or ()), batch_size])
                    rows = []
                    for values in cursor.fetchall():
                        row = dict(zip(columns, values))
                        for name in _JSON_FIELDS & set(row):
                            if isinstance(row[name], (str, bytes)):
                                row[name] = orjson.loads(row[name])
                        rows.append(row)
                    records = [orjson.loads(orjson.dumps({name: row[name] for name in ("id", *fields)}))
                               for row in rows]
                    result = engine.redact_records(project=project, policy=policy, **{f"{kind}s": records})
                    failed = {failure.index for failure in result.failures}
                    fixes = []
                    now = timezone.now()
                    for index, (row, record) in enumerate(zip(rows, records)):
                        if index in failed:
                            new = {name: _EMPTIED[name] for name in fields}
                            found = {}
                            report["emptied"] += 1
                        else:
                            new = {name: record.get(name) for name in fields}
                            found = record.get("redactions") or {}
                        for per in found.values():
                            for detector, count in per.items():
                                report["findings"][detector] = report["findings"].get(detector, 0) + count
                        if any(row[name] != new[name] for name in fields):
                            fixes.append({"id": row["id"], **new, "redactions": _added_counts(row["redactions"], found),
                                          "updated_at": now})
                    if fixes:
                        cursor.execute(_sql("fix", table, (*fields, "redactions", "updated_at")), [_dump(fixes), pid])
            except (OperationalError, InterfaceError) as exc:
                raise StorageUnavailable(f"the {project.region} data region is unavailable; retry later") from exc
            report["examined"] += len(rows)
            report["changed"] += len(fixes)
            if len(rows) < batch_size:
                break
            position = (rows[-1][time_column], rows[-1]["id"])
    return report
