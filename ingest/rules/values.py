"""Value and time parsing shared by the adapters (the datetime parser existed in several copies)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from tenancy.http.params import parse_iso_datetime

__all__ = ["EPOCH", "epoch_to_datetime", "nanos_to_datetime", "parse_iso_datetime"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nanos_to_datetime(nanos: int) -> datetime:
    return EPOCH + timedelta(microseconds=nanos // 1000)


def epoch_to_datetime(value) -> datetime | None:
    """Epoch seconds or milliseconds (a number above 1e11 is read as milliseconds), or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    return None
