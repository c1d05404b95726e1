"""Updates of stored calls on a project grown since its last ANALYZE: `make bench-updates`.

The ingest benchmark's workloads only insert, so they cannot show what an update costs. An update
(a span sent again: create then end, a late cost, an SDK's `generation-update`) goes through the
writer's merge UPDATE and fix UPDATE and the rollups' locking snapshot; on a project that grew after
the table's statistics were taken, the planner believes the project holds a row or two, and those
statements once read the whole project to update a few rows (issue 13).

This script, in-process on the durable embedded stack (`make bench-updates`, or any DATABASE_URL):
1. creates (or reuses) the `bench-updates` project, takes the statistics (ANALYZE) before it has any
   row, then stores BENCH_UPDATE_CALLS calls (default 20,000: traces of 5 nested generations);
2. sends BENCH_UPDATE_BATCHES batches (default 20), each updating 20 stored root calls (new token
   counts and end time: the fix UPDATE, duplicate marking and the rollups all move), and prints the
   median and p90 time per batch and the observations/traces rows read per batch
   (pg_stat_xact_user_tables, read inside each batch's transaction).

Run it from two checkouts on the same database (DATABASE_URL=… of a running stack) to compare, alternating.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CALLS = int(os.environ.get("BENCH_UPDATE_CALLS", "20000"))
BATCHES = int(os.environ.get("BENCH_UPDATE_BATCHES", "20"))
ROUND = int(os.environ.get("BENCH_UPDATE_ROUND", "0"))  # varies the values sent, so every run changes rows
# BENCH_UPDATE_TENANTS=N: the statistics are taken while the tables also hold N small tenants of one
# trace and one call each, which are then deleted (a retention run before autovacuum: dead rows and
# index entries): every project then looks like one row to the planner (issue 13, stale statistics).
TENANTS = int(os.environ.get("BENCH_UPDATE_TENANTS", "0"))
T0 = datetime(2026, 12, 1, tzinfo=UTC)
PER_TRACE = 5


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from bench.server import prepare_environment

    prepare_environment()
    os.environ["DB_POOL"] = "false"  # one process, one connection
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections, transaction

    from ingest import writer
    from tenancy.models import Organization, Project
    from tenancy.regions import region_database

    call_command("migrate", verbosity=0)
    org, _ = Organization.objects.get_or_create(name="bench-updates")
    project = Project.objects.filter(organization=org, name="bench-updates").first()
    traces = CALLS // PER_TRACE
    if project is None:
        project = Project.objects.create(organization=org, name="bench-updates", region=os.environ.get(
            "BENCH_UPDATE_REGION", "default"))
    database = region_database(project.region)
    with connections[database].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM traces_observation WHERE project_id = %s", [project.id]
        )
        have = cursor.fetchone()[0]
    if have < CALLS:
        with connections[database].cursor() as cursor:
            cursor.execute("DELETE FROM traces_observation WHERE project_id = %s", [project.id])
            cursor.execute("DELETE FROM traces_trace WHERE project_id = %s", [project.id])
        if TENANTS:
            seed = {"id": "seed", "trace_id": "seed", "type": "GENERATION", "model": "gpt-4o", "start_time": T0}
            writer.write_records(project=project, traces=[], observations=[seed], scores=[])
        with connections[database].cursor() as cursor:
            if TENANTS:
                cursor.execute("SET statement_timeout = 0")
                for table, extra in (("traces_trace", ""), ("traces_observation", ", 'trace_id', 'tenant-' || g")):
                    cursor.execute(
                        # LATERAL: `(f(...)).*` in the select list would call f once per column.
                        f"INSERT INTO {table} SELECT p.* "
                        f"FROM (SELECT * FROM {table} WHERE project_id = %s AND id = 'seed') AS r, "
                        "generate_series(1, %s) AS g, "
                        f"LATERAL jsonb_populate_record(NULL::{table}, to_jsonb(r) || "
                        f"jsonb_build_object('project_id', md5('bench-tenant-' || g)::uuid, 'id', 'tenant-' || g{extra})) AS p",
                        [project.id, TENANTS],
                    )
            cursor.execute("ANALYZE traces_observation, traces_trace")  # statistics before the project grows
            if TENANTS:
                # Holds the state "before autovacuum" through the alternated runs (this benchmark's
                # own stack: autovacuum would re-analyze the tables within a minute).
                cursor.execute("ALTER TABLE traces_trace SET (autovacuum_enabled = false)")
                cursor.execute("ALTER TABLE traces_observation SET (autovacuum_enabled = false)")
                for table in ("traces_trace", "traces_observation"):
                    cursor.execute(f"DELETE FROM {table} WHERE id LIKE 'tenant-%%' OR (project_id = %s AND id = 'seed')",
                                   [project.id])
        for start in range(0, traces, 100):
            calls = []
            for t in range(start, min(start + 100, traces)):
                tid = f"u{t}"
                for i in range(PER_TRACE):
                    calls.append({
                        "id": f"{tid}-{i}", "trace_id": tid, "type": "GENERATION", "model": "gpt-4o",
                        "parent_observation_id": f"{tid}-0" if i else None,
                        "start_time": T0 + timedelta(seconds=i), "end_time": T0 + timedelta(seconds=10 - i),
                        "input_tokens": 100 + i, "output_tokens": 10,
                    })
            writer.write_records(project=project, traces=[], observations=calls, scores=[])
        print(f"bench-updates: stored {CALLS:,} calls in project {project.id} after ANALYZE"
              + (f" of {TENANTS:,} one-row tenants, deleted since" if TENANTS else ""))

    def rows_read(cursor) -> int:
        cursor.execute(
            "SELECT COALESCE(sum(COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0)), 0) "
            "FROM pg_stat_xact_user_tables WHERE relname IN ('traces_observation', 'traces_trace')"
        )
        return int(cursor.fetchone()[0])

    times, reads = [], []
    for k in range(BATCHES):
        first = (k * 997 + ROUND * 131) % max(1, traces - 20)
        updates = [
            {"id": f"u{t}-0", "trace_id": f"u{t}", "output_tokens": 20 + ROUND + k,
             "end_time": T0 + timedelta(seconds=30)}
            for t in range(first, first + 20)
        ]
        with transaction.atomic(using=database), connections[database].cursor() as cursor:
            before = rows_read(cursor)
            started = time.perf_counter()
            writer.write_records(project=project, traces=[], observations=updates, scores=[])
            times.append((time.perf_counter() - started) * 1000)
            reads.append(rows_read(cursor) - before)
    times.sort()
    reads.sort()
    print(
        f"bench-updates: {BATCHES} batches of 20 updated calls beside {CALLS:,} stored: "
        f"median {times[len(times) // 2]:.1f} ms, p90 {times[int(len(times) * 0.9)]:.1f} ms per batch; "
        f"rows read per batch median {reads[len(reads) // 2]:,}; load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
