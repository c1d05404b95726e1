"""Langfuse batch events (`POST /api/public/ingestion`) and score bodies → writer records.

Validation is hand-written per field: it runs once per event on the request path, needs to name the
offending field in its message, and must never let one bad event fail the batch. Shapes and rules
follow the Langfuse public schema (reference notes §3.3–3.5, §5); unknown body fields are kept in
`metadata` rather than dropped.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from ingest.contract import (
    MAX_BIGINT,
    MAX_COST,
    MAX_INT,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    TIMESTAMP_RANGE,
    UNADDRESSABLE_IDS,
    RecordError,
    check_record,
    check_records,
    check_timestamp,
)
from ingest.rules import messages
from ingest.rules import usage as usage_rules
from ingest.rules.environment import normalize_environment as normalise_environment
from ingest.rules.ids import MAX_ENVELOPE_ID
from ingest.rules.ids import MAX_ID_LENGTH as MAX_ID
from ingest.rules.values import epoch_to_datetime, parse_iso_datetime

logger = logging.getLogger(__name__)

LEVELS = frozenset({"DEBUG", "DEFAULT", "WARNING", "ERROR"})
USAGE_UNITS = frozenset({"TOKENS", "CHARACTERS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS"})
SCORE_SOURCES = frozenset({"API", "EVAL", "ANNOTATION"})
SCORE_DATA_TYPES = frozenset({"NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT", "CORRECTION"})
# Ids derived for events whose body carries none: a replay of the event then lands on the same row
# (Langfuse SDK retries resend the same event id). Fixed, so the same event maps to the same id in
# every project and on every server.
DERIVED_ID_NAMESPACE = uuid.UUID("0b7f3c1e-5d2a-4c8e-9a61-2f4d8e7b1c53")


class EventError(Exception):
    """One event is invalid; reported in the 207 `errors` list with this status and message."""

    def __init__(self, message: str, *, status: int = 400, error: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error or message


# --- field readers -------------------------------------------------------------------------


def _string(body: dict, key: str, *, max_length: int | None = None, required: bool = False) -> str | None:
    value = body.get(key)
    if type(value) is str and (max_length is None or len(value) <= max_length) and (value or not required):
        return value  # the common case, valid as sent: none of the checks below can fail
    if value is None:
        if required:
            raise EventError(f"`{key}` is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise EventError(f"`{key}` must be a string")
    if not isinstance(value, str):
        value = str(value)
    if max_length is not None and len(value) > max_length:
        raise EventError(f"`{key}` is longer than {max_length} characters")
    if required and not value:
        raise EventError(f"`{key}` must not be empty")
    return value


def _id(body: dict, key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if type(value) is str and 2 < len(value) <= MAX_ID:
        return value  # the common case: none of the checks below can refuse it ("." and ".." are shorter)
    value = _string(body, key, max_length=MAX_ID, required=required)
    if value == "":
        return None
    if value in UNADDRESSABLE_IDS:
        raise EventError(f'`{key}` cannot be "." or "..": no URL can address it')
    return value


def derived_id(*parts: str) -> str:
    """A stable id for a record the client sent without one, from the event it came in."""
    return uuid.uuid5(DERIVED_ID_NAMESPACE, "\x1f".join(parts)).hex


def _choice(body: dict, key: str, allowed: frozenset, what: str | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise EventError(f"`{what or key}` must be one of {', '.join(sorted(allowed))}")
    return value


def parse_datetime(value, key: str = "timestamp") -> datetime:
    if isinstance(value, str):
        # Langfuse requires an offset; SDKs always send one, so a bare time is read as UTC.
        parsed = parse_iso_datetime(value)
        if parsed is None:
            raise EventError(f"`{key}` is not an ISO-8601 datetime: {value[:60]!r}")
        return parsed
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        if not MIN_TIMESTAMP.timestamp() <= seconds <= MAX_TIMESTAMP.timestamp():
            # Checked before converting: far-off numbers overflow the conversion itself.
            raise EventError(f"`{key}` {value!r} is outside the accepted range {TIMESTAMP_RANGE}")
    moment = epoch_to_datetime(value)  # epoch milliseconds or seconds
    if moment is None:
        raise EventError(f"`{key}` must be an ISO-8601 datetime string")
    return moment


def event_datetime(value, key: str) -> datetime:
    """A timestamp of an event (or score body): parsed, and within the range every path accepts."""
    try:
        return check_timestamp(parse_datetime(value, key), key)
    except RecordError as exc:
        raise EventError(exc.message) from None


def _datetime(body: dict, key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if type(value) is str:
        # The common case, an ISO string in range, without the general path's layers; anything
        # else (numbers, bad text, out of range) takes that path, which names the error.
        parsed = parse_iso_datetime(value)  # always offset-aware
        if parsed is not None and MIN_TIMESTAMP <= parsed <= MAX_TIMESTAMP:
            return parsed
    return event_datetime(value, key)


def _checked(record: dict) -> dict:
    """The record, once it holds only values its row can store and be read back with."""
    try:
        return check_record(record)
    except RecordError as exc:
        raise EventError(exc.message) from None


def _bool(body: dict, key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise EventError(f"`{key}` must be true or false")


def _object(body: dict, key: str) -> dict | None:
    value = body.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise EventError(f"`{key}` must be an object")


# The field a message names is `prefix` + `key`, joined only for the message: most counts pass.


def _non_negative_int(value, key: str, prefix: str = "") -> int | None:
    if type(value) is int and 0 <= value <= MAX_BIGINT:
        return value  # the common case, as sent: every check below would pass it unchanged
    if value is None:
        return None
    if isinstance(value, bool):
        raise EventError(f"`{prefix}{key}` must be a non-negative integer")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise EventError(f"`{prefix}{key}` must be a non-negative integer") from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise EventError(f"`{prefix}{key}` must be a non-negative integer")
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise EventError(f"`{prefix}{key}` must be a non-negative integer")
    if value > MAX_BIGINT:
        raise EventError(f"`{prefix}{key}` is too large")
    return value


def _non_negative_number(value, key: str, prefix: str = "") -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise EventError(f"`{prefix}{key}` must be a non-negative number")
    if value >= MAX_COST:
        raise EventError(f"`{prefix}{key}` is too large")
    return value


def _metadata(body: dict, unknown: dict) -> dict | None:
    value = body.get("metadata")
    if value is not None and not isinstance(value, dict):
        value = {"metadata": value}
    if unknown:
        value = {**unknown, **(value or {})}  # the client's own metadata keys win
    return value


def _unknown(body: dict, known: frozenset) -> dict:
    if known.issuperset(body):  # nearly every body: only fields of the schema, found in one set test
        return {}
    return {k: v for k, v in body.items() if k not in known and v is not None}


def _put(record: dict, key: str, value) -> None:
    if value is not None:
        record[key] = value


# --- traces ---------------------------------------------------------------------------------

TRACE_FIELDS = frozenset(
    {
        "id",
        "timestamp",
        "name",
        "userId",
        "sessionId",
        "input",
        "output",
        "metadata",
        "release",
        "version",
        "tags",
        "public",
        "environment",
    }
)


def trace_record(body: dict, *, envelope_ts: datetime, event_id: str | None = None) -> dict:
    """`event_id`: the envelope id, from which a trace sent without an id gets a stable one."""
    return _checked(_trace_fields(body, envelope_ts, event_id))


def _trace_fields(body: dict, envelope_ts: datetime, event_id: str | None) -> dict:
    """`trace_record` before the contract check (`parse_batch` checks a batch's records at once)."""
    rec: dict = {"id": _id(body, "id") or (derived_id("trace", event_id) if event_id else uuid.uuid4().hex)}
    # As for an observation's startTime, a trace without its own timestamp takes the event's.
    rec["timestamp"] = _datetime(body, "timestamp") or envelope_ts
    # Written out rather than through `_put`, as in `_observation_fields`; read, and so refused, in
    # the same order.
    if (value := _string(body, "name", max_length=1000)) is not None:
        rec["name"] = value
    if (value := _string(body, "userId", max_length=1000)) is not None:
        rec["user_id"] = value
    if (value := _string(body, "sessionId", max_length=1000)) is not None:
        rec["session_id"] = value
    if (value := _string(body, "release", max_length=500)) is not None:
        rec["release"] = value
    if (value := _string(body, "version", max_length=500)) is not None:
        rec["version"] = value
    if (value := normalise_environment(_string(body, "environment"))) is not None:
        rec["environment"] = value
    if (value := _bool(body, "public")) is not None:
        rec["public"] = value
    tags = body.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            raise EventError("`tags` must be a list of strings")
        for tag in tags:  # a loop, not all(<generator>): no generator frame per trace
            if type(tag) is not str and not isinstance(tag, str):
                raise EventError("`tags` must be a list of strings")
        rec["tags"] = tags
    if (value := body.get("input")) is not None:
        rec["input"] = value
    if "output" in body and (value := messages.with_refusal_as_answer(body["output"])) is not None:
        rec["output"] = value
    if (value := _metadata(body, _unknown(body, TRACE_FIELDS))) is not None:
        rec["metadata"] = value
    return rec


# --- observations ---------------------------------------------------------------------------

OBSERVATION_FIELDS = frozenset(
    {
        "id",
        "traceId",
        "type",
        "name",
        "startTime",
        "endTime",
        "completionStartTime",
        "metadata",
        "input",
        "output",
        "level",
        "statusMessage",
        "parentObservationId",
        "version",
        "environment",
        "model",
        "modelParameters",
        "usage",
        "usageDetails",
        "costDetails",
        "promptName",
        "promptVersion",
    }
)

def _openai_usage(details: dict) -> dict | None:
    """OpenAI Chat Completions / Responses usage → Langfuse keys, with details subtracted so that
    `input`/`output` hold only the uncached, non-reasoning part. Extra integer keys are kept as they
    are (Langfuse falls back to the raw map there and double-counts cached input; we do not)."""
    shape = usage_rules.openai_shape(details)
    if shape is None:
        return None
    in_key, out_key, in_details, out_details = shape
    out: dict = {}
    input_total = _non_negative_int(details.get(in_key), in_key, "usageDetails.")
    output_total = _non_negative_int(details.get(out_key), out_key, "usageDetails.")
    for side, nested_key, total in (
        ("input", in_details, input_total),
        ("output", out_details, output_total),
    ):
        nested = details.get(nested_key) or {}
        if not isinstance(nested, dict):
            raise EventError(f"`usageDetails.{nested_key}` must be an object")
        if not nested:
            if total is not None:
                out[side] = total
            continue
        prefix = f"usageDetails.{nested_key}."
        rest = total
        for key, value in nested.items():
            count = _non_negative_int(value, key, prefix)
            if count is None:
                continue
            out[f"{side}_{key}"] = count
            if rest is not None:
                rest = max(rest - count, 0)
        if rest is not None:
            out[side] = rest
    total = _non_negative_int(details.get("total_tokens"), "total_tokens", "usageDetails.")
    if total is not None:
        out["total"] = total
    known = _CHAT_KEYS if shape is usage_rules.OPENAI_CHAT else _RESPONSES_KEYS
    for key, value in details.items():
        if key in known or isinstance(value, (dict, list)):
            continue
        count = _non_negative_int(value, key, "usageDetails.")
        if count is not None:
            out[key] = count
    return out


# Per OpenAI shape (`usage_rules.openai_shape`), the keys `_openai_usage` reads by name.
_CHAT_KEYS = frozenset({*usage_rules.OPENAI_CHAT, "total_tokens"})
_RESPONSES_KEYS = frozenset({*usage_rules.OPENAI_RESPONSES, "total_tokens"})


def _usage_details(raw: dict) -> dict:
    normalised = _openai_usage(raw)
    if normalised is not None:
        return normalised
    out = {}
    for key, value in raw.items():
        if value is None or isinstance(value, (dict, list)):
            continue
        out[key] = _non_negative_int(value, key, "usageDetails.")
    return out


def _legacy_usage(usage: dict, rec: dict) -> dict:
    """`usage` {input, output, total, unit, inputCost, outputCost, totalCost} or OpenAI
    {promptTokens, completionTokens, totalTokens} → usage map; costs go to the cost columns."""
    out: dict = {}
    for target, keys in (
        ("input", ("input", "promptTokens")),
        ("output", ("output", "completionTokens")),
        ("total", ("total", "totalTokens")),
    ):
        for key in keys:
            count = _non_negative_int(usage.get(key), key, "usage.")
            if count is not None:
                out[target] = count
                break
    unit = _choice(usage, "unit", USAGE_UNITS, "usage.unit")
    if unit is not None:
        out["unit"] = unit
    costs = {}
    for target, key in (("input", "inputCost"), ("output", "outputCost"), ("total", "totalCost")):
        cost = _non_negative_number(usage.get(key), key, "usage.")
        if cost is not None:
            costs[target] = cost
    if costs:
        rec["cost_details"] = {**costs, **rec.get("cost_details", {})}
    return out


def _tokens_from_usage(usage: dict, rec: dict, *, sum_total: bool, raw: dict | None = None) -> None:
    """Fill the token columns from a usage map (keys already normalised; `raw`: the OpenAI-shaped map
    as sent) by the shared rule, `ingest.rules.usage`."""
    if usage.get("unit") not in (None, "TOKENS"):
        return
    source = raw if raw is not None else usage
    rec.update(usage_rules.token_counts(source, total_of=usage if sum_total else None))


# Per error column: the metadata keys that fill it, first match wins.
ERROR_METADATA_KEYS = (
    ("error_type", ("exception.type", "error_type", "error.type")),
    ("error_message", ("exception.message", "error_message", "error.message")),
    ("error_stack", ("exception.stacktrace", "error_stack", "exception.stack", "stacktrace")),
)
# Every key `_errors_from_metadata` reads: metadata holding none of them (nearly all) fills no column,
# found with one set test instead of ten lookups.
ERROR_METADATA_READ = frozenset({"exception", *(key for _, keys in ERROR_METADATA_KEYS for key in keys)})


def _errors_from_metadata(metadata: dict | None, rec: dict) -> None:
    if not metadata or metadata.keys().isdisjoint(ERROR_METADATA_READ):
        return
    nested = metadata.get("exception") if isinstance(metadata.get("exception"), dict) else {}
    for column, keys in ERROR_METADATA_KEYS:
        for key in keys:
            value = metadata.get(key)
            if isinstance(value, str) and value:
                rec[column] = value
                break
        else:
            short = {"error_type": "type", "error_message": "message", "error_stack": "stacktrace"}[column]
            value = nested.get(short) or (nested.get("stack") if column == "error_stack" else None)
            if isinstance(value, str) and value:
                rec[column] = value


def observation_record(
    body: dict, *, obs_type: str, is_create: bool, envelope_ts: datetime, event_id: str | None = None
) -> dict:
    """`event_id`: the envelope id, from which an observation sent without an id gets a stable one."""
    return _checked(_observation_fields(body, obs_type, is_create, envelope_ts, event_id))


def _observation_fields(
    body: dict, obs_type: str, is_create: bool, envelope_ts: datetime, event_id: str | None
) -> dict:
    """`observation_record` before the contract check (`parse_batch` checks a batch's records at once)."""
    obs_id = _id(body, "id")
    if obs_id is None:
        if not is_create:
            raise EventError("`id` is required on an update: it names the observation to update")
        obs_id = derived_id("observation", event_id) if event_id else uuid.uuid4().hex
    rec: dict = {"id": obs_id, "type": obs_type}
    # Langfuse gives an observation without a trace a trace of its own. Derived from the observation
    # id, so that a replay, and every update of the observation, names the same trace.
    rec["trace_id"] = _id(body, "traceId") or derived_id("trace-of", obs_id)
    # Written out rather than through `_put` (one call less per field on every span); the fields
    # are read, and so refused, in the same order.
    if (value := _id(body, "parentObservationId")) is not None:
        rec["parent_observation_id"] = value
    if (value := _string(body, "name", max_length=1000)) is not None:
        rec["name"] = value
    start = _datetime(body, "startTime")
    if start is None and is_create:
        start = envelope_ts  # Langfuse: startTime defaults to the event's timestamp
    if start is not None:
        rec["start_time"] = start
    if (value := _datetime(body, "endTime")) is not None:
        rec["end_time"] = value
    elif obs_type == "EVENT" and is_create:
        rec["end_time"] = rec["start_time"]  # an event is a point in time
    # `key in body` first for the fields most events leave out: a reader finds None for an absent
    # key and refuses nothing, so it is only called for a key sent (a membership test costs a
    # fraction of the call; about 1 µs per span over the optional fields).
    if "completionStartTime" in body and (value := _datetime(body, "completionStartTime")) is not None:
        rec["completion_start_time"] = value
    if "level" in body and (value := _choice(body, "level", LEVELS)) is not None:
        rec["level"] = value
    if "statusMessage" in body and (value := _string(body, "statusMessage")) is not None:
        rec["status_message"] = value
    if "version" in body and (value := _string(body, "version", max_length=500)) is not None:
        rec["version"] = value
    if (value := normalise_environment(_string(body, "environment"))) is not None:
        rec["environment"] = value
    if "model" in body and (value := _string(body, "model", max_length=500)) is not None:
        rec["model"] = value
    params = _object(body, "modelParameters") if "modelParameters" in body else None
    if params:
        rec["model_parameters"] = params

    prompt_name = _string(body, "promptName", max_length=500) if "promptName" in body else None
    prompt_version = body.get("promptVersion")
    if (prompt_name is None) != (prompt_version is None):
        raise EventError("`promptName` and `promptVersion` must be sent together")
    if prompt_name is not None:
        if (
            isinstance(prompt_version, bool)
            or not isinstance(prompt_version, int)
            or not 0 <= prompt_version <= MAX_INT
        ):
            raise EventError("`promptVersion` must be a non-negative integer")
        rec["prompt_name"], rec["prompt_version"] = prompt_name, prompt_version

    cost_details = _object(body, "costDetails") if "costDetails" in body else None
    if cost_details:
        rec["cost_details"] = {
            k: _non_negative_number(v, k, "costDetails.") for k, v in cost_details.items() if v is not None
        }
    usage_details = _object(body, "usageDetails") if "usageDetails" in body else None
    usage = _object(body, "usage") if "usage" in body else None
    if usage_details:
        normalised = _usage_details(usage_details)
        rec["usage_details"] = normalised
        raw = usage_details if usage_rules.openai_shape(usage_details) else None
        _tokens_from_usage(normalised, rec, sum_total=True, raw=raw)
    elif usage:
        normalised = _legacy_usage(usage, rec)
        if normalised:
            rec["usage_details"] = normalised
            _tokens_from_usage(normalised, rec, sum_total=False)

    if "input" in body:
        _put(rec, "input", body["input"])
    if "output" in body and body["output"] is not None:
        output = messages.with_refusal_as_answer(body["output"])
        rec["output"] = output
        calls = messages.extract_tool_calls(output)
        if calls:
            rec["tool_calls"] = calls
        _put(rec, "finish_reason", messages.finish_reason(output))

    metadata = _metadata(body, _unknown(body, OBSERVATION_FIELDS))
    _put(rec, "metadata", metadata)
    _errors_from_metadata(metadata, rec)
    if rec.get("level") == "ERROR" and "error_message" not in rec and rec.get("status_message"):
        rec["error_message"] = rec["status_message"]
    if obs_type == "TOOL":
        _put(rec, "tool_name", rec.get("name"))
    return rec


# --- scores ---------------------------------------------------------------------------------

SCORE_FIELDS = frozenset(
    {
        "id",
        "traceId",
        "observationId",
        "sessionId",
        "datasetRunId",
        "name",
        "value",
        "dataType",
        "comment",
        "metadata",
        "configId",
        "environment",
        "source",
        "queueId",
        "timestamp",
        "executionTraceId",
    }
)


def score_record(body, *, source: str | None = None, event_id: str | None = None) -> dict:
    """A Langfuse ScoreBody → score record. `source` forces the source (browser feedback);
    `event_id` (a batch event's id) gives a score sent without an id a stable one."""
    return _checked(_score_fields(body, source, event_id))


def _score_fields(body, source: str | None, event_id: str | None) -> dict:
    """`score_record` before the contract check (`parse_batch` checks a batch's records at once)."""
    if not isinstance(body, dict):
        raise EventError("a score must be a JSON object")
    rec: dict = {"id": _id(body, "id") or (derived_id("score", event_id) if event_id else uuid.uuid4().hex)}
    rec["name"] = _string(body, "name", max_length=500, required=True)
    _put(rec, "trace_id", _id(body, "traceId"))
    _put(rec, "observation_id", _id(body, "observationId"))
    _put(rec, "session_id", _string(body, "sessionId", max_length=1000) or None)
    dataset_run_id = _string(body, "datasetRunId", max_length=200)
    if not (rec.get("trace_id") or rec.get("session_id") or dataset_run_id):
        raise EventError("a score needs `traceId`, `sessionId` or `datasetRunId`")
    if rec.get("observation_id") and not rec.get("trace_id"):
        raise EventError("`observationId` needs the `traceId` of its trace")

    data_type = _choice(body, "dataType", SCORE_DATA_TYPES)
    value = body.get("value")
    if value is None:
        raise EventError("`value` is required")
    if data_type is None:
        data_type = (
            "BOOLEAN"
            if isinstance(value, bool)
            else "NUMERIC"
            if isinstance(value, (int, float))
            else "CATEGORICAL"
        )
    if data_type == "NUMERIC":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise EventError("a NUMERIC score needs a finite number as `value`")
        rec["value"] = float(value)
    elif data_type == "BOOLEAN":
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)) or value not in (0, 1):
            raise EventError("a BOOLEAN score needs `value` 0 or 1")
        rec["value"] = float(value)
        rec["string_value"] = "True" if value == 1 else "False"
    else:
        if not isinstance(value, str):
            raise EventError(f"a {data_type} score needs a string as `value`")
        limit = 500 if data_type == "TEXT" else 1000
        if (data_type == "TEXT" and not value) or len(value) > limit:
            raise EventError(f"a {data_type} score `value` must be 1–{limit} characters")
        rec["string_value"] = value
    rec["data_type"] = data_type

    chosen = source if source is not None else _choice(body, "source", SCORE_SOURCES)
    _put(rec, "source", chosen)
    _put(rec, "comment", _string(body, "comment"))
    _put(rec, "config_id", _string(body, "configId", max_length=200))
    _put(rec, "environment", normalise_environment(_string(body, "environment")))
    _put(rec, "timestamp", _datetime(body, "timestamp"))
    extra = _unknown(body, SCORE_FIELDS)
    for key in ("datasetRunId", "queueId", "executionTraceId"):
        if body.get(key) is not None:
            extra[key] = body[key]
    _put(rec, "metadata", _metadata(body, extra))
    return rec


