"""Our rows in the JSON shapes the Langfuse SDKs parse (their pydantic models), plus our own fields.

Langfuse's models accept unknown keys, so Lookglass additions (status, token kinds, tool calls,
errors, cost source) ride along without breaking the SDKs. Where the SDKs insist on a non-null
number (trace latency and cost, usage counts, a categorical score's value) an absent value is 0,
which is also what Langfuse itself answers.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

from scores.models import Score, ScoreDataType, ScoreSource
from traces.models import Observation, Trace
from traces.public.http import dumps
from traces.selectors import TraceSummary

# (our column, Langfuse usage key). Langfuse's usageDetails use these names after normalisation.
USAGE_KEYS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("total_tokens", "total"),
    ("cached_input_tokens", "input_cached_tokens"),
    ("cache_write_tokens", "input_cache_creation"),
    ("reasoning_tokens", "output_reasoning_tokens"),
)
# Raw usage keys that the columns above already account for (provider spellings of the same counts).
_USAGE_ALIASES = frozenset(
    {
        "input",
        "output",
        "total",
        "unit",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "input_tokens",
        "output_tokens",
        "promptTokens",
        "completionTokens",
        "totalTokens",
        "inputTokens",
        "outputTokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "input_cached_tokens",
        "input_cache_read",
        "input_cache_creation",
        "cached_tokens",
        "cachedTokens",
        "reasoning_tokens",
        "output_reasoning_tokens",
        "reasoningTokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "input_tokens_details",
        "output_tokens_details",
        # Langfuse's and the providers' flat names for cache and reasoning counts (ingest.rules.usage
        # reads them into the columns; a test keeps the two lists in step).
        "input_cached",
        "input_cache_write",
        "input_cache_creation_5m",
        "input_cache_creation_1h",
        "cached_input_tokens",
        "cache_read_tokens",
        "cache_read",
        "cache_write_input_tokens",
        "cache_write_tokens",
        "cache_creation",
        "output_reasoning",
        "reasoning",
    }
)
TRACE_USAGE_NAMES = (
    ("input_tokens", "input"),
    ("cached_input_tokens", "cachedInput"),
    ("cache_write_tokens", "cacheWrite"),
    ("output_tokens", "output"),
    ("reasoning_tokens", "reasoning"),
    ("total_tokens", "total"),
)
METADATA_PREVIEW_CHARS = 200


def _float(value) -> float | None:
    return None if value is None else float(value)


def _or_none(text: str | None) -> str | None:
    return text if text else None


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _dict_or_none(value):
    if value is None or isinstance(value, dict):
        return value
    # The SDKs type metadata as an object; keep a stray scalar or list instead of failing the parse.
    return {"value": value}


def html_path(project_id, trace_id: str) -> str:
    return f"/project/{project_id}/traces/{quote(trace_id, safe='')}"


def _map_values(params) -> dict | None:
    """modelParameters as Langfuse's v1 models type them: values are str, number, bool or [str].

    Nested objects and lists of non-strings (e.g. a response_format schema) become JSON text, so the
    v2 SDK's validation does not reject the whole observation.
    """
    if not isinstance(params, dict):
        return None
    out = {}
    for key, value in params.items():
        if (
            value is None
            or isinstance(value, (str, int, float, bool))
            or isinstance(value, list)
            and all(isinstance(v, str) for v in value)
        ):
            out[key] = value
        else:
            out[key] = dumps(value).decode()
    return out


def usage_details(observation: Observation) -> dict[str, int]:
    """Langfuse `usageDetails`: our token kinds in Langfuse's keys, plus the sender's own other kinds.

    Langfuse-compatible consumers sum every key containing "input" (or "output"), so a count may be
    here under one name only: a provider's spelling of a kind we have a column for, or a raw attribute
    name (`gen_ai.usage.input_tokens`, kept in usage_details by older writes), is left out.
    """
    details: dict[str, int] = {}
    raw = observation.usage_details if isinstance(observation.usage_details, dict) else {}
    for key, value in raw.items():
        number = _as_int(value)
        if number is not None and key not in _USAGE_ALIASES and "." not in key:
            details[key] = number
    for column, key in USAGE_KEYS:
        value = getattr(observation, column)
        if value is not None:
            details[key] = int(value)
    return details


def _is_amount(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def cost_details(observation: Observation) -> dict[str, float]:
    """Langfuse `costDetails`: disjoint entries that sum to `total`, as Langfuse defines them.

    The stored details are disjoint (fresh input apart from cache reads and writes, output apart from
    reasoning). The input/output cost COLUMNS are not: they hold a side's whole cost, so they fill
    `input`/`output` only for a call stored without details (overriding `input` with the column used
    to count cache costs twice).
    """
    raw = observation.cost_details if isinstance(observation.cost_details, dict) else {}
    details = {key: float(value) for key, value in raw.items() if _is_amount(value)}
    if not any(key != "total" for key in details):
        for column, key in (("input_cost", "input"), ("output_cost", "output")):
            value = getattr(observation, column)
            if value is not None:
                details[key] = float(value)
    if observation.total_cost is not None:
        details["total"] = float(observation.total_cost)
    return details


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _lookglass_observation_fields(o: Observation) -> dict:
    return {
        "status": o.status,
        "responseModel": _or_none(o.response_model),
        "finishReason": _or_none(o.finish_reason),
        "inputTokens": o.input_tokens,
        "cachedInputTokens": o.cached_input_tokens,
        "cacheWriteTokens": o.cache_write_tokens,
        "outputTokens": o.output_tokens,
        "reasoningTokens": o.reasoning_tokens,
        "totalTokens": o.total_tokens,
        "costSource": o.cost_source,
        "toolCalls": o.tool_calls if isinstance(o.tool_calls, list) else [],
        "toolName": _or_none(o.tool_name),
        "toolCallId": _or_none(o.tool_call_id),
        "errorType": _or_none(o.error_type),
        "errorMessage": _or_none(o.error_message),
        "errorStack": _or_none(o.error_stack),
        "redactions": _redactions(o.redactions),
        # The outer generation this one repeats (the same model call, counted once in trace totals).
        "duplicateOf": _or_none(o.duplicate_of),
    }


def _redactions(value) -> dict:
    """What PII redaction removed before storage: {field: {detector: count}}, never values."""
    return value if isinstance(value, dict) else {}


def observation_view(o: Observation) -> dict:
    """Langfuse `ObservationsView` (v1 observations API and trace detail)."""
    has_tokens = any(getattr(o, column) is not None for column, _ in USAGE_KEYS)
    return {
        "id": o.id,
        "traceId": o.trace_id,
        "type": o.type,
        "name": _or_none(o.name),
        "startTime": o.start_time,
        "endTime": o.end_time,
        "completionStartTime": o.completion_start_time,
        "model": _or_none(o.model),
        "modelParameters": _map_values(o.model_parameters),
        "input": o.input,
        "output": o.output,
        "metadata": _dict_or_none(o.metadata),
        "version": _or_none(o.version),
        "usage": {
            "input": o.input_tokens or 0,
            "output": o.output_tokens or 0,
            "total": o.total_tokens or 0,
            "unit": "TOKENS" if has_tokens else None,
            "inputCost": _float(o.input_cost),
            "outputCost": _float(o.output_cost),
            "totalCost": _float(o.total_cost),
        },
        "usageDetails": usage_details(o),
        "costDetails": cost_details(o),
        "level": o.level,
        "statusMessage": _or_none(o.status_message),
        "parentObservationId": _or_none(o.parent_observation_id),
        "promptId": None,
        "promptName": _or_none(o.prompt_name),
        "promptVersion": o.prompt_version,
        "modelId": None,
        "inputPrice": None,
        "outputPrice": None,
        "totalPrice": None,
        "calculatedInputCost": _float(o.input_cost),
        "calculatedOutputCost": _float(o.output_cost),
        "calculatedTotalCost": _float(o.total_cost),
        "latency": _seconds(o.latency_ms),
        "timeToFirstToken": _seconds(o.time_to_first_token_ms),
        "environment": o.environment or "default",
        "createdAt": o.created_at,
        "updatedAt": o.updated_at,
        **_lookglass_observation_fields(o),
    }


def trace_core(t: Trace, *, include_io: bool = True) -> dict:
    """Langfuse `Trace`."""
    return {
        "id": t.id,
        "projectId": str(t.project_id),
        "timestamp": t.timestamp,
        "name": _or_none(t.name),
        "input": t.input if include_io else None,
        "output": t.output if include_io else None,
        "sessionId": _or_none(t.session_id),
        "release": _or_none(t.release),
        "version": _or_none(t.version),
        "userId": _or_none(t.user_id),
        "metadata": _dict_or_none(t.metadata) if include_io else None,
        "tags": list(t.tags or []),
        "public": bool(t.public),
        "environment": t.environment or "default",
        "createdAt": t.created_at,
        "updatedAt": t.updated_at,
        "redactions": _redactions(t.redactions),
    }


def trace_metrics(summary: TraceSummary | None) -> dict:
    summary = summary or TraceSummary()
    return {
        "latency": summary.latency_seconds,
        "totalCost": float(summary.total_cost),
        "status": summary.status,
        "models": summary.models,
        "usage": {name: int(summary.usage.get(column, 0)) for column, name in TRACE_USAGE_NAMES},
        "inputCost": _float(summary.input_cost),
        "outputCost": _float(summary.output_cost),
        "observationCount": summary.observation_count,
        # `totalCost` stays a number (every Langfuse SDK parses it as one); these say how many calls
        # it leaves out because they have no price, and for which models. A call's own cost is null.
        "unpricedObservations": summary.unpriced_observations,
        "unpricedModels": list(summary.unpriced_models),
    }


# Langfuse's documented value when the `metrics` field group is left out.
EXCLUDED_METRICS = {"latency": -1, "totalCost": -1}


def trace_with_details(
    t: Trace, *, summary: TraceSummary | None, score_ids: list[str], groups: frozenset[str]
) -> dict:
    """Langfuse `TraceWithDetails` (list item): observation and score ids only."""
    data = trace_core(t, include_io="io" in groups)
    data["htmlPath"] = html_path(t.project_id, t.id)
    data.update(trace_metrics(summary) if "metrics" in groups else EXCLUDED_METRICS)
    data["observations"] = list(summary.observation_ids) if summary and "observations" in groups else []
    data["scores"] = list(score_ids) if "scores" in groups else []
    return data


def score_v1(s: Score) -> dict:
    """Langfuse `ScoreV1` (a trace's scores)."""
    string_value = s.string_value
    if s.data_type == ScoreDataType.BOOLEAN and not string_value and s.value is not None:
        string_value = "True" if s.value else "False"
    data = {
        "id": s.id,
        "traceId": s.trace_id,
        "sessionId": _or_none(s.session_id),
        "observationId": _or_none(s.observation_id),
        "name": s.name,
        "dataType": s.data_type,
        # Langfuse knows API, EVAL and ANNOTATION; end-user feedback arrives there as API.
        "source": ScoreSource.API if s.source == ScoreSource.USER else s.source,
        "endUserFeedback": s.source == ScoreSource.USER,
        "timestamp": s.timestamp,
        "createdAt": s.created_at,
        "updatedAt": s.updated_at,
        "authorUserId": _or_none(s.author_user_id),
        "comment": _or_none(s.comment),
        "metadata": _dict_or_none(s.metadata),
        "configId": _or_none(s.config_id),
        "queueId": None,
        "environment": s.environment or "default",
        "redactions": _redactions(s.redactions),
    }
    if s.data_type != ScoreDataType.TEXT:
        # The SDKs require a number; Langfuse stores 0 for a categorical score without a mapping.
        data["value"] = float(s.value) if s.value is not None else 0.0
    if s.data_type != ScoreDataType.NUMERIC:
        data["stringValue"] = string_value
    return data


def trace_with_full_details(
    t: Trace,
    *,
    observations: list[Observation],
    scores: list[Score],
    summary: TraceSummary,
    groups: frozenset[str],
) -> dict:
    """Langfuse `TraceWithFullDetails`: observations and scores as full objects."""
    data = trace_core(t, include_io="io" in groups)
    data["htmlPath"] = html_path(t.project_id, t.id)
    data.update(trace_metrics(summary) if "metrics" in groups else EXCLUDED_METRICS)
    data["observations"] = [observation_view(o) for o in observations] if "observations" in groups else []
    data["scores"] = [score_v1(s) for s in scores] if "scores" in groups else []
    return data


def session(row, *, project_id) -> dict:
    return {
        "id": row.id,
        "createdAt": row.created_at,
        "projectId": str(project_id),
        "environment": row.environment or "default",
    }


# --- v2 observations: field groups -------------------------------------------------------------

V2_GROUPS = (
    "core",
    "basic",
    "time",
    "io",
    "metadata",
    "model",
    "usage",
    "prompt",
    "metrics",
    "trace_context",
    # Lookglass groups:
    "tools",
    "error",
)
V2_DEFAULT_GROUPS = ("core", "basic")


def _io_text(value, *, as_json: bool):
    # Langfuse v2 returns input/output as the stored text: strings as they are, JSON serialised.
    if as_json or value is None or isinstance(value, str):
        return value
    return dumps(value).decode()


def _metadata_preview(metadata, expand: frozenset[str]):
    metadata = _dict_or_none(metadata)
    if not metadata:
        return metadata
    out = {}
    for key, value in metadata.items():
        if key in expand:
            out[key] = value
            continue
        text = value if isinstance(value, str) else dumps(value).decode()
        out[key] = text[:METADATA_PREVIEW_CHARS] + "..." if len(text) > METADATA_PREVIEW_CHARS else value
    return out


def observation_v2(
    o: Observation,
    *,
    project_id,
    trace: Trace | None,
    groups: frozenset[str],
    expand_metadata: frozenset[str],
    io_as_json: bool,
) -> dict:
    """Langfuse `ObservationV2`: core fields always, other groups on request."""
    data = {
        "id": o.id,
        "traceId": o.trace_id,
        "startTime": o.start_time,
        "endTime": o.end_time,
        "projectId": str(project_id),
        "parentObservationId": _or_none(o.parent_observation_id),
        "type": o.type,
    }
    if "basic" in groups:
        data.update(
            name=_or_none(o.name),
            level=o.level,
            statusMessage=_or_none(o.status_message),
            version=_or_none(o.version),
            environment=o.environment or "default",
            bookmarked=False,
            public=bool(trace.public) if trace else False,
            userId=_or_none(trace.user_id) if trace else None,
            sessionId=_or_none(trace.session_id) if trace else None,
            isRootObservation=not o.parent_observation_id,
            status=o.status,
            redactions=_redactions(o.redactions),
        )
    if "time" in groups:
        data.update(
            completionStartTime=o.completion_start_time, createdAt=o.created_at, updatedAt=o.updated_at
        )
    if "io" in groups:
        data.update(
            input=_io_text(o.input, as_json=io_as_json), output=_io_text(o.output, as_json=io_as_json)
        )
    if "metadata" in groups:
        data["metadata"] = _metadata_preview(o.metadata, expand_metadata)
    if "model" in groups:
        data.update(
            model=_or_none(o.model),
            internalModelId=None,
            modelParameters=o.model_parameters if isinstance(o.model_parameters, dict) else None,
            modelId=None,
            inputPrice=None,
            outputPrice=None,
            totalPrice=None,
            responseModel=_or_none(o.response_model),
            finishReason=_or_none(o.finish_reason),
        )
    if "usage" in groups:
        data.update(
            usageDetails=usage_details(o),
            costDetails=cost_details(o),
            totalCost=_float(o.total_cost),
            usagePricingTierName=None,
            inputTokens=o.input_tokens,
            cachedInputTokens=o.cached_input_tokens,
            cacheWriteTokens=o.cache_write_tokens,
            outputTokens=o.output_tokens,
            reasoningTokens=o.reasoning_tokens,
            totalTokens=o.total_tokens,
            costSource=o.cost_source,
            duplicateOf=_or_none(o.duplicate_of),
        )
    if "prompt" in groups:
        data.update(promptId=None, promptName=_or_none(o.prompt_name), promptVersion=o.prompt_version)
    if "metrics" in groups:
        data.update(latency=_seconds(o.latency_ms), timeToFirstToken=_seconds(o.time_to_first_token_ms))
    if "trace_context" in groups:
        data.update(
            tags=list(trace.tags or []) if trace else [],
            release=_or_none(trace.release) if trace else None,
            traceName=_or_none(trace.name) if trace else None,
        )
    if "tools" in groups:
        data.update(
            toolCalls=o.tool_calls if isinstance(o.tool_calls, list) else [],
            toolName=_or_none(o.tool_name),
            toolCallId=_or_none(o.tool_call_id),
        )
    if "error" in groups:
        data.update(
            errorType=_or_none(o.error_type),
            errorMessage=_or_none(o.error_message),
            errorStack=_or_none(o.error_stack),
        )
    return data
