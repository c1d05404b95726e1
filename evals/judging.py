"""The pure parts of evaluation: ids, sampling, the loop guard, templates and their variables, the
judge's answer schema and how its answer becomes scores. No I/O here (see `evals.llm` for the calls
and `evals.runner` for the jobs)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as jsonpath_parse

from tenancy.http.body import loads_json

# The environment every judge trace is recorded under; filter on it to see (or hide) judge calls.
EVAL_ENVIRONMENT = "lookglass-evaluation"

# --- ids: one job per (rule, target, evaluator version); its scores and judge trace follow from it --


def _digest(*parts: str, length: int = 32) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def job_id(*, rule_id, target: str, target_id: str, version_id) -> str:
    return _digest("lookglass-eval-job-v1", str(rule_id or "adhoc"), target, target_id, str(version_id))


def score_id(*, job: str, name: str, category: str = "") -> str:
    return _digest("lookglass-eval-score-v1", job, name, category)


def judge_trace_id(job: str) -> str:
    return _digest("lookglass-eval-trace-v1", job)


def judge_observation_id(job: str) -> str:
    return _digest("lookglass-eval-generation-v1", job, length=16)


# --- sampling: the same target always gets the same decision ----------------------------------------

SAMPLING_PREFIX = b"lookglass:evaluation-sampling:v1\x00"


def sample_point(target_id: str) -> float:
    """A number in [0, 1) from the target id: the top 53 bits of sha256(prefix + id), over 2^53.
    `evals.targets` computes the same number in SQL, so Python and the database agree."""
    digest = hashlib.sha256(SAMPLING_PREFIX + target_id.encode()).digest()
    return (int.from_bytes(digest[:7], "big") >> 3) / 2**53


def sampled(target_id: str, rate: float) -> bool:
    return rate >= 1 or sample_point(target_id) < rate


# --- loop guard -------------------------------------------------------------------------------------

_RESERVED = ("lookglass", "langfuse")
_ALLOWED_RESERVED = frozenset({"langfuse-prompt-experiment"})


def environment_evaluable(environment: str | None) -> bool:
    """False for the judge's own traces (and Langfuse's reserved environments): evaluating them would
    make every judge call trigger another one."""
    env = (environment or "").lower()
    if env in _ALLOWED_RESERVED:
        return True
    return not (env.startswith(_RESERVED) or env == "llm-as-a-judge")


# --- templates ----------------------------------------------------------------------------------------

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
ROLES = frozenset({"system", "user", "assistant"})
SOURCES = ("input", "output", "metadata", "tool_calls", "expected_output", "experiment_item_metadata")
# A template variable named like a source (or a usual alias) needs no explicit mapping.
DEFAULT_SOURCES = {
    "input": "input", "query": "input", "question": "input",
    "output": "output", "generation": "output", "answer": "output", "response": "output",
    "expected_output": "expected_output", "ground_truth": "expected_output", "expected": "expected_output",
    "metadata": "metadata", "context": "metadata", "tool_calls": "tool_calls",
}


class DefinitionError(ValueError):
    """An evaluator or mapping that cannot work; the message is for the user (400)."""

    def __init__(self, message: str, code: str = "invalid_evaluator"):
        super().__init__(message)
        self.message = message
        self.code = code


def normalize_prompt(prompt) -> list[dict]:
    """A prompt string (one user message) or a chat list `[{role, content}]`."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise DefinitionError("`prompt` must not be empty.")
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise DefinitionError("`prompt` must be a string or a non-empty list of {role, content} messages.")
    messages = []
    for message in prompt:
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise DefinitionError("each prompt message is {role: system|user|assistant, content: string}.")
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def variables_of(messages: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for message in messages:
        for name in VARIABLE.findall(message["content"]):
            seen.setdefault(name, None)
    return list(seen)


def check_json_path(path: str) -> None:
    if not isinstance(path, str) or not path.startswith("$"):
        raise DefinitionError(f"jsonPath {path!r} must start with `$`.", "invalid_json_path")
    try:
        jsonpath_parse(path)
    except (JsonPathParserError, Exception) as exc:  # noqa: BLE001 - the parser raises several kinds
        raise DefinitionError(f"jsonPath {path!r} is not valid: {exc}", "invalid_json_path") from None


def normalize_mapping(mapping, variables: list[str], *, required: bool) -> list[dict] | None:
    """`[{variable, source, jsonPath?}]`, each template variable mapped exactly once. Without a
    mapping (`required=False`), every variable must have a default source (`DEFAULT_SOURCES`)."""
    if mapping is None:
        if required:
            raise DefinitionError("a variable mapping is required.", "missing_variable_mapping")
        unmapped = [v for v in variables if v not in DEFAULT_SOURCES]
        if unmapped:
            raise DefinitionError(
                f"variables {', '.join(unmapped)} need a mapping (sources: {', '.join(SOURCES)}).",
                "missing_variable_mapping",
            )
        return None
    if not isinstance(mapping, list):
        raise DefinitionError("`variableMapping` must be a list of {variable, source, jsonPath?}.", "invalid_variable_mapping")
    out, seen = [], set()
    for entry in mapping:
        if not isinstance(entry, dict) or not isinstance(entry.get("variable"), str):
            raise DefinitionError("each mapping is {variable, source, jsonPath?}.", "invalid_variable_mapping")
        variable, source = entry["variable"], entry.get("source")
        if variable not in variables:
            raise DefinitionError(f"variable {variable!r} is not in the prompt.", "invalid_variable_mapping")
        if variable in seen:
            raise DefinitionError(f"variable {variable!r} is mapped twice.", "duplicate_variable_mapping")
        if source not in SOURCES:
            raise DefinitionError(f"source {source!r} of {variable!r} is not one of {', '.join(SOURCES)}.", "invalid_variable_mapping")
        path = entry.get("jsonPath")
        if path is not None:
            check_json_path(path)
        seen.add(variable)
        out.append({"variable": variable, "source": source, "jsonPath": path})
    missing = [v for v in variables if v not in seen and v not in DEFAULT_SOURCES]
    if missing:
        raise DefinitionError(f"variables {', '.join(missing)} are not mapped.", "missing_variable_mapping")
    return out


@dataclass
class EvalInput:
    """What an evaluator sees of one target."""

    input: object = None
    output: object = None
    expected_output: object = None
    metadata: object = None
    tool_calls: object = None
    experiment_item_metadata: object = None
    latency_ms: float | None = None
    cost: float | None = None
    status: str | None = None
    environment: str = "default"
    trace_id: str = ""
    observation_id: str = ""
    extra: dict = field(default_factory=dict)


class MissingVariable(ValueError):
    pass


def _select(value, path: str | None):
    if path is None:
        return value
    if isinstance(value, str):
        try:
            # The API's reader: a stored string nested thousands deep is not JSON here, not the
            # standard library's RecursionError.
            value = loads_json(value.encode())
        except ValueError:
            return None
    matches = [m.value for m in jsonpath_parse(path).find(value)]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else matches


def _text(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def render(messages: list[dict], variables: list[str], mapping: list[dict] | None, data: EvalInput) -> list[dict]:
    """The prompt with every {{variable}} replaced. A variable whose source is empty raises
    MissingVariable: judging an answer that is not there yet gives a meaningless score."""
    by_variable = {m["variable"]: m for m in mapping or []}
    values = {}
    for variable in variables:
        entry = by_variable.get(variable) or {"source": DEFAULT_SOURCES.get(variable), "jsonPath": None}
        value = _select(getattr(data, entry["source"]), entry.get("jsonPath"))
        if value is None or value == "":
            raise MissingVariable(
                f"variable {variable!r} is empty (source {entry['source']}"
                + (f", jsonPath {entry['jsonPath']}" if entry.get("jsonPath") else "")
                + "); if the data arrives later, raise the rule's delay"
            )
        values[variable] = _text(value)
    return [
        {"role": m["role"], "content": VARIABLE.sub(lambda match: values.get(match.group(1), match.group(0)), m["content"])}
        for m in messages
    ]


# --- output definition: the JSON the judge must answer, and the scores it becomes -------------------

DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")


def normalize_output_definition(definition) -> dict:
    if not isinstance(definition, dict):
        raise DefinitionError("`outputDefinition` must be an object with a `dataType`.")
    data_type = definition.get("dataType")
    if data_type not in DATA_TYPES:
        raise DefinitionError(f"`outputDefinition.dataType` must be one of {', '.join(DATA_TYPES)}.")
    out = {"dataType": data_type}
    for key in ("scoreReasoningInstructions", "scoreValueInstructions"):
        if definition.get(key) is not None:
            if not isinstance(definition[key], str):
                raise DefinitionError(f"`outputDefinition.{key}` must be a string.")
            out[key] = definition[key]
    if data_type == "NUMERIC":
        for key in ("minValue", "maxValue"):
            value = definition.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise DefinitionError(f"`outputDefinition.{key}` must be a finite number.")
            out[key] = value
        if out["minValue"] is not None and out["maxValue"] is not None and out["minValue"] > out["maxValue"]:
            raise DefinitionError("`outputDefinition.minValue` must not exceed `maxValue`.")
    elif data_type == "CATEGORICAL":
        categories = definition.get("categories")
        if (
            not isinstance(categories, list) or len(categories) < 2
            or not all(isinstance(c, str) and c for c in categories) or len(set(categories)) != len(categories)
        ):
            raise DefinitionError("`outputDefinition.categories` must hold at least two distinct non-empty strings.")
        out["categories"] = categories
        out["shouldAllowMultipleMatches"] = bool(definition.get("shouldAllowMultipleMatches", False))
    return out


def answer_schema(definition: dict) -> dict:
    """The JSON Schema the judge's answer must match (OpenAI json_schema strict / Anthropic tool input)."""
    reasoning = {"type": "string", "description": definition.get("scoreReasoningInstructions") or "One or two sentences explaining the score."}
    data_type = definition["dataType"]
    if data_type == "NUMERIC":
        bounds = ""
        if definition.get("minValue") is not None or definition.get("maxValue") is not None:
            bounds = f" Between {definition.get('minValue')} and {definition.get('maxValue')}."
        score = {"type": "number", "description": (definition.get("scoreValueInstructions") or "The score.") + bounds}
    elif data_type == "BOOLEAN":
        score = {"type": "boolean", "description": definition.get("scoreValueInstructions") or "The verdict."}
    else:
        one = {"type": "string", "enum": definition["categories"]}
        score = {"type": "array", "items": one} if definition.get("shouldAllowMultipleMatches") else one
        score["description"] = definition.get("scoreValueInstructions") or "The matching category."
    return {
        "type": "object",
        "properties": {"reasoning": reasoning, "score": score},
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    }


class MalformedAnswer(ValueError):
    """The judge's answer is not the JSON its schema demands; the job ends in error with this."""


@dataclass
class Verdict:
    value: float | None
    string_value: str
    data_type: str
    category: str = ""


def parse_answer(text: str, definition: dict) -> tuple[str, list[Verdict]]:
    """(reasoning, verdicts) from the judge's raw answer, or MalformedAnswer saying what is wrong."""
    try:
        answer = loads_json(text.encode()) if isinstance(text, str) else text
    except (ValueError, TypeError) as exc:
        raise MalformedAnswer(f"the judge's answer is not JSON ({exc}): {str(text)[:200]!r}") from None
    if not isinstance(answer, dict) or "score" not in answer:
        raise MalformedAnswer(f"the judge's answer has no `score`: {str(text)[:200]!r}")
    reasoning = answer.get("reasoning")
    if not isinstance(reasoning, str):
        raise MalformedAnswer("the judge's answer has no `reasoning` string")
    score = answer["score"]
    data_type = definition["dataType"]
    if data_type == "NUMERIC":
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise MalformedAnswer(f"the judge's score {score!r} is not a number")
        low, high = definition.get("minValue"), definition.get("maxValue")
        if (low is not None and score < low) or (high is not None and score > high):
            raise MalformedAnswer(f"the judge's score {score} is outside [{low}, {high}]")
        return reasoning, [Verdict(float(score), "", "NUMERIC")]
    if data_type == "BOOLEAN":
        if not isinstance(score, bool):
            raise MalformedAnswer(f"the judge's score {score!r} is not a boolean")
        return reasoning, [Verdict(1.0 if score else 0.0, "True" if score else "False", "BOOLEAN")]
    chosen = score if isinstance(score, list) else [score]
    if not chosen or (len(chosen) > 1 and not definition.get("shouldAllowMultipleMatches")):
        raise MalformedAnswer(f"the judge must choose exactly one category, not {score!r}")
    unknown = [c for c in chosen if c not in definition["categories"]]
    if unknown:
        raise MalformedAnswer(f"the judge chose {unknown!r}, not among {definition['categories']!r}")
    return reasoning, [Verdict(None, c, "CATEGORICAL", category=c) for c in dict.fromkeys(chosen)]
