"""`make bench-privacy`: how long an erasure of one end user takes among many observations, and what
a retention run costs, on the durable embedded stack.

1. migrates and creates (or reuses) the `bench`/`privacy` project;
2. fills it with BENCH_OBSERVATIONS observations (default 10M; 5 per trace, 100 traces per end user,
   so one user holds 500 observations) **generated directly with SQL** (`generate_series`), not through
   the ingest API: loading 10M observations through the API takes hours on the 2-core reference
   machine (bench/seed_volume.py, `make seed-volume`, does it the realistic way when there is time).
   A run with the same size reuses the rows already there;
3. erases one end user (`privacy.services.erasure_run`, the code the Celery task runs) and reports
   the wall time, the rows per table and the rows per second;
4. BENCH_RETENTION_ROWS (default 0 = skip): marks that many observations' traces as older than 30 days
   and runs the project's retention, reporting the time and the longest single batch (a batch is the
   longest any ingest request can wait on it).

Knobs: BENCH_OBSERVATIONS, BENCH_RETENTION_ROWS.

`make bench-privacy MODE=retention-under-load` measures instead the ingest p99 at bench-ingest's half
rate without and with a retention run in the same database (bench/bench_retention_load.py).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import prepare_environment  # noqa: E402

OBS_PER_TRACE = 5
TRACES_PER_USER = 100


def fill(cursor, project_id: str, observations: int) -> None:
    traces = observations // OBS_PER_TRACE
    cursor.execute("SET statement_timeout = 0")  # the bulk load only; the erasure runs with the workers' limits
    cursor.execute(
        "INSERT INTO traces_trace (project_id, id, name, timestamp, timestamp_is_placeholder, user_id, session_id, "
        "environment, release, version, tags, metadata, input, output, public, redactions, created_at, updated_at) "
        "SELECT %s::uuid, 't' || g, 'chat', now() - (g %% 2592000) * interval '1 second', false, "
        "'user-' || (g / %s), 'session-' || (g / 10), 'default', '', '', '{}', '{\"feature\": \"support\"}', "
        "'\"hello\"', '\"hi there\"', false, '{}', now(), now() FROM generate_series(0, %s - 1) AS g",
        [project_id, TRACES_PER_USER, traces],
    )
    cursor.execute(
        "INSERT INTO traces_observation (project_id, id, trace_id, parent_observation_id, type, name, start_time, "
        "level, status_message, status, version, environment, input, output, metadata, model, response_model, "
        "model_parameters, prompt_name, finish_reason, tool_calls, usage_details, input_tokens, output_tokens, "
        "total_tokens, cost_details, cost_source, tool_name, tool_call_id, error_type, error_message, error_stack, "
        "redactions, duplicate_of, created_at, updated_at) "
        "SELECT %s::uuid, 'o' || g, 't' || (g / %s), '', 'GENERATION', 'chat', now() - (g %% 2592000) * interval "
        "'1 second', 'DEFAULT', '', 'success', '', 'default', '[{\"role\": \"user\", \"content\": \"hello\"}]', "
        "'\"hi there\"', '{}', 'gpt-4o-mini', '', '{}', '', '', '[]', '{}', 10, 5, 15, '{}', 'none', '', '', '', '', "
        "'', '{}', '', now(), now() FROM generate_series(0, %s - 1) AS g",
        [project_id, OBS_PER_TRACE, observations],
    )
    cursor.execute("ANALYZE traces_trace")
    cursor.execute("ANALYZE traces_observation")


def main() -> None:
    prepare_environment()
    mode = os.environ.get("BENCH_PRIVACY_MODE", "")
    if mode == "retention-under-load":  # `make bench-privacy MODE=retention-under-load`
        from bench.bench_retention_load import main as retention_under_load

        sys.exit(retention_under_load())
    if mode:
        raise SystemExit(f"MODE must be retention-under-load (or empty), not {mode!r}")
    import django

    django.setup()
    from config.db import use_worker_timeouts

    use_worker_timeouts()  # what a Celery worker runs with (DB_WORKER_* limits)
    from django.core.management import call_command
    from django.db import connections

    from privacy import services
    from privacy.models import ErasureRequest, RetentionRun
    from tenancy.models import Organization, Project
    from tenancy.regions import region_database

    observations = int(float(os.environ.get("BENCH_OBSERVATIONS", "10000000")))
    retention_rows = int(float(os.environ.get("BENCH_RETENTION_ROWS", "0")))
    call_command("migrate_all", verbosity=0)
    organization, _ = Organization.objects.get_or_create(name="bench")
    project = Project.objects.filter(organization=organization, name="privacy").first()
    if project is None:
        project = Project.objects.create(organization=organization, name="privacy", region=os.environ.get(
            "DEFAULT_REGION", "default"))
    connection = connections[region_database(project.region)]
    pid = str(project.id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM traces_observation WHERE project_id = %s::uuid", [pid])
        have = cursor.fetchone()[0]
        if have != observations:
            print(f"filling {observations:,} observations (had {have:,}) with SQL …", flush=True)
            started = time.monotonic()
            for table in ("traces_observation", "traces_trace", "feedback_score", "privacy_deletionbatch"):
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s::uuid", [pid])
            fill(cursor, pid, observations)
            print(f"  filled in {time.monotonic() - started:.0f} s", flush=True)
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('traces_observation'))")
        print(f"traces_observation: {cursor.fetchone()[0]} on disk", flush=True)

    # One end user: the first whose traces are still there.
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id FROM traces_trace WHERE project_id = %s::uuid ORDER BY id LIMIT 1", [pid])
        user = cursor.fetchone()[0]
    request = services.erasure_request_create(project=project, kind="user", subjects=[user], via="bench",
                                              grace_days=0)
    batches: list[float] = []
    last = [time.monotonic()]

    def timed(label, rows):
        now = time.monotonic()
        batches.append(now - last[0])
        last[0] = now

    started = time.monotonic()
    services.erasure_run(erasure_id=request.id, budget_seconds=None, on_batch=timed)
    took = time.monotonic() - started
    request = ErasureRequest.objects.get(id=request.id)
    rows = sum(request.counts.values())
    print(f"erasure of one end user among {observations:,} observations: {took:.2f} s, {rows:,} rows "
          f"({request.counts}), status {request.status}, verification {request.verification}; "
          f"longest batch {max(batches) * 1000:.0f} ms", flush=True)

    if retention_rows:
        traces = retention_rows // OBS_PER_TRACE
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE traces_trace SET timestamp = now() - interval '60 days' WHERE project_id = %s::uuid AND "
                "id IN (SELECT id FROM traces_trace WHERE project_id = %s::uuid ORDER BY id DESC LIMIT %s)",
                [pid, pid, traces])
        services.retention_policy_update(project=project, actor=None, days=30)
        batches.clear()
        last[0] = time.monotonic()
        started = time.monotonic()
        run = services.retention_run(project_id=project.id, budget_seconds=None, on_batch=timed)
        took = time.monotonic() - started
        run = RetentionRun.objects.get(id=run.id)
        print(f"retention deleting {sum(run.counts.values()):,} rows: {took:.1f} s "
              f"({sum(run.counts.values()) / took:,.0f} rows/s), {len(batches)} batches, longest "
              f"{max(batches) * 1000:.0f} ms, counts {run.counts}", flush=True)
        services.retention_policy_update(project=project, actor=None, days=None)


if __name__ == "__main__":
    main()
