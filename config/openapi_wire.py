"""OpenAPI descriptions of the endpoints that are plain Django views, not DRF: the Langfuse-compatible
wire endpoints (ingestion, OTLP, scores, score configs, prompts, datasets), browser feedback, redaction,
health/ready and the SDKs' auth check.

Those views shape their answers byte for byte as the SDKs expect, so they stay plain views and
drf-spectacular cannot see them. This module adds them to the generated schema as a postprocessing
hook (`SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]`), written from the views' behaviour and
/work/shared/reference/langfuse-api.md. It imports none of the views on purpose: the schema must not
depend on where they live (they move between apps). `tests/tenancy/test_openapi.py` walks the URL resolver
and fails if an API route is missing here or in the DRF part of the schema.
"""

from __future__ import annotations

import copy

from evals.models import MAX_ITEM_ID_LENGTH, DatasetItemStatus

# --- building blocks -------------------------------------------------------------------------------

JSON = "application/json"
PROTOBUF = "application/x-protobuf"

# Security requirements: alternatives (OR), as OpenAPI reads a list of objects.
SECRET = [{"projectKeyBasic": []}, {"projectKeyBearer": []}]
SECRET_OR_PUBLIC = [*SECRET, {"publicKeyBearer": []}]
NONE: list = [{}]

SECURITY_SCHEMES = {
    "projectKeyBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "Project public key (pk-lg-…) as username, secret key (sk-lg-…) as password.",
    },
    "projectKeyBearer": {"type": "http", "scheme": "bearer", "description": "The project's secret key (sk-lg-…)."},
    "publicKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The project's public key (pk-lg-…) alone: browser-safe, accepted only for end-user "
        "feedback (`POST /api/v1/feedback`, `POST /api/public/scores`), subject to the project's allowed "
        "origins and the per-key and per-IP rate limits.",
    },
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "The challenge (Basic or Bearer).", "schema": {"type": "string"}}}


def _errors(*statuses: int) -> dict:
    """Langfuse-shaped error answers: `{"message": …, "error": "<Kind>"}`."""
    text = {
        400: "Malformed body or parameters",
        401: "Missing, malformed, unknown, revoked or expired key",
        403: "Refused for this key or origin",
        404: "Not found (another project's object answers the same)",
        405: "Method not allowed (`Allow` lists the methods)",
        409: "Conflicts with an existing object",
        413: "Body larger than the endpoint's limit after decompression",
        415: "Unsupported Content-Type or Content-Encoding",
        422: "Cannot be processed (e.g. the redaction policy could not be applied: nothing was stored)",
        429: "Rate limited (`Retry-After`)",
        503: "A database is unavailable; nothing was stored, retry after `Retry-After` seconds",
    }
    out = {}
    for status in statuses:
        headers = None
        if status in (429, 503):
            headers = RETRY_AFTER
        elif status == 401:
            headers = WWW_AUTHENTICATE
        out[str(status)] = _json(ref("LangfuseError"), text[status], headers)
    return out


def _param(name: str, where: str = "query", schema: dict | None = None, description: str = "", required=None):
    param = {"name": name, "in": where, "schema": schema or {"type": "string"}}
    if description:
        param["description"] = description
    if where == "path" or required:
        param["required"] = True
    return param


