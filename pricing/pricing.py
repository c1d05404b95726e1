"""Price resolution and cost arithmetic, called in bulk from ingestion.

The whole price table (catalog plus every project's overrides: a few hundred small rows) is held
in-process as a compiled snapshot. A version stamp in the Django cache (Redis) is bumped after every
committed change; each process compares its stamp at most every `MODEL_PRICE_CACHE_CHECK_SECONDS`
(default 1 s), so a price edit reaches every web and worker process within about a second, and a
price lookup costs no database query and, most of the time, no Redis round trip either.

Resolution for (project, model name as sent, time):
1. The project's overrides are tried first; the catalog only when no override applies.
2. Among rows whose pattern matches, the one with the latest `effective_from <= at` wins; a tie is
   broken by the most specific row (longest canonical model name, then longest pattern).
3. Catalog only: when every matching row starts after `at` (a backfill, a skewed client clock), the
   model's first known price is used rather than none. Overrides are never back-dated this way, so
   an override scheduled for next month does not change this month's costs.

Usage kinds are disjoint token counts: `input` excludes cached and cache-write tokens and `output`
excludes `reasoning` (the ingestion normaliser splits them, as OpenAI's `*_details` do).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from pricing.patterns import MAX_MATCHED_NAME_LENGTH, compile_pattern

logger = logging.getLogger(__name__)

# Named before the catalog moved out of billing/; kept so old and new processes share it during a deploy.
VERSION_CACHE_KEY = "billing:model_prices:version"
USAGE_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")
# The kinds an input and an output cost add up (`CostResult.input_cost`/`output_cost`, the cost columns).
INPUT_KINDS = ("input", "cached_input", "cache_write")
OUTPUT_KINDS = ("output", "reasoning")
_USAGE_KIND_SET = frozenset(USAGE_KINDS)
# A safety net for a missed bump (Redis flushed, a row edited with raw SQL): reload anyway.
MAX_SNAPSHOT_AGE_SECONDS = 300
_MATCH_MEMO_LIMIT = 20_000
_PER_MILLION = -6


class InvalidUsage(ValueError):
    pass


@dataclass(frozen=True)
class Price:
    """One price row, USD per million tokens. `*_price` None means "falls back" (see rates)."""

    id: uuid.UUID
    project_id: uuid.UUID | None
    provider: str
    model_name: str
    match_pattern: str
    effective_from: datetime
    input_price: Decimal
    cached_input_price: Decimal | None
    cache_write_price: Decimal | None
    output_price: Decimal
    reasoning_price: Decimal | None
    source: str

    @property
    def is_override(self) -> bool:
        return self.project_id is not None

    def rate(self, kind: str) -> Decimal:
        """The per-million rate actually charged for a usage kind, after fallbacks."""
        if kind == "input":
            return self.input_price
        if kind == "cached_input":
            return self.cached_input_price if self.cached_input_price is not None else self.input_price
        if kind == "cache_write":
            return self.cache_write_price if self.cache_write_price is not None else self.input_price
        if kind == "output":
            return self.output_price
        if kind == "reasoning":
            return self.reasoning_price if self.reasoning_price is not None else self.output_price
        raise InvalidUsage(f"unknown usage kind {kind!r}; expected one of {', '.join(USAGE_KINDS)}")


@dataclass(frozen=True)
class CostResult:
    price: Price
    # Only the kinds the usage reported (a None count is "not reported" and gets no entry).
    costs: Mapping[str, Decimal]
    total: Decimal
    tokens: Mapping[str, int] = field(default_factory=dict)

    @property
    def price_source(self) -> str:
        return "override" if self.price.is_override else "catalog"

    @property
    def details(self) -> dict[str, Decimal]:
        return dict(self.costs)

    @property
    def input_cost(self) -> Decimal:
        return sum((self.costs[k] for k in INPUT_KINDS if k in self.costs), Decimal(0))

    @property
    def output_cost(self) -> Decimal:
        return sum((self.costs[k] for k in OUTPUT_KINDS if k in self.costs), Decimal(0))

    @property
    def total_cost(self) -> Decimal:
        return self.total


class CostItem(NamedTuple):
    project_id: Any
    model: str | None
    usage: Mapping[str, Any] | None
    at: datetime | None


def price_for(*, project_id, model: str | None, at: datetime | None = None) -> Price | None:
    return _snapshot().resolve(project_id, model, _aware(at))


def compute_cost(*, project_id, model: str | None, usage: Mapping[str, Any] | None, at: datetime | None = None):
    """Costs in USD for one call, or None when no price applies to the model."""
    tokens = normalize_usage(usage)
    price = price_for(project_id=project_id, model=model, at=at)
    return None if price is None else _cost(price, tokens)


_NO_PROJECT = object()


def compute_costs(
    items: Iterable[CostItem | Mapping[str, Any] | tuple], *, project_id=_NO_PROJECT
) -> list[CostResult | None]:
    """`compute_cost` for a batch, aligned with `items`: one snapshot, each distinct model name
    matched against the patterns once. Items are CostItem/(project_id, model, usage, at) tuples or
    mappings; with `project_id=` given for the whole batch, (model, usage, at) tuples. Usage is
    validated for the whole batch before anything is priced; InvalidUsage names the item's index."""
    shared = project_id is not _NO_PROJECT
    batch = []  # (project id, model, tokens, at)
    for index, item in enumerate(items):
        if shared and item.__class__ is tuple and len(item) == 3:
            # The ingest writer's (model, usage, at): unpacked as they are, no CostItem built.
            item_project, (model, usage, at) = project_id, item
        else:
            item_project, model, usage, at = _as_item(item, project_id)
        try:
            batch.append((item_project, model, normalize_usage(usage), _aware(at)))
        except InvalidUsage as exc:
            raise InvalidUsage(f"item {index}: {exc}") from None
    snapshot = _snapshot()
    resolve = snapshot.resolve_key
    results: list[CostResult | None] = []
    project_id, project_key = _NO_PROJECT, None
    for item_project, model, tokens, at in batch:
        if item_project is not project_id:  # a batch's items share their project: its key once
            project_id, project_key = item_project, _project_key(item_project)
        entry = resolve(project_key, model, at)
        results.append(None if entry is None else _cost(entry.price, tokens, entry.rates))
    return results


