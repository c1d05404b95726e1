"""Value and time parsing shared by the adapters (the datetime parser existed in several copies)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from tenancy.http.params import parse_iso_datetime  # noqa: F401 (the one ISO reader, re-exported for adapters)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BIGINT = 2**63 - 1  # bigint columns (token counts)
_MICROSECOND = timedelta(0, 0, 1)


def nanos_to_datetime(nanos: int) -> datetime:
    # A microsecond times the count (exact integer arithmetic): building a timedelta from its arguments
    # normalises each of them and cost ~0.3 µs more per call (two or more per span); the keyword form
    # `timedelta(microseconds=…)` was slower still.
    return EPOCH + _MICROSECOND * (nanos // 1000)


def epoch_to_datetime(value) -> datetime | None:
    """Epoch seconds or milliseconds (a number above 1e11 is read as milliseconds), or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    return None


def to_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if number.is_integer() else None
    return None


def to_count(value: Any, *, maximum: int = MAX_BIGINT) -> int | None:
    """A non-negative integer that fits its column, else None."""
    if type(value) is int:  # nearly every count: what `to_int` answers for it, without its checks (bool is no int here)
        return value if 0 <= value <= maximum else None
    number = to_int(value)
    return number if number is not None and 0 <= number <= maximum else None


def strip_nul(value):
    """`value` with every NUL character (in strings and keys, at any depth) replaced by U+FFFD.

    PostgreSQL text and jsonb refuse NUL, which models and fuzzers do emit; the writer and the
    rollups both store through this one rule, so a rollup's dimension equals the stored row's."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    return value
