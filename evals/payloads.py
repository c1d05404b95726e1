"""Request bodies of the Langfuse datasets API, checked field by field into plain dicts.

Only the keys a client sent appear in the result: `POST /dataset-items` on an existing id is a
partial update (fields not sent, or sent as null, keep their stored values).
Unknown keys are ignored, as Langfuse's request schemas do for these bodies, so newer SDKs keep
working.
"""

from __future__ import annotations

from datetime import UTC, datetime

from evals.models import MAX_ITEM_ID_LENGTH, DatasetItemStatus
from ingest.contract import RecordError, check_json
from prompts.errors import InvalidRequest

MAX_NAME_LENGTH = 255
MAX_SOURCE_ID_LENGTH = 200


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object.")
    return body


def _name(body: dict, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"`{key}` is required: a non-empty string.")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"`{key}` may be at most {MAX_NAME_LENGTH} characters.")
    if "\x00" in value:
        raise InvalidRequest(f"`{key}` must not contain NUL characters.")
    return value


def _optional_string(body: dict, key: str, *, max_length: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"`{key}` must be a string or null.")
    if max_length is not None and len(value) > max_length:
        raise InvalidRequest(f"`{key}` may be at most {max_length} characters.")
    return sanitize(value)


def _json_value(body: dict, key: str):
    value = body.get(key)
    try:
        check_json(value, key)
    except RecordError as exc:
        raise InvalidRequest(str(exc)) from None
    return sanitize(value)


def _schema(body: dict, key: str):
    value = _json_value(body, key)
    if value is not None and not isinstance(value, (dict, bool)):
        raise InvalidRequest(f"`{key}` must be a JSON Schema (an object) or null.")
    return value


def _datetime(body: dict, key: str) -> datetime | None:
    return parse_datetime(body.get(key), key)


def parse_datetime(raw, key: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidRequest(f"`{key}` must be an ISO 8601 datetime string.")
    text = raw.strip().replace(" ", "+")  # an unencoded `+00:00` in a query string arrives as a space
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise InvalidRequest(f"`{key}` must be an ISO 8601 datetime such as 2026-01-31T00:00:00Z, not {raw!r}.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sanitize(value):
    """PostgreSQL text and jsonb refuse NUL characters; Langfuse strips control characters from
    dataset items too. NULs become U+FFFD, everything else is kept as sent."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {sanitize(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    return value


def parse_dataset(body) -> dict:
    """`POST /api/public/v2/datasets`: {name, description?, metadata?, inputSchema?, expectedOutputSchema?}."""
    body = _object(body)
    fields = {"name": _name(body, "name")}
    if "description" in body:
        fields["description"] = _optional_string(body, "description")
    if "metadata" in body:
        fields["metadata"] = _json_value(body, "metadata")
    for key, field in (("inputSchema", "input_schema"), ("expectedOutputSchema", "expected_output_schema")):
        if key in body:
            fields[field] = _schema(body, key)
    return fields


def parse_item(body) -> tuple[str, str | None, dict]:
    """`POST /api/public/dataset-items` → (dataset name, item id or None, the fields sent)."""
    body = _object(body)
    dataset_name = _name(body, "datasetName")
    item_id = body.get("id")
    if item_id is not None:
        if not isinstance(item_id, str) or not 1 <= len(item_id) <= MAX_ITEM_ID_LENGTH:
            raise InvalidRequest(f"`id` must be a string of 1 to {MAX_ITEM_ID_LENGTH} characters.")
        if "\x00" in item_id:
            raise InvalidRequest("`id` must not contain NUL characters.")
    fields: dict = {}
    for key, field in (("input", "input"), ("expectedOutput", "expected_output"), ("metadata", "metadata")):
        if key in body:
            fields[field] = _json_value(body, key)
    for key, field in (("sourceTraceId", "source_trace_id"), ("sourceObservationId", "source_observation_id")):
        if key in body:
            fields[field] = _optional_string(body, key, max_length=MAX_SOURCE_ID_LENGTH)
    if body.get("status") is not None:
        if body["status"] not in DatasetItemStatus.values:
            raise InvalidRequest(f"`status` must be one of {', '.join(DatasetItemStatus.values)}.")
        fields["status"] = body["status"]
    return dataset_name, item_id, fields


def parse_run_item(body) -> dict:
    """`POST /api/public/dataset-run-items`: {runName, runDescription?, metadata?, datasetItemId,
    traceId?, observationId?, datasetVersion?, createdAt?}; a trace or an observation is required."""
    body = _object(body)
    fields = {
        "run_name": _name(body, "runName"),
        "run_description": _optional_string(body, "runDescription"),
        "metadata": _json_value(body, "metadata"),
        "dataset_item_id": _name(body, "datasetItemId"),
        "trace_id": _optional_string(body, "traceId", max_length=MAX_SOURCE_ID_LENGTH),
        "observation_id": _optional_string(body, "observationId", max_length=MAX_SOURCE_ID_LENGTH),
        "dataset_version": _datetime(body, "datasetVersion"),
        "created_at": _datetime(body, "createdAt"),
    }
    if not fields["trace_id"] and not fields["observation_id"]:
        raise InvalidRequest("give `traceId` or `observationId`: the trace or observation the run produced.")
    return fields
