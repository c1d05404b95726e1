"""Rule evaluators: deterministic checks of one output, each returning a score with a reason.

Pure Python (no Django), so the same code scores items in a user's CI job (`lookglass eval run`)
and online on the server. One registry, `EVALUATORS`, maps a kind to its spec; `compile_evaluator`
checks the parameters once and returns a callable that scores items fast (patterns, schemas and
phrase lists are compiled once per parameter set); `evaluate` does both with a cache.

    >>> evaluate("contains", {"value": "Paris"}, output="The capital is Paris.").passed
    True

Kinds (parameters; every kind also takes `name`, the score name, which defaults to the kind):

| kind | parameters | passes when | value |
|---|---|---|---|
| `contains` | `value` (str or list; default: the expected output), `mode` all/any, `case_sensitive` (false) | the output contains the substring(s) | 1/0 |
| `regex` | `pattern` (required, RE2 syntax), `full_match` (false), `case_sensitive` (true) | the pattern matches the output | 1/0 |
| `exact_match` | `value` (default: the expected output), `case_sensitive` (true), `strip` (true) | output equals it (JSON values compared as values) | 1/0 |
| `json_valid` | none | the output is JSON (a string that parses, or a dict/list) | 1/0 |
| `json_schema` | `schema` (required, a JSON Schema) | the output (parsed if a string) validates | 1/0 |
| `not_refused` | `phrases` (extra refusal openings), `defaults` (true) | the status is not a refusal and the output does not open with a refusal phrase | 1/0 |
| `max_latency` | `max_ms` (required) | the call took at most that many milliseconds | 1/0 |
| `max_cost` | `max_usd` (required) | the call cost at most that many US dollars | 1/0 |
| `similarity` | `min` (0.8), `method` ratio/partial_ratio/token_sort_ratio/token_set_ratio, `value` (default: the expected output), `case_sensitive` (false) | similarity ≥ `min` | 0..1 |

Regular expressions run on RE2 (linear time; no backreferences or lookaround), also inside JSON
Schema `pattern`s, because on the server the pattern is the tenant's and `re` can backtrack for
minutes. An unknown kind or bad parameters raise `UnknownEvaluator` / `InvalidParams` (both
`EvaluatorError`, a `ValueError`); an item lacking what a kind needs (no expected output, latency
or cost) raises `MissingData` when scored, so it is reported as an evaluator error, not a failure.
"""

from __future__ import annotations

import enum
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import re2
from rapidfuzz import fuzz
from rapidfuzz import utils as fuzz_utils

from lookglass import _jsonschema

__all__ = [
    "EVALUATORS",
    "DataType",
    "Evaluator",
    "EvaluatorError",
    "EvaluatorSpec",
    "InvalidParams",
    "MissingData",
    "Param",
    "Result",
    "UnknownEvaluator",
    "compile_evaluator",
    "evaluate",
]


class EvaluatorError(ValueError):
    """An evaluator cannot be built or cannot score this item; the message says why."""


class UnknownEvaluator(EvaluatorError):
    pass


class InvalidParams(EvaluatorError):
    pass


class MissingData(EvaluatorError):
    """The item lacks what the evaluator needs (an expected output, a latency, a cost)."""


class DataType(enum.StrEnum):
    NUMERIC = "NUMERIC"
    BOOLEAN = "BOOLEAN"


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    value: float
    passed: bool
    reason: str
    data_type: DataType = DataType.BOOLEAN


_MISSING = object()


@dataclass(frozen=True)
class Param:
    types: tuple[type, ...]
    default: Any = _MISSING  # _MISSING: required
    doc: str = ""
    choices: tuple | None = None

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclass(frozen=True)
class EvaluatorSpec:
    kind: str
    summary: str
    data_type: DataType
    params: dict[str, Param]
    build: Callable[[str, dict], Callable[..., Result]] = field(repr=False)
    needs: tuple[str, ...] = ()  # item data it reads besides the output: expected, latency_ms, cost, status


class Evaluator:
    """A compiled evaluator: call it with one item's data."""

    __slots__ = ("kind", "name", "data_type", "params", "_score")

    def __init__(self, spec: EvaluatorSpec, name: str, params: dict, score: Callable[..., Result]):
        self.kind, self.name, self.data_type, self.params, self._score = spec.kind, name, spec.data_type, params, score

    def __call__(self, *, output, expected=None, input=None, latency_ms=None, cost=None, status=None) -> Result:
        return self._score(output, expected, latency_ms, cost, status)

    def __repr__(self) -> str:
        return f"Evaluator({self.kind!r}, name={self.name!r}, params={self.params!r})"


# --- helpers ------------------------------------------------------------------------------------


