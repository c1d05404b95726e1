"""Lookglass client: rule evaluators (`lookglass.evaluators`) and the `lookglass` command (`lookglass.cli`)."""

from lookglass.evaluators import (
    EVALUATORS,
    DataType,
    EvaluatorError,
    InvalidParams,
    MissingData,
    Result,
    UnknownEvaluator,
    compile_evaluator,
    evaluate,
)
from lookglass.target import TargetResult

__all__ = [
    "EVALUATORS",
    "DataType",
    "EvaluatorError",
    "InvalidParams",
    "MissingData",
    "Result",
    "TargetResult",
    "UnknownEvaluator",
    "compile_evaluator",
    "evaluate",
]
