"""Exact monitoring rollups, written inside the writer's transaction (the only writer of the
`monitoring` rollup tables; `make lint` checks it).

A rollup row is a sum of per-call *contributions*. Whenever a transaction changes a call, or the
trace dimensions it is counted under, it subtracts the call's contribution as it stood before and
adds the contribution as it stands after, both read under row locks in that same transaction:

- observations: between the writer's INSERT (which reports the rows that already existed) and its
  UPDATE, `snapshot` locks those rows (FOR UPDATE, in id order) and reads their state; after all
  writes, `apply` reads the new state of every observation of the batch and upserts the difference.
  A replay therefore adds nothing (new − old = 0), and a later cost or status moves the call.
- traces: the batch's existing traces are locked (FOR UPDATE, in id order, also those it only
  references, so a concurrent change of their dimensions waits for this batch or this batch for it)
  and their dimensions read before the trace UPDATE; a trace whose name, release, user or feature
  changed moves every stored call of it (read FOR UPDATE) from the old dimensions to the new.
- every writer holds `pg_advisory_xact_lock_shared` on the project and, in the same statement,
  reads the feature rule the rollups are built with (`RollupRule`, data plane); `rebuild` (after a
  change of the project's setting) takes the lock exclusively, recomputes the project's rollups
  from the raw rows under the new rule and switches `RollupRule`, so no write ever mixes two rules.

- trace costs: the same per-call (new − old) moves the trace's own `cost` and `cost_calls` columns
  (`traces.models.Trace`), summed over every counted observation (any type, not a duplicate) with a
  cost, in the statement that upserts the rollups; a trace the batch inserts is stored with its new
  calls' part already in it (`Tracker.insert_costs`, taken back from the deltas), so it is not
  updated again; `rebuild_trace_costs` recomputes them from the raw rows.
- scores: the same (new − old), each score under its trace's dimensions as stored now (see the score
  section of `Tracker`); a delete or a changed end-user rating goes through it too. Calls are also
  summed by day (`DailyRollup`, from the same deltas, in the same statement).

Lock order is the writer's (traces → observations → scores → rollups, each in key order), so batches
wait for each other rather than deadlock. Deltas are summed in Python (exact integers and Decimals) and
upserted in one statement per table, with histograms added element-wise by
`lookglass_int8_array_add`.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import orjson

from ingest.rules.values import strip_nul
from monitoring.models import (
    DIMENSION_CHARS,
    HISTOGRAM_BUCKETS,
    DailyRollup,
    DailyUserRollup,
    DailyUserScoreRollup,
    HourlyRollup,
    HourlyScoreRollup,
    RollupRule,
)
from monitoring.rules import ROLLUP_TOKENS_CAP, ROLLUP_US_CAP, FeatureRule, bucket_of, feature_of
from scores.models import Score
from tenancy.regions import region_database
from traces.models import Observation, Trace

# Statements the rollups add to a write transaction at most, whatever the batch size: the lock and
# rule, the trace snapshot, the observation snapshot, the re-read of updated traces, the move of the
# calls of traces whose dimensions changed, the new state of the batch's calls, and the upsert.
MAX_STATEMENTS = 7
# And with scores, at most: the planner settings (`KEY_PROBE_SETTINGS`, set before the first read),
# the traces of the scores, the score snapshot, the move of the scores of created or changed traces,
# the new state of the batch's scores, and their upsert.
MAX_SCORE_STATEMENTS = 6
ROLLED_TYPES = frozenset({"GENERATION", "EMBEDDING"})  # the LLM calls
TOKEN_KINDS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
               "total_tokens")
COUNTERS = ("calls", "errors", "refusals", *TOKEN_KINDS, "unpriced_calls")
HOURLY_DIMS = ("hour", "feature", "trace_name", "model", "environment", "release", "prompt_name", "prompt_version")
HOURLY_SUMS = (*COUNTERS, "cost", "latency_count", "latency_us_sum", "ttft_count", "ttft_us_sum")
USER_SUMS = (*COUNTERS, "cost")
# What one call adds to an hourly row besides its latency and time to first token (`Deltas.add`).
_CALL_SUMS = USER_SUMS
_ZERO = Decimal(0)
_TOKEN_VALUES = operator.itemgetter(*TOKEN_KINDS)  # a call's `TOKEN_KINDS`, in their order
SCORE_SUMS = ("scores", "value_count", "value_sum", "thumbs_up", "thumbs_down")
SCORE_HOURLY_DIMS = ("hour", "name", "source", "data_type", "feature", "trace_name", "environment", "release")
SCORE_USER_DIMS = ("day", "user_id", "name", "source", "data_type")
SCORE_COLUMNS = ("id", "trace_id", "name", "source", "data_type", "value", "environment", "timestamp")
_SCORE_SELECT = ", ".join(f's."{c}"' for c in SCORE_COLUMNS)

OBS_COLUMNS = (
    "id", "trace_id", "type", "start_time", "end_time", "completion_start_time", "status", "model",
    "response_model", "environment", "prompt_name", "prompt_version", *TOKEN_KINDS, "total_cost",
    "duplicate_of",
)
_OBS_SELECT = ", ".join(f'o."{c}"' for c in OBS_COLUMNS)
_TRACE_DIMS = 't."id", t."name", t."user_id", t."release", t."metadata" -> %s, t."tags"'
OBS_TABLE = Observation._meta.db_table
TRACE_TABLE = Trace._meta.db_table
HOURLY_TABLE = HourlyRollup._meta.db_table
DAILY_TABLE = DailyRollup._meta.db_table
USER_TABLE = DailyUserRollup._meta.db_table
RULE_TABLE = RollupRule._meta.db_table
SCORE_TABLE = Score._meta.db_table
SCORE_HOURLY_TABLE = HourlyScoreRollup._meta.db_table
SCORE_USER_TABLE = DailyUserScoreRollup._meta.db_table


# How every read of stored rows by key in the write transaction (here and in `ingest.writer`) gets
# one plan whatever the statistics say. The project is an InitPlan parameter, so the planner prices
# it as an average project; when the statistics were taken while the table held about a row per
# project (many small tenants, or a mass delete leaving dead pages before autovacuum) every index
# leading with project_id is then believed to return one row, their costs tie exactly, and the
# narrowest index wins — which reads the whole project and filters for the key (396,020 rows read to
# rename 20 traces, 456,040 to update 20 calls beside 3,000 stored;
# tests/ingest/test_update_path_stale_statistics.py). So:
# - each probe names its index by the order it asks for: the key is given as a range of one value
#   (`key_range`: `x >= k AND x <= k`, the same rows as `x = k`, but not an equality the planner would
#   treat as a constant and drop from the ordering) and the probe is ORDER BY that index's columns,
#   which only that index returns without a sort;
# - the transaction disables sorts, sequential and bitmap scans (SET LOCAL, folded into its first
#   statement, so no round trip is added). A disabled plan node is chosen only when every plan has
#   as many (PostgreSQL 18 compares the count of disabled nodes before cost), so the probe's index
#   scan, with none, is the plan — one descent of the right index per key.
# `ingest.writer.write_records` restores the settings when it runs inside a caller's transaction.
_PLANNER_SETTINGS = ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort")
KEY_PROBE_SETTINGS = ", ".join(
    [f"current_setting('{name}')" for name in _PLANNER_SETTINGS]
    + [f"set_config('{name}', 'off', true)" for name in _PLANNER_SETTINGS]
)
KEY_PROBE_SQL = f"SELECT {KEY_PROBE_SETTINGS}"
RESTORE_SETTINGS_SQL = "SELECT " + ", ".join(f"set_config('{name}', %s, true)" for name in _PLANNER_SETTINGS)


def key_range(column: str, value: str) -> str:
    """`column = value` as a range of one value (see above): an index qual that keeps the column in
    the probe's ORDER BY."""
    return f"{column} >= {value} AND {column} <= {value}"


