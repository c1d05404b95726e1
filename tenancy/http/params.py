"""Query-string parsing for the Langfuse-compatible endpoints: every bad value is an `InvalidParams`
(a 400 naming the parameter), never a 500.

`parse_iso_datetime` is THE ISO-8601 reader of the code base (query strings here, request bodies in
`ingest.rules.values`); `QueryParams` (the read API, `traces.public.params`) and the `query_*`
helpers (the write endpoints' score list, the feedback reports) build on it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from tenancy.http.body import loads_json


class InvalidParams(ValueError):
    """A query parameter that cannot be used; `message` names it (a ValueError, so callers that
    validate several values at once catch it with the rest)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_iso_datetime(text: str) -> datetime | None:
    """An ISO-8601 datetime (a trailing `Z` included), read as UTC when it has no offset; None when
    the text is not one. An unencoded `+00:00` in a hand-written URL arrives as a space, so a text
    that does not parse is tried once more with spaces read as `+`."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        if " " not in text:
            return None
        try:
            value = datetime.fromisoformat(text.replace(" ", "+"))
        except ValueError:
            return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def query_list(query, name: str) -> tuple[str, ...]:
    """A repeatable, comma-separated parameter (`?environment=a,b&environment=c`)."""
    values = []
    for raw in query.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(values)


def query_int(query, name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParams(f"`{name}` must be an integer") from None
    if value < low or (high is not None and value > high):
        raise InvalidParams(
            f"`{name}` must be between {low} and {high}" if high else f"`{name}` must be ≥ {low}"
        )
    return value


def query_datetime(query, name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    value = parse_iso_datetime(raw)
    if value is None:
        raise InvalidParams(f"`{name}` is not an ISO-8601 datetime: {raw[:60]!r}")
    return value


def encode_token(value) -> str:
    """An opaque page cursor: `value` as JSON in unpadded base64url."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_token(token: str):
    """The JSON value of a cursor `encode_token` made (or one an older release made with the standard
    library's JSON). Anything else raises ValueError: bad base64, bad UTF-8, bad JSON, and JSON nested
    thousands deep (the API's reader refuses it, where the standard library ran out of stack — a 500)."""
    return loads_json(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
