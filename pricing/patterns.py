"""Validation of model-name match patterns.

Patterns come from people (project overrides) and run on the ingestion hot path, so a pattern that
can backtrack exponentially is refused when it is saved rather than discovered when a worker hangs.
Python's `re` has no timeout; the guard is structural: no variable-length repetition may contain
another variable-length repetition or a multi-way alternation (`(a+)+`, `(a|ab)*`), and no
backreferences. Model names are also capped in length before matching (`MAX_MATCHED_NAME_LENGTH`).
"""

from __future__ import annotations

import re

# `re._parser` is the parser `re.compile` itself uses; it is private but has been stable for decades.
from re import _parser as sre_parse  # type: ignore[attr-defined]

MAX_PATTERN_LENGTH = 500
MAX_MATCHED_NAME_LENGTH = 256

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}
_POSSESSIVE = getattr(sre_parse, "POSSESSIVE_REPEAT", None)
if _POSSESSIVE is not None:
    _REPEATS.add(_POSSESSIVE)
_BACKREFS = {sre_parse.GROUPREF, sre_parse.GROUPREF_EXISTS}
_GROUPREF_IGNORE = getattr(sre_parse, "GROUPREF_IGNORE", None)
if _GROUPREF_IGNORE is not None:
    _BACKREFS.add(_GROUPREF_IGNORE)


class PatternError(ValueError):
    pass


def check_pattern(pattern: str) -> re.Pattern:
    """Compile `pattern` case-insensitively, or raise PatternError saying what is wrong with it."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise PatternError("a match pattern is required")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise PatternError(f"not a valid regular expression: {exc}") from None
    except (RecursionError, OverflowError):
        raise PatternError("the pattern is nested too deeply") from None
    _check_tree(list(parsed), inside_variable_repeat=False)
    return compiled


def compile_pattern(pattern: str) -> re.Pattern | None:
    """For rows already stored: a pattern that is no longer acceptable is skipped, not fatal."""
    try:
        return check_pattern(pattern)
    except PatternError:
        return None


def _check_tree(nodes: list, *, inside_variable_repeat: bool) -> None:
    for op, av in nodes:
        if op in _BACKREFS:
            raise PatternError("backreferences are not allowed in match patterns")
        if op in _REPEATS:
            low, high, body = av
            variable = high != low and (high == sre_parse.MAXREPEAT or high > 1)
            if variable and inside_variable_repeat:
                raise PatternError(
                    "nested repetition such as (a+)+ can take exponential time; rewrite the pattern without it"
                )
            _check_tree(list(body), inside_variable_repeat=inside_variable_repeat or variable)
        elif op == sre_parse.SUBPATTERN:
            _check_tree(list(av[-1]), inside_variable_repeat=inside_variable_repeat)
        elif op == sre_parse.BRANCH:
            branches = av[1]
            if inside_variable_repeat and len(branches) > 1:
                raise PatternError(
                    "alternation inside repetition such as (a|ab)* can take exponential time; "
                    "rewrite the pattern without it"
                )
            for branch in branches:
                _check_tree(list(branch), inside_variable_repeat=inside_variable_repeat)
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            _check_tree(list(av[1]), inside_variable_repeat=inside_variable_repeat)
        elif op == getattr(sre_parse, "ATOMIC_GROUP", object()):
            _check_tree(list(av), inside_variable_repeat=inside_variable_repeat)
