"""Alert evaluation cost: `make bench-alerts`.

Seeds BENCH_ALERT_PROJECTS projects (default 10) of one region with BENCH_ALERT_DAYS days (default 35,
so anomaly rules have four past weeks) of hourly rollups — 3 features × 2 models × 2 environments
per hour — and end-user thumbs plus an eval score every hour, then BENCH_ALERT_RULES rules (default
1,000) spread over them, cycling through every metric (rates, latency/TTFT averages and percentiles,
cost, volume, thumbs-down rate, score average), every mode (threshold, ratio vs the previous window
and vs yesterday, anomaly over 4 weeks), windows of 1–24 hours, with and without filters. Then it
times `monitoring.alerts.evaluate_region` — what the per-region Celery beat task runs every minute —
BENCH_ALERT_RUNS times (default 3, one simulated minute apart). The budget is 10 s per run.
Run on the embedded stack: `make bench-alerts` (production settings, DEBUG off).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import prepare_environment  # noqa: E402

PROJECTS = int(os.environ.get("BENCH_ALERT_PROJECTS", "10"))
RULES = int(os.environ.get("BENCH_ALERT_RULES", "1000"))
DAYS = int(os.environ.get("BENCH_ALERT_DAYS", "35"))
RUNS = int(os.environ.get("BENCH_ALERT_RUNS", "3"))
BUDGET_SECONDS = 10.0
ORG = "Lookglass alerts bench"

METRICS = ["error_rate", "refusal_rate", "latency_avg", "latency_p50", "latency_p95", "latency_p99", "ttft_avg",
           "ttft_p95", "cost", "volume", "thumbs_down_rate", "score_avg"]
MODES = [("threshold", "previous_window"), ("ratio", "previous_window"), ("ratio", "yesterday"),
         ("anomaly", "previous_window")]
WINDOWS = [60, 60, 120, 240, 1440]


def seed_rollups(project) -> int:
    from django.db import transaction

    from monitoring.models import HourlyRollup
    from tenancy.dataplane import data_connection
    from tenancy.regions import region_database

    table = HourlyRollup._meta.db_table
    with transaction.atomic(using=region_database(project.region)):
        with data_connection(project).cursor() as cursor:
            cursor.execute(f'DELETE FROM "{table}" WHERE project_id = %s::uuid', [str(project.id)])
            cursor.execute(
                f"""
                INSERT INTO "{table}" (project_id, hour, feature, trace_name, model, environment, release,
                    prompt_name, prompt_version, calls, errors, refusals, input_tokens, cached_input_tokens,
                    cache_write_tokens, output_tokens, reasoning_tokens, total_tokens, cost, unpriced_calls,
                    latency_count, latency_us_sum, latency_hist, ttft_count, ttft_us_sum, ttft_hist)
                SELECT %s::uuid, h, f, 'chat', m, e, '', 'qa', 1, 100, (random() * 5)::int, (random() * 3)::int,
                    5000, 0, 0, 2000, 0, 7000, 0.5, 0, 100, 100 * 800000,
                    (SELECT array_agg(CASE WHEN i BETWEEN 36 AND 42 THEN 14 ELSE 0 END ORDER BY i)
                       FROM generate_series(1, 80) AS i)::bigint[],
                    100, 100 * 200000,
                    (SELECT array_agg(CASE WHEN i BETWEEN 28 AND 33 THEN 16 ELSE 0 END ORDER BY i)
                       FROM generate_series(1, 80) AS i)::bigint[]
                FROM generate_series(date_trunc('hour', now()) - make_interval(days => %s), date_trunc('hour', now()),
                                     interval '1 hour') AS h,
                     unnest(ARRAY['support', 'search', 'summary']) AS f,
                     unnest(ARRAY['gpt-4o', 'claude-sonnet-4']) AS m,
                     unnest(ARRAY['production', 'staging']) AS e
                """,
                [str(project.id), DAYS],
            )
            return cursor.rowcount


def seed_scores(project) -> int:
    from django.db import transaction

    from scores.models import Score
    from tenancy.dataplane import data_connection
    from tenancy.regions import region_database

    table = Score._meta.db_table
    with transaction.atomic(using=region_database(project.region)):
        with data_connection(project).cursor() as cursor:
            cursor.execute(f'DELETE FROM "{table}" WHERE project_id = %s::uuid', [str(project.id)])
            # Every hour: 8 thumbs (USER, BOOLEAN) and 8 eval scores (EVAL, NUMERIC).
            cursor.execute(
                f"""
                INSERT INTO "{table}" (project_id, id, trace_id, observation_id, session_id, name, value,
                    string_value, data_type, source, comment, author_user_id, config_id, metadata, environment,
                    timestamp, redactions, created_at, updated_at)
                SELECT %s::uuid, 's' || k || '-' || extract(epoch FROM h)::bigint || '-' || n, 't', '', '',
                    CASE WHEN k = 0 THEN 'user_feedback' ELSE 'faithfulness' END,
                    CASE WHEN k = 0 THEN (random() < 0.8)::int ELSE random() END, '',
                    CASE WHEN k = 0 THEN 'BOOLEAN' ELSE 'NUMERIC' END, CASE WHEN k = 0 THEN 'USER' ELSE 'EVAL' END,
                    '', '', '', '{{}}'::jsonb, 'production', h + make_interval(mins => n), '{{}}'::jsonb, now(), now()
                FROM generate_series(date_trunc('hour', now()) - make_interval(days => %s), date_trunc('hour', now()),
                                     interval '1 hour') AS h,
                     generate_series(0, 1) AS k, generate_series(1, 8) AS n
                """,
                [str(project.id), DAYS],
            )
            return cursor.rowcount


def make_rules(projects) -> int:
    from monitoring.alerts_models import AlertRule

    AlertRule.objects.filter(project__in=projects).delete()
    rules = []
    for i in range(RULES):
        metric = METRICS[i % len(METRICS)]
        mode, baseline = MODES[(i // len(METRICS)) % len(MODES)]
        filters = {}
        if metric not in ("thumbs_down_rate", "score_avg"):
            filters = [{}, {"feature": "support"}, {"model": "gpt-4o", "environment": "production"},
                       {"prompt_name": "qa", "prompt_version": 1}][i % 4]
        elif i % 2:
            filters = {"environment": "production"}
        rules.append(AlertRule(
            project=projects[i % len(projects)], name=f"bench {i}", metric=metric, mode=mode, baseline=baseline,
            window_minutes=WINDOWS[i % len(WINDOWS)], threshold=3 if mode == "anomaly" else 1.5, min_calls=10,
            score_name="faithfulness" if metric == "score_avg" else "", anomaly_weeks=4, **filters,
        ))
    AlertRule.objects.bulk_create(rules)
    return len(rules)


def main() -> None:
    prepare_environment()
    subprocess.run([sys.executable, "manage.py", "migrate_all"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    import django

    django.setup()
    from django.utils import timezone

    from monitoring.alerts import evaluate_region
    from tenancy.services import project_bootstrap

    started = time.monotonic()
    projects = [project_bootstrap(organization_name=ORG, project_name=f"alerts-{i}", note="make bench-alerts")[0]
                for i in range(PROJECTS)]
    regions = {p.region for p in projects}
    assert len(regions) == 1, regions
    region = regions.pop()
    rollup_rows = sum(seed_rollups(p) for p in projects)
    score_rows = sum(seed_scores(p) for p in projects)
    rules = make_rules(projects)
    print(f"seeded {rollup_rows:,} hourly rollup rows, {score_rows:,} scores, {rules:,} rules over "
          f"{len(projects)} projects in {time.monotonic() - started:.1f} s")
    now = timezone.now()
    seconds = []
    for run in range(RUNS):
        counts = evaluate_region(region, now=now + timedelta(minutes=run))
        seconds.append(counts.pop("seconds"))
        evaluated = sum(v for k, v in counts.items() if k != "unavailable")
        print(f"run {run + 1}: {seconds[-1]:.2f} s for {evaluated} rules ({seconds[-1] / max(1, evaluated) * 1000:.1f} "
              f"ms per rule); states {dict(sorted(counts.items()))}")
    worst = max(seconds)
    load = os.getloadavg()[0]
    print(f"\nload average {load:.1f} on {os.cpu_count()} CPUs (shared machine: figures scale with it)")
    print(f"Alert evaluation: {rules} rules, median {statistics.median(seconds):.2f} s, worst {worst:.2f} s per run "
          f"(budget {BUDGET_SECONDS:.0f} s per minute) — {'OK' if worst < BUDGET_SECONDS else 'OVER BUDGET'}")
    if worst >= BUDGET_SECONDS:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
