"""OpenAPI of the evaluation API's plain (Langfuse-compatible, key-authenticated) routes, merged into
the schema by `config.openapi_wire`. Shapes are Langfuse's v2 evaluator API (`langfuse.api.evaluators`,
`langfuse.api.evaluation_rules` in SDK 5.2) plus Lookglass's fields."""

from __future__ import annotations

SECRET = [{"projectKeyBasic": []}, {"projectKeyBearer": []}]
JSON = "application/json"
OBJECT = {"type": "object", "additionalProperties": True}
CURSOR_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`meta.cursor` of the previous page."},
]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(text: str) -> dict:
    return {"description": text, "content": {JSON: {"schema": _ref("LangfuseError")}}}


ERRORS = {
    "400": _error("Invalid body or parameters (the message says which)"),
    "401": _error("Missing or wrong key"),
    "404": _error("No such object in this project (another project's answers the same)"),
    "503": _error("A database is unavailable; retry"),
}


def _ok(schema: dict, text: str) -> dict:
    return {"200": {"description": text, "content": {JSON: {"schema": schema}}}}


def _op(op_id: str, summary: str, response: dict, *, body: bool = False, params=None, extra=None) -> dict:
    operation = {"operationId": op_id, "summary": summary, "tags": ["evals"], "security": SECRET,
                 "responses": {**response, **ERRORS, **(extra or {})}}
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": OBJECT}}}
    if params:
        operation["parameters"] = params
    return operation


def _id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _page_of(name: str) -> dict:
    return {"type": "object", "properties": {"data": {"type": "array", "items": _ref(name)},
                                             "meta": {"type": "object", "properties": {"cursor": {"type": "string"}}}},
            "required": ["data", "meta"]}


COMPONENTS = {
    "Evaluator": {
        "type": "object", "additionalProperties": True,
        "description": "Langfuse v2 evaluator: id, name, description, type (llm_as_judge | rule), status (active | "
                       "paused), pausedAt/Reason/Message, evaluationRuleAssignments, version fields, and for judges "
                       "prompt (chat messages), variables, variableMapping, modelConfig, outputDefinition; "
                       "higherIsBetter; for rule evaluators ruleKind and ruleParams.",
        "properties": {"id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                       "type": {"type": "string", "enum": ["llm_as_judge", "rule"]},
                       "status": {"type": "string", "enum": ["active", "paused"]},
                       "version": {"type": "integer"}, "versionId": {"type": "string", "format": "uuid"}},
        "required": ["id", "name", "type", "status", "version", "versionId"],
    },
    "EvaluationRule": {
        "type": "object", "additionalProperties": True,
        "description": "Langfuse v2 evaluation rule (name, enabled, sampling, filter, evaluatorAssignments) plus "
                       "target, delaySeconds, runOnNew, nightly, nightlySampling, nightlyMaxTargets, status, pausedReason.",
        "properties": {"id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                       "enabled": {"type": "boolean"}, "sampling": {"type": "number"},
                       "filter": {"type": "array", "items": OBJECT}, "evaluatorAssignments": {"type": "array", "items": OBJECT}},
        "required": ["id", "name", "enabled", "sampling", "filter", "evaluatorAssignments"],
    },
    "LlmConnection": {
        "type": "object", "additionalProperties": True,
        "properties": {"id": {"type": "string", "format": "uuid"}, "provider": {"type": "string"},
                       "adapter": {"type": "string", "enum": ["openai", "anthropic"]},
                       "baseURL": {"type": "string", "nullable": True},
                       "displaySecretKey": {"type": "string", "description": "The key, masked; the key itself is never answered."}},
        "required": ["id", "provider", "adapter", "displaySecretKey"],
    },
    "JudgeVerdict": {
        "type": "object", "additionalProperties": True,
        "properties": {"status": {"type": "string", "enum": ["completed", "error", "delayed", "ready"]},
                       "value": {"type": "number", "nullable": True}, "passed": {"type": "boolean", "nullable": True},
                       "reasoning": {"type": "string", "nullable": True}, "error": {"type": "string", "nullable": True},
                       "higherIsBetter": {"type": "boolean"}},
        "required": ["status"],
    },
}


