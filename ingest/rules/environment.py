"""Langfuse's environment rule, for every path (it was written twice, once per adapter)."""

from __future__ import annotations

import re

DEFAULT_ENVIRONMENT = "default"
MAX_LENGTH = 40
_ALLOWED = re.compile(r"^[a-z0-9_-]+$")
_RESERVED_PREFIXES = ("langfuse-", "langfuse_", "langfuse")


_KNOWN: dict[str, str] = {}  # sent → normalized: a sender repeats one environment on every event


def normalize_environment(value) -> str | None:
    """Lower case, a leading reserved `langfuse` prefix dropped, at most 40 characters of
    [a-z0-9_-]; anything else (a non-string too) becomes "default". None when nothing was sent."""
    if value is None:
        return None
    if not isinstance(value, str):
        return DEFAULT_ENVIRONMENT
    known = _KNOWN.get(value)
    if known is not None:
        return known
    env = _normalized(value)
    # Only short values are kept (an environment is at most 40 characters): a client sending long
    # distinct ones must not grow the cache by their size, nor many distinct ones without bound.
    if len(value) <= 64:
        if len(_KNOWN) >= 1024:
            _KNOWN.clear()
        _KNOWN[value] = env
    return env


def _normalized(value: str) -> str:
    env = value.strip().lower()
    for prefix in _RESERVED_PREFIXES:
        if env.startswith(prefix):
            env = env[len(prefix) :]
            break
    env = env[:MAX_LENGTH]
    return env if env and _ALLOWED.match(env) else DEFAULT_ENVIRONMENT
