"""JSON Schema validation whose `pattern` and `patternProperties` run on RE2.

`jsonschema` matches those keywords with Python's backtracking `re`; on the server the schema is the
tenant's, and `^(a+)+$` against a long output would hold a worker for minutes. Written without Django so
the client can use it; the server's dataset schemas (`evals/schemas.py`) run this same module.
"""

from __future__ import annotations

import functools

import re2
from jsonschema import SchemaError, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend, validator_for


class UnsupportedSchema(ValueError):
    pass


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str):
    return re2.compile(pattern)


def _search(pattern: str, text: str) -> bool:
    return _compiled(pattern).search(text) is not None


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string") and not _search(patrn, instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = sorted(
        (key for key in instance if key not in properties and not any(_search(p, key) for p in patterns)), key=str
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        verb = "was" if len(extras) == 1 else "were"
        yield ValidationError(
            f"Additional properties are not allowed ({', '.join(repr(e) for e in extras)} {verb} unexpected)"
        )


def _patterns_in(schema):
    stack, found, mixed = [schema], [], False
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                found.extend(node["patternProperties"])
                mixed = mixed or "unevaluatedProperties" in node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found, mixed


@functools.lru_cache(maxsize=64)
def _validator_class(base):
    return extend(
        base,
        {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
    )


def compile_schema(schema):
    """A validator for `schema`; raises UnsupportedSchema with a reason."""
    if not isinstance(schema, (dict, bool)):
        raise UnsupportedSchema("a JSON Schema is an object (or a boolean)")
    base = validator_for(schema)
    try:
        base.check_schema(schema)
    except SchemaError as exc:
        raise UnsupportedSchema(exc.message) from None
    patterns, mixed = _patterns_in(schema)
    for pattern in patterns:
        try:
            _compiled(pattern)
        except re2.error as exc:
            raise UnsupportedSchema(
                f"the pattern {pattern!r} cannot be run by RE2 ({exc}); backreferences and lookaround are not supported"
            ) from None
    if mixed:
        raise UnsupportedSchema("`patternProperties` together with `unevaluatedProperties` is not supported")
    return _validator_class(base)(schema)


def validator(schema):
    """A validator for a schema `compile_schema` already accepted (no second check)."""
    return _validator_class(validator_for(schema))(schema)


def first_error(validator, value) -> str | None:
    """Why `value` fails (`$.path: message`), or None."""
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = error.json_path if error.absolute_path else "$"
    return f"{where}: {error.message}"