def text_of(value) -> str:
    """The text an evaluator reads: a string as is; a chat message (`{"content": "…"}`) or an
    OpenAI-style `choices` answer by its content; anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        content = value.get("content")
        if isinstance(content, str):
            return content
        choices = value.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                return message["content"]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _boolean(name: str, passed: bool, reason: str) -> Result:
    return Result(name, 1.0 if passed else 0.0, passed, reason, DataType.BOOLEAN)


def _reference(value, expected, *, what: str):
    """The configured reference value, else the item's expected output."""
    if value is not None:
        return value
    if expected is None:
        raise MissingData(f"{what}: no `value` configured and the item has no expected output")
    return expected


def _parse_json(output) -> tuple[bool, Any, str]:
    if isinstance(output, (dict, list)):
        return True, output, ""
    if isinstance(output, bool) or output is None or isinstance(output, (int, float)):
        return True, output, ""
    if not isinstance(output, str):
        return False, None, f"output is a {type(output).__name__}, not JSON"
    try:
        return True, json.loads(output), ""
    except ValueError as exc:
        return False, None, f"output is not valid JSON: {exc}"


# --- the kinds ----------------------------------------------------------------------------------


def _build_contains(name: str, p: dict):
    case_sensitive, mode = p["case_sensitive"], p["mode"]
    configured = p["value"]
    if isinstance(configured, list) and not all(isinstance(v, str) for v in configured):
        raise InvalidParams("contains: `value` must be a string or a list of strings")

    def norm(s: str) -> str:
        return s if case_sensitive else s.casefold()

    fixed = None
    if configured is not None:
        fixed = [configured] if isinstance(configured, str) else list(configured)
        if not fixed:
            raise InvalidParams("contains: `value` must not be an empty list")
        fixed = [(v, norm(v)) for v in fixed]

    def score(output, expected, latency_ms, cost, status) -> Result:
        needles = fixed
        if needles is None:
            ref = _reference(None, expected, what=name)
            refs = ref if isinstance(ref, list) and all(isinstance(v, str) for v in ref) else [text_of(ref)]
            needles = [(v, norm(v)) for v in refs]
        text = norm(text_of(output))
        missing = [raw for raw, n in needles if n not in text]
        if mode == "any":
            passed = len(missing) < len(needles)
        else:
            passed = not missing
        if passed:
            found = [raw for raw, _ in needles if raw not in missing]
            return _boolean(name, True, f"output contains {', '.join(_quote(f) for f in found)}")
        return _boolean(name, False, f"output does not contain {', '.join(_quote(m) for m in missing)}")

    return score


def _build_regex(name: str, p: dict):
    pattern = p["pattern"]
    source = pattern if p["case_sensitive"] else "(?i)" + pattern
    try:
        compiled = re2.compile(source)
    except re2.error as exc:
        raise InvalidParams(
            f"regex: {pattern!r} is not a pattern RE2 can run ({exc}); backreferences and lookaround are not supported"
        ) from None
    run = compiled.fullmatch if p["full_match"] else compiled.search
    verb = "fully matches" if p["full_match"] else "matches"

    def score(output, expected, latency_ms, cost, status) -> Result:
        match = run(text_of(output))
        if match is None:
            return _boolean(name, False, f"output does not match /{pattern}/")
        return _boolean(name, True, f"output {verb} /{pattern}/ ({_quote(match.group(0), 40)})")

    return score


def _build_exact_match(name: str, p: dict):
    case_sensitive, strip, configured = p["case_sensitive"], p["strip"], p["value"]

    def norm(value):
        if isinstance(value, str):
            value = value.strip() if strip else value
            return value if case_sensitive else value.casefold()
        return value

    def score(output, expected, latency_ms, cost, status) -> Result:
        ref = _reference(configured, expected, what=name)
        left, right = output, ref
        # A JSON answer compared with a structured expected output: compare values, not spellings.
        if isinstance(left, str) and not isinstance(right, str):
            ok, parsed, _ = _parse_json(left)
            left = parsed if ok else left
        elif isinstance(right, str) and not isinstance(left, str) and left is not None:
            ok, parsed, _ = _parse_json(right)
            right = parsed if ok else right
        if norm(left) == norm(right):
            return _boolean(name, True, "output equals the expected output")
        return _boolean(name, False, f"output {_quote(text_of(output))} differs from {_quote(text_of(ref))}")

    return score


def _build_json_valid(name: str, p: dict):
    def score(output, expected, latency_ms, cost, status) -> Result:
        ok, _, why = _parse_json(output)
        return _boolean(name, ok, "output is valid JSON" if ok else why)

    return score


def _build_json_schema(name: str, p: dict):
    schema = p["schema"]
    try:
        validator = _jsonschema.compile_schema(schema)
    except _jsonschema.UnsupportedSchema as exc:
        raise InvalidParams(f"json_schema: not a usable JSON Schema: {exc}") from None

    def score(output, expected, latency_ms, cost, status) -> Result:
        ok, parsed, why = _parse_json(output)
        if not ok:
            return _boolean(name, False, why)
        error = _jsonschema.first_error(validator, parsed)
        if error is not None:
            return _boolean(name, False, f"output does not match the schema at {error}")
        return _boolean(name, True, "output matches the schema")

    return score


