"""Per-process cache of API key rows, so authenticating a request usually costs no query.

Entries live at most API_KEY_CACHE_SECONDS. Any change to a key or its project bumps a generation
stamp in Redis; every process compares its stamp at most once a second, so a revocation takes effect
everywhere within about a second (and at once in the process that made it). Unknown keys are
cached for the same time (as None), so a known and an unknown public key cost the same: a dictionary
lookup once warm, one query when cold.

When Redis does not answer (within REDIS_SOCKET_TIMEOUT), the process stops using its entries and
authenticates from the database until a stamp check succeeds again: a revocation must not be missed
for a whole TTL because Redis was down, and authentication must not wait on Redis.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tenancy.models import ApiKey, Organization, Project

logger = logging.getLogger(__name__)

GENERATION_KEY = "tenancy:api_keys:generation"
STAMP_CHECK_SECONDS = 1.0

_lock = threading.Lock()
_entries: dict[tuple[str, str], tuple[float, ApiKey | None]] = {}
MISS = object()
# redis_ok: whether the last stamp check reached Redis. Without the stamp this process cannot hear
# of revocations elsewhere, so it stops trusting its entries and reads the database until Redis is back.
_state = {"generation": None, "checked_at": 0.0, "redis_ok": True}


def _check_generation(now: float) -> None:
    with _lock:
        if now - _state["checked_at"] < STAMP_CHECK_SECONDS:
            return
        # Claimed before asking: one thread per second pays for a slow Redis, not every request.
        _state["checked_at"] = now
    try:
        generation = cache.get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - stalled or down (bounded by REDIS_SOCKET_TIMEOUT)
        logger.warning("API key cache stamp unavailable; authenticating from the database", exc_info=True)
        with _lock:
            _entries.clear()
            _state["redis_ok"] = False
        return
    with _lock:
        if generation != _state["generation"] or not _state["redis_ok"]:
            _entries.clear()
            _state["generation"] = generation
        _state["redis_ok"] = True


def get(kind: str, value: str):
    """The cached key, None for a key known not to exist, or MISS."""
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl <= 0:
        return MISS
    now = time.monotonic()
    _check_generation(now)
    if not _state["redis_ok"]:
        return MISS
    entry = _entries.get((kind, value))
    if entry is None or now - entry[0] > ttl:
        return MISS
    return entry[1]


def put(kind: str, value: str, api_key: ApiKey | None) -> None:
    if settings.API_KEY_CACHE_SECONDS <= 0 or not _state["redis_ok"]:
        return
    now = time.monotonic()
    with _lock:
        if len(_entries) > 10_000:
            _entries.clear()
        _entries[(kind, value)] = (now, api_key)


def invalidate() -> None:
    """Forget every cached key here and tell the other processes to do the same."""
    with _lock:
        _entries.clear()
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        cache.add(GENERATION_KEY, 1, timeout=None)
    except Exception:  # noqa: BLE001 - Redis down: other processes stop caching when they miss the stamp
        logger.warning("could not bump the API key cache stamp", exc_info=True)


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
@receiver(post_save, sender=Project)
@receiver(post_delete, sender=Project)
@receiver(post_save, sender=Organization)
def _on_change(sender, instance, **kwargs):
    # Bumped at once and again after commit: a request racing the transaction could otherwise
    # re-cache the old row after the first bump.
    invalidate()
    from django.db import transaction

    transaction.on_commit(invalidate)
