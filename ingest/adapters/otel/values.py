"""Small, forgiving conversions for attribute values (senders disagree on types). Time parsing and the
environment rule are the shared ones in `ingest.rules`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from ingest.contract import MAX_BIGINT, MAX_COST, MAX_INT  # noqa: E402,F401 (re-exported: one rule)
from ingest.rules.values import nanos_to_datetime, parse_iso_datetime, to_count, to_int  # noqa: F401 (re-exported)


def parse_json(value: Any) -> Any:
    """A JSON string → its value; anything else (or a string that is not JSON) unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def parse_json_container(value: Any) -> Any:
    """Like parse_json, but only for strings that look like a JSON object or array, so plain text
    such as "42" or "true" stays the string the sender wrote."""
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("{", "["):
            return parse_json(value)
    return value


def parse_json_object(value: Any) -> dict | None:
    parsed = parse_json(value)
    return parsed if isinstance(parsed, dict) else None


def to_cost(value: Any) -> Decimal | None:
    """A non-negative USD amount that fits numeric(20, 10), else None."""
    number = to_decimal(value)
    return number if number is not None and 0 <= number < MAX_COST else None


def to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
    if isinstance(value, int):
        return bool(value)
    return None


def to_text(value: Any) -> str:
    """A value for a text column: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def to_tags(value: Any) -> list[str]:
    """Tags as an array, a JSON-array string, a comma-separated string or a single string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = parse_json(text)
            if isinstance(parsed, list):
                return to_tags(parsed)
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        tags = []
        for item in value:
            if item is not None:
                text = (item if isinstance(item, str) else to_text(item)).strip()
                if text:
                    tags.append(text)
        return tags
    return [to_text(value)]


def parse_datetime(value: Any) -> datetime | None:
    """An ISO-8601 string (possibly JSON-quoted, as older Langfuse SDKs send it), or epoch nanos."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        try:
            return nanos_to_datetime(value) if value > 10**15 else None
        except OverflowError:
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith('"'):
        parsed = parse_json(text)
        if not isinstance(parsed, str):
            return None
        text = parsed.strip()
    return parse_iso_datetime(text)
