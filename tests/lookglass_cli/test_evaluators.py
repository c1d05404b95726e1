"""The rule evaluators of the client package (`lookglass.evaluators`): one test per kind, plus the
registry's refusals of unknown kinds and bad parameters. Pure Python: no database."""

from __future__ import annotations

import time

import pytest
from lookglass import evaluators as ev
from lookglass.evaluators import (
    EVALUATORS,
    DataType,
    EvaluatorError,
    InvalidParams,
    MissingData,
    UnknownEvaluator,
    compile_evaluator,
    evaluate,
)


def test_every_kind_the_issue_names_is_registered():
    assert set(EVALUATORS) == {
        "contains", "regex", "exact_match", "json_valid", "json_schema", "not_refused",
        "max_latency", "max_cost", "similarity",
    }


def test_contains_uses_the_configured_value_or_the_expected_output():
    hit = evaluate("contains", {"value": "Paris"}, output="The capital is PARIS.")
    assert (hit.name, hit.value, hit.passed, hit.data_type) == ("contains", 1.0, True, DataType.BOOLEAN)
    assert "Paris" in hit.reason
    miss = evaluate("contains", {"case_sensitive": True}, output="paris", expected="Paris")
    assert (miss.value, miss.passed) == (0.0, False)
    assert miss.reason == "output does not contain 'Paris'"
    assert evaluate("contains", {"value": ["a", "z"], "mode": "any"}, output="abc").passed
    assert not evaluate("contains", {"value": ["a", "z"]}, output="abc").passed
    # A chat message output is read by its content.
    assert evaluate("contains", {}, output={"role": "assistant", "content": "It is Paris"}, expected="paris").passed
    with pytest.raises(MissingData, match="no expected output"):
        evaluate("contains", {}, output="x")


def test_regex_runs_on_re2_and_refuses_what_re2_cannot_run():
    result = evaluate("regex", {"pattern": r"order #\d{4}"}, output="your order #1234 shipped")
    assert result.passed and "order #1234" in result.reason
    assert not evaluate("regex", {"pattern": r"\d+", "full_match": True}, output="12a").passed
    assert evaluate("regex", {"pattern": "PARIS", "case_sensitive": False}, output="paris").passed
    with pytest.raises(InvalidParams, match="backreferences and lookaround"):
        compile_evaluator("regex", {"pattern": r"(a)\1"})
    # Catastrophic for a backtracking engine, linear for RE2.
    started = time.perf_counter()
    assert not evaluate("regex", {"pattern": "^(a+)+$"}, output="a" * 50_000 + "b").passed
    assert time.perf_counter() - started < 1


def test_exact_match_compares_text_and_json_values():
    assert evaluate("exact_match", {}, output="  Paris\n", expected="Paris").passed
    assert not evaluate("exact_match", {}, output="paris", expected="Paris").passed
    assert evaluate("exact_match", {"case_sensitive": False}, output="paris", expected="Paris").passed
    assert evaluate("exact_match", {}, output='{"b": 2, "a": 1}', expected={"a": 1, "b": 2}).passed
    result = evaluate("exact_match", {"value": "yes"}, output="no")
    assert not result.passed and result.reason == "output 'no' differs from 'yes'"


def test_json_valid():
    assert evaluate("json_valid", {}, output='{"a": [1, 2]}').passed
    assert evaluate("json_valid", {}, output={"a": 1}).passed
    bad = evaluate("json_valid", {}, output='{"a": ')
    assert not bad.passed and bad.reason.startswith("output is not valid JSON")