def text_array(values) -> str:
    """A list of strings (ids) as the text of a PostgreSQL array, for a `%s::text[]` (or `= ANY(%s)`)
    parameter, the same array PostgreSQL builds from a Python list. psycopg adapts a list element by
    element in Python: ~1.7 µs per id against ~0.3 for this text (4 lists of 100 ids: 690 µs against
    135), and the statements of a batch of 100 spans carry a few hundred ids. Every element is quoted,
    so NULL, empty strings, commas, braces and spaces stay text."""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def pk_probe(alias: str, table: str, value: str, select: str) -> str:
    """The row of `table` with key (project, `value`): one primary-key descent, whatever the statistics."""
    key = key_range(f'{alias}."id"', value)
    return (
        f'SELECT {select} FROM "{table}" AS {alias} WHERE {alias}."project_id" = (SELECT %s::uuid) '
        f'AND {key} ORDER BY {alias}."project_id", {alias}."id" OFFSET 0'
    )


def _begin_sql(traces_lock: str | None, key_probes: bool) -> str:
    # `traces_lock`: the project's "trace arrival" lock (see `Tracker.prepare_scores`), shared by a
    # batch that may insert traces, exclusive for one storing scores of traces not stored yet.
    # `key_probes`: set `KEY_PROBE_SETTINGS` in the same statement.
    second = f"pg_advisory_xact_lock{traces_lock}(hashtextextended(%s, 0)), " if traces_lock is not None else ""
    settings = f"{KEY_PROBE_SETTINGS}, " if key_probes else ""
    return (
        f"SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0)), {second}{settings}"
        "r.feature_source, r.feature_key "
        f'FROM (SELECT 1) AS one LEFT JOIN "{RULE_TABLE}" AS r ON r.project_id = %s::uuid'
    )


_BEGIN_SQL = {
    (mode, key_probes): _begin_sql(mode, key_probes) for mode in (None, "", "_shared") for key_probes in (False, True)
}

# Every read of stored rows here is by full key, one key at a time (see `ingest.writer._ROWS_BY_ID_SQL`
# for why): the project as an InitPlan parameter `(SELECT %s::uuid)`, each probe a LATERAL subquery
# with OFFSET 0 that asks for its index's order (`pk_probe`, `KEY_PROBE_SETTINGS` above). As
# `id = ANY(…)` a project grown since its last ANALYZE was read whole through an index leading with
# project_id, for every update (9,000-12,000 rows read to update 20 calls or traces;
# tests/ingest/test_update_path_cost.py). Locks are taken in key order (the keys are sorted and a
# nested loop keeps its outer order).
_TRACE_PROBE = pk_probe("t", TRACE_TABLE, "k.id", _TRACE_DIMS)
_LOCK_TRACES_SQL = f"SELECT x.* FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL ({_TRACE_PROBE} FOR UPDATE) AS x"
_TRACES_SQL = f"SELECT x.* FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL ({_TRACE_PROBE}) AS x"
_OBS_PROBE = pk_probe("o", OBS_TABLE, "k.id", _OBS_SELECT)
_LOCK_OBS_SQL = f"SELECT x.* FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL ({_OBS_PROBE} FOR UPDATE) AS x"
# The stored calls of traces whose dimensions changed, except the batch's own: found through the
# (project, trace, start) index one trace at a time (in its order), then locked by primary key in id
# order (that sort is in every plan of the statement, so it decides nothing).
def _lock_rows_of_traces_sql(alias: str, table: str, index_order: str, probe: str) -> str:
    """The stored rows of some traces, except the batch's own (`%s` ids): found through the table's
    (project, trace, …) index one trace at a time (`index_order`, the index's columns), then locked by
    primary key in id order (`probe`)."""
    return (
        "SELECT x.* FROM (SELECT c.id FROM unnest(%s::text[]) AS tr(trace_id) CROSS JOIN LATERAL ("
        f'SELECT {alias}."id" FROM "{table}" AS {alias} WHERE {alias}."project_id" = (SELECT %s::uuid) '
        f'AND {key_range(f"{alias}.trace_id", "tr.trace_id")} AND NOT ({alias}."id" = ANY(%s)) '
        f"ORDER BY {index_order} OFFSET 0) AS c ORDER BY c.id) AS k "
        f"CROSS JOIN LATERAL ({probe} FOR UPDATE) AS x"
    )


_LOCK_CALLS_OF_TRACES_SQL = _lock_rows_of_traces_sql(
    "o", OBS_TABLE, 'o."project_id", o."trace_id", o."start_time"', _OBS_PROBE
)
# The batch's calls as now stored, each with its trace's dimensions (both by primary key).
_CALLS_WITH_TRACES_SQL = (
    f"SELECT o.*, d.* FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL ({_OBS_PROBE}) AS o "
    f"CROSS JOIN LATERAL ({_TRACE_PROBE.replace('k.id', 'o.trace_id')}) AS d"
)


def _lock_key(project) -> str:
    return f"rollups:{project.id}"


def _arrival_key(project) -> str:
    return f"rollups-trace-arrival:{project.id}"


@dataclass(frozen=True)
class TraceDims:
    name: str
    user_id: str
    release: str
    feature: str


EMPTY_DIMS = TraceDims(name="", user_id="", release="", feature="")  # a score whose trace is not stored
# The traces of a batch's scores: those sent, and those of its scores already stored (a stored
# score keeps its trace), each with whether it is stored. One primary-key probe per id.
_SCORE_TRACES_SQL = (
    f"WITH k(tid) AS (SELECT unnest(%s::text[]) UNION SELECT x.trace_id FROM unnest(%s::text[]) AS i(id) "
    f"CROSS JOIN LATERAL ({pk_probe('s', Score._meta.db_table, 'i.id', 's.trace_id')}) AS x "
    f"WHERE x.trace_id <> '') "
    f"SELECT k.tid, t.found IS NOT NULL FROM k LEFT JOIN LATERAL "
    f"({pk_probe('t', Trace._meta.db_table, 'k.tid', 'true AS found')}) AS t ON true"
)


def scored_trace_sql(trace: str) -> str:
    """SQL: whether a stored score names the trace `trace` (an SQL expression), by one descent of the
    scores' (project, trace) index (the probe form of `pk_probe`; the project is a `%s`)."""
    key = key_range('x."trace_id"', trace)
    return (
        f'EXISTS (SELECT FROM "{SCORE_TABLE}" AS x WHERE x."project_id" = (SELECT %s::uuid) AND {key} '
        f'ORDER BY x."project_id", x."trace_id" OFFSET 0)'
    )