def _op(operation_id: str, summary: str, tag: str, security: list, responses: dict, *, description: str = "",
        request: dict | None = None, parameters: list | None = None) -> dict:
    operation = {"operationId": operation_id, "summary": summary, "tags": [tag], "security": security,
                 "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if request is not None:
        operation["requestBody"] = request
    return operation


def _json_body(schema: dict, description: str = "", required: bool = True) -> dict:
    body = {"required": required, "content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    return body


ANY = {"description": "Any JSON value."}
NULLABLE_STRING = {"type": "string", "nullable": True}
PAGE = [
    _param("page", schema={"type": "integer", "minimum": 1, "default": 1}),
    _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
]
ENCODING = _param(
    "Content-Encoding", "header", {"type": "string", "enum": ["gzip", "deflate", "identity"]},
    "Compressed bodies are inflated up to the endpoint's limit (a larger result is a 413).",
)

# --- components ------------------------------------------------------------------------------------

SCORE_DATA_TYPES = ["NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT", "CORRECTION"]
CONFIG_DATA_TYPES = ["NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT"]
EVENT_TYPES = [
    "trace-create", "span-create", "span-update", "generation-create", "generation-update", "event-create",
    "agent-create", "tool-create", "chain-create", "retriever-create", "evaluator-create", "embedding-create",
    "guardrail-create", "observation-create", "observation-update", "score-create", "sdk-log",
]

DATASET_ITEM_STATUSES = list(DatasetItemStatus.values)
_DATASET_PROPERTIES = {
    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
    "description": NULLABLE_STRING, "metadata": {**ANY, "nullable": True},
    "inputSchema": {**ANY, "nullable": True, "description": "JSON Schema every item's input must match."},
    "expectedOutputSchema": {**ANY, "nullable": True,
                             "description": "JSON Schema every item's expected output must match."},
    "projectId": {"type": "string", "format": "uuid"},
    "createdAt": {"type": "string", "format": "date-time"},
    "updatedAt": {"type": "string", "format": "date-time"},
}
_RUN_PROPERTIES = {
    "id": {"type": "string"}, "name": {"type": "string"},  # the experiment id (16 hex; UUID for older runs)
    "description": NULLABLE_STRING, "metadata": {**ANY, "nullable": True},
    "datasetId": {"type": "string", "format": "uuid"}, "datasetName": {"type": "string"},
    "createdAt": {"type": "string", "format": "date-time"},
    "updatedAt": {"type": "string", "format": "date-time"},
}

COMPONENTS: dict[str, dict] = {
    "LangfuseError": {
        "type": "object",
        "description": "Langfuse's error shape. `error` is the kind (UnauthorizedError, InvalidRequestError, "
        "LangfuseNotFoundError, …) or, on validation failures with `message: \"Invalid request data\"`, the "
        "details.",
        "properties": {"message": {"type": "string"}, "error": ANY},
        "required": ["message"],
    },
    "PageMeta": {
        "type": "object",
        "properties": {
            "page": {"type": "integer"}, "limit": {"type": "integer"},
            "totalItems": {"type": "integer"}, "totalPages": {"type": "integer"},
        },
        "required": ["page", "limit", "totalItems", "totalPages"],
    },
    # ingestion
    "IngestionEvent": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 800,
                   "description": "Envelope id, unique per delivery (replays are idempotent)."},
            "type": {"type": "string", "enum": EVENT_TYPES},
            "timestamp": {"type": "string", "format": "date-time", "description": "Orders the events."},
            "metadata": {**ANY, "nullable": True},
            "body": {"anyOf": [ref("IngestionTraceBody"), ref("IngestionObservationBody"), ref("ScoreBody"),
                               {"type": "object", "properties": {"log": ANY}}]},
        },
        "required": ["id", "type", "timestamp", "body"],
    },
    "IngestionRequest": {
        "type": "object",
        "properties": {
            "batch": {"type": "array", "items": ref("IngestionEvent"), "maxItems": 10000},
            "metadata": {**ANY, "nullable": True, "description": "SDK metadata; not stored."},
        },
        "required": ["batch"],
    },
    "IngestionTraceBody": {
        "type": "object",
        "description": "`trace-create`: creates or merges a trace (metadata deep-merged, tags unioned, "
        "first-write fields kept).",
        "properties": {
            "id": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
            "name": {"type": "string"}, "userId": {"type": "string"}, "sessionId": {"type": "string"},
            "input": ANY, "output": ANY, "metadata": ANY, "release": {"type": "string"},
            "version": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
            "public": {"type": "boolean"}, "environment": {"type": "string"},
        },
    },
    "IngestionObservationBody": {
        "type": "object",
        "description": "`span-*`, `generation-*`, `event-create` and the other observation types.",
        "properties": {
            "id": {"type": "string"}, "traceId": {"type": "string"}, "parentObservationId": {"type": "string"},
            "name": {"type": "string"}, "startTime": {"type": "string", "format": "date-time"},
            "endTime": {"type": "string", "format": "date-time"},
            "completionStartTime": {"type": "string", "format": "date-time"},
            "input": ANY, "output": ANY, "metadata": ANY,
            "level": {"type": "string", "enum": ["DEBUG", "DEFAULT", "WARNING", "ERROR"]},
            "statusMessage": {"type": "string"}, "version": {"type": "string"}, "environment": {"type": "string"},
            "model": {"type": "string"}, "modelParameters": {"type": "object", "additionalProperties": ANY},
            "usage": {"type": "object", "additionalProperties": ANY,
                      "description": "Legacy {input, output, total, unit, inputCost, outputCost, totalCost}."},
            "usageDetails": {"type": "object", "additionalProperties": ANY},
            "costDetails": {"type": "object", "additionalProperties": {"type": "number"}},
            "promptName": {"type": "string"}, "promptVersion": {"type": "integer"},
        },
    },
    "IngestionSuccess": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "status": {"type": "integer", "example": 201}},
        "required": ["id", "status"],
    },
    "IngestionFailure": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The envelope id (or `unknown`)."},
            "status": {"type": "integer", "example": 400}, "message": {"type": "string"}, "error": ANY,
        },
        "required": ["id", "status", "message"],
    },
    "IngestionResponse": {
        "type": "object",
        "description": "207 Multi-Status: each event succeeded or failed on its own; the successes are stored.",
        "properties": {
            "successes": {"type": "array", "items": ref("IngestionSuccess")},
            "errors": {"type": "array", "items": ref("IngestionFailure")},
        },
        "required": ["successes", "errors"],
    },
    "IngestionBatchError": {
        "type": "object",
        "description": "The envelope itself is unusable (not an object, `batch` not a list, too many events).",
        "properties": {"message": {"type": "string"}, "errors": {"type": "array", "items": ANY}},
        "required": ["message"],
    },
    # scores
    "ScoreBody": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "Generated when absent (always ours with a public key)."},
            "name": {"type": "string", "minLength": 1},
            "value": {"oneOf": [{"type": "number"}, {"type": "string"}]},
            "dataType": {"type": "string", "enum": SCORE_DATA_TYPES},
            "traceId": {"type": "string"}, "observationId": {"type": "string"}, "sessionId": {"type": "string"},
            "datasetRunId": {"type": "string"}, "comment": {"type": "string"}, "metadata": ANY,
            "configId": {"type": "string"}, "environment": {"type": "string"},
            "source": {"type": "string", "enum": ["API", "EVAL", "ANNOTATION"]},
            "queueId": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
        },
        "required": ["name", "value"],
    },
    "ScoreCreated": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    "ScoreBatchAccepted": {
        "type": "object", "properties": {"message": {"type": "string", "example": "Accepted"}},
        "required": ["message"],
    },
    "ScoreBatchPartial": {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"}, "rejected": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {"message": {"type": "string"}}}},
        },
        "required": ["accepted", "rejected", "errors"],
    },
    "Score": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "traceId": NULLABLE_STRING, "observationId": NULLABLE_STRING,
            "sessionId": NULLABLE_STRING, "datasetRunId": NULLABLE_STRING, "name": {"type": "string"},
            "value": {"type": "number", "nullable": True}, "stringValue": {"type": "string"},
            "dataType": {"type": "string", "enum": SCORE_DATA_TYPES},
            "source": {"type": "string", "enum": ["API", "EVAL", "ANNOTATION", "USER"]},
            "timestamp": {"type": "string", "format": "date-time"},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "authorUserId": NULLABLE_STRING, "comment": NULLABLE_STRING, "metadata": ANY,
            "configId": NULLABLE_STRING, "queueId": NULLABLE_STRING, "environment": {"type": "string"},
        },
        "required": ["id", "name", "dataType", "source", "timestamp"],
    },
    "ScoreList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("ScoreListItem")}, "meta": ref("PageMeta")},
        "required": ["data", "meta"],
    },
    # score configs (Langfuse shape)
    "ScoreConfigCategory": {
        "type": "object",
        "properties": {"label": {"type": "string"}, "value": {"type": "number"}},
        "required": ["label", "value"],
    },
    "LangfuseScoreConfig": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
            "projectId": {"type": "string", "format": "uuid"},
            "dataType": {"type": "string", "enum": CONFIG_DATA_TYPES}, "isArchived": {"type": "boolean"},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "description": NULLABLE_STRING,
            "minValue": {"type": "number", "nullable": True, "description": "NUMERIC only."},
            "maxValue": {"type": "number", "nullable": True, "description": "NUMERIC only."},
            "categories": {"type": "array", "items": ref("ScoreConfigCategory"),
                           "description": "CATEGORICAL and BOOLEAN only."},
        },
        "required": ["id", "name", "projectId", "dataType", "isArchived"],
    },
    "LangfuseScoreConfigCreate": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 35, "pattern": r"^[A-Za-z0-9_ .()-]{1,35}$"},
            "dataType": {"type": "string", "enum": CONFIG_DATA_TYPES},
            "minValue": {"type": "number", "nullable": True}, "maxValue": {"type": "number", "nullable": True},
            "categories": {"type": "array", "items": ref("ScoreConfigCategory"), "maxItems": 100},
            "description": {"type": "string", "nullable": True},
        },
        "required": ["name", "dataType"],
        "additionalProperties": False,
    },
    "LangfuseScoreConfigPatch": {
        "type": "object",
        "description": "Everything but `dataType`.",
        "properties": {
            "name": {"type": "string", "maxLength": 35}, "description": {"type": "string", "nullable": True},
            "minValue": {"type": "number", "nullable": True}, "maxValue": {"type": "number", "nullable": True},
            "categories": {"type": "array", "items": ref("ScoreConfigCategory")},
            "isArchived": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "LangfuseScoreConfigList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("LangfuseScoreConfig")}, "meta": ref("PageMeta")},
        "required": ["data", "meta"],
    },
    # prompts
    "ChatMessage": {
        "type": "object",
        "description": "`{role, content}` or a placeholder `{type: \"placeholder\", name}`.",
        "properties": {
            "role": {"type": "string"}, "content": ANY,
            "type": {"type": "string", "enum": ["chatmessage", "placeholder"]}, "name": {"type": "string"},
        },
    },
    "Prompt": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"}, "projectId": {"type": "string"},
            "createdBy": {"type": "string"}, "name": {"type": "string"},
            "type": {"type": "string", "enum": ["text", "chat"]}, "version": {"type": "integer"},
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": ref("ChatMessage")}]},
            "config": ANY, "labels": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}}, "commitMessage": NULLABLE_STRING,
            "resolutionGraph": {"type": "object", "nullable": True, "description": "Always null."},
            "isActive": {"type": "boolean", "description": "Deprecated: true when labelled production."},
        },
        "required": ["name", "type", "version", "prompt", "config", "labels", "tags"],
    },
    "PromptCreate": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": ref("ChatMessage")}]},
            "type": {"type": "string", "enum": ["text", "chat"], "default": "text"}, "config": ANY,
            "labels": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}, "nullable": True},
            "commitMessage": NULLABLE_STRING,
        },
        "required": ["name", "prompt"],
    },
    "PromptLabelsUpdate": {
        "type": "object",
        "properties": {"newLabels": {"type": "array", "items": {"type": "string"},
                                     "description": "Moved to this version; `latest` cannot be set by hand."}},
        "required": ["newLabels"],
    },
    "PromptMeta": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "type": {"type": "string", "enum": ["text", "chat"]},
            "versions": {"type": "array", "items": {"type": "integer"}},
            "labels": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "lastUpdatedAt": {"type": "string", "format": "date-time"}, "lastConfig": ANY,
        },
    },
    "PromptList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("PromptMeta")}, "meta": ref("PageMeta")},
        "required": ["data", "meta"],
    },
    "PromptCompileRequest": {
        "type": "object",
        "properties": {
            "variables": {"type": "object", "additionalProperties": ANY},
            "label": {"type": "string"}, "version": {"type": "integer"},
        },
    },
    "PromptCompiled": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "version": {"type": "integer"},
            "type": {"type": "string", "enum": ["text", "chat"]},
            "labels": {"type": "array", "items": {"type": "string"}}, "config": ANY,
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": ANY}]},
            "missing": {"type": "array", "items": {"type": "string"}},
            "unused": {"type": "array", "items": {"type": "string"}},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "PromptVersionMetrics": {
        "type": "object",
        "properties": {
            "version": {"type": "integer"}, "registered": {"type": "boolean"},
            "labels": {"type": "array", "items": {"type": "string"}},
            "createdAt": {"type": "string", "format": "date-time", "nullable": True},
            "commitMessage": NULLABLE_STRING, "calls": {"type": "integer"},
            "errorRate": {"type": "number", "nullable": True}, "refusalRate": {"type": "number", "nullable": True},
            "latencyP50Ms": {"type": "number", "nullable": True},
            "latencyP95Ms": {"type": "number", "nullable": True},
            "timeToFirstTokenP50Ms": {"type": "number", "nullable": True},
            "avgCost": {"type": "number", "nullable": True}, "costedCalls": {"type": "integer"},
            "unpricedCalls": {"type": "integer"},
            "feedbackCount": {"type": "integer"}, "thumbsDownCount": {"type": "integer"},
            "thumbsDownRate": {"type": "number", "nullable": True},
            "scores": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {"avg": {"type": "number", "nullable": True},
                                                 "count": {"type": "integer"}}}},
        },
    },
    "PromptMetrics": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "versions": {"type": "array", "items": ref("PromptVersionMetrics")},
        },
    },
    # datasets (evals/views.py; item ids and names are any string, dataset/run/run-item ids UUIDs)
    "Dataset": {
        "type": "object",
        "properties": _DATASET_PROPERTIES,
        "required": ["id", "name", "description", "metadata", "projectId", "createdAt", "updatedAt"],
    },
    "DatasetCreate": {
        "type": "object",
        "description": "Creates the dataset, or updates the one with this name (only the keys sent change). "
        "Unknown keys are ignored.",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": NULLABLE_STRING,
            "metadata": {**ANY, "nullable": True},
            "inputSchema": {"type": "object", "nullable": True,
                            "description": "A JSON Schema; existing items must match it. `pattern` runs with "
                            "RE2: backreferences and lookaround are refused."},
            "expectedOutputSchema": {"type": "object", "nullable": True, "description": "As `inputSchema`."},
        },
        "required": ["name"],
    },
    "DatasetList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("Dataset")}, "meta": ref("PageMeta")},
        "required": ["data", "meta"],
    },
    "DatasetItem": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "status": {"type": "string", "enum": DATASET_ITEM_STATUSES},
            "input": {**ANY, "nullable": True}, "expectedOutput": {**ANY, "nullable": True},
            "metadata": {**ANY, "nullable": True},
            "sourceTraceId": NULLABLE_STRING, "sourceObservationId": NULLABLE_STRING,
            "datasetId": {"type": "string", "format": "uuid"}, "datasetName": {"type": "string"},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "mediaReferences": {"type": "array", "items": ANY, "maxItems": 0,
                                "description": "Always empty (media uploads are not stored); SDK v5 requires it."},
        },
        "required": ["id", "status", "input", "expectedOutput", "metadata", "sourceTraceId", "sourceObservationId",
                     "datasetId", "datasetName", "createdAt", "updatedAt", "mediaReferences"],
    },
    "DatasetItemCreate": {
        "type": "object",
        "description": "Creates an item, or updates the one with `id` (fields not sent, or sent as null, keep "
        "their stored values). Item ids are unique per project: an id of another dataset is a 409. Input and "
        "expected output must match the dataset's schemas. Unknown keys are ignored.",
        "properties": {
            "datasetName": {"type": "string", "minLength": 1, "maxLength": 255},
            "id": {"type": "string", "minLength": 1, "maxLength": MAX_ITEM_ID_LENGTH, "nullable": True},
            "input": {**ANY, "nullable": True}, "expectedOutput": {**ANY, "nullable": True},
            "metadata": {**ANY, "nullable": True},
            "sourceTraceId": {"type": "string", "maxLength": 200, "nullable": True},
            "sourceObservationId": {"type": "string", "maxLength": 200, "nullable": True},
            "status": {"type": "string", "enum": DATASET_ITEM_STATUSES, "nullable": True,
                       "description": "Default ACTIVE."},
        },
        "required": ["datasetName"],
    },
    "DatasetItemList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("DatasetItem")}, "meta": ref("PageMeta")},
        "required": ["data", "meta"],
    },
    "DatasetDeleted": {
        "type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"],
    },
    "DatasetWithItems": {
        "type": "object",
        "description": "The legacy dataset shape: the dataset with its ACTIVE items and its runs' names.",
        "properties": {
            **_DATASET_PROPERTIES,
            "items": {"type": "array", "items": ref("DatasetItem")},
            "runs": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "name", "description", "metadata", "projectId", "createdAt", "updatedAt", "items",
                     "runs"],
    },
    "DatasetRun": {
        "type": "object",
        "properties": _RUN_PROPERTIES,
        "required": ["id", "name", "description", "metadata", "datasetId", "datasetName", "createdAt",
                     "updatedAt"],
    },
    "DatasetRunList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("DatasetRun")}, "meta": ref("PageMeta")},
        "required": ["data", "meta"],
    },
    "DatasetRunItem": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"}, "datasetRunId": {"type": "string"},
            "datasetRunName": {"type": "string"}, "datasetItemId": {"type": "string"},
            "traceId": {"type": "string"}, "observationId": NULLABLE_STRING,
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "datasetRunId", "datasetRunName", "datasetItemId", "traceId", "observationId",
                     "createdAt", "updatedAt"],
    },
    "DatasetRunItemCreate": {
        "type": "object",
        "description": "Links an item to what a run produced; the run is found or created by (item's dataset, "
        "`runName`), and a `runDescription` or `metadata` sent updates it. `traceId` or `observationId` is "
        "required (with only an observation, its trace is looked up). Unknown keys are ignored.",
        "properties": {
            "runName": {"type": "string", "minLength": 1, "maxLength": 255}, "runDescription": NULLABLE_STRING,
            "metadata": {**ANY, "nullable": True},
            "datasetItemId": {"type": "string", "minLength": 1, "maxLength": 255},
            "traceId": {"type": "string", "maxLength": 200, "nullable": True},
            "observationId": {"type": "string", "maxLength": 200, "nullable": True},
            "datasetVersion": {"type": "string", "format": "date-time", "nullable": True,
                               "description": "Recorded in the run's metadata as `dataset_version`."},
            "createdAt": {"type": "string", "format": "date-time", "nullable": True},
        },
        "required": ["runName", "datasetItemId"],
    },
    "DatasetRunItemList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("DatasetRunItem")}, "meta": ref("PageMeta")},
        "required": ["data", "meta"],
    },
    "DatasetRunWithItems": {
        "type": "object",
        "properties": {
            **_RUN_PROPERTIES,
            "datasetRunItems": {"type": "array", "items": ref("DatasetRunItem")},
        },
        "required": ["id", "name", "description", "metadata", "datasetId", "datasetName", "createdAt",
                     "updatedAt", "datasetRunItems"],
    },
    # feedback
    "FeedbackRequest": {
        "type": "object",
        "description": "camelCase keys (traceId, observationId, userId) are accepted too; unknown keys are refused.",
        "properties": {
            "trace_id": {"type": "string", "maxLength": 200},
            "observation_id": {"type": "string", "maxLength": 200},
            "rating": {"oneOf": [{"type": "string", "enum": ["up", "down"]}, {"type": "number"}],
                       "description": "up/down: a BOOLEAN score 1/0; a number: a NUMERIC score."},
            "comment": {"type": "string", "description": "Up to the project's comment limit."},
            "user_id": {"type": "string", "maxLength": 500,
                        "description": "With one, a changed mind updates the same rating."},
            "name": {"type": "string", "maxLength": 500, "default": "user_feedback"},
            "metadata": {"type": "object", "additionalProperties": ANY},
            "environment": {"type": "string"},
        },
        "required": ["trace_id", "rating"],
    },
    "FeedbackResponse": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The score id."}, "traceId": {"type": "string"},
            "observationId": NULLABLE_STRING, "name": {"type": "string"},
            "dataType": {"type": "string", "enum": ["BOOLEAN", "NUMERIC", "CATEGORICAL", "TEXT"]},
            "value": {"type": "number", "nullable": True}, "created": {"type": "boolean"},
            "previousValue": {"type": "number", "nullable": True},
        },
        "required": ["id", "traceId", "name", "dataType", "created"],
    },
    # redaction
    "PublicRedactRequest": {
        "type": "object",
        "description": "Exactly one of `text` or `value`.",
        "properties": {"text": {"type": "string", "maxLength": 1000000}, "value": ANY},
        "additionalProperties": False,
    },
    "PublicRedactResponse": {
        "type": "object",
        "properties": {
            "text": {"type": "string"}, "value": ANY,
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "policy": {"type": "object", "properties": {
                "source": {"type": "string", "enum": ["project", "defaults"]},
                "version": {"type": "integer", "nullable": True},
                "appliedAtIngest": {"type": "boolean"}}},
        },
        "required": ["counts", "policy"],
    },
    # operational
    "HealthStatus": {
        "type": "object",
        "properties": {"status": {"type": "string", "example": "OK"}, "version": {"type": "string"}},
        "required": ["status", "version"],
    },
    "PublicProjects": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                "organization": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"},
                                                                  "name": {"type": "string"}}},
                "metadata": {"type": "object", "properties": {"region": {"type": "string"}}},
            },
        }}},
        "required": ["data"],
    },
    # OTLP (JSON encoding; protobuf bodies are the same messages in binary)
    "OtlpExportTraceServiceRequest": {
        "type": "object",
        "description": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest in OTLP/JSON: ids "
        "are hex strings, int64 values decimal strings, attributes lists of {key, value: {stringValue | "
        "intValue | doubleValue | boolValue | arrayValue | kvlistValue}}.",
        "properties": {"resourceSpans": {"type": "array", "items": {"type": "object", "properties": {
            "resource": {"type": "object"},
            "scopeSpans": {"type": "array", "items": {"type": "object", "properties": {
                "scope": {"type": "object"},
                "spans": {"type": "array", "items": {"type": "object", "additionalProperties": ANY}},
            }}},
        }}}},
    },
    "OtlpExportTraceServiceResponse": {
        "type": "object",
        "description": "Empty when every span was stored; `partialSuccess` counts the spans refused (the "
        "others were stored) and says why.",
        "properties": {"partialSuccess": {"type": "object", "properties": {
            "rejectedSpans": {"type": "string", "description": "int64 as a decimal string"},
            "errorMessage": {"type": "string"}}}},
    },
    "OtlpStatus": {
        "type": "object",
        "description": "google.rpc.Status (JSON form; a protobuf request gets it as protobuf).",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                       "details": {"type": "array", "items": ANY}},
        "required": ["code", "message"],
    },
}

