"""Per-key and per-IP request limits for the browser feedback endpoints, in Redis.

Fixed one-minute windows aligned to the clock: a counter per (scope, subject, minute) that expires
after two minutes. A burst straddling a window boundary can reach twice the limit for a moment; in
exchange a check is one round trip of `SET NX` + `INCR`, and there is nothing to clean up.

A Redis outage lets requests through (logged): feedback must not go down with the cache, and the
writes behind it are small and bounded by the body and comment limits anyway.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
KEY_PREFIX = "feedback-rl:v1"


@dataclass(frozen=True)
class Limited:
    scope: str  # "key" | "ip"
    limit: int
    retry_after: int  # whole seconds until the window resets, at least 1


def client_ip(request) -> str:
    """The caller's address: the socket peer, or behind FEEDBACK_TRUSTED_PROXY_HOPS proxies the
    X-Forwarded-For entry the outermost trusted proxy appended (entries left of it are client-chosen)."""
    hops = settings.FEEDBACK_TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return request.META.get("REMOTE_ADDR", "")[:64] or "unknown"


def _hit(scope: str, subject: str, limit: int, now: float) -> Limited | None:
    if limit <= 0:
        return None
    window = int(now // WINDOW_SECONDS)
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]  # IPs and key ids never appear in Redis keys
    key = f"{KEY_PREFIX}:{scope}:{digest}:{window}"
    try:
        cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
        count = cache.incr(key)
    except ValueError:
        # The counter expired between the two calls (only after a stall of a whole window): start over.
        cache.add(key, 1, timeout=2 * WINDOW_SECONDS)
        count = 1
    except Exception:
        logger.warning("feedback rate limit unavailable (cache error); request allowed", exc_info=True)
        return None
    if count <= limit:
        return None
    retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return Limited(scope=scope, limit=limit, retry_after=retry_after)


def hit_ip(request, *, now: float | None = None) -> Limited | None:
    """Count one request against the caller's IP; a `Limited` when it is over the limit."""
    return _hit(
        "ip", client_ip(request), settings.FEEDBACK_RATE_LIMIT_PER_IP, time.time() if now is None else now
    )


def hit_key(api_key_id, *, now: float | None = None) -> Limited | None:
    """Count one request against an API key; a `Limited` when it is over the limit."""
    return _hit(
        "key", str(api_key_id), settings.FEEDBACK_RATE_LIMIT_PER_KEY, time.time() if now is None else now
    )