# --- batches --------------------------------------------------------------------------------

OBSERVATION_EVENTS = {
    "span-create": ("SPAN", True),
    "span-update": ("SPAN", False),
    "generation-create": ("GENERATION", True),
    "generation-update": ("GENERATION", False),
    "event-create": ("EVENT", True),
    "agent-create": ("AGENT", True),
    "tool-create": ("TOOL", True),
    "chain-create": ("CHAIN", True),
    "retriever-create": ("RETRIEVER", True),
    "evaluator-create": ("EVALUATOR", True),
    "embedding-create": ("EMBEDDING", True),
    "guardrail-create": ("GUARDRAIL", True),
}
LEGACY_OBSERVATION_TYPES = frozenset(
    {
        "SPAN",
        "GENERATION",
        "EVENT",
        "AGENT",
        "TOOL",
        "CHAIN",
        "RETRIEVER",
        "EVALUATOR",
        "EMBEDDING",
        "GUARDRAIL",
    }
)


@dataclass
class ParsedBatch:
    traces: list = field(default_factory=list)
    observations: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    successes: list = field(default_factory=list)  # envelope ids
    errors: list = field(default_factory=list)  # {"id","status","message","error"}
    # For each record (parallel to traces/observations/scores), the position in `successes` of the
    # event it came from, so a record refused later (PII redaction) turns exactly that event into an error.
    trace_events: list = field(default_factory=list)
    observation_events: list = field(default_factory=list)
    score_events: list = field(default_factory=list)
    score_typed: list = field(default_factory=list)  # per score: the client named its `dataType`


