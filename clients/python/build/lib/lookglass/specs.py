"""The command line's evaluator and threshold syntax.

`--evaluator` (repeatable; default `contains`, the classic regression check against each item's
expected output):

    KIND                      default parameters: contains, exact_match, json_valid, not_refused, similarity
    KIND=VALUE                the kind's main parameter:
                                contains=TEXT, regex=PATTERN, exact_match=TEXT, json_schema=@schema.json
                                (or inline JSON), max_latency=MS, max_cost=USD, similarity=MIN
    KIND:{JSON}               every parameter, e.g. similarity:{"min":0.9,"method":"token_set_ratio"}
                              or contains:{"value":"Paris","name":"mentions-paris"}; `:@params.json` reads a file
    judge:NAME                an LLM judge configured on the server, run there

`--threshold NAME=MIN` (repeatable): the mean of score NAME over the scored items must be ≥ MIN
(for a pass/fail evaluator the mean is its pass rate). An evaluator without a threshold must pass
on every scored item.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from lookglass.evaluators import EVALUATORS, Evaluator, EvaluatorError, compile_evaluator

MAIN_PARAM = {
    "contains": "value",
    "regex": "pattern",
    "exact_match": "value",
    "json_schema": "schema",
    "max_latency": "max_ms",
    "max_cost": "max_usd",
    "similarity": "min",
}
NUMBER_PARAMS = {"max_ms", "max_usd", "min"}


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class Judge:
    name: str  # the evaluator's name on the server (and the score name)


def _load(text: str, what: str):
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SpecError(f"{what}: not JSON: {exc}") from None


def parse_evaluator(spec: str) -> Evaluator | Judge:
    spec = spec.strip()
    if spec.startswith("judge:"):
        name = spec[len("judge:") :].strip()
        if not name:
            raise SpecError("judge: give the judge's name, e.g. judge:correctness")
        return Judge(name)
    # The first `=` or `:` after the kind decides the form (a pattern may contain both).
    cut = min((i for i in (spec.find("="), spec.find(":")) if i != -1), default=-1)
    kind, sep, rest = (spec, "", "") if cut == -1 else (spec[:cut], spec[cut], spec[cut + 1 :])
    if kind not in EVALUATORS:
        raise SpecError(f"unknown evaluator {kind!r} in {spec!r}; known: {', '.join(sorted(EVALUATORS))}, judge:NAME")
    if sep == ":":
        params = _load(rest, spec)
        if not isinstance(params, dict):
            raise SpecError(f"{spec!r}: the parameters after `:` must be a JSON object")
    elif sep == "=":
        main = MAIN_PARAM.get(kind)
        if main is None:
            raise SpecError(f"{kind} takes no value; use {kind} or {kind}:{{JSON parameters}}")
        if main == "schema":
            value = _load(rest, spec)
        elif main in NUMBER_PARAMS:
            try:
                value = float(rest)
            except ValueError:
                raise SpecError(f"{spec!r}: {main} must be a number") from None
        else:
            value = rest
        params = {main: value}
    else:
        params = {}
    try:
        return compile_evaluator(kind, params)
    except EvaluatorError as exc:
        raise SpecError(str(exc)) from None


def parse_threshold(spec: str) -> tuple[str, float]:
    name, sep, value = spec.rpartition("=")
    if not sep or not name:
        raise SpecError(f"--threshold {spec!r}: write NAME=MIN, e.g. contains=0.9")
    try:
        minimum = float(value)
    except ValueError:
        raise SpecError(f"--threshold {spec!r}: MIN must be a number") from None
    if not math.isfinite(minimum):
        raise SpecError(f"--threshold {spec!r}: MIN must be finite")
    return name, minimum