# A listed score also carries a summary of its trace (Langfuse's list shape).
# metrics (monitoring/public_views.py, monitoring/metrics.py)
COMPONENTS["MetricsResponse"] = {
    "type": "object",
    "description": "One row per group: the dimension fields, `<aggregation>_<measure>` values (counts and "
    "integer sums as strings, as Langfuse's ClickHouse answers them; a histogram as [[lower, upper, height], …]) "
    "and `time_dimension` (ISO) with a time dimension.",
    "properties": {"data": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
    "required": ["data"],
}
_DAILY_USAGE = {
    "type": "object",
    "properties": {"model": {"type": "string"}, "inputUsage": {"type": "integer"}, "outputUsage": {"type": "integer"},
                   "totalUsage": {"type": "integer"}, "countObservations": {"type": "integer"},
                   "countTraces": {"type": "integer"}, "totalCost": {"type": "number"}},
}
COMPONENTS["DailyMetrics"] = {
    "type": "object",
    "properties": {
        "data": {"type": "array", "items": {"type": "object", "properties": {
            "date": {"type": "string", "format": "date"}, "countTraces": {"type": "integer"},
            "countObservations": {"type": "integer"}, "totalCost": {"type": "number"},
            "usage": {"type": "array", "items": _DAILY_USAGE}}}},
        "meta": {"type": "object", "properties": {
            "page": {"type": "integer"}, "limit": {"type": "integer"}, "totalItems": {"type": "integer"},
            "totalPages": {"type": "integer"}}},
    },
}
COMPONENTS["ScoreListItem"] = copy.deepcopy(COMPONENTS["Score"])
COMPONENTS["ScoreListItem"]["properties"]["trace"] = {
    "type": "object",
    "description": "Summary of the score's trace; empty until the trace arrives.",
    "properties": {"userId": NULLABLE_STRING, "tags": {"type": "array", "items": {"type": "string"}},
                   "environment": {"type": "string"}},
}

# --- paths -----------------------------------------------------------------------------------------


def _otlp_errors(*statuses: int) -> dict:
    text = {
        400: "Undecodable body, or an unsupported `x-langfuse-ingestion-version`",
        401: "Missing or invalid key",
        405: "Only POST",
        413: "Body over OTLP_MAX_BODY_BYTES after decompression",
        415: "Content-Type is neither application/x-protobuf nor application/json",
        503: "A database is unavailable: retry after `Retry-After` (with a RetryInfo detail)",
    }
    return {
        str(status): {
            "description": text[status],
            "headers": RETRY_AFTER if status == 503 else {},
            "content": {JSON: {"schema": ref("OtlpStatus")},
                        PROTOBUF: {"schema": {"type": "string", "format": "binary"}}},
        }
        for status in statuses
    }


def _otlp_export(operation_id: str, summary: str) -> dict:
    return {"post": _op(
        operation_id, summary, "otlp", SECRET,
        {
            "200": {
                "description": "Stored (all, or all but the spans counted in `partialSuccess`). The answer "
                "is in the request's encoding.",
                "content": {JSON: {"schema": ref("OtlpExportTraceServiceResponse")},
                            PROTOBUF: {"schema": {"type": "string", "format": "binary",
                                                  "description": "ExportTraceServiceResponse"}}},
            },
            **_otlp_errors(400, 401, 405, 413, 415, 503),
        },
        description="OTLP/HTTP trace export. `langfuse.*`, OpenInference and OTel GenAI attributes map into the "
        "same model. A span that cannot be stored is reported in `partialSuccess` while the others are stored.",
        request={"required": True, "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary",
                                  "description": "ExportTraceServiceRequest (protobuf)"}},
            JSON: {"schema": ref("OtlpExportTraceServiceRequest")},
        }},
        parameters=[
            ENCODING,
            _param("x-langfuse-ingestion-version", "header", {"type": "integer", "maximum": 4},
                   "Optional; a value above 4 answers 400, as in Langfuse."),
        ],
    )}