def test_json_schema_validates_parsed_output_with_re2_patterns():
    schema = {
        "type": "object",
        "required": ["city"],
        "properties": {"city": {"type": "string", "pattern": "^[A-Z][a-z]+$"}},
    }
    assert evaluate("json_schema", {"schema": schema}, output='{"city": "Paris"}').passed
    bad = evaluate("json_schema", {"schema": schema}, output={"city": "paris"})
    assert not bad.passed and bad.reason.startswith("output does not match the schema at $.city")
    assert evaluate("json_schema", {"schema": schema}, output="not json").reason.startswith("output is not valid JSON")
    with pytest.raises(InvalidParams, match="not a usable JSON Schema"):
        compile_evaluator("json_schema", {"schema": {"type": "nonsense"}})
    with pytest.raises(InvalidParams, match="RE2"):
        compile_evaluator("json_schema", {"schema": {"pattern": "(?=a)"}})


def test_not_refused_reads_the_status_the_refusal_field_and_the_opening():
    assert evaluate("not_refused", {}, output="Sure, here it is.").passed
    assert not evaluate("not_refused", {}, output="I’m sorry, but I can’t help with that.").passed
    assert not evaluate("not_refused", {}, output="ok", status="content_filter").passed
    assert not evaluate("not_refused", {}, output={"content": None, "refusal": "No."}).passed
    # "I can't" deep inside a helpful answer is not a refusal.
    helpful = "Here is the recipe. " + "Mix well. " * 30 + "I can't help with baking times, sorry."
    assert evaluate("not_refused", {}, output=helpful).passed
    assert not evaluate("not_refused", {"phrases": ["Nope"], "defaults": False}, output="nope, never").passed


def test_max_latency_and_max_cost():
    ok = evaluate("max_latency", {"max_ms": 500}, output="x", latency_ms=120)
    assert ok.passed and ok.reason == "120 ms ≤ 500 ms"
    assert not evaluate("max_latency", {"max_ms": 500}, output="x", latency_ms=501).passed
    assert evaluate("max_cost", {"max_usd": 0.01}, output="x", cost=0.002).passed
    assert not evaluate("max_cost", {"max_usd": 0.01}, output="x", cost=0.02).passed
    with pytest.raises(MissingData):
        evaluate("max_cost", {"max_usd": 0.01}, output="x")
    with pytest.raises(InvalidParams, match="positive"):
        compile_evaluator("max_latency", {"max_ms": 0})


def test_similarity_is_numeric_with_a_threshold():
    close = evaluate("similarity", {}, output="The capital of France is Paris", expected="the capital of france is paris.")
    assert close.data_type == DataType.NUMERIC and close.value > 0.95 and close.passed
    far = evaluate("similarity", {"min": 0.9}, output="Berlin", expected="Paris")
    assert far.value < 0.5 and not far.passed
    assert evaluate("similarity", {"method": "token_set_ratio"}, output="b a c", expected="a b").value == 1.0


def test_unknown_kinds_and_bad_parameters_are_value_errors_with_a_reason():
    with pytest.raises(UnknownEvaluator, match="unknown evaluator 'contain'; known: contains"):
        evaluate("contain", {}, output="x")
    with pytest.raises(InvalidParams, match="unknown parameter"):
        compile_evaluator("contains", {"valeu": "x"})
    with pytest.raises(InvalidParams, match="`pattern` is required"):
        compile_evaluator("regex", {})
    with pytest.raises(InvalidParams, match="`max_ms` must be int/float, not bool"):
        compile_evaluator("max_latency", {"max_ms": True})
    with pytest.raises(InvalidParams, match="must be one of"):
        compile_evaluator("similarity", {"method": "cosine"})
    assert issubclass(EvaluatorError, ValueError)


def test_the_score_name_can_be_set():
    assert evaluate("contains", {"value": "a", "name": "has-a"}, output="a").name == "has-a"


def test_compiled_evaluators_are_cached_per_parameters(monkeypatch):
    calls = []
    original = ev.compile_evaluator
    monkeypatch.setattr(ev, "compile_evaluator", lambda *a: calls.append(a) or original(*a))
    ev._cached.cache_clear()
    for _ in range(3):
        evaluate("regex", {"pattern": "x+"}, output="xx")
    assert len(calls) == 1