def _cut(value) -> str:
    return (value or "")[:DIMENSION_CHARS]


def _metadata_text(value, *, raw: bool) -> str | None:
    """A metadata value as feature text, the same whether it comes from the database (jsonb, which
    Django's driver hands over as JSON text: `raw`) or from a row this transaction inserted."""
    if raw and isinstance(value, (str, bytes)):
        value = orjson.loads(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def _trace_dims(rule: FeatureRule, row, *, raw: bool = True) -> TraceDims:
    _, name, user_id, release, meta_value, tags = row
    meta_value = _metadata_text(meta_value, raw=raw)
    return TraceDims(
        name=_cut(name), user_id=_cut(user_id), release=_cut(release),
        feature=_cut(feature_of(rule, name=name, metadata_value=meta_value, tags=tags)),
    )


def _hour(moment: datetime) -> datetime:
    """`moment` cut to its hour (in its own time zone): `moment.replace(minute=0, second=0,
    microsecond=0)`. For a plain `datetime` of fold 0 (what the writer stores) the positional
    constructor builds the same value a third as dearly (replace parses its keywords: ~1.5 µs, a
    third of what a call adds to the rollups); a subclass or fold 1 takes `replace` itself."""
    if moment.__class__ is datetime and not moment.fold:
        return datetime(moment.year, moment.month, moment.day, moment.hour, 0, 0, 0, moment.tzinfo)
    return moment.replace(minute=0, second=0, microsecond=0)


# What one call may add to a rollup sum: `monitoring.rules.ROLLUP_TOKENS_CAP` / `ROLLUP_US_CAP` (defined
# there because the metrics API rolls up a window's edge hours from the raw calls by the same bounds).


_ONE_US = timedelta(microseconds=1)


def _us(delta: timedelta) -> int:
    # `delta // _ONE_US`: the whole µs of the span, (days * 86400 + seconds) * 10**6 + microseconds,
    # computed in C (exact integers) rather than from three attribute reads here.
    return min(ROLLUP_US_CAP, max(0, delta // _ONE_US))


@dataclass
class _Acc:
    # What each call added, signed, in the order of `_CALL_SUMS`, summed column by column by `totals`:
    # the same additions, in the same order, from 0, as adding every value to a running sum per name
    # as it comes, without a dict update per value and call.
    calls: list = field(default_factory=list)
    # latency_count, latency_us_sum, ttft_count, ttft_us_sum (the hourly rows' other sums)
    timing: list = field(default_factory=lambda: [0, 0, 0, 0])
    latency: dict = field(default_factory=lambda: defaultdict(int))  # bucket -> count
    ttft: dict = field(default_factory=lambda: defaultdict(int))

    def totals(self) -> list:
        """The `HOURLY_SUMS` (of which `USER_SUMS` is the head) added to this row, in their order."""
        return self.call_totals() + self.timing

    def call_totals(self) -> list:
        """The `_CALL_SUMS` (`USER_SUMS`) added to this row, in their order."""
        if not self.calls:
            return [0] * len(_CALL_SUMS)
        return list(map(sum, zip(*self.calls)))

    @property
    def sums(self) -> dict:
        """{name: total} of `HOURLY_SUMS` (what `prompts.selectors` reads of the calls it rolls up)."""
        return dict(zip(HOURLY_SUMS, self.totals()))


def score_value(value) -> Decimal | None:
    """A score's value as the rollups sum it: the decimal of the float's shortest text, exact to add
    and subtract (PostgreSQL `numeric`), so a moved or deleted score takes back what it added."""
    if value is None or not math.isfinite(value):
        return None
    return Decimal(repr(float(value)))


def score_contribution(score: dict) -> dict:
    value = score_value(score["value"])
    thumb = score["source"] == "USER" and score["data_type"] == "BOOLEAN"
    return {
        "scores": 1,
        "value_count": int(value is not None),
        "value_sum": value if value is not None else Decimal(0),
        "thumbs_up": int(thumb and value == 1),
        "thumbs_down": int(thumb and value == 0),
    }


class Deltas:
    """Signed sums of contributions, by rollup key."""

    def __init__(self):
        self.hourly: dict[tuple, _Acc] = defaultdict(_Acc)
        self.users: dict[tuple, _Acc] = defaultdict(_Acc)
        self.score_hourly: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
        self.score_users: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
        # trace id -> [cost, calls with a cost]: what the trace's `cost`/`cost_calls` move by.
        self.trace_costs: dict[str, list] = defaultdict(lambda: [Decimal(0), 0])
        # {(year, month, day, hour): `_hour` of a UTC moment of fold 0 in it} (`add`).
        self.hours: dict[tuple, datetime] = {}

    def add_score(self, score: dict, dims: TraceDims, sign: int) -> None:
        values = score_contribution(score)
        moment = score["timestamp"].astimezone(UTC)
        kind = (score["name"] or "", score["source"] or "", score["data_type"] or "")
        key = (_hour(moment), *kind, dims.feature, dims.name, _cut(score["environment"]), dims.release)
        acc = self.score_hourly[key]
        for name, value in values.items():
            acc[name] += sign * value
        if dims.user_id:
            user = self.score_users[(moment.date(), dims.user_id, *kind)]
            for name, value in values.items():
                user[name] += sign * value

    def score_rows(self):
        """(hourly score rows, daily user score rows) with a non-zero change, in key order."""
        out = []
        for table, dims in ((self.score_hourly, SCORE_HOURLY_DIMS), (self.score_users, SCORE_USER_DIMS)):
            rows = []
            for key in sorted(table, key=_sort_key):
                sums = table[key]
                if not any(sums.values()):
                    continue
                rows.append({**dict(zip(dims, key)), **{name: sums.get(name, 0) for name in SCORE_SUMS}})
            out.append(rows)
        return out[0], out[1]

    def add(self, obs: dict, dims: TraceDims, sign: int) -> None:
        # A call recorded twice (an SDK span nested in its instrumentation's span, `duplicate_of` set
        # by the writer) is counted once: the inner record contributes nothing.
        if obs.get("duplicate_of"):
            return
        self.add_trace_cost(obs, sign)  # the one rule for a trace's own cost, also used on its own
        cost = obs["total_cost"]
        if obs["type"] not in ROLLED_TYPES:
            return
        start = obs["start_time"]
        status = obs["status"]
        cap = ROLLUP_TOKENS_CAP
        # In the order of `_CALL_SUMS`.
        values = (
            1, int(status == "error"), int(status == "refused"),
            # `min(obs[kind] or 0, cap)` of each kind; a positive int within the cap is that value itself,
            # a kind not reported (None) is 0.
            *[v if v.__class__ is int and 0 < v <= cap else 0 if v is None else min(v or 0, cap) for v in _TOKEN_VALUES(obs)],
            int(cost is None), cost or _ZERO,
        )
        if sign != 1:
            values = tuple([sign * value for value in values])
        if start.__class__ is datetime and start.tzinfo is UTC and not start.fold:
            # One hour value per UTC hour of the batch, built once: a new aware datetime is ~0.6 µs to
            # build and ~0.7 to hash (its offset is applied first), and the key is hashed twice.
            at = (start.year, start.month, start.day, start.hour)
            hour = self.hours.get(at)
            if hour is None:
                hour = self.hours[at] = _hour(start)
        else:
            hour = _hour(start)
        key = (
            hour, dims.feature, dims.name, _cut(obs["response_model"] or obs["model"]),
            _cut(obs["environment"]), dims.release, _cut(obs["prompt_name"]), obs["prompt_version"] or 0,
        )
        acc = self.hourly[key]
        acc.calls.append(values)
        end = obs["end_time"]
        if end is not None:
            spent = _us(end - start)
            timing = acc.timing
            timing[0] += sign
            timing[1] += sign * spent
            acc.latency[bucket_of(spent / 1000)] += sign
        first = obs["completion_start_time"]
        if first is not None:
            spent = _us(first - start)
            timing = acc.timing
            timing[2] += sign
            timing[3] += sign * spent
            acc.ttft[bucket_of(spent / 1000)] += sign
        if dims.user_id:
            # USER_SUMS: every one of `_CALL_SUMS` (the old running sums added `sign * value` here
            # for either sign; 1 * value is value, digits and exponent).
            self.users[(start.date(), dims.user_id)].calls.append(values)

    def rows(self):
        """(hourly rows, daily user rows) with a non-zero change, in key order (the lock order). The
        daily rows are summed from the hourly ones in SQL (`_write_calls`)."""
        hourly = []
        for key in sorted(self.hourly, key=_sort_key):
            acc = self.hourly[key]
            sums = acc.totals()
            if not any(sums) and not any(acc.latency.values()) and not any(acc.ttft.values()):
                continue
            row = dict(zip(HOURLY_DIMS, key))
            row.update(zip(HOURLY_SUMS, sums))
            row["latency_hist"] = _hist(acc.latency)
            row["ttft_hist"] = _hist(acc.ttft)
            hourly.append(row)
        users = []
        # A daily user key is (date, user id): its natural order is `_sort_key`'s (a date's text is
        # its ISO form, four-digit year first), without building that text per key.
        for key in sorted(self.users):
            sums = self.users[key].call_totals()
            if not any(sums):
                continue
            users.append({"day": key[0], "user_id": key[1], **dict(zip(USER_SUMS, sums))})
        return hourly, users

    def add_trace_cost(self, obs: dict, sign: int) -> None:
        """The call's part of its trace's `cost`/`cost_calls`: every observation with a cost, as the
        readers always summed it (`traces.selectors.COUNTED`), not only the LLM calls the rollups
        count; the duplicate of its parent's call adds nothing."""
        if obs["total_cost"] is not None and not obs.get("duplicate_of"):
            trace = self.trace_costs[obs["trace_id"]]
            trace[0] += sign * obs["total_cost"]
            trace[1] += sign

    def trace_cost_rows(self) -> list[dict]:
        """{id, cost, calls} of every trace whose cost moved, in id order (the lock order)."""
        return [
            {"id": tid, "cost": cost, "calls": calls}
            for tid, (cost, calls) in sorted(self.trace_costs.items())
            if cost or calls
        ]


def _sort_key(key: tuple) -> tuple:
    return tuple(str(part) if not isinstance(part, int) else f"{part:012d}" for part in key)


def _hist(buckets: dict) -> list[int]:
    out = [0] * HISTOGRAM_BUCKETS
    for index, count in buckets.items():
        out[index] += count
    return out


def _upsert_sql(table: str, dims: tuple, sums: tuple, hists: tuple = ()) -> str:
    columns = (*dims, *sums, *hists)
    col_list = ", ".join(f'"{c}"' for c in columns)
    select = ", ".join(f's."{c}"' for c in columns)
    sets = [f'"{c}" = r."{c}" + EXCLUDED."{c}"' for c in sums]
    sets += [f'"{c}" = lookglass_int8_array_add(r."{c}", EXCLUDED."{c}")' for c in hists]
    keys = ", ".join(f'"{c}"' for c in ("project_id", *dims))
    return (
        f'INSERT INTO "{table}" AS r ("project_id", {col_list}) '
        f'SELECT %s::uuid, {select} FROM jsonb_populate_recordset(NULL::"{table}", %s::jsonb) AS s '
        f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)}"
    )


_HOURLY_UPSERT = _upsert_sql(HOURLY_TABLE, HOURLY_DIMS, HOURLY_SUMS, ("latency_hist", "ttft_hist"))
_USER_UPSERT = _upsert_sql(USER_TABLE, ("day", "user_id"), USER_SUMS)


def _hourly_and_daily_sql() -> str:
    """The hourly rows' upsert and, from the same document, the daily rows': the hourly deltas summed
    by UTC day in SQL (histograms element-wise), so the daily table costs no Python and no second
    JSON document. Hourly first, then daily, each in key order: the lock order."""
    cols = (*HOURLY_DIMS, *HOURLY_SUMS, "latency_hist", "ttft_hist")
    dims = HOURLY_DIMS[1:]
    hourly_sets = [f'"{c}" = r."{c}" + EXCLUDED."{c}"' for c in HOURLY_SUMS]
    hourly_sets += [f'"{c}" = lookglass_int8_array_add(r."{c}", EXCLUDED."{c}")' for c in ("latency_hist", "ttft_hist")]
    group = ", ".join(f's."{c}"' for c in dims)
    daily_cols = ("day", *dims, *HOURLY_SUMS, "latency_hist", "ttft_hist")
    daily_select = ", ".join(
        ["(s.\"hour\" AT TIME ZONE 'UTC')::date", group]
        + [f'sum(s."{c}")' for c in HOURLY_SUMS]
        + [f'lookglass_int8_array_sum(s."{c}")' for c in ("latency_hist", "ttft_hist")]
    )
    def quoted(names, prefix=""):
        return ", ".join(f'{prefix}"{c}"' for c in names)

    sets = ", ".join(hourly_sets)
    return (
        f'WITH src AS MATERIALIZED (SELECT * FROM jsonb_populate_recordset(NULL::"{HOURLY_TABLE}", %s::jsonb)), '
        f'hourly AS (INSERT INTO "{HOURLY_TABLE}" AS r ("project_id", {quoted(cols)}) '
        f"SELECT %s::uuid, {quoted(cols, 's.')} FROM src AS s "
        f"ON CONFLICT ({quoted(('project_id', 'hour', *dims))}) DO UPDATE SET {sets} RETURNING 1), "
        f'daily AS (INSERT INTO "{DAILY_TABLE}" AS r ("project_id", {quoted(daily_cols)}) '
        f"SELECT %s::uuid, {daily_select} FROM src AS s GROUP BY 2, {group} ORDER BY 2, {group} "
        f"ON CONFLICT ({quoted(('project_id', 'day', *dims))}) DO UPDATE SET {sets} RETURNING 1) "
    )


_HOURLY_DAILY = _hourly_and_daily_sql()
_SCORE_HOURLY_UPSERT = _upsert_sql(SCORE_HOURLY_TABLE, SCORE_HOURLY_DIMS, SCORE_SUMS)
_SCORE_USER_UPSERT = _upsert_sql(SCORE_USER_TABLE, SCORE_USER_DIMS, SCORE_SUMS)
_SCORE_BOTH_UPSERT = f"WITH hourly AS ({_SCORE_HOURLY_UPSERT} RETURNING 1) {_SCORE_USER_UPSERT}"


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a rollup")


def _dump(rows: list[dict]) -> str:
    data = orjson.dumps(rows, default=_json_default)
    if b"\\u0000" in data:  # dimensions cleaned as the writer stored them (rules.values.strip_nul)
        data = orjson.dumps(strip_nul(rows), default=_json_default)
    return data.decode()


_SCORE_PROBE = pk_probe("s", SCORE_TABLE, "k.id", _SCORE_SELECT)
_LOCK_SCORES_SQL = f"SELECT x.* FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL ({_SCORE_PROBE} FOR UPDATE) AS x"
# The stored scores of traces, except the batch's own: found through the (project, trace) index one
# trace at a time, then locked by primary key in id order (like `_LOCK_CALLS_OF_TRACES_SQL`).
_LOCK_SCORES_OF_TRACES_SQL = _lock_rows_of_traces_sql("s", SCORE_TABLE, 's."project_id", s."trace_id"', _SCORE_PROBE)
# The batch's scores as now stored, each with its trace's dimensions (NULLs: the trace is not stored).
_SCORES_WITH_TRACES_SQL = (
    f"SELECT s.*, d.* FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL ({_SCORE_PROBE}) AS s "
    f"LEFT JOIN LATERAL ({_TRACE_PROBE.replace('k.id', 's.trace_id')}) AS d ON s.trace_id <> ''"
)


def _obs(row) -> dict:
    return dict(zip(OBS_COLUMNS, row))


def _score(row) -> dict:
    return dict(zip(SCORE_COLUMNS, row))


class Tracker:
    """One per write transaction: `begin` first, the two snapshots between the writer's INSERT and
    UPDATE of each table, `apply` last."""

    def __init__(self, cursor, project):
        self.cursor = cursor
        self.project = project
        self.pid = str(project.id)
        self.rule = FeatureRule()
        self.old_traces: dict[str, TraceDims] = {}
        self.old_obs: dict[str, dict] = {}
        # Rows this transaction inserted, as the writer stored them: their new state needs no read.
        self.inserted_traces: dict[str, dict] = {}
        self.inserted_obs: dict[str, dict] = {}
        # Calls whose duplicate mark this transaction changed: {id: the mark before}.
        self.marks_before: dict[str, str] = {}
        # Scores: the batch's ids, the traces they belong to, whether some of those are not stored,
        # and the stored state of the batch's scores before this transaction.
        self.score_ids: list[str] = []
        self.score_traces: set[str] = set()
        self.orphan_scores = False
        self.old_scores: dict[str, dict] = {}
        self.unlocked_traces: dict[str, TraceDims] = {}
        # Traces this batch writes (only they can change dimensions; the others it only locks).
        self.written_traces: set[str] = set()
        # {trace id: (cost, calls)} the batch's new calls carried into their trace's INSERT.
        self.seeded: dict[str, tuple] = {}
        # {id: `_stored_state`} of the rows the observation INSERT was given (`insert_costs`).
        self.inserted_states: dict[str, dict] = {}
        # {trace id: dimensions} of the traces this transaction inserted (`_inserted_dims`).
        self.inserted_dims: dict[str, TraceDims] = {}
        # The planner settings before `KEY_PROBE_SETTINGS` (in the order of `_PLANNER_SETTINGS`).
        self.saved_settings: tuple[str, ...] | None = None
        # The traces this transaction inserted that a stored score named when they were inserted
        # (`traces_scored`); None: not known, every inserted trace may have some.
        self.scored_traces: set[str] | None = None

    def traces_scored(self, ids) -> None:
        """The writer's traces INSERT found stored scores naming these of the traces it inserted, and
        none naming the others. Read in the statement after `begin`, whose "trace arrival" lock makes
        it final until this transaction commits (see the score section below): another batch storing
        a score of a trace not stored yet takes that lock exclusively, so it waits for this one; one
        that sends the trace too waits for this INSERT's row, and stores its score after our commit.
        So `_apply_scores` would find no score of the others to move."""
        self.scored_traces = set(ids)

    def key_probes_only(self) -> None:
        """The planner settings of `KEY_PROBE_SETTINGS`, for a batch whose first statement comes before
        `begin` (scores: `prepare_scores`); `begin` sets them otherwise."""
        self.cursor.execute(KEY_PROBE_SQL)
        row = self.cursor.fetchone()
        self.saved_settings = tuple(row[:len(_PLANNER_SETTINGS)])

    def restore_settings(self) -> None:
        """Back to the settings before this write, for a write inside a caller's transaction."""
        if self.saved_settings is not None:
            self.cursor.execute(RESTORE_SETTINGS_SQL, list(self.saved_settings))

    def duplicates_changed(self, marks_before: dict[str, str]) -> None:
        self.marks_before = marks_before

    def insert_costs(self, observation_rows: list[dict]) -> dict[str, tuple]:
        """Before the trace INSERT: what the batch's new calls add to each trace's cost, counted as
        `Deltas.add` counts them (their state as the observation INSERT stores it). A trace this batch
        inserts carries it in its own INSERT, and `apply` takes it back from the deltas: a trace stored
        with its calls then needs no UPDATE (with the cost indexed, an UPDATE is a new entry in every
        index of the trace, the full-text one included). A trace that already exists ignores it."""
        deltas = Deltas()
        states = self.inserted_states = {}
        for row in observation_rows:
            state = states[row["id"]] = _stored_state(row)  # `apply` counts the inserted ones from it
            deltas.add_trace_cost(state, +1)
        self.seeded = {tid: (cost, calls) for tid, (cost, calls) in deltas.trace_costs.items() if calls}
        return self.seeded

    def begin(self, *, creates_traces: bool = False, key_probes: bool = False) -> None:
        """The project's rollup lock (shared) and, read under it, the rule the rollups are built with.
        `creates_traces`: the batch holds trace records (it may insert traces whose stored scores
        must then move, see `prepare_scores`). `key_probes`: and `KEY_PROBE_SETTINGS` for the rest of
        the transaction (the ingest writer, which restores them when inside a caller's transaction;
        see `restore_settings`)."""
        if self.orphan_scores:
            mode = ""
        elif creates_traces:
            mode = "_shared"
        else:
            mode = None
        params = [_lock_key(self.project)] + ([_arrival_key(self.project)] if mode is not None else []) + [self.pid]
        self.cursor.execute(_BEGIN_SQL[mode, key_probes], params)
        row = self.cursor.fetchone()
        if key_probes and self.saved_settings is None:
            n = len(_PLANNER_SETTINGS)
            self.saved_settings = tuple(row[-2 - 2 * n:-2 - n])
        source, key = row[-2], row[-1]
        if source is not None:
            self.rule = FeatureRule(source, key)

    # --- scores ---------------------------------------------------------------------------------
    #
    # A score counts under the dimensions of its trace as that trace is stored NOW (feature, name,
    # release, user), like a call: a later change of the trace moves its scores with its calls. A
    # score whose trace is not stored (yet) counts under empty dimensions and moves when the trace is
    # created. Its own columns give the rest of the key: the hour of its timestamp (kept from its
    # first write), its environment, name, source and data type.
    #
    # Exact under concurrency: the batch locks the stored traces of its scores (FOR UPDATE, with the
    # batch's own traces, in id order), so a concurrent change of their dimensions waits for it or it
    # for that change. A trace being inserted is not a row to lock; instead every batch with trace
    # records holds the project's "trace arrival" lock shared, and a batch with scores of traces that
    # are not stored takes it exclusively (before any row lock): the trace's creator then either
    # committed before (the score sees the trace) or starts after (its probe of the new traces' scores
    # sees the score). Scores of missing traces are rare (they mostly arrive long after their trace).

    def prepare_scores(self, score_recs: dict[str, dict], *, batch_traces=()) -> None:
        """Before `begin`: the traces the batch's scores belong to (as sent, and as stored for scores
        already stored), and whether any of them is neither stored nor created by this batch."""
        ids = sorted(score_recs)
        sent = sorted({rec["trace_id"] for rec in score_recs.values() if rec.get("trace_id")})
        self.score_ids = ids
        self.cursor.execute(_SCORE_TRACES_SQL, [text_array(sent), text_array(ids), self.pid, self.pid])
        found = self.cursor.fetchall()
        self.score_traces = {tid for tid, _ in found}
        missing = {tid for tid, exists in found if not exists}
        self.orphan_scores = bool(missing - set(batch_traces))

    def lock_score_traces(self) -> None:
        """Lock and snapshot the stored traces of the batch's scores (for a batch without traces)."""
        self.snapshot_traces(self.score_traces - set(self.old_traces))

    def snapshot_scores(self, ids) -> None:
        """Lock the batch's stored scores and remember their state (before the UPDATE or DELETE)."""
        ids = sorted(ids)
        if not ids:
            return
        # One key at a time with the project as an InitPlan parameter, like the other snapshots here
        # (an `id = ANY(…)` read a project grown since its last ANALYZE whole); locks in id order.
        self.cursor.execute(_LOCK_SCORES_SQL, [text_array(ids), self.pid])
        for row in self.cursor.fetchall():
            score = _score(row)
            self.old_scores[score["id"]] = score
        # A score a concurrent batch stored after `prepare_scores` read its traces may belong to a
        # trace this batch did not lock (the stored trace wins over the one sent). Its dimensions as
        # committed are those it was counted under: a change of them moves it only after locking it,
        # i.e. after this transaction, from the state it commits.
        unknown = sorted({
            score["trace_id"] for score in self.old_scores.values()
            if score["trace_id"] and score["trace_id"] not in self.old_traces
            and score["trace_id"] not in self.inserted_traces
        })
        if unknown:
            self.cursor.execute(_TRACES_SQL, [text_array(unknown), self.rule.metadata_key, self.pid])
            for row in self.cursor.fetchall():
                self.unlocked_traces[row[0]] = _trace_dims(self.rule, row)

    def _apply_scores(self, deltas: Deltas, new_traces: dict[str, TraceDims], changed: list[str]) -> None:
        # Traces this batch created with dimensions: their scores stored before (counted under empty
        # dimensions) move to them. Traces whose dimensions changed: their stored scores move too.
        created = {}
        for tid, row in self.inserted_traces.items():
            dims = self._inserted_dims(row)
            if dims != EMPTY_DIMS:
                created[tid] = dims
        moving = sorted({*changed, *created})
        if moving and not changed and self.scored_traces is not None and self.scored_traces.isdisjoint(created):
            # Only new traces, and no stored score names any of them: the statement would find nothing.
            moving = []
        if moving:
            self.cursor.execute(
                _LOCK_SCORES_OF_TRACES_SQL, [text_array(moving), self.pid, text_array(self.score_ids), self.pid]
            )
            for row in self.cursor.fetchall():
                score = _score(row)
                tid = score["trace_id"]
                deltas.add_score(score, self.old_traces.get(tid, EMPTY_DIMS), -1)
                deltas.add_score(score, new_traces.get(tid) or created[tid], +1)
        if not self.score_ids:
            return
        # The batch's scores: out under the dimensions they were counted under, in under their
        # trace as it stands now (locked by this batch, or created by it, or not stored).
        for score in self.old_scores.values():
            tid = score["trace_id"]
            deltas.add_score(score, self.old_traces.get(tid) or self.unlocked_traces.get(tid, EMPTY_DIMS), -1)
        self.cursor.execute(
            _SCORES_WITH_TRACES_SQL, [text_array(self.score_ids), self.pid, self.rule.metadata_key, self.pid]
        )
        width = len(SCORE_COLUMNS)
        for row in self.cursor.fetchall():
            dims = _trace_dims(self.rule, row[width:]) if row[width] is not None else EMPTY_DIMS
            deltas.add_score(_score(row[:width]), dims, +1)

    def _inserted_dims(self, trace_row: dict) -> TraceDims:
        # Once per trace: the batch's calls share few traces (the row no longer changes once inserted).
        dims = self.inserted_dims.get(trace_row["id"])
        if dims is None:
            dims = self.inserted_dims[trace_row["id"]] = self._dims_of_row(trace_row)
        return dims

    def _dims_of_row(self, trace_row: dict) -> TraceDims:
        metadata = trace_row.get("metadata") or {}
        return _trace_dims(self.rule, (
            None, trace_row.get("name"), trace_row.get("user_id"), trace_row.get("release"),
            metadata.get(self.rule.metadata_key) if isinstance(metadata, dict) else None,
            trace_row.get("tags"),
        ), raw=False)

    def inserted(self, *, ids, snapshot, traces=None, observations=None) -> None:
        """The writer's hook between its INSERT (`ids`: the rows it inserted, of `traces` or
        `observations`) and its UPDATE (`snapshot`: the existing rows it is about to change)."""
        if traces is not None:
            self.inserted_traces = {row["id"]: row for row in traces if row["id"] in ids}
            self.written_traces = set(snapshot)
            # The stored traces of the batch's scores too, in the same statement (id order).
            self.snapshot_traces(set(snapshot) | (self.score_traces - set(ids)))
        else:
            self.inserted_obs = {row["id"]: row for row in observations if row["id"] in ids}
            self.snapshot_observations(snapshot)

    def snapshot_traces(self, ids) -> None:
        """Lock the batch's existing traces and remember their dimensions (before the trace UPDATE)."""
        ids = sorted(ids)
        if not ids:
            return
        self.cursor.execute(_LOCK_TRACES_SQL, [text_array(ids), self.rule.metadata_key, self.pid])
        for row in self.cursor.fetchall():
            self.old_traces[row[0]] = _trace_dims(self.rule, row)

    def snapshot_observations(self, ids) -> None:
        """Lock the batch's existing observations and remember their state (before the UPDATE)."""
        ids = sorted(ids)
        if not ids:
            return
        self.cursor.execute(_LOCK_OBS_SQL, [text_array(ids), self.pid])
        for row in self.cursor.fetchall():
            obs = _obs(row)
            self.old_obs[obs["id"]] = obs

    def apply(self, obs_ids=()) -> None:
        deltas = Deltas()
        # Traces whose dimensions this transaction changed: their other stored calls move. Traces
        # only locked (for the batch's scores) keep theirs.
        new_traces: dict[str, TraceDims] = {
            tid: dims for tid, dims in self.old_traces.items() if tid not in self.written_traces
        }
        rewritten = sorted(set(self.old_traces) & self.written_traces)
        if rewritten:
            self.cursor.execute(_TRACES_SQL, [text_array(rewritten), self.rule.metadata_key, self.pid])
            for row in self.cursor.fetchall():
                new_traces[row[0]] = _trace_dims(self.rule, row)
        changed = sorted(tid for tid, dims in new_traces.items() if dims != self.old_traces[tid])
        obs_ids = sorted(obs_ids)
        moved: set[str] = set()
        if changed:
            self.cursor.execute(
                _LOCK_CALLS_OF_TRACES_SQL, [text_array(changed), self.pid, text_array(obs_ids), self.pid]
            )
            for row in self.cursor.fetchall():
                obs = _obs(row)
                before = self._before_marking(obs)
                deltas.add(before, self.old_traces[obs["trace_id"]], -1)
                deltas.add(obs, new_traces[obs["trace_id"]], +1)
                moved.add(obs["id"])
        counted: set[str] = set()
        states = self.inserted_states
        marks_before = self.marks_before
        # {trace id: its dimensions below}, found once per trace (a batch's calls share few traces).
        trace_dims: dict[str, TraceDims] = {}
        for obs_id, row in self.inserted_obs.items():
            if obs_id in marks_before:
                continue  # marked after the insert: its stored state is read below
            tid = row["trace_id"]
            dims = trace_dims.get(tid)
            if dims is None:
                trace_row = self.inserted_traces.get(tid)
                if trace_row is not None:
                    dims = self._inserted_dims(trace_row)
                elif tid in new_traces:
                    # An existing trace: locked by `snapshot_traces` and re-read above.
                    dims = new_traces[tid]
                else:  # not expected (every call's trace is inserted or locked); read it below
                    continue
                trace_dims[tid] = dims
            state = states.get(obs_id)
            deltas.add(state if state is not None else _stored_state(row), dims, +1)
            counted.add(obs_id)
        obs_ids = [obs_id for obs_id in obs_ids if obs_id not in counted]
        outside = set(self.marks_before) - set(obs_ids) - counted - moved
        obs_ids = sorted({*obs_ids, *outside})
        if obs_ids:
            self.cursor.execute(
                _CALLS_WITH_TRACES_SQL, [text_array(obs_ids), self.pid, self.rule.metadata_key, self.pid]
            )
            width = len(OBS_COLUMNS)
            for row in self.cursor.fetchall():
                obs = _obs(row[:width])
                dims = _trace_dims(self.rule, row[width:])
                old = self.old_obs.get(obs["id"])
                if old is None and obs["id"] in self.marks_before and obs["id"] not in self.inserted_obs:
                    # Not in this batch: stored before, only its mark changed (a parent or child of
                    # a call in this batch). It moves from its state before the marking.
                    old = self._before_marking(obs)
                if old is not None:
                    # Counted before under its trace's dimensions as they were. A trace this batch
                    # did not lock kept its dimensions here; a concurrent change of them moves this
                    # row after our commit (its mover waits for our lock on the row and re-reads it).
                    deltas.add(old, self.old_traces.get(old["trace_id"], dims), -1)
                deltas.add(obs, dims, +1)
        self._apply_scores(deltas, new_traces, changed)
        self._write(deltas)

    def _before_marking(self, obs: dict) -> dict:
        if obs["id"] in self.marks_before:
            return {**obs, "duplicate_of": self.marks_before[obs["id"]]}
        return obs

    def _write(self, deltas: Deltas) -> None:
        # What the traces this batch inserted already hold (`insert_costs`): the deltas less it.
        for tid, (cost, calls) in self.seeded.items():
            if tid in self.inserted_traces:
                trace = deltas.trace_costs[tid]
                trace[0] -= cost
                trace[1] -= calls
        # The writer's traces are all inserted or locked by now; a re-pricing's are not.
        locked = all(tid in self.old_traces or tid in self.inserted_traces for tid in deltas.trace_costs)
        _write_calls(self.cursor, self.pid, deltas.rows(), deltas.trace_cost_rows(), locked=locked)
        _write_scores(self.cursor, self.pid, deltas)


def _trace_costs_sql(*, locked: bool) -> str:
    """Move traces' `cost`/`cost_calls` by the (cost, calls) deltas of a JSON document. A trace left
    with no call that has a cost has no cost (NULL, as a sum of nothing).

    `locked`: every trace in the document is locked by this transaction (the writer's traces are:
    inserted by it, or locked by `snapshot_traces`), so each is found by one primary-key probe and
    updated by its address, the form of `ingest.writer._source` (whose comment says why: a join on
    (project_id, id) may read the whole project when its statistics are stale). Otherwise (re-pricing,
    whose traces are not locked) a join, so that a row changed concurrently is re-read, not skipped."""
    sets = (
        'SET "cost_calls" = t."cost_calls" + s."calls", "cost" = CASE WHEN t."cost_calls" + s."calls" <= 0 '
        'THEN NULL ELSE COALESCE(t."cost", 0) + s."cost" END'
    )
    rows = 'jsonb_to_recordset(%s::jsonb) AS s("id" text, "cost" numeric, "calls" integer)'
    if not locked:
        return (
            f'UPDATE "{TRACE_TABLE}" AS t {sets} FROM {rows} '
            f'WHERE t."project_id" = (SELECT %s::uuid) AND t."id" = s."id"'
        )
    return (
        f'UPDATE "{TRACE_TABLE}" AS t {sets} FROM (SELECT s.*, x."_tid" FROM {rows} CROSS JOIN LATERAL '
        f'(SELECT o.ctid AS "_tid" FROM "{TRACE_TABLE}" AS o WHERE o."project_id" = (SELECT %s::uuid) '
        f'AND o."id" = s."id" OFFSET 0) AS x) AS s WHERE t.ctid = s."_tid"'
    )


_TRACE_COSTS = {locked: _trace_costs_sql(locked=locked) for locked in (True, False)}


def _write_calls(cursor, pid: str, tables, trace_costs=(), *, locked: bool = True) -> None:
    """Hourly, daily and per-user call rows and the traces' costs in one statement (one round trip):
    the trace UPDATE rides along as a data-modifying CTE."""
    hourly, users = tables
    costs: list = []
    if trace_costs:
        costs = [_dump(trace_costs), pid]
        update = f"{_TRACE_COSTS[locked]} RETURNING 1"
    if hourly:
        head = _HOURLY_DAILY
        if costs:
            head = f"WITH costs AS ({update}), " + head.removeprefix("WITH ")
        if users:
            cursor.execute(f"{head}{_USER_UPSERT}", [*costs, _dump(hourly), pid, pid, pid, _dump(users)])
        else:
            cursor.execute(f"{head}SELECT 1", [*costs, _dump(hourly), pid, pid])
    elif users:
        head = f"WITH costs AS ({update}) " if costs else ""
        cursor.execute(f"{head}{_USER_UPSERT}", [*costs, pid, _dump(users)])
    elif costs:
        cursor.execute(_TRACE_COSTS[locked], costs)


def _write_scores(cursor, pid: str, deltas: Deltas) -> None:
    hourly, users = deltas.score_rows()
    if hourly and users:
        cursor.execute(_SCORE_BOTH_UPSERT, [pid, _dump(hourly), pid, _dump(users)])
    elif hourly:
        cursor.execute(_SCORE_HOURLY_UPSERT, [pid, _dump(hourly)])
    elif users:
        cursor.execute(_SCORE_USER_UPSERT, [pid, _dump(users)])


_SCALE = Decimal("1e-10")  # numeric(20, 10), as the observations table stores costs


def _stored_state(row: dict) -> dict:
    """An inserted row's contribution columns as the database stored them. The writer's insert rows
    hold every column (`ingest.writer._insert_row`), so the row itself serves unless its cost is
    stored rounded; it is never changed afterwards."""
    cost = row.get("total_cost")
    if cost is None:
        return row
    # The writer sends costs as JSON numbers; PostgreSQL rounds them to the column's scale.
    if not isinstance(cost, Decimal):
        cost = Decimal(str(cost))  # a float's shortest text, as the JSON document carries it
    return {**row, "total_cost": cost.quantize(_SCALE, rounding=ROUND_HALF_UP)}


def rebuild(*, project, rule: FeatureRule, chunk: int = 5000) -> int:
    """Recompute the project's rollups from its raw rows under `rule` and make it the rule every
    later write uses. Holds the project's rollup lock exclusively, so no write interleaves. Returns
    the calls counted. (One transaction: fine for the projects of today; a very large project will
    want it per day, as a region task.)"""
    from django.db import transaction

    from tenancy.dataplane import data_connection

    database = region_database(project.region)
    counted = 0
    with transaction.atomic(using=database):
        with data_connection(project).cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_lock_key(project)])
            pid = str(project.id)
            cursor.execute(f'DELETE FROM "{HOURLY_TABLE}" WHERE "project_id" = %s::uuid', [pid])
            cursor.execute(f'DELETE FROM "{USER_TABLE}" WHERE "project_id" = %s::uuid', [pid])
            cursor.execute(f'DELETE FROM "{DAILY_TABLE}" WHERE "project_id" = %s::uuid', [pid])
            cursor.execute(f'DELETE FROM "{SCORE_HOURLY_TABLE}" WHERE "project_id" = %s::uuid', [pid])
            cursor.execute(f'DELETE FROM "{SCORE_USER_TABLE}" WHERE "project_id" = %s::uuid', [pid])
            cursor.execute(
                f'INSERT INTO "{RULE_TABLE}" (project_id, feature_source, feature_key) VALUES (%s::uuid, %s, %s) '
                "ON CONFLICT (project_id) DO UPDATE SET feature_source = EXCLUDED.feature_source, "
                "feature_key = EXCLUDED.feature_key",
                [pid, rule.source, rule.key],
            )
            cursor.execute(
                f'SELECT {_OBS_SELECT}, {_TRACE_DIMS} FROM "{OBS_TABLE}" AS o '
                f'JOIN "{TRACE_TABLE}" AS t ON t."project_id" = o."project_id" AND t."id" = o."trace_id" '
                f'WHERE o."project_id" = %s::uuid AND o."type" = ANY(%s)',
                [rule.metadata_key, pid, sorted(ROLLED_TYPES)],
            )
            width = len(OBS_COLUMNS)
            while True:
                rows = cursor.fetchmany(chunk)
                if not rows:
                    break
                deltas = Deltas()
                for row in rows:
                    deltas.add(_obs(row[:width]), _trace_dims(rule, row[width:]), +1)
                    counted += 1
                # A second cursor: the first one is still streaming the raw rows.
                with data_connection(project).cursor() as out:
                    _write_calls(out, pid, deltas.rows())
            # Scores, under their trace as stored (empty dimensions without one).
            cursor.execute(
                f'SELECT {_SCORE_SELECT}, {_TRACE_DIMS} FROM "{SCORE_TABLE}" AS s LEFT JOIN "{TRACE_TABLE}" AS t '
                f"ON t.\"project_id\" = s.\"project_id\" AND t.\"id\" = s.\"trace_id\" AND s.\"trace_id\" <> '' "
                f'WHERE s."project_id" = %s::uuid',
                [rule.metadata_key, pid],
            )
            width = len(SCORE_COLUMNS)
            while True:
                rows = cursor.fetchmany(chunk)
                if not rows:
                    break
                deltas = Deltas()
                for row in rows:
                    dims = _trace_dims(rule, row[width:]) if row[width] is not None else EMPTY_DIMS
                    deltas.add_score(_score(row[:width]), dims, +1)
                with data_connection(project).cursor() as out:
                    _write_scores(out, pid, deltas)
    return counted