_SCORE_ID = _param("score_id", "path", description="Any string; percent-encode `/`.")
_CONFIG_ID = _param("config_id", "path", {"type": "string", "format": "uuid"})
_PROMPT_NAME = _param("name", "path", description="May contain `/` (folders); send it percent-encoded.")
_PROMPT_VERSION = _param("version", "path", {"type": "integer", "minimum": 1})
_DATASET_NAME = _param("name", "path", description="May contain `/`; send it percent-encoded.")
_RUN_NAME = _param("runName", "path", description="May contain `/`; send it percent-encoded.")
_ITEM_ID = _param("id", "path", description="Any string; percent-encode `/`.")
_METRICS_QUERY = _param(
    "query", required=True,
    description="URL-encoded JSON: {view, dimensions:[{field}], metrics:[{measure, aggregation}], filters:"
    "[{column, operator, value, type, key?}], timeDimension:{granularity: auto|minute|hour|day|week|month}|null, "
    "fromTimestamp, toTimestamp, orderBy:[{field, direction}]|null, config:{bins?, row_limit?}}.",
)
_METRICS_DESCRIPTION = (
    "Views: traces (v1 only), observations, scores-numeric, scores-boolean, scores-categorical and "
    "billable-units (traces + observations + scores by creation time). Aggregations sum, avg, count, max, min, "
    "p50, p75, p90, p95, p99, histogram. A time series is zero-filled per step unless orderBy is given. Answered "
    "from the hourly rollups when the query only asks what they hold (observations filtered on type any of "
    "GENERATION and EMBEDDING, rollup dimensions, whole hours; `X-Lookglass-Metrics-Source` says which). "
    "A query that cannot be answered is a 400 with the reason."
)
_SCORE_FILTERS = [
    *PAGE,
    *(_param(name) for name in ("name", "userId", "traceId", "observationId", "sessionId", "configId", "queueId")),
    _param("source", schema={"type": "string", "enum": ["API", "EVAL", "ANNOTATION", "USER"]}),
    _param("dataType", schema={"type": "string", "enum": SCORE_DATA_TYPES}),
    _param("environment", description="Comma-separated or repeated."),
    _param("scoreIds", description="Comma-separated or repeated."),
    _param("traceTags", description="Comma-separated or repeated."),
    _param("fromTimestamp", schema={"type": "string", "format": "date-time"}),
    _param("toTimestamp", schema={"type": "string", "format": "date-time"}),
    _param("operator", schema={"type": "string", "enum": ["<", "<=", ">", ">=", "=", "==", "!="]},
           description="With `value`."),
    _param("value", schema={"type": "number"}, description="With `operator`."),
]


