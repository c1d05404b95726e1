"""Shared pieces of the fuzz suite (tests/fuzz/test_fuzz_*.py): a request counter, deterministic hypothesis
settings, labelled values and a JSON encoder that can write what `json.dumps` will not.

Every generated value is a `V`: the value, what the server must do with the event that carries it
(`ok` = store it, `reject` = a 4xx entry of its own, `either` = both are correct, but never a 500 nor
a failed batch) and the known open issue it exercises, if any. Values tied to a known issue stay in
the generators; the label only names the issue in the failure message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from django.test import Client
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

# Every request the fuzz tests make, by test; conftest prints the total at the end of the run.
REQUESTS: dict[str, int] = {}


def fuzz_settings(max_examples: int) -> settings:
    """Deterministic (same examples every run, no example database) so CI is stable; no deadline
    because a shared 2-core CI machine makes timings meaningless."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        # No shrinking: a failure is reported with the event and its known-issue label at once, and a
        # failing run stays within the CI budget.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


class CountingClient(Client):
    """Django's test client (in-process, same database transaction) counting what it sends."""

    def __init__(self, name: str, *args, **kwargs):
        # A 500 is an answer to report with the generated input, not an exception to stop at.
        super().__init__(*args, raise_request_exception=False, **kwargs)
        self.name = name
        REQUESTS.setdefault(name, 0)

    def request(self, **request):
        REQUESTS[self.name] += 1
        return super().request(**request)

    @property
    def count(self) -> int:
        return REQUESTS[self.name]


# --- labelled values ---------------------------------------------------------------------------

OK, REJECT, EITHER = "ok", "reject", "either"

# The open issues other branches are fixing; a failure on a value carrying one of these labels is that
# issue, not a new one.
KNOWN = {
    "ts-range": "timestamps before year 1 / after 9999 UTC are stored and then break reads",
    "ts-numeric": "numeric timestamps such as 1e15 / -1e12 fail the whole batch",
    "big-number": "usage/cost beyond 64 bits fail the whole batch",
    "level-list": '`level: ["x"]` fails the whole batch',
    "deep": "deep nesting fails the whole batch / answers 500",
    "score-type": "wrong-type score fields fail the whole batch",
    "otlp-int": "OTLP intValue ≥ 2^64 and token counts near 2^63 answer 500",
    "id-path": "ids with `/` or `..` cannot be read back",
}


@dataclass(frozen=True)
class V:
    value: object
    expect: str = OK
    known: frozenset = field(default_factory=frozenset)


def known(strategy):
    """Values that exercise a known open issue. FUZZ_SKIP_KNOWN=1 leaves them out, to look for new
    failures while those issues are still open; the suite itself always includes them."""
    return st.nothing() if os.environ.get("FUZZ_SKIP_KNOWN") else strategy


def v(value, expect: str = OK, known: str | None = None) -> V:
    return V(value, expect, frozenset({known}) if known else frozenset())


def combine(parts) -> tuple[str, frozenset]:
    """An event is rejected if any field must be, free if any field may be, else stored."""
    expects = {p.expect for p in parts}
    known = frozenset().union(*(p.known for p in parts)) if parts else frozenset()
    if REJECT in expects:
        return REJECT, known
    if EITHER in expects:
        return EITHER, known
    return OK, known


def describe_known(labels) -> str:
    return "; ".join(f"known issue [{label}]: {KNOWN[label]}" for label in sorted(labels)) or "NEW"


# --- JSON that json.dumps cannot write -----------------------------------------------------------


@dataclass(frozen=True)
class Deep:
    """`depth` nested arrays (or objects) around `leaf`, written iteratively."""

    depth: int
    kind: str = "["
    leaf: object = 1


def encode(value) -> str:
    """JSON text for `value`. Unlike orjson it writes lone surrogates (as `\\udXXX` escapes, as
    Python's json module does for any SDK that sends them), integers of any size, and `Deep` values
    nested far beyond any recursion limit."""
    if isinstance(value, Deep):
        leaf = encode(value.leaf)
        if value.kind == "[":
            return "[" * value.depth + leaf + "]" * value.depth
        return '{"a":' * value.depth + leaf + "}" * value.depth
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode(item) for item in value) + "]"
    return json.dumps(value)
