"""CPU time per ingest stage, for `make bench-ingest` (which prints it per span). Off unless a
caller sets `timing.enabled = True`: then each `with stage(name):` adds the thread CPU it used
(time.thread_time) to `totals[name]`, less what stages nested in it used, so the parts add up to
the whole. Meant for one thread (the benchmark measures in its own process); off, a stage costs
one attribute test."""

from __future__ import annotations

import time
from contextlib import contextmanager

enabled = False
totals: dict[str, float] = {}
_open: list[list] = []  # [name, started, CPU of nested stages]


def reset() -> None:
    totals.clear()


@contextmanager
def stage(name: str):
    if not enabled:
        yield
        return
    frame = [name, time.thread_time(), 0.0]
    _open.append(frame)
    try:
        yield
    finally:
        _open.pop()
        used = time.thread_time() - frame[1]
        totals[name] = totals.get(name, 0.0) + used - frame[2]
        if _open:
            _open[-1][2] += used