def _preflight(operation_id: str) -> dict:
    return _op(
        operation_id, "CORS preflight for browser feedback (no key)", "feedback", NONE,
        {"204": {"description": "Approved with Access-Control-Allow-* headers when an enabled project allows "
                 "the `Origin` (only the project of `?pk=` when given); without them otherwise."}},
        parameters=[_param("Origin", "header", required=True),
                    _param("pk", description="A public key: approve only for its project's origins")],
    )


def _scores_collection(prefix: str) -> dict:
    return {
        "options": _preflight(f"{prefix}_preflight"),
        "get": _op(f"{prefix}_list", "List the project's scores (Langfuse filters and pagination)", "scores",
                   SECRET, {"200": _json(ref("ScoreList"), "A page of scores"), **_errors(400, 401, 503)},
                   parameters=_SCORE_FILTERS),
        "post": _op(
            f"{prefix}_create", "Create one score, or several (SDK v5 sends an array)", "scores",
            SECRET_OR_PUBLIC,
            {
                "200": _json(ref("ScoreCreated"), "One score (object body) stored"),
                "202": _json(ref("ScoreBatchAccepted"), "Every score of the array stored"),
                "207": _json(ref("ScoreBatchPartial"), "Some scores of the array refused; the others stored"),
                **_errors(400, 401, 403, 413, 422, 429, 503),
            },
            description="Score configs apply. With the public key alone (browser feedback) the source is "
            "USER, the id is always generated, the project's allowed origins, comment limit and the rate "
            "limits apply (`OPTIONS` answers CORS preflights).",
            request=_json_body({"oneOf": [ref("ScoreBody"), {"type": "array", "items": ref("ScoreBody")}]}),
        ),
    }


def _score_item(prefix: str) -> dict:
    return {
        "get": _op(f"{prefix}_retrieve", "One score", "scores", SECRET,
                   {"200": _json(ref("Score"), "The score"), **_errors(401, 404, 503)}, parameters=[_SCORE_ID]),
        "delete": _op(f"{prefix}_destroy", "Delete a score", "scores", SECRET,
                      {"204": {"description": "Deleted"}, **_errors(401, 404, 503)}, parameters=[_SCORE_ID]),
    }