# The traces of one chunk (key order, after the last one done), each one's cost summed from its counted
# observations through the (project, trace) index, and written where it differs.
_REBUILD_TRACE_COSTS_SQL = (
    f'WITH k AS (SELECT t."id" FROM "{TRACE_TABLE}" AS t WHERE t."project_id" = %s::uuid AND t."id" > %s '
    'ORDER BY t."id" LIMIT %s), '
    "sums AS (SELECT k.id, x.cost, x.calls FROM k CROSS JOIN LATERAL ("
    'SELECT sum(o."total_cost") AS cost, count(o."total_cost")::integer AS calls '
    f'FROM "{OBS_TABLE}" AS o WHERE o."project_id" = %s::uuid AND o."trace_id" = k.id '
    "AND o.\"duplicate_of\" = '') AS x), "
    f'fixed AS (UPDATE "{TRACE_TABLE}" AS t SET "cost" = s.cost, "cost_calls" = s.calls FROM sums AS s '
    'WHERE t."project_id" = %s::uuid AND t."id" = s.id '
    'AND (t."cost" IS DISTINCT FROM s.cost OR t."cost_calls" <> s.calls) RETURNING 1) '
    "SELECT (SELECT max(id) FROM k), (SELECT count(*) FROM k), (SELECT count(*) FROM fixed)"
)


def rebuild_trace_costs(*, project, chunk: int = 2000, progress=None) -> tuple[int, int]:
    """Recompute every trace's `cost`/`cost_calls` from its observations (after the migration that
    added them, or after any doubt). `chunk` traces per transaction, in key order, each under the
    project's rollup lock taken exclusively, so a concurrent write waits for the chunk and no delta
    is lost or counted twice; ingestion goes on between chunks. Only traces whose values differ are
    written. Returns (traces examined, traces fixed); `progress(examined, fixed)` after each chunk."""
    from django.db import transaction

    from tenancy.dataplane import data_connection

    database = region_database(project.region)
    pid = str(project.id)
    after, examined, fixed = "", 0, 0
    while True:
        with transaction.atomic(using=database):
            with data_connection(project).cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_lock_key(project)])
                cursor.execute(_REBUILD_TRACE_COSTS_SQL, [pid, after, chunk, pid, pid])
                last, seen, changed = cursor.fetchone()
        examined += seen
        fixed += changed
        if progress is not None:
            progress(examined, fixed)
        if seen < chunk:
            return examined, fixed
        after = last