def normalize_usage(usage: Mapping[str, Any] | None) -> dict[str, int]:
    if usage is None:
        return {}
    if usage.__class__ is not dict and not isinstance(usage, Mapping):
        raise InvalidUsage("usage must be a mapping of usage kind to token count")
    tokens: dict[str, int] = {}
    for kind, value in usage.items():
        if kind not in _USAGE_KIND_SET:
            raise InvalidUsage(f"unknown usage kind {kind!r}; expected one of {', '.join(USAGE_KINDS)}")
        if value is None:
            continue
        # A plain non-negative int is the common case; anything else takes the full check.
        if value.__class__ is not int and (isinstance(value, bool) or not isinstance(value, int)) or value < 0:
            raise InvalidUsage(f"usage {kind!r} must be a non-negative integer, not {value!r}")
        tokens[kind] = value
    return tokens


def _rates(price: Price) -> dict[str, Decimal]:
    """{usage kind: the price's rate per token}: the per-million rate moved six places (exact: only the
    exponent changes, so count × it is the same Decimal, digits and exponent, as (count × rate) moved
    six places after)."""
    return {kind: price.rate(kind).scaleb(_PER_MILLION) for kind in USAGE_KINDS}


def _cost(price: Price, tokens: Mapping[str, int], rates: Mapping[str, Decimal] | None = None) -> CostResult:
    """`tokens`: a fresh dict of the caller's (`normalize_usage`), kept by the result. `rates`: the
    price's `_rates`, computed once per snapshot (a batch's costs); without them, the same costs from
    the per-million rates."""
    if rates is None:
        costs = {kind: (Decimal(count) * price.rate(kind)).scaleb(_PER_MILLION) for kind, count in tokens.items()}
    else:
        costs = {kind: Decimal(count) * rates[kind] for kind, count in tokens.items()}
    total = sum(costs.values(), Decimal(0))
    return CostResult(price=price, costs=costs, total=total, tokens=tokens)


