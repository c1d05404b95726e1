"""gunicorn configuration for `BENCH_AB=rollups make bench-ingest` only: lets the benchmark switch the
monitoring rollups off and on between phases of one run, without a switch in the product.

The rollups are written inside the writer's transaction and are exact only if every batch moves them,
so the product has no way to turn them off; this hook replaces `ingest.rollups.Tracker` in each web
worker with one that does nothing while the flag file named by BENCH_ROLLUPS_OFF_FLAG exists (checked
once per batch: a stat call). The benchmark's own project is cleaned after the run, its rollups with it.
"""

from __future__ import annotations

import os


class _NoRollups:
    """The tracker's surface as the writer uses it, moving nothing."""

    old_traces: dict = {}
    inserted_traces: dict = {}

    def __init__(self, rule):
        self.rule = rule

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def post_worker_init(worker) -> None:
    from ingest import rollups

    flag = os.environ["BENCH_ROLLUPS_OFF_FLAG"]
    real = rollups.Tracker

    def tracker(cursor, project):
        if os.path.exists(flag):
            return _NoRollups(real(cursor, project).rule)
        return real(cursor, project)

    rollups.Tracker = tracker