WIRE_PATHS: dict[str, dict] = {
    "/api/public/health": {"get": _op(
        "public_health", "Liveness (no authentication)", "operations", NONE,
        {"200": _json(ref("HealthStatus"), "Up"),
         "503": _json(ref("HealthStatus"), "The database is down (only with failIfDatabaseUnavailable=true)")},
        parameters=[_param("failIfDatabaseUnavailable", schema={"type": "boolean"},
                           description="true: answer 503 when the control-plane database is unreachable")],
    )},
    "/api/public/ready": {"get": _op(
        "public_ready", "Readiness (no authentication); 503 once shutting down", "operations", NONE,
        {"200": _json(ref("HealthStatus"), "Ready"), "503": _json(ref("HealthStatus"), "Shutting down")},
    )},
    "/api/public/projects": {"get": _op(
        "public_projects", "The key's project (the SDKs' auth check)", "operations", SECRET,
        {"200": _json(ref("PublicProjects"), "Exactly one project: the key's"), **_errors(401)},
    )},
    "/api/public/ingestion": {"post": _op(
        "public_ingestion", "Langfuse batch ingestion", "ingestion", SECRET,
        {
            "207": _json(ref("IngestionResponse"), "Per-event successes and errors; successes are committed"),
            "400": _json({"oneOf": [ref("IngestionBatchError"), ref("LangfuseError")]},
                         "Unusable envelope or body (nothing stored)"),
            **_errors(401, 413, 415, 503),
        },
        description="Every Langfuse event type; creates and updates merge in any order with Langfuse's rules; "
        "replays are idempotent. A bad event is reported in `errors` while the others are stored. Writes "
        "are synchronous: a 207 means committed.",
        request=_json_body(ref("IngestionRequest")),
        parameters=[ENCODING],
    )},
    "/api/public/otel/v1/traces": _otlp_export("otlp_export_langfuse", "OTLP/HTTP trace export (Langfuse SDK v3+)"),
    "/v1/traces": _otlp_export("otlp_export", "OTLP/HTTP trace export (OTEL_EXPORTER_OTLP_ENDPOINT=http://host)"),
    "/api/public/scores": _scores_collection("public_scores"),
    "/api/public/scores/{score_id}": _score_item("public_score"),
    "/api/public/v2/scores": _scores_collection("public_scores_v2"),
    "/api/public/v2/scores/{score_id}": _score_item("public_score_v2"),
    "/api/public/score-configs": {
        "get": _op("public_score_configs_list", "List the project's score configs", "score-configs", SECRET,
                   {"200": _json(ref("LangfuseScoreConfigList"), "A page of configs"), **_errors(400, 401, 503)},
                   parameters=PAGE),
        "post": _op("public_score_configs_create", "Declare a score name with its type and allowed values",
                    "score-configs", SECRET,
                    {"200": _json(ref("LangfuseScoreConfig"), "Created"), **_errors(400, 401, 409, 413, 503)},
                    request=_json_body(ref("LangfuseScoreConfigCreate"))),
    },
    "/api/public/score-configs/{config_id}": {
        "get": _op("public_score_config_retrieve", "One score config", "score-configs", SECRET,
                   {"200": _json(ref("LangfuseScoreConfig"), "The config"), **_errors(401, 404, 503)},
                   parameters=[_CONFIG_ID]),
        "patch": _op("public_score_config_update", "Change a score config (not its data type), or archive it",
                     "score-configs", SECRET,
                     {"200": _json(ref("LangfuseScoreConfig"), "Changed"), **_errors(400, 401, 404, 409, 503)},
                     request=_json_body(ref("LangfuseScoreConfigPatch")), parameters=[_CONFIG_ID]),
    },
    "/api/public/v2/prompts": {
        "get": _op("public_prompts_list", "List prompts (filters select versions)", "prompts", SECRET,
                   {"200": _json(ref("PromptList"), "A page of prompts"), **_errors(400, 401, 503)},
                   parameters=[
                       _param("name"), _param("label"), _param("tag"),
                       _param("page", schema={"type": "integer", "minimum": 1, "default": 1}),
                       _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
                       _param("fromUpdatedAt", schema={"type": "string", "format": "date-time"}),
                       _param("toUpdatedAt", schema={"type": "string", "format": "date-time"}),
                   ]),
        "post": _op("public_prompts_create", "Create a prompt version (highest + 1)", "prompts", SECRET,
                    {"201": _json(ref("Prompt"), "The new version"), **_errors(400, 401, 413, 503)},
                    request=_json_body(ref("PromptCreate"))),
    },
    "/api/public/v2/prompts/{name}": {"get": _op(
        "public_prompt_retrieve", "Fetch a prompt: `production` unless `label` or `version` (not both)",
        "prompts", SECRET, {"200": _json(ref("Prompt"), "The version"), **_errors(400, 401, 404, 503)},
        parameters=[_PROMPT_NAME, _param("label"), _param("version", schema={"type": "integer", "minimum": 1})],
    )},
    "/api/public/v2/prompts/{name}/versions/{version}": {"patch": _op(
        "public_prompt_version_labels", "Move labels to a version", "prompts", SECRET,
        {"200": _json(ref("Prompt"), "The version with its labels"), **_errors(400, 401, 404, 503)},
        request=_json_body(ref("PromptLabelsUpdate")), parameters=[_PROMPT_NAME, _PROMPT_VERSION],
        description="For GET, a name ending in `/versions/{n}` is read as a prompt name.",
    )},
    "/api/public/v2/prompts/{name}/compile": {"post": _op(
        "public_prompt_compile", "Preview `prompt.compile(**variables)` (Lookglass extension)", "prompts", SECRET,
        {"200": _json(ref("PromptCompiled"), "The compiled prompt, with missing and unused variables"),
         **_errors(400, 401, 404, 503)},
        request=_json_body(ref("PromptCompileRequest"), required=False), parameters=[_PROMPT_NAME],
        description="For GET, a name ending in `/compile` is read as a prompt name.",
    )},
    "/api/public/v2/prompts/{name}/metrics": {"get": _op(
        "public_prompt_metrics", "Per-version metrics over a window (Lookglass extension)", "prompts", SECRET,
        {"200": _json(ref("PromptMetrics"), "One entry per version, newest first"), **_errors(400, 401, 404, 503)},
        parameters=[_PROMPT_NAME,
                    _param("from", schema={"type": "string", "format": "date-time"}, description="default: to − 7 days"),
                    _param("to", schema={"type": "string", "format": "date-time"}, description="default: now")],
    )},
    "/api/public/metrics": {"get": _op(
        "public_metrics", "Metrics query, v1 (Langfuse-compatible)", "metrics", SECRET,
        {"200": _json(ref("MetricsResponse"), "The rows"), **_errors(400, 401, 503)},
        parameters=[_METRICS_QUERY], description=_METRICS_DESCRIPTION,
    )},
    "/api/public/v2/metrics": {"get": _op(
        "public_metrics_v2", "Metrics query, v2 (Langfuse-compatible)", "metrics", SECRET,
        {"200": _json(ref("MetricsResponse"), "The rows"), **_errors(400, 401, 503)},
        parameters=[_METRICS_QUERY], description=_METRICS_DESCRIPTION + " v2 refuses the `traces` view and "
        "high-cardinality dimensions (id, traceId, userId, sessionId, parentObservationId, observationId); "
        "its default row limit is 100.",
    )},
    "/api/public/metrics/daily": {"get": _op(
        "public_metrics_daily", "Daily metrics (legacy, Langfuse-compatible): per day, newest first", "metrics",
        SECRET, {"200": _json(ref("DailyMetrics"), "A page of days"), **_errors(400, 401, 503)},
        parameters=[
            _param("page", schema={"type": "integer", "minimum": 1, "default": 1}),
            _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
            _param("traceName"), _param("userId"), _param("tags", description="Repeatable; every tag must match."),
            _param("environment", description="Repeatable."),
            _param("fromTimestamp", schema={"type": "string", "format": "date-time"}),
            _param("toTimestamp", schema={"type": "string", "format": "date-time"}),
        ],
    )},
    "/api/public/v2/datasets": {
        "get": _op("public_datasets_list", "List the project's datasets, newest first", "datasets", SECRET,
                   {"200": _json(ref("DatasetList"), "A page of datasets"), **_errors(400, 401, 503)},
                   parameters=PAGE),
        "post": _op("public_datasets_create", "Create a dataset, or update the one with this name", "datasets",
                    SECRET, {"200": _json(ref("Dataset"), "The dataset"), **_errors(400, 401, 413, 415, 503)},
                    request=_json_body(ref("DatasetCreate")),
                    description="A schema that is not a JSON Schema, or that existing items do not match, is a 400."),
    },
    "/api/public/v2/datasets/{name}": {"get": _op(
        "public_dataset_retrieve", "One dataset, by name", "datasets", SECRET,
        {"200": _json(ref("Dataset"), "The dataset"), **_errors(401, 404, 503)}, parameters=[_DATASET_NAME],
    )},
    "/api/public/datasets/{name}": {"get": _op(
        "public_dataset_legacy_retrieve", "One dataset with its ACTIVE items and its runs' names (deprecated)",
        "datasets", SECRET, {"200": _json(ref("DatasetWithItems"), "The dataset"), **_errors(401, 404, 503)},
        parameters=[_DATASET_NAME],
        description="Other methods answer 405 once the key is checked (401 before).",
    )},
    "/api/public/datasets/{name}/runs": {"get": _op(
        "public_dataset_runs_list", "List a dataset's runs, newest first (deprecated)", "datasets", SECRET,
        {"200": _json(ref("DatasetRunList"), "A page of runs"), **_errors(400, 401, 404, 503)},
        parameters=[_DATASET_NAME, *PAGE],
        description="Other methods answer 405 once the key is checked (401 before).",
    )},
    "/api/public/datasets/{name}/runs/{runName}": {
        "get": _op("public_dataset_run_retrieve", "One run with its run items (deprecated)", "datasets", SECRET,
                   {"200": _json(ref("DatasetRunWithItems"), "The run"), **_errors(401, 404, 503)},
                   parameters=[_DATASET_NAME, _RUN_NAME]),
        "delete": _op("public_dataset_run_destroy", "Delete a run and its run items", "datasets", SECRET,
                      {"200": _json(ref("DatasetDeleted"), "Deleted"), **_errors(401, 404, 503)},
                      parameters=[_DATASET_NAME, _RUN_NAME]),
    },
    "/api/public/dataset-items": {
        "get": _op("public_dataset_items_list", "List dataset items, newest first", "datasets", SECRET,
                   {"200": _json(ref("DatasetItemList"), "A page of items"), **_errors(400, 401, 404, 503)},
                   parameters=[
                       _param("datasetName", description="Only this dataset's items (404 if it does not exist)."),
                       _param("sourceTraceId"), _param("sourceObservationId"),
                       _param("version", schema={"type": "string", "format": "date-time"},
                              description="Items as of this time (created before it); requires `datasetName`."),
                       *PAGE,
                   ]),
        "post": _op("public_dataset_items_create", "Create a dataset item, or update the one with `id`", "datasets",
                    SECRET, {"200": _json(ref("DatasetItem"), "The item"), **_errors(400, 401, 404, 409, 413, 415, 503)},
                    request=_json_body(ref("DatasetItemCreate")),
                    description="404 when the dataset does not exist; 400 when the input or expected output does "
                    "not match the dataset's schemas."),
    },
    "/api/public/dataset-items/{id}": {
        "get": _op("public_dataset_item_retrieve", "One dataset item", "datasets", SECRET,
                   {"200": _json(ref("DatasetItem"), "The item"), **_errors(401, 404, 503)}, parameters=[_ITEM_ID]),
        "delete": _op("public_dataset_item_destroy", "Delete a dataset item and its run items", "datasets", SECRET,
                      {"200": _json(ref("DatasetDeleted"), "Deleted"), **_errors(401, 404, 503)},
                      parameters=[_ITEM_ID]),
    },
    "/api/public/dataset-run-items": {
        "get": _op("public_dataset_run_items_list", "List one run's items (deprecated)", "datasets", SECRET,
                   {"200": _json(ref("DatasetRunItemList"), "A page of run items"), **_errors(400, 401, 404, 503)},
                   parameters=[_param("datasetId", required=True, schema={"type": "string", "format": "uuid"}),
                               _param("runName", required=True), *PAGE]),
        "post": _op("public_dataset_run_items_create", "Link a dataset item to a run's trace or observation",
                    "datasets", SECRET,
                    {"200": _json(ref("DatasetRunItem"), "The run item"), **_errors(400, 401, 404, 413, 415, 503)},
                    request=_json_body(ref("DatasetRunItemCreate")),
                    description="404 when the item, or the observation given without a trace, does not exist."),
    },
    "/api/v1/feedback": {"options": _preflight("feedback_preflight"), "post": _op(
        "feedback_submit", "Record an end user's rating of a trace (browser-safe)", "feedback", SECRET_OR_PUBLIC,
        {"200": _json(ref("FeedbackResponse"), "Updated the user's earlier rating"),
         "201": _json(ref("FeedbackResponse"), "Created"),
         **_errors(400, 401, 403, 409, 413, 422, 429, 503)},
        description="The public key alone is enough, so a web page calls it directly: the project's allowed "
        "origins (feedback settings), its on/off switch and comment limit, and the per-key and per-IP rate "
        "limits apply (`OPTIONS` answers CORS preflights). Score configs apply; comment and metadata are "
        "redacted with the project's policy before storage.",
        request=_json_body(ref("FeedbackRequest")),
    )},
    "/api/public/redact": {"post": _op(
        "public_redact", "Redact a text or JSON value with the project's policy; nothing is stored", "redaction",
        SECRET,
        {"200": _json(ref("PublicRedactResponse"), "The redacted value and the findings by detector"),
         **_errors(400, 401, 405, 413, 415, 422, 503)},
        request=_json_body(ref("PublicRedactRequest")),
    )},
}