def _as_item(item, project_id=_NO_PROJECT) -> CostItem:
    if project_id is not _NO_PROJECT and item.__class__ is tuple:  # the ingest writer's items
        return CostItem(project_id, *item)
    if isinstance(item, CostItem):
        return item
    if isinstance(item, Mapping):
        default = None if project_id is _NO_PROJECT else project_id
        return CostItem(item.get("project_id", default), item.get("model"), item.get("usage"), item.get("at"))
    if project_id is not _NO_PROJECT:
        return CostItem(project_id, *item)
    return CostItem(*item)


def _aware(at: datetime | str | None) -> datetime:
    if at.__class__ is datetime and at.utcoffset() is not None:
        return at  # aware already (`timezone.is_naive` is this test): every ingested call's start
    if at is None:
        return timezone.now()
    if isinstance(at, str):
        parsed = parse_datetime(at)
        if parsed is None:
            raise InvalidUsage(f"not an ISO 8601 timestamp: {at!r}")
        at = parsed
    if timezone.is_naive(at):
        return timezone.make_aware(at, dt_timezone.utc)
    return at


# --- the in-process snapshot ----------------------------------------------------------------


class _Entry(NamedTuple):
    price: Price
    regex: Any
    specificity: tuple[int, int]
    rates: dict[str, Decimal] | None  # `_rates(price)`


class _Snapshot:
    def __init__(self, prices: Iterable[Price], version: str | None):
        self.version = version
        self.loaded_at = self.checked_at = time.monotonic()
        self.catalog: list[_Entry] = []
        self.overrides: dict[Any, list[_Entry]] = {}
        for price in prices:
            regex = compile_pattern(price.match_pattern)
            if regex is None:
                logger.warning("model price %s has an unusable match pattern; skipped", price.id)
                continue
            try:
                rates = _rates(price)
            except (AttributeError, TypeError, ArithmeticError):
                # Not a price this code can compute (a rate missing): it fails, as before, only the
                # costs that use it (`_cost` computes them from the rates then), never the whole snapshot.
                rates = None
            entry = _Entry(price, regex, (len(price.model_name), len(price.match_pattern)), rates)
            if price.project_id is None:
                self.catalog.append(entry)
            else:
                self.overrides.setdefault(price.project_id, []).append(entry)
        # (project key, lowered name) -> (matching overrides, matching catalog rows, the one row to
        # answer whatever the time, or None)
        self._matches: dict[tuple[Any, str], tuple[list[_Entry], list[_Entry], _Entry | None]] = {}

    def resolve(self, project_id, model: str | None, at: datetime) -> Price | None:
        entry = self.resolve_entry(project_id, model, at)
        return None if entry is None else entry.price

    def resolve_entry(self, project_id, model: str | None, at: datetime) -> _Entry | None:
        return self.resolve_key(_project_key(project_id), model, at)

    def resolve_key(self, project_key, model: str | None, at: datetime) -> _Entry | None:
        """`resolve_entry` for the project's `_project_key`."""
        if not model or not isinstance(model, str):
            return None
        name = model.strip()
        if not name or len(name) > MAX_MATCHED_NAME_LENGTH:
            return None
        overrides, catalog, only = self._matching(project_key, name)
        if only is not None:
            return only
        chosen = _latest_in_force(overrides, at)
        if chosen is None:
            chosen = _latest_in_force(catalog, at)
        if chosen is None and catalog:
            chosen = min(catalog, key=lambda e: (-e.specificity[0], -e.specificity[1], e.price.effective_from))
        return chosen

    def _matching(self, project_key, name: str):
        key = (project_key, name.lower())
        found = self._matches.get(key)
        if found is None:
            overrides = [e for e in self.overrides.get(project_key, ()) if e.regex.search(name)]
            catalog = [e for e in self.catalog if e.regex.search(name)]
            # One catalog row and no override: the rules below choose it whatever the time (in force,
            # or the model's first known price), so it is answered without them.
            only = catalog[0] if len(catalog) == 1 and not overrides else None
            found = (overrides, catalog, only)
            if len(self._matches) >= _MATCH_MEMO_LIMIT:
                self._matches.clear()
            self._matches[key] = found
        return found


