"""The Django cache on Redis, failing fast while Redis does not answer.

Socket timeouts (REDIS_SOCKET_TIMEOUT) bound one command; but a request makes several cache calls
(key-cache stamp, redaction policy, score configs, prices, prompts), and each would wait the full
timeout on a stalled Redis. After a command times out or cannot connect, this client refuses every
command for REDIS_RETRY_AFTER_SECONDS with an immediate ConnectionError — which every cache user
already handles (fall back to the database, fail open) — then lets the next one try Redis again.
"""

from __future__ import annotations

import threading
import time

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_lock = threading.Lock()
_state = {"open_until": 0.0}


def _retry_after() -> float:
    return float(getattr(settings, "REDIS_RETRY_AFTER_SECONDS", 1.0))


def reset() -> None:
    """Forget a past failure (tests, or after Redis is known to be back)."""
    with _lock:
        _state["open_until"] = 0.0


class _FailFastRedis(redis.Redis):
    def execute_command(self, *args, **options):
        if time.monotonic() < _state["open_until"]:
            raise redis.ConnectionError("Redis did not answer a moment ago; not waiting for it again yet")
        try:
            return super().execute_command(*args, **options)
        except (redis.TimeoutError, redis.ConnectionError):
            with _lock:
                _state["open_until"] = time.monotonic() + _retry_after()
            raise


class _FailFastClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._client = _FailFastRedis


class FailFastRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _FailFastClient