def _envelope(event) -> tuple[str, str, datetime, dict]:
    # `type(x) is T or isinstance(x, T)`: the exact type, which a parsed body always has, settled
    # without the isinstance call.
    if type(event) is not dict and not isinstance(event, dict):
        raise EventError("each batch item must be an object with id, type, timestamp and body")
    env_id = event.get("id")
    if (
        (type(env_id) is not str and not isinstance(env_id, str))
        or not env_id
        or len(env_id) > MAX_ENVELOPE_ID
        or "\r" in env_id
    ):
        raise EventError("the event `id` must be a string of 1–800 characters")
    event_type = event.get("type")
    if type(event_type) is not str and not isinstance(event_type, str):
        raise EventError("the event `type` is required")
    timestamp = _datetime(event, "timestamp")
    if timestamp is None:
        raise EventError("the event `timestamp` is required")
    body = event.get("body")
    if type(body) is not dict and not isinstance(body, dict):
        raise EventError("the event `body` must be an object")
    return env_id, event_type, timestamp, body


def _event_error(env_id: str, exc: EventError) -> dict:
    return {
        "id": env_id,
        "status": exc.status,
        "message": "Invalid request data" if exc.status == 400 else exc.error,
        "error": exc.message,
    }


def _bug(env_id: str, event_type: str) -> dict:
    """The entry of an event that a bug could not map; the other events go on."""
    logger.exception("could not map ingestion event %s (%s)", env_id, event_type)
    return {
        "id": env_id,
        "status": 500,
        "message": "Internal Server Error",
        "error": "the event could not be processed",
    }


