"""The internal shape every ingest path produces (Langfuse batch events, OTLP spans, REST scores).

A *record* is a plain dict keyed by the field names of `traces.models.Trace`,
`traces.models.Observation` or `scores.models.Score`, holding ONLY the fields the client actually
sent: an absent key means "not sent", which matters for Langfuse's merge rules (an update that omits
a field must not clear it). Rules:

- always `id`; observation records also carry `trace_id`; never `project_id` (the writer sets it);
- datetimes are timezone-aware `datetime` objects;
- JSON fields (input, output, metadata, model_parameters, usage_details, cost_details, tool_calls)
  hold plain JSON-able Python values;
- token columns (input_tokens = fresh input only, cached_input_tokens, cache_write_tokens,
  output_tokens, reasoning_tokens, total_tokens) may be given directly, and `usage_details` holds the
  usage in Langfuse's keys, each token kind once (a raw map in other names, such as OTLP attributes,
  goes to `metadata.usage_raw`); `cost_details` entries are disjoint and sum to the total; the writer
  fills what can be derived (total, status, latency-independent
  fields, cost from the price catalog when the client sent none);
- unknown client attributes go into `metadata`, never dropped.

`ingest.writer.write_records(project=..., traces=[...], observations=[...], scores=[...])`
stores a batch of records with one bulk upsert per table. Every adapter runs `check_record` (below)
on each record it builds, so that a value the database would refuse fails its own event, not the
batch: timestamps within 1970..2262 UTC, token counts up to 2^60, costs below 10^10, JSON values
nested at most 100 levels, ids other than "." and "..".

Details the writer relies on (added with the writer):
- token kinds are disjoint, as Langfuse normalises them: `input_tokens` excludes cached and
  cache-write input, `output_tokens` excludes `reasoning_tokens`; `total_tokens`, when not sent, is
  the sum of the five;
- a cost the client sent (`input_cost`/`output_cost`/`total_cost` or `cost_details`) is stored with
  `cost_source="client"`; otherwise the writer prices the tokens from the catalog;
- `status` is derived (error / refused / success) unless the record carries it;
- `write_records` raises `ingest.writer.InvalidRecord` for records breaking this contract
  (ids over 200 characters, unknown keys, naive datetimes) and `ingest.writer.StorageUnavailable`
  when the region database cannot take the write: answer 503 with `Retry-After`
  (`StorageUnavailable.retry_after` seconds), never 500.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

TRACE_KEYS = frozenset(
    {"id", "name", "timestamp", "user_id", "session_id", "environment", "release", "version", "tags",
     "metadata", "input", "output", "public", "redactions"}
)

OBSERVATION_KEYS = frozenset(
    {"id", "trace_id", "parent_observation_id", "type", "name", "start_time", "end_time",
     "completion_start_time", "level", "status_message", "status", "version", "environment", "input",
     "output", "metadata", "model", "response_model", "model_parameters", "prompt_name", "prompt_version",
     "finish_reason", "tool_calls", "usage_details", "input_tokens", "cached_input_tokens",
     "cache_write_tokens", "output_tokens", "reasoning_tokens", "total_tokens", "cost_details",
     "input_cost", "output_cost", "total_cost", "cost_source", "tool_name", "tool_call_id", "error_type",
     "error_message", "error_stack", "redactions"}
)

SCORE_KEYS = frozenset(
    {"id", "trace_id", "observation_id", "session_id", "name", "value", "string_value", "data_type",
     "source", "comment", "author_user_id", "config_id", "metadata", "environment", "timestamp",
     "redactions"}
)


# --- limits every ingest path enforces, per record ------------------------------------------------
#
# The writer stores a whole request in one transaction, so a value the database (or the JSON encoder
# in front of it) refuses would fail every event of the batch. Each adapter therefore runs
# `check_record` on each record it builds and reports a failure against that one event (a 207 entry,
# an OTLP rejected span, a 400 for a REST score) while the others are stored. The limits are also
# what every stored row can be read back with.

# Timestamps: the unix-epoch int64-nanosecond range, 1970-01-01 … 2262-04-11 UTC. OTLP carries times
# as unix nanoseconds (so nothing outside it can arrive there), JavaScript and the Langfuse SDKs
# handle all of it, and it is far inside what PostgreSQL stores and what Python's datetime can load in
# any time zone. A value outside it is a client bug (0, -1, seconds sent as nanoseconds, year 0001
# with a positive offset), never a real call: storing it made every page listing the row fail.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)  # 2**63 - 1 ns after the epoch
TIMESTAMP_RANGE = "1970-01-01T00:00:00Z … 2262-04-11T23:47:16Z"

# Token counts: each kind at most 2**60, so that the total the writer derives (the sum of five kinds,
# also after merging an update into a stored row) always fits the bigint column.
MAX_TOKENS = 2**60
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
MAX_COST = Decimal(10) ** 10  # the cost columns are numeric(20, 10)
# JSON values (input, output, metadata, …) nest at most this deep: far beyond any real payload, and
# well inside the 255 levels orjson encodes, with room for the envelopes that wrap a stored value
# (metadata["otel"]["attributes"], API responses).
MAX_JSON_DEPTH = 100
# Ids that no URL path can carry: clients and proxies resolve "." and ".." segments away (RFC 3986
# §5.2.4), so such a trace could never be read back. Every other string is a valid id (the Langfuse
# SDKs accept any); ids are percent-encoded wherever a URL is built.
UNADDRESSABLE_IDS = frozenset({".", ".."})

TOKEN_KEYS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
COST_KEYS = ("input_cost", "output_cost", "total_cost")
JSON_KEYS = frozenset(
    {"input", "output", "metadata", "model_parameters", "usage_details", "cost_details", "tool_calls",
     "redactions"}
)
ID_KEYS = ("id", "trace_id", "observation_id", "session_id")


class RecordError(ValueError):
    """A record holds a value no row can store or be read back with; `message` names the field."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def check_timestamp(value: datetime, field: str) -> datetime:
    """`value`, when it lies in the accepted range (a naive value is read as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not MIN_TIMESTAMP <= value <= MAX_TIMESTAMP:
        raise RecordError(f"`{field}` {_shown(value)} is outside the accepted range {TIMESTAMP_RANGE}")
    return value


def _shown(value: datetime) -> str:
    try:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:  # the UTC instant is before year 1 or after 9999
        return value.isoformat()


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _encoder_depth_limit() -> int:
    """The nesting at which orjson stops encoding (255 today), measured rather than assumed."""
    value: object = 0
    for depth in range(1, 4096):
        value = [value]
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return depth
    raise RuntimeError("orjson encodes any depth; check_json needs another depth check")


# `_encodable` encodes the values of a dict inside this many nested lists, so that the encoder's own
# recursion limit refuses exactly the values nesting deeper than MAX_JSON_DEPTH: the depth check then
# rides on the one encoding pass (a walk in Python costs several times more than the encoding).
_PADDING = _encoder_depth_limit() - 1 - MAX_JSON_DEPTH - 1
_local = threading.local()


def _padded(levels: int) -> tuple[list, list]:
    """(outermost, innermost) of this thread's chain of `levels` nested lists."""
    chains = _local.__dict__.setdefault("chains", {})
    inner: list = [None]
    outer = inner
    for _ in range(levels - 1):
        outer = [outer]
    chains[levels] = (outer, inner)
    return outer, inner