# Openings of a declined answer (lower case). Matched only at the start of the answer: "I can't"
# in the middle of a helpful reply is not a refusal.
REFUSAL_PHRASES = (
    "i'm sorry, but",
    "i am sorry, but",
    "sorry, but i can",
    "sorry, i can't",
    "sorry, i cannot",
    "i can't help with",
    "i can't assist",
    "i cannot help with",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i'm not able to help",
    "i am not able to help",
    "i'm unable to",
    "i am unable to",
    "i won't be able to",
    "i will not be able to",
    "i must decline",
    "i have to decline",
    "as an ai language model, i cannot",
    "as an ai, i cannot",
)
# Finish reasons and statuses that mean the provider declined (the server's list, ingest.rules.status).
REFUSAL_STATUSES = frozenset(
    {"refused", "content_filter", "content_filtered", "refusal", "safety", "blocklist", "prohibited_content", "spii"}
)
_OPENING = 200


def _build_not_refused(name: str, p: dict):
    extra = p["phrases"]
    if not all(isinstance(x, str) and x.strip() for x in extra):
        raise InvalidParams("not_refused: `phrases` must be a list of non-empty strings")
    phrases = tuple(x.casefold().strip() for x in extra) + (REFUSAL_PHRASES if p["defaults"] else ())
    if not phrases:
        raise InvalidParams("not_refused: no phrases (give `phrases` or keep `defaults`)")
    normalized = [ph.replace("’", "'") for ph in phrases]

    def score(output, expected, latency_ms, cost, status) -> Result:
        if isinstance(status, str) and status.strip().lower() in REFUSAL_STATUSES:
            return _boolean(name, False, f"the call was refused (status {status!r})")
        if isinstance(output, dict) and isinstance(output.get("refusal"), str) and output["refusal"].strip():
            return _boolean(name, False, f"the model refused: {_quote(output['refusal'])}")
        opening = text_of(output)[:_OPENING].casefold().replace("’", "'").lstrip(" \n\t\"'*>")
        for phrase in normalized:
            if phrase in opening:
                return _boolean(name, False, f"output opens with a refusal ({phrase!r})")
        return _boolean(name, True, "no refusal")

    return score


def _build_max_latency(name: str, p: dict):
    limit = p["max_ms"]
    if not limit > 0:
        raise InvalidParams("max_latency: `max_ms` must be a positive number")

    def score(output, expected, latency_ms, cost, status) -> Result:
        if latency_ms is None:
            raise MissingData(f"{name}: the item has no latency")
        ok = latency_ms <= limit
        return _boolean(name, ok, f"{latency_ms:.0f} ms {'≤' if ok else '>'} {limit:g} ms")

    return score


def _build_max_cost(name: str, p: dict):
    limit = p["max_usd"]
    if not limit >= 0:
        raise InvalidParams("max_cost: `max_usd` must be a number ≥ 0")

    def score(output, expected, latency_ms, cost, status) -> Result:
        if cost is None:
            raise MissingData(f"{name}: the item has no cost")
        ok = cost <= limit
        return _boolean(name, ok, f"${cost:.6g} {'≤' if ok else '>'} ${limit:g}")

    return score


_SCORERS = {
    "ratio": fuzz.ratio,
    "partial_ratio": fuzz.partial_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
}


def _build_similarity(name: str, p: dict):
    minimum, configured = p["min"], p["value"]
    if not 0 <= minimum <= 1:
        raise InvalidParams("similarity: `min` must be between 0 and 1")
    scorer = _SCORERS[p["method"]]
    processor = None if p["case_sensitive"] else fuzz_utils.default_process

    def score(output, expected, latency_ms, cost, status) -> Result:
        ref = text_of(_reference(configured, expected, what=name))
        value = scorer(text_of(output), ref, processor=processor) / 100.0
        ok = value >= minimum
        return Result(
            name, value, ok, f"{p['method']} similarity {value:.3f} {'≥' if ok else '<'} {minimum:g}", DataType.NUMERIC
        )

    return score


_NUMBER = (int, float)
_NAME = {"name": Param((str,), None, "the score name (default: the kind)")}