def parse_batch(batch: list) -> ParsedBatch:
    """Validate and map every event on its own; order records as Langfuse merges them."""
    out = ParsedBatch()
    ordered: list[tuple[bool, datetime, int, str, str, dict, datetime]] = []
    for index, event in enumerate(batch):
        try:
            env_id, event_type, timestamp, body = _envelope(event)
            ordered.append(
                (event_type.endswith("-update"), timestamp, index, env_id, event_type, body, timestamp)
            )
        except EventError as exc:
            out.errors.append(
                _event_error(
                    event.get("id")
                    if isinstance(event, dict) and isinstance(event.get("id"), str)
                    else "unknown",
                    exc,
                )
            )
    # Langfuse applies creates before updates, each in timestamp order: the tuples' first three
    # items, the third (the event's position) unique, so no comparison reaches the fourth.
    ordered.sort()
    # Each event mapped on its own, in that order: (env_id, event_type, kind, record or error entry,
    # typed). The records are then checked against the contract all at once (`check_records`: one
    # encoding pass for the batch), and the events answered in the same order as before.
    mapped: list[tuple[str, str, str | None, dict | None, bool]] = []
    for _, _, _, env_id, event_type, body, timestamp in ordered:
        try:
            if event_type == "trace-create":
                mapped.append((env_id, event_type, "trace", _trace_fields(body, timestamp, env_id), False))
            elif event_type in OBSERVATION_EVENTS:
                obs_type, is_create = OBSERVATION_EVENTS[event_type]
                record = _observation_fields(body, obs_type, is_create, timestamp, env_id)
                mapped.append((env_id, event_type, "observation", record, False))
            elif event_type in ("observation-create", "observation-update"):
                obs_type = body.get("type")
                if not isinstance(obs_type, str) or obs_type not in LEGACY_OBSERVATION_TYPES:
                    raise EventError(
                        "`body.type` must be GENERATION, SPAN or EVENT (or another observation type)"
                    )
                record = _observation_fields(
                    body, obs_type, event_type == "observation-create", timestamp, env_id
                )
                mapped.append((env_id, event_type, "observation", record, False))
            elif event_type == "score-create":
                record = _score_fields(body, None, env_id)
                mapped.append((env_id, event_type, "score", record, body.get("dataType") is not None))
            elif event_type == "sdk-log":  # client-side diagnostics: acknowledged, not stored
                mapped.append((env_id, event_type, None, None, False))
            else:
                raise EventError(f"unsupported event type {event_type!r}")
        except EventError as exc:
            mapped.append((env_id, event_type, "error", _event_error(env_id, exc), False))
        except Exception:  # a bug mapping one event must not cost the client the other events
            mapped.append((env_id, event_type, "error", _bug(env_id, event_type), False))
    try:
        problems = check_records([item[3] for item in mapped if item[2] is not None and item[2] != "error"])
    except Exception:  # a record that breaks the check itself (a bug): each is checked on its own below
        problems = None
    position = 0
    for env_id, event_type, kind, value, typed in mapped:
        if kind == "error":
            out.errors.append(value)
            continue
        if kind is not None:
            if problems is not None:
                problem = problems[position]
                position += 1
            else:
                try:
                    check_record(value)
                    problem = None
                except RecordError as exc:
                    problem = exc
                except Exception:
                    out.errors.append(_bug(env_id, event_type))
                    continue
            if problem is not None:
                out.errors.append(_event_error(env_id, EventError(problem.message)))
                continue
            if kind == "observation":
                out.observations.append(value)
                out.observation_events.append(len(out.successes))
            elif kind == "trace":
                out.traces.append(value)
                out.trace_events.append(len(out.successes))
            else:
                out.scores.append(value)
                out.score_events.append(len(out.successes))
                out.score_typed.append(typed)
        out.successes.append(env_id)
    return out