# --- privacy operations: erasure requests (privacy/api/erasure_public.py) -----------------------
_ERASURE_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "Rows per table (model label), e.g. `traces.Observation`."}
COMPONENTS["PublicErasureRequestCreate"] = {
    "type": "object",
    "description": "Exactly one of `userId`, `sessionId`, `traceIds`.",
    "properties": {
        "userId": {"type": "string", "maxLength": 1000}, "sessionId": {"type": "string", "maxLength": 1000},
        "traceIds": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 10000},
        "gracePeriodDays": {"type": "integer", "minimum": 0, "maximum": 90,
                            "description": "Days late arrivals for the subject are erased too (default ERASURE_GRACE_DAYS)."},
    },
}
COMPONENTS["PublicErasureRequest"] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "projectId": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "kind": {"type": "string", "enum": ["user", "session", "traces"]},
        "subjectHash": {"type": "string", "description": "HMAC-SHA256 of the subject under the server's key."},
        "subjectCount": {"type": "integer"}, "counts": _ERASURE_COUNTS, "verification": _ERASURE_COUNTS,
        "requestedVia": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        **{name: {"type": "string", "format": "date-time", "nullable": True}
           for name in ("startedAt", "finishedAt", "verifiedAt", "graceUntil", "closedAt")},
        "error": {"type": "string"},
    },
    "required": ["id", "status", "kind", "subjectHash", "counts", "createdAt"],
}
WIRE_PATHS["/api/public/erasure-requests"] = {"post": _op(
    "public_erasure_request_create", "Erase everything about an end user, a session or some traces", "privacy",
    SECRET,
    {"202": _json(ref("PublicErasureRequest"), "Accepted; poll `GET /api/public/erasure-requests/{id}`"),
     **_errors(400, 401, 405, 413, 415, 503)},
    description="Deletes, in the project's region and in small batches, every trace, observation, score, "
    "feedback event, dataset item sourced from those traces, eval result and per-user rollup of the subject. "
    "The receipt keeps the subject only as a keyed hash.",
    request=_json_body(ref("PublicErasureRequestCreate")),
)}
WIRE_PATHS["/api/public/erasure-requests/{erasure_id}"] = {"get": _op(
    "public_erasure_request_retrieve", "An erasure request's status, counts and verification", "privacy", SECRET,
    {"200": _json(ref("PublicErasureRequest"), "The receipt"), **_errors(401, 404, 405, 503)},
    parameters=[_param("erasure_id", "path", {"type": "string", "format": "uuid"})],
)}