EVALUATORS: dict[str, EvaluatorSpec] = {
    spec.kind: spec
    for spec in (
        EvaluatorSpec(
            "contains",
            "the output contains the expected substring(s)",
            DataType.BOOLEAN,
            {
                "value": Param((str, list), None, "substring or list (default: the item's expected output)"),
                "mode": Param((str,), "all", "all substrings or any one", ("all", "any")),
                "case_sensitive": Param((bool,), False),
            },
            _build_contains,
            ("expected",),
        ),
        EvaluatorSpec(
            "regex",
            "the output matches a regular expression (RE2)",
            DataType.BOOLEAN,
            {
                "pattern": Param((str,), doc="RE2 syntax"),
                "full_match": Param((bool,), False),
                "case_sensitive": Param((bool,), True),
            },
            _build_regex,
        ),
        EvaluatorSpec(
            "exact_match",
            "the output equals the expected output",
            DataType.BOOLEAN,
            {
                "value": Param((str, int, float, bool, dict, list), None, "default: the item's expected output"),
                "case_sensitive": Param((bool,), True),
                "strip": Param((bool,), True),
            },
            _build_exact_match,
            ("expected",),
        ),
        EvaluatorSpec("json_valid", "the output is valid JSON", DataType.BOOLEAN, {}, _build_json_valid),
        EvaluatorSpec(
            "json_schema",
            "the output is JSON that matches a JSON Schema",
            DataType.BOOLEAN,
            {"schema": Param((dict, bool), doc="a JSON Schema")},
            _build_json_schema,
        ),
        EvaluatorSpec(
            "not_refused",
            "the model did not refuse (status or a refusal opening)",
            DataType.BOOLEAN,
            {
                "phrases": Param((list,), (), "extra refusal openings"),
                "defaults": Param((bool,), True, "also use the built-in phrases"),
            },
            _build_not_refused,
            ("status",),
        ),
        EvaluatorSpec(
            "max_latency",
            "the call took at most `max_ms` milliseconds",
            DataType.BOOLEAN,
            {"max_ms": Param(_NUMBER)},
            _build_max_latency,
            ("latency_ms",),
        ),
        EvaluatorSpec(
            "max_cost",
            "the call cost at most `max_usd` US dollars",
            DataType.BOOLEAN,
            {"max_usd": Param(_NUMBER)},
            _build_max_cost,
            ("cost",),
        ),
        EvaluatorSpec(
            "similarity",
            "text similarity with the expected output (rapidfuzz), 0..1",
            DataType.NUMERIC,
            {
                "min": Param(_NUMBER, 0.8, "passing similarity"),
                "method": Param((str,), "ratio", "rapidfuzz scorer", tuple(_SCORERS)),
                "value": Param((str,), None, "default: the item's expected output"),
                "case_sensitive": Param((bool,), False),
            },
            _build_similarity,
            ("expected",),
        ),
    )
}


def _check_params(spec: EvaluatorSpec, params) -> tuple[str, dict]:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams(f"{spec.kind}: parameters must be an object, not {type(params).__name__}")
    allowed = {**spec.params, **_NAME}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidParams(
            f"{spec.kind}: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
    checked = {}
    for key, param in allowed.items():
        if key not in params or params[key] is None:
            if param.required:
                raise InvalidParams(f"{spec.kind}: `{key}` is required")
            checked[key] = param.default
            continue
        value = params[key]
        # bool is an int in Python: a number parameter must not take true/false.
        if (isinstance(value, bool) and bool not in param.types) or not isinstance(value, param.types):
            names = "/".join(t.__name__ for t in param.types)
            raise InvalidParams(f"{spec.kind}: `{key}` must be {names}, not {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParams(f"{spec.kind}: `{key}` must be finite")
        if param.choices is not None and value not in param.choices:
            raise InvalidParams(f"{spec.kind}: `{key}` must be one of {', '.join(map(str, param.choices))}")
        checked[key] = value
    name = checked.pop("name") or spec.kind
    if not name.strip() or len(name) > 500:
        raise InvalidParams(f"{spec.kind}: `name` must be 1 to 500 characters")
    return name, checked


def compile_evaluator(kind: str, params: dict | None = None) -> Evaluator:
    """Check `params` for `kind` and compile them once; raises UnknownEvaluator / InvalidParams."""
    spec = EVALUATORS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise UnknownEvaluator(f"unknown evaluator {kind!r}; known: {', '.join(sorted(EVALUATORS))}")
    name, checked = _check_params(spec, params)
    return Evaluator(spec, name, checked, spec.build(name, checked))


@functools.lru_cache(maxsize=1024)
def _cached(kind: str, key: str) -> Evaluator:
    return compile_evaluator(kind, json.loads(key))


def evaluate(
    kind: str, params: dict | None, *, output, expected=None, input=None, latency_ms=None, cost=None, status=None
) -> Result:
    """Score one output. Compiled evaluators are cached per (kind, params); for a hot loop over
    many items, `compile_evaluator` once and call the result."""
    try:
        key = json.dumps(params or {}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidParams(f"{kind}: parameters must be JSON values") from None
    return _cached(kind, key)(
        output=output, expected=expected, input=input, latency_ms=latency_ms, cost=cost, status=status
    )
