"""Reading timestamps that Python cannot hold.

PostgreSQL stores timestamptz values from 4713 BC to 294276 AD; Python's datetime only years 1 to
9999. Ingestion refuses anything outside 1970..2262 (`ingest.contract`), but rows stored before
that rule (or written by hand) may hold, say, `0001-01-01T00:00:00+14:00` — year 0 in UTC. psycopg
then raises DataError while loading the row, and every page listing it (the read API, the console,
the operator's cross-tenant list) answered 400 for good.

So every PostgreSQL connection gets a timestamptz loader that returns the nearest datetime Python
can hold (1 January of year 1, or the last microsecond of 9999) instead of failing the whole query.
The value is wrong either way; clamped, it at least sorts where the stored one does and the row can
be seen, fixed or deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from psycopg.adapt import Loader
from psycopg.postgres import types

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
TIMESTAMPTZ_OID = types["timestamptz"].oid
_clamping: dict[type, type] = {}


def _clamped(data) -> datetime:
    # Text format "YYYY-MM-DD HH:MM:SS[.ffffff]+TZ[ BC]": before year 1 is BC, else past 9999.
    return EARLIEST if bytes(data).rstrip().endswith(b"BC") else LATEST


def _clamping_loader(base: type[Loader]) -> type[Loader]:
    """`base` (Django's loader, which also pins the connection's time zone), clamping what it cannot load."""
    loader = _clamping.get(base)
    if loader is None:

        def load(self, data):
            try:
                return base.load(self, data)
            except (psycopg.DataError, ValueError, OverflowError):
                return _clamped(data)

        loader = type(f"Clamping{base.__name__}", (base,), {"load": load, "clamps": True})
        _clamping[base] = loader
    return loader


def register(connection) -> None:
    """Install the clamping loader on a new (or newly checked-out) PostgreSQL connection."""
    if connection.vendor != "postgresql" or connection.connection is None:
        return
    # Django reads every result as text, through its own loader (pinned to the connection's time
    # zone, which Django checks for on each cursor): that is the one wrapped.
    adapters = connection.connection.adapters
    base = adapters.get_loader(TIMESTAMPTZ_OID, psycopg.pq.Format.TEXT)
    if base is not None and not getattr(base, "clamps", False):
        adapters.register_loader(TIMESTAMPTZ_OID, _clamping_loader(base))