def _encoded(value, levels: int) -> str | None:
    """None when `value`, inside `levels` nested lists, encodes, else the encoder's reason, in words."""
    try:
        outer, inner = _local.chains[levels]
    except (AttributeError, KeyError):
        outer, inner = _padded(levels)
    inner[0] = value
    try:
        try:
            orjson.dumps(outer, default=_json_default)  # a third faster; non-string keys: a second pass
        except orjson.JSONEncodeError:
            orjson.dumps(outer, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        reason = str(exc)
        if "Recursion" in reason:
            return f"it nests deeper than {MAX_JSON_DEPTH} levels"
        if "64-bit" in reason:
            return "it holds an integer beyond the 64-bit range"
        return reason
    finally:
        inner[0] = None
    return None


def _encodable(values: dict) -> str | None:
    """None when every value of `values` is storable as JSON, else why not."""
    return _encoded(values, _PADDING)


def check_json(value, field: str) -> None:
    """`value` is storable as JSON: nesting at most MAX_JSON_DEPTH levels, no integer beyond 64 bits."""
    reason = _encodable({field: value})
    if reason is not None:
        raise RecordError(f"`{field}` cannot be stored: {reason}")


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return value


def _check_costs(record: dict) -> None:
    """The amounts the writer stores for a client cost, as it derives them, fit numeric(20, 10)."""
    details = record.get("cost_details") if isinstance(record.get("cost_details"), dict) else {}
    amounts = {key: record.get(key) for key in COST_KEYS}
    for key, detail in (("input_cost", "input"), ("output_cost", "output"), ("total_cost", "total")):
        if amounts[key] is None:
            amounts[key] = _number(details.get(detail))
    if amounts["total_cost"] is None:
        parts = [_number(v) for k, v in details.items() if k != "total"]
        parts = [p for p in parts if p is not None]
        if not parts:
            parts = [a for a in (amounts["input_cost"], amounts["output_cost"]) if a is not None]
        if parts:
            amounts["total_cost"] = sum(Decimal(str(p)) for p in parts)
    for key, amount in amounts.items():
        if amount is not None and not Decimal(str(amount)) < MAX_COST:
            raise RecordError(f"`{key}` {amount} is too large: costs are below {MAX_COST:,.0f} USD")
    for key, amount in details.items():
        number = _number(amount)
        if number is not None and not Decimal(str(number)) < MAX_COST:
            raise RecordError(f"`cost_details.{key}` {amount} is too large: costs are below {MAX_COST:,.0f} USD")


def _documents(record: dict) -> dict:
    """The record's JSON values by field, once its ids and timestamps pass (RecordError if not): the
    first checks of `check_record`, in its order."""
    # A failed `isinstance` looks the object's `__class__` up, three times the cost of a `type()`
    # test: None (an absent id) and the exact types most values have are settled without one.
    for key in ID_KEYS:
        value = record.get(key)
        if value is not None and isinstance(value, str) and value in UNADDRESSABLE_IDS:
            raise RecordError(f'`{key}` cannot be "." or "..": no URL can address it')
    documents = {}
    for key, value in record.items():
        kind = type(value)
        if kind is str or kind is int or kind is dict or kind is list:  # never a datetime
            if key in JSON_KEYS:
                documents[key] = value
        elif value is None:
            continue
        elif isinstance(value, datetime):
            check_timestamp(value, key)
        elif key in JSON_KEYS:
            documents[key] = value
    return documents


def _check_documents(documents: dict) -> None:
    """RecordError naming the first of `documents` (a record's JSON values) that cannot be stored."""
    for key, value in documents.items():
        check_json(value, key)


def _check_numbers(record: dict) -> None:
    """The last checks of `check_record`: token counts, the prompt version, costs."""
    for key in TOKEN_KEYS:
        value = record.get(key)
        if value is not None and not 0 <= value <= MAX_TOKENS:
            raise RecordError(f"`{key}` {value} is out of range: token counts are at most 2^60")
    total = record.get("total_tokens")
    if total is not None and not 0 <= total < MAX_BIGINT:  # the writer's bound: below 2^63 - 1
        raise RecordError(f"`total_tokens` {total} is out of range: below 2^63 - 1")
    version = record.get("prompt_version")
    if version is not None and not 0 <= version <= MAX_INT:
        raise RecordError(f"`prompt_version` {version} is out of range: at most 2^31 - 1")
    if not _COST_FIELDS.isdisjoint(record):
        _check_costs(record)


def check_record(record: dict) -> dict:
    """Raise RecordError when `record` (a trace, observation or score record) holds a value that
    would make the database refuse the whole batch, or make the stored row unreadable."""
    documents = _documents(record)
    if documents and _encoded(documents, _PADDING) is not None:
        _check_documents(documents)  # one encoding pass for all; this only names the field
    if not _NUMBER_KEYS.isdisjoint(record):  # most records (every trace, most spans): nothing more
        _check_numbers(record)
    return record


def check_records(records: list[dict]) -> list[RecordError | None]:
    """`check_record` of each of `records`: the RecordError it raises, or None. The JSON values of
    all of them are encoded in ONE pass, each record's at the depth `check_record` encodes them:
    orjson's own cost per call and the padding's (~1.5 µs a record) dwarf most records' values.
    Only when that pass fails are they encoded record by record, to find which. Any other exception
    (a record no adapter builds) is raised, as `check_record` raises it."""
    problems: list[RecordError | None] = []
    documents = []  # (position, JSON values) of the records that passed the first checks
    for record in records:
        try:
            found = _documents(record)
        except RecordError as exc:
            problems.append(exc)
            continue
        if found:
            documents.append((len(problems), found))
        problems.append(None)
    # A list one padding level less holds each record's values where `check_record` puts them.
    if documents and _encoded([found for _, found in documents], _PADDING - 1) is not None:
        for index, found in documents:
            if _encoded(found, _PADDING) is not None:
                try:
                    _check_documents(found)
                except RecordError as exc:
                    problems[index] = exc
    for index, record in enumerate(records):
        if problems[index] is None and not _NUMBER_KEYS.isdisjoint(record):
            try:
                _check_numbers(record)
            except RecordError as exc:
                problems[index] = exc
    return problems


_COST_FIELDS = frozenset({*COST_KEYS, "cost_details"})
_NUMBER_KEYS = frozenset({*TOKEN_KEYS, "total_tokens", "prompt_version", *_COST_FIELDS})
# ---------------------------------------------------------------------------------------------
# The batch and its outcome: what adapters hand to `ingest.pipeline.run` and get back.


@dataclass(frozen=True)
class ExperimentLink:
    """An observation that is the task of one experiment item (Langfuse v4/v5 `run_experiment` sends
    experiments only as `langfuse.experiment.*` span attributes, no dataset-run-items call). Not a
    column of any row the writer stores (the attributes are, under the observation's
    `metadata["experiment"]`); the follower (`evals.experiments`) enqueues only the ids of each link,
    and its task reads the run name, description and metadata back from the stored (redacted) span.

    `run_name` is `langfuse.experiment.name`, which the SDK fills with the RUN name; `experiment_id`
    is the SDK's (the stable hash for dataset runs, see `evals.services.stable_experiment_id`)."""

    experiment_id: str
    run_name: str
    trace_id: str
    observation_id: str  # the task span (`langfuse.experiment.item.root_observation_id`)
    item_id: str | None = None
    dataset_id: str | None = None  # None: local data (`langfuse.run_experiment(data=[…])`)
    description: str | None = None
    metadata: Any = None
    item_version: str | None = None


@dataclass
class Entry:
    """One record on its way to storage, with what its adapter needs to answer for it."""

    record: dict
    ref: Any = None  # the adapter's handle (event position, span id, body index): echoed in refusals
    typed: bool = True  # scores: whether the client named the data type (score configs infer it if not)
    rides_on: str | None = None  # scores carried by an observation (OTLP): dropped when it is refused
    experiment: ExperimentLink | None = None  # observations: the experiment item whose task this is


@dataclass(frozen=True)
class Refusal:
    """A record the pipeline refused; nothing of it is stored. `message` is safe to return."""

    kind: str  # "trace" | "observation" | "score"
    ref: Any
    record_id: str | None
    status: int  # 400: the record breaks a rule (a score config); 422: it cannot be redacted
    message: str
    stage: str


@dataclass
class Batch:
    """The records of one request for one project, by kind, in the order they are to be merged.

    `write` chooses the writer: "upsert" (Langfuse's merge rules, every source) or "user_feedback"
    (one end-user rating replaced by a changed mind; `after_write` then runs in the same transaction
    with the row it replaced)."""

    project: Any
    source: str  # "langfuse" | "otlp" | "scores" | "feedback" (later "eval")
    traces: list[Entry] = field(default_factory=list)
    observations: list[Entry] = field(default_factory=list)
    scores: list[Entry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    write: str = "upsert"
    after_write: Callable | None = None
    pricer: Callable | None = None  # set by the price stage
    written: Any = None  # what the write stage returned
    api_key_id: Any = None  # the key that sent it: its ingest rate limit (billing)

    def add(self, kind: str, record: dict, ref: Any = None, **meta) -> None:
        self.entries(kind).append(Entry(record, ref, **meta))

    def entries(self, kind: str) -> list[Entry]:
        return getattr(self, _ENTRIES[kind])

    def records(self, kind: str) -> list[dict]:
        return [entry.record for entry in self.entries(kind)]

    def refuse(self, kind: str, entry: Entry, *, status: int, message: str, stage: str) -> None:
        self.refused.append(Refusal(kind, entry.ref, entry.record.get("id"), status, message, stage))

    def __bool__(self) -> bool:
        return bool(self.traces or self.observations or self.scores)


_ENTRIES = {"trace": "traces", "observation": "observations", "score": "scores"}  # kind -> Batch field
