"""Query-string parsing for the public read API: every bad value becomes a 400 with a clear message
(`InvalidParams` and the datetime reader are the shared ones of `tenancy.http.params`)."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal, InvalidOperation

import orjson

from tenancy.http.params import InvalidParams, parse_iso_datetime
from traces.selectors import CONDITION_TYPES, Column, Condition

__all__ = ["InvalidParams", "QueryParams", "parse_datetime_value"]

MAX_FILTER_CONDITIONS = 50
# Bounds that keep numbers inside what Postgres numerics and Python timedeltas can hold.
MAX_NUMBER = 1e15
MAX_DURATION_SECONDS = 1e9


def parse_datetime_value(name: str, raw: str) -> datetime:
    value = parse_iso_datetime(raw)
    if value is None:
        raise InvalidParams(f"{name} must be an ISO 8601 datetime such as 2024-05-01T12:00:00Z, got {raw!r}")
    return value


class QueryParams:
    def __init__(self, query):
        self.query = query

    def raw(self, name: str) -> str | None:
        return self.query.get(name)

    def string(self, name: str) -> str | None:
        """The value, or None when absent or empty (an empty filter means no filter)."""
        value = self.query.get(name)
        if value is None or value == "":
            return None
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        """A repeatable parameter (`?tags=a&tags=b`); empty values are ignored."""
        return tuple(v for v in self.query.getlist(name) if v != "")

    def integer(self, name: str, *, default: int, minimum: int, maximum: int | None = None) -> int:
        raw = self.string(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidParams(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise InvalidParams(f"{name} must be {bounds}, got {value}")
        return value

    def page(self) -> int:
        return self.integer("page", default=1, minimum=1)

    def limit(self, *, default: int = 50, maximum: int = 100) -> int:
        return self.integer("limit", default=default, minimum=1, maximum=maximum)

    def datetime(self, name: str) -> datetime | None:
        raw = self.string(name)
        return None if raw is None else parse_datetime_value(name, raw)

    def decimal(self, name: str) -> Decimal | None:
        raw = self.string(name)
        if raw is None:
            return None
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            raise InvalidParams(f"{name} must be a number, got {raw!r}") from None
        if not value.is_finite() or value < 0:
            raise InvalidParams(f"{name} must be a finite number >= 0, got {raw!r}")
        if value > Decimal(MAX_NUMBER):
            raise InvalidParams(f"{name} must be at most {MAX_NUMBER:.0e}, got {raw!r}")
        return value

    def number(self, name: str, *, maximum: float = MAX_NUMBER) -> float | None:
        raw = self.string(name)
        if raw is None:
            return None
        try:
            value = float(raw.strip())
        except ValueError:
            raise InvalidParams(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value < 0:
            raise InvalidParams(f"{name} must be a finite number >= 0, got {raw!r}")
        if value > maximum:
            raise InvalidParams(f"{name} must be at most {maximum:.0e}, got {raw!r}")
        return value

    def boolean(self, name: str) -> bool | None:
        raw = self.string(name)
        if raw is None:
            return None
        lowered = raw.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise InvalidParams(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, choices, *, normalize=str.upper) -> str | None:
        raw = self.string(name)
        if raw is None:
            return None
        value = normalize(raw.strip())
        if value not in choices:
            raise InvalidParams(f"{name} must be one of {', '.join(sorted(choices))}, got {raw!r}")
        return value

    def choices(self, name: str, choices, *, normalize=str.upper) -> tuple[str, ...]:
        values = []
        for raw in self.strings(name):
            value = normalize(raw.strip())
            if value not in choices:
                raise InvalidParams(f"{name} must be one of {', '.join(sorted(choices))}, got {raw!r}")
            values.append(value)
        return tuple(values)

    def field_groups(self, name: str, groups, *, default) -> frozenset[str]:
        raw = self.string(name)
        if raw is None:
            return frozenset(default)
        selected = {part.strip() for part in raw.split(",") if part.strip()}
        unknown = selected - set(groups)
        if unknown:
            raise InvalidParams(
                f"{name}: unknown field group(s) {', '.join(sorted(unknown))}; available: {', '.join(groups)}"
            )
        return frozenset(selected)

    def conditions(self, name: str, columns: dict[str, Column]) -> tuple[Condition, ...]:
        raw = self.string(name)
        if raw is None:
            return ()
        return parse_conditions(raw, columns, param=name)


def _condition_error(param: str, index: int, message: str) -> InvalidParams:
    return InvalidParams(f"{param}[{index}]: {message}")


def parse_conditions(raw: str, columns: dict[str, Column], *, param: str = "filter") -> tuple[Condition, ...]:
    """Validate Langfuse's structured `filter` (a JSON array of conditions) against our columns."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidParams(f"{param} must be a JSON array of conditions: {exc}") from None
    if not isinstance(data, list):
        raise InvalidParams(f"{param} must be a JSON array of conditions, got {type(data).__name__}")
    if len(data) > MAX_FILTER_CONDITIONS:
        raise InvalidParams(
            f"{param} has {len(data)} conditions; at most {MAX_FILTER_CONDITIONS} are allowed"
        )
    conditions = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise _condition_error(param, index, "each condition must be an object")
        column_name = item.get("column")
        if column_name not in columns:
            raise _condition_error(
                param, index, f"unsupported column {column_name!r}; supported: {', '.join(sorted(columns))}"
            )
        column = columns[column_name]
        allowed = CONDITION_TYPES[column.kind]
        cond_type = item.get("type")
        if cond_type not in allowed:
            raise _condition_error(
                param,
                index,
                f"type {cond_type!r} does not apply to column {column_name!r}; use one of "
                f"{', '.join(sorted(allowed))}",
            )
        operator = item.get("operator")
        if operator not in allowed[cond_type]:
            raise _condition_error(
                param,
                index,
                f"operator {operator!r} is not valid for type {cond_type!r}; use one of "
                f"{', '.join(sorted(allowed[cond_type]))}",
            )
        key = item.get("key")
        if column.kind == "object" and (not isinstance(key, str) or not key or "\x00" in key):
            raise _condition_error(param, index, f"column {column_name!r} needs a non-empty string `key`")
        value = _condition_value(param, index, cond_type, operator, item.get("value"))
        limit = MAX_DURATION_SECONDS if column.duration else MAX_NUMBER
        if cond_type in ("number", "numberObject") and abs(value) > limit:
            raise _condition_error(param, index, f"value must be between -{limit:.0e} and {limit:.0e}")
        conditions.append(
            Condition(column=column_name, type=cond_type, operator=operator, value=value, key=key)
        )
    return tuple(conditions)


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, (list, tuple)) and any(_has_nul(v) for v in value)


def _condition_value(param: str, index: int, cond_type: str, operator: str, value):
    if _has_nul(value):
        raise _condition_error(param, index, "values must not contain NUL characters")
    if cond_type == "null" or operator in ("is set", "is not set"):
        return None
    if cond_type == "datetime":
        if not isinstance(value, str):
            raise _condition_error(param, index, "datetime conditions need an ISO 8601 string value")
        try:
            return parse_datetime_value("value", value)
        except InvalidParams as exc:
            raise _condition_error(param, index, exc.message) from None
    if cond_type in ("number", "numberObject"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _condition_error(param, index, f"{cond_type} conditions need a finite numeric value")
        return value
    if cond_type == "boolean":
        if not isinstance(value, bool):
            raise _condition_error(param, index, "boolean conditions need true or false")
        return value
    if cond_type in ("stringOptions", "categoryOptions", "arrayOptions"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _condition_error(param, index, f"{cond_type} conditions need a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise _condition_error(param, index, f"{cond_type} conditions need a string value")
    return value
