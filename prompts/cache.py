"""Prompt fetches are on the customer's request path: two cache tiers in front of the database.

1. An in-process LRU (PROMPT_CACHE_LOCAL_MAX_ENTRIES entries, PROMPT_CACHE_LOCAL_TTL_SECONDS): no
   network at all. The process that writes drops its entries at once; other processes may serve the
   previous answer for at most that TTL (the SDKs themselves cache for 60 s, so a second is noise).
2. Redis (the Django cache), shared by every process, invalidated on commit of a create or a label
   move, so it is never stale.

Redis invalidation is a per-prompt *generation*: entries are stored as (generation, payload) and
read together with the current generation in one round trip; a write sets a fresh random
generation, which orphans every entry of that prompt (labels, versions and cached 404s alike)
without enumerating them. A reader that raced with a write stores its value under the generation it
read *before* querying, so at worst it writes an entry that is already orphaned. A lost or evicted
generation key is replaced by a fresh random one, which no stored entry carries, so eviction cannot
resurrect old data.

Keys are (project, name, "label:x" | "version:n"); the name is hashed so any name fits a key.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

NOT_FOUND = b""  # a cached 404; real payloads are never empty JSON


class LocalLRU:
    def __init__(self, max_entries: int, ttl: float):
        self.max_entries, self.ttl = max_entries, ttl
        self._data: OrderedDict[tuple, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            expires, value = hit
            if expires < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: tuple, value: bytes) -> None:
        if self.ttl <= 0 or self.max_entries <= 0:
            return
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def drop_prompt(self, project_id: str, name: str) -> None:
        with self._lock:
            for key in [k for k in self._data if k[0] == project_id and k[1] == name]:
                del self._data[key]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local = LocalLRU(
    getattr(settings, "PROMPT_CACHE_LOCAL_MAX_ENTRIES", 2048),
    getattr(settings, "PROMPT_CACHE_LOCAL_TTL_SECONDS", 2.0),
)


def selector_key(*, label: str | None, version: int | None) -> str:
    return f"version:{version}" if version is not None else f"label:{label}"


def _base(project_id: str, name: str) -> str:
    digest = hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
    return f"prompt:{project_id}:{digest}"


def _generation_key(project_id: str, name: str) -> str:
    return _base(project_id, name) + ":gen"


def fetch(project_id, name: str, selector: str, load: Callable[[], bytes | None]) -> bytes | None:
    """The payload for (project, name, selector), or None for "no such prompt/label/version"."""
    project_id = str(project_id)
    local_key = (project_id, name, selector)
    hit = local.get(local_key)
    if hit is not None:
        return hit or None
    gen_key = _generation_key(project_id, name)
    value_key = f"{_base(project_id, name)}:{selector}"
    found = cache.get_many([gen_key, value_key])
    generation = found.get(gen_key)
    stored = found.get(value_key)
    if generation is not None and stored is not None and stored[0] == generation:
        local.set(local_key, stored[1])
        return stored[1] or None
    if generation is None:
        generation = _start_generation(gen_key)
    payload = load()
    value = payload if payload is not None else NOT_FOUND
    cache.set(value_key, (generation, value), timeout=getattr(settings, "PROMPT_CACHE_TTL_SECONDS", 600))
    local.set(local_key, value)
    return payload


def _generation_ttl() -> int:
    # Outlives the entries it guards; when it goes anyway, a fresh one orphans them.
    return getattr(settings, "PROMPT_CACHE_TTL_SECONDS", 600) * 4


def _start_generation(gen_key: str) -> str:
    fresh = uuid.uuid4().hex
    if cache.add(gen_key, fresh, timeout=_generation_ttl()):
        return fresh
    return cache.get(gen_key) or fresh


def invalidate(project_id, name: str) -> None:
    project_id = str(project_id)
    local.drop_prompt(project_id, name)
    cache.set(_generation_key(project_id, name), uuid.uuid4().hex, timeout=_generation_ttl())


def invalidate_on_commit(project_id, name: str, *, using: str) -> None:
    """Invalidate now (so this process stops serving the old answer) and again once the write is
    visible (so a reader that fetched the old rows meanwhile cannot have left a live entry)."""
    invalidate(project_id, name)
    transaction.on_commit(lambda: invalidate(project_id, name), using=using)