# --- privacy operations: exports (privacy/api/exports_public.py) -------------------------------
COMPONENTS["PublicExportCreate"] = {
    "type": "object",
    "description": "All optional: the project's traces (with their observations, scores, feedback and eval "
    "results) in [fromTimestamp, toTimestamp), or only one end user's.",
    "properties": {"fromTimestamp": {"type": "string", "format": "date-time"},
                   "toTimestamp": {"type": "string", "format": "date-time"}, "userId": {"type": "string"}},
}
COMPONENTS["PublicExport"] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "projectId": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "fromTimestamp": {"type": "string", "format": "date-time", "nullable": True},
        "toTimestamp": {"type": "string", "format": "date-time", "nullable": True},
        "userHash": NULLABLE_STRING, "counts": _ERASURE_COUNTS, "size": {"type": "integer", "nullable": True},
        "createdAt": {"type": "string", "format": "date-time"},
        "finishedAt": {"type": "string", "format": "date-time", "nullable": True},
        "erasedAt": {"type": "string", "format": "date-time", "nullable": True},
        "error": {"type": "string"},
        "downloadUrl": {"type": "string", "nullable": True,
                        "description": "Signed link, valid EXPORT_LINK_SECONDS; a new one on every read."},
    },
    "required": ["id", "status", "counts", "createdAt"],
}
_EXPORT_ID = _param("export_id", "path", {"type": "string", "format": "uuid"})
WIRE_PATHS["/api/public/exports"] = {"post": _op(
    "public_export_create", "Export the project's data (or a time range, or one end user's) as gzip JSONL",
    "privacy", SECRET,
    {"202": _json(ref("PublicExport"), "Accepted; poll `GET /api/public/exports/{id}`"),
     **_errors(400, 401, 405, 413, 415, 503)},
    request=_json_body(ref("PublicExportCreate"), required=False),
)}
WIRE_PATHS["/api/public/exports/{export_id}"] = {"get": _op(
    "public_export_retrieve", "An export's status, counts and (when done) its signed download link", "privacy",
    SECRET, {"200": _json(ref("PublicExport"), "The export"), **_errors(401, 404, 405, 503)}, parameters=[_EXPORT_ID],
)}
WIRE_PATHS["/api/public/exports/{export_id}/download"] = {"get": _op(
    "public_export_download", "Download an export (the signed link is the credential)", "privacy", [],
    {"200": {"description": "gzip JSONL, one `{table, row}` object per line",
             "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
     **_errors(401, 404, 405)},
    parameters=[_EXPORT_ID, _param("token", required=True, description="From `downloadUrl`.")],
)}


# --- Langfuse v4 experiments (evals/experiment_views.py): dataset runs and their run items -----------

_TIME = {"type": "string", "format": "date-time"}
_CURSOR_META = {
    "type": "object",
    "properties": {"cursor": {"type": "string", "description": "Absent on the last page."}},
}
COMPONENTS.update({
    "Experiment": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The SDKs' experiment id (16 hex; a UUID for older runs)."},
            "name": {"type": "string"}, "description": NULLABLE_STRING,
            "startTime": {**_TIME, "description": "The first item in the window (clipped to fromStartTime)."},
            "endTime": _TIME, "itemCount": {"type": "integer"},
            "datasetId": {"type": "string", "format": "uuid", "nullable": True},
            "metadata": ANY, "scores": {"type": "array", "items": ref("Score")},
        },
        "required": ["id", "name", "description", "startTime", "endTime", "itemCount", "datasetId"],
    },
    "ExperimentList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("Experiment")}, "meta": _CURSOR_META},
        "required": ["data", "meta"],
    },
    "ExperimentItem": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "traceId": {"type": "string"}, "startTime": _TIME,
            "endTime": {**_TIME, "nullable": True}, "level": {"type": "string"}, "environment": {"type": "string"},
            "experimentId": {"type": "string"}, "experimentName": {"type": "string"},
            "experimentItemId": {"type": "string"}, "experimentDatasetId": {"type": "string", "format": "uuid"},
            "input": ANY, "output": ANY, "expectedOutput": ANY, "metadata": ANY, "experimentItemMetadata": ANY,
            "experimentMetadata": ANY, "experimentDescription": NULLABLE_STRING,
            "scores": {"type": "array", "items": ref("Score")},
        },
        "required": ["id", "traceId", "startTime", "endTime", "level", "environment", "experimentId",
                     "experimentName", "experimentItemId"],
    },
    "ExperimentItemList": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": ref("ExperimentItem")}, "meta": _CURSOR_META},
        "required": ["data", "meta"],
    },
})
_EXPERIMENT_WINDOW = [
    _param("fromStartTime", required=True, schema=_TIME, description="Run items created at or after it."),
    _param("toStartTime", schema=_TIME, description="Run items created before it."),
    _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
    _param("scoreLimit", schema={"type": "integer", "minimum": 1, "maximum": 50, "default": 50}),
    _param("cursor", description="From the previous page's `meta.cursor`."),
    _param("filter", description='A JSON array of {"column": "id"|"name"|"datasetId", "value": …}.'),
]
WIRE_PATHS.update({
    "/api/public/experiments": {"get": _op(
        "public_experiments_list", "Experiments (dataset runs) active in a time window, latest activity first",
        "experiments", SECRET, {"200": _json(ref("ExperimentList"), "A page of experiments"), **_errors(400, 401, 503)},
        parameters=[*_EXPERIMENT_WINDOW,
                    _param("fields", description="Comma list: core (default), metadata, scores (experiment-level)."),
                    _param("id", description="Comma list of experiment ids."),
                    _param("name", description="Comma list of names."),
                    _param("datasetId", description="Comma list of dataset ids.")],
    )},
    "/api/public/experiment-items": {"get": _op(
        "public_experiment_items_list", "Experiment items (run items with their trace), newest first", "experiments",
        SECRET, {"200": _json(ref("ExperimentItemList"), "A page of experiment items"), **_errors(400, 401, 503)},
        parameters=[*_EXPERIMENT_WINDOW,
                    _param("fields", description="Comma list: core, dataset (default), io, metadata, itemMetadata, "
                           "experimentMetadata, scores (item and trace level)."),
                    _param("experimentId"), _param("experimentName"), _param("experimentItemId"),
                    _param("datasetId")],
    )},
})


def add_wire_endpoints(result, generator, request, public):
    """drf-spectacular postprocessing hook: add the plain-view endpoints and their components."""
    paths = result.setdefault("paths", {})
    for path, operations in WIRE_PATHS.items():
        merged = paths.setdefault(path, {})
        for method, operation in operations.items():
            merged.setdefault(method, copy.deepcopy(operation))
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in COMPONENTS.items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"OpenAPI component {name!r} is defined twice with different contents")
        schemas[name] = copy.deepcopy(schema)
    schemes = components.setdefault("securitySchemes", {})
    for name, scheme in SECURITY_SCHEMES.items():
        schemes.setdefault(name, copy.deepcopy(scheme))
    result["paths"] = dict(sorted(paths.items()))
    components["schemas"] = dict(sorted(schemas.items()))
    return result


# Evaluation API (evals/eval_views.py): its own module documents it.
from evals.eval_openapi import COMPONENTS as _EVAL_COMPONENTS  # noqa: E402
from evals.eval_openapi import WIRE_PATHS as _EVAL_PATHS  # noqa: E402

COMPONENTS.update(_EVAL_COMPONENTS)
WIRE_PATHS.update(_EVAL_PATHS)