def _latest_in_force(entries: list[_Entry], at: datetime) -> _Entry | None:
    best = None
    for entry in entries:
        if entry.price.effective_from > at:
            continue
        if best is None or (entry.price.effective_from, entry.specificity) > (
            best.price.effective_from,
            best.specificity,
        ):
            best = entry
    return best


def _project_key(project_id):
    if project_id is None:
        return None
    if isinstance(project_id, uuid.UUID):
        return project_id
    try:
        return uuid.UUID(str(project_id))
    except ValueError:
        return None


_lock = threading.Lock()
_current: _Snapshot | None = None


def _check_interval() -> float:
    return float(getattr(settings, "MODEL_PRICE_CACHE_CHECK_SECONDS", 1.0))


def _remote_version() -> str | None:
    try:
        return cache.get(VERSION_CACHE_KEY)
    except Exception:  # noqa: BLE001 - Redis trouble must not stop ingestion; the age limit still applies
        logger.warning("could not read the model price version from the cache", exc_info=True)
        raise _CacheUnavailable from None


class _CacheUnavailable(Exception):
    pass


def _snapshot() -> _Snapshot:
    global _current
    snapshot = _current
    now = time.monotonic()
    if snapshot is not None and now - snapshot.checked_at < _check_interval():
        return snapshot
    with _lock:
        snapshot = _current
        now = time.monotonic()
        if snapshot is not None and now - snapshot.checked_at < _check_interval():
            return snapshot
        try:
            remote = _remote_version()
        except _CacheUnavailable:
            if snapshot is not None and now - snapshot.loaded_at < MAX_SNAPSHOT_AGE_SECONDS:
                snapshot.checked_at = now
                return snapshot
            remote = None
        if (
            snapshot is not None
            and remote is not None
            and remote == snapshot.version
            and now - snapshot.loaded_at < MAX_SNAPSHOT_AGE_SECONDS
        ):
            snapshot.checked_at = now
            return snapshot
        if remote is None:
            # First process after a Redis flush: start a stamp so that later bumps are noticed.
            remote = _new_version()
            try:
                if not cache.add(VERSION_CACHE_KEY, remote, timeout=None):
                    remote = cache.get(VERSION_CACHE_KEY) or remote
            except Exception:  # noqa: BLE001
                logger.warning("could not store the model price version in the cache", exc_info=True)
        # The version is read before the rows, so a change committed in between is loaded now and
        # reloaded once more when its bump is seen: never the other way round.
        _current = _Snapshot(_load_prices(), remote)
        return _current


def _load_prices() -> list[Price]:
    from pricing.models import ModelPrice

    fields = [f for f in Price.__dataclass_fields__ if f != "project_id"]
    prices = []
    for row in ModelPrice.objects.values(*fields, "project_id"):
        # One tenant's unreadable row (a date Python cannot hold, stored before validation existed)
        # reads as None (pricing.models.StoredDateTimeField): skip it, never fail every tenant's load.
        if row["effective_from"] is None:
            logger.error(
                "model price %s (project %s) has an effective_from outside years 1-9999; skipped until "
                "it is fixed or deleted", row["id"], row["project_id"],
            )
            continue
        prices.append(Price(**row))
    return prices


def _new_version() -> str:
    return uuid.uuid4().hex


def _publish_change() -> None:
    global _current
    _current = None
    try:
        cache.set(VERSION_CACHE_KEY, _new_version(), timeout=None)
    except Exception:  # noqa: BLE001
        logger.warning("could not bump the model price version; other processes reload within 5 minutes", exc_info=True)


def catalog_changed(*, using: str = "default") -> None:
    """Call after any write to ModelPrice (the model's signals do). The bump waits for the commit,
    so no process can reload the old rows under the new stamp, and a rolled-back edit bumps nothing."""
    transaction.on_commit(_publish_change, using=using)


def reset_local_cache() -> None:
    """Forget this process's snapshot (tests, and shells that edit rows with raw SQL)."""
    global _current
    _current = None
