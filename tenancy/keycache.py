"""Per-process cache of API key rows, so authenticating a request usually costs no query.

Entries live at most API_KEY_CACHE_SECONDS. Any change to a key or its project bumps a generation
stamp in Redis; every process compares its stamp at most once a second, so a revocation takes effect
everywhere within about a second (and at once in the process that made it). Unknown keys are
cached for the same time (as None), so a known and an unknown public key cost the same: a dictionary
lookup once warm, one query when cold.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tenancy.models import ApiKey, Organization, Project

GENERATION_KEY = "tenancy:api_keys:generation"
STAMP_CHECK_SECONDS = 1.0

_lock = threading.Lock()
_entries: dict[tuple[str, str], tuple[float, ApiKey | None]] = {}
MISS = object()
_state = {"generation": None, "checked_at": 0.0}


def _current_generation() -> int | None:
    try:
        return cache.get(GENERATION_KEY)
    except Exception:  # Redis down: fall back to the TTL alone rather than failing authentication
        return _state["generation"]


def _check_generation(now: float) -> None:
    if now - _state["checked_at"] < STAMP_CHECK_SECONDS:
        return
    generation = _current_generation()
    with _lock:
        if generation != _state["generation"]:
            _entries.clear()
            _state["generation"] = generation
        _state["checked_at"] = now


def get(kind: str, value: str):
    """The cached key, None for a key known not to exist, or MISS."""
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl <= 0:
        return MISS
    now = time.monotonic()
    _check_generation(now)
    entry = _entries.get((kind, value))
    if entry is None or now - entry[0] > ttl:
        return MISS
    return entry[1]


def put(kind: str, value: str, api_key: ApiKey | None) -> None:
    if settings.API_KEY_CACHE_SECONDS <= 0:
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
    except Exception:  # Redis down: other processes fall back to the TTL
        pass


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