def _generation(prefix: str, tag: str) -> dict:
    ev, rule = f"{prefix}/evaluators", f"{prefix}/evaluation-rules"
    return {
        ev: {
            "get": _op(f"{tag}_evaluators_list", "Evaluators, newest first (cursor pages)", _ok(_page_of("Evaluator"), "A page"), params=CURSOR_PAGE),
            "post": _op(f"{tag}_evaluators_create", "Create an evaluator (an LLM judge from a prompt or a library `template`, or a rule evaluator)",
                        _ok(_ref("Evaluator"), "The evaluator, version 1"), body=True),
        },
        ev + "/{evaluator_id}": {
            "get": _op(f"{tag}_evaluator_get", "One evaluator (latest version)", _ok(_ref("Evaluator"), "The evaluator"), params=[_id("evaluator_id")]),
            "patch": _op(f"{tag}_evaluator_update", "Update: name/description in place; a definition change makes a new version",
                         _ok(_ref("Evaluator"), "The evaluator"), body=True, params=[_id("evaluator_id")]),
            "delete": _op(f"{tag}_evaluator_delete", "Delete an evaluator (and its assignments)", _ok(OBJECT, "`{id}`"), params=[_id("evaluator_id")]),
        },
        ev + "/{evaluator_id}/versions": {
            "get": _op(f"{tag}_evaluator_versions", "An evaluator's versions, newest first", _ok(OBJECT, "A page of versions"),
                       params=[_id("evaluator_id"), *CURSOR_PAGE]),
        },
        rule: {
            "get": _op(f"{tag}_rules_list", "Evaluation rules, newest first (cursor pages)", _ok(_page_of("EvaluationRule"), "A page"), params=CURSOR_PAGE),
            "post": _op(f"{tag}_rules_create", "Create an evaluation rule", _ok(_ref("EvaluationRule"), "The rule"), body=True,
                        extra={"409": _error("Too many enabled rules in the project")}),
        },
        rule + "/{rule_id}": {
            "get": _op(f"{tag}_rule_get", "One evaluation rule", _ok(_ref("EvaluationRule"), "The rule"), params=[_id("rule_id")]),
            "patch": _op(f"{tag}_rule_update", "Partial update of a rule", _ok(_ref("EvaluationRule"), "The rule"), body=True, params=[_id("rule_id")]),
            "delete": _op(f"{tag}_rule_delete", "Delete a rule", _ok(OBJECT, "`{id, message}`"), params=[_id("rule_id")]),
        },
    }


WIRE_PATHS = {
    **_generation("/api/public/v2", "public_v2"),
    **_generation("/api/public/unstable", "public_unstable"),
    "/api/public/llm-connections": {
        "get": _op("public_llm_connections_list", "The project's LLM connections (secret keys masked)",
                   _ok(_page_of("LlmConnection"), "A page"), params=CURSOR_PAGE),
        "put": _op("public_llm_connections_upsert", "Create or replace the connection of a `provider` "
                   "(adapter openai | anthropic, secretKey, baseURL checked against internal addresses, defaultModel, "
                   "customModels, timeoutSeconds, maxRetries)", _ok(_ref("LlmConnection"), "Replaced"), body=True,
                   extra={"201": {"description": "Created", "content": {JSON: {"schema": _ref("LlmConnection")}}}}),
    },
    "/api/public/lookglass/judge": {
        "post": _op("public_lookglass_judge", "Score one item now with a named evaluator (the CLI's judge call): "
                    "{evaluator, input, output, expectedOutput?, metadata?, toolCalls?, traceId?, observationId?, "
                    "recordScore?, preflight?}", _ok(_ref("JudgeVerdict"), "The verdict (or `ready` for a preflight)"),
                    body=True, extra={"422": {"description": "The judge failed (e.g. malformed JSON): status error with the reason",
                                              "content": {JSON: {"schema": _ref("JudgeVerdict")}}},
                                      "429": {"description": "Rate limited by the provider: status delayed",
                                              "content": {JSON: {"schema": _ref("JudgeVerdict")}}}}),
    },
    "/api/public/lookglass/evaluator-templates": {
        "get": _op("public_lookglass_evaluator_templates", "The library of ready judge templates, each with higherIsBetter",
                   _ok(OBJECT, "`{data: [...]}`")),
    },
}
