"""Dashboard and metrics-query latency at volume: `make bench-dashboards`.

Seeds one bench project (kept between runs, reused when it has the asked volume) on the embedded
stack (`python -m config.devstack exec -- …`), then times the reads the dashboards and the metrics
API make, warm, BENCH_RUNS times each (median and max, milliseconds, in-process: the selector or
`metrics.run_query`, no HTTP).

Volume (BENCH_OBSERVATIONS, default 10,000,000, over BENCH_DAYS = 30 days):
- raw rows written directly with SQL (`generate_series`; the ingest path is `make bench-ingest`'s
  subject): one trace per five observations; 60% of observations are LLM calls (GENERATION), the rest
  spans; 20 features (= trace names), each on 2 of 6 models; 5% staging, the rest production; one
  release and one prompt version at a time (a new one every 10 days; prompts on 5 features); 5,000
  end users; a thumb on one trace in ten. About 45 dimension combinations per hour, as a team with
  a few features and models has; `BENCH_OBSERVATIONS` scales the calls, not the combinations.
- the hourly, daily, daily-per-user and score rollups are **generated directly with SQL** from those raw rows (one
  GROUP BY per table, histograms bucketed by `monitoring.rules.bucket_sql`, equal to `bucket_of`), not
  by replaying the ingest path: 10M calls through ingest would take hours on this machine. Their
  exactness is the rollup tests' subject; here only their size matters.

Targets (issue 12): the seed's cost-by-feature (7 days) < 200 ms, common metrics queries < 300 ms.
Queries the rollups cannot answer (spans, all observation types) read the raw rows and are listed
separately: they are bounded by the window, not by these targets.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OBSERVATIONS = int(os.environ.get("BENCH_OBSERVATIONS", "10000000"))
DAYS = int(os.environ.get("BENCH_DAYS", "30"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
CHUNK = 500_000  # observations per INSERT statement (one transaction each)
FEATURES, MODELS = 20, 6


def _defaults(model, set_columns: set[str]) -> tuple[list[str], list]:
    """(columns, values) for every NOT NULL column the seed does not set: the model's Python default."""
    columns, values = [], []
    for f in model._meta.concrete_fields:
        if f.column in set_columns or f.null:
            continue
        default = f.get_default()
        if isinstance(default, (dict, list)):
            default = json.dumps(default)
        columns.append(f'"{f.column}"')
        values.append(default)
    return columns, values


def seed(project, connection) -> None:
    from scores.models import Score
    from traces.models import Observation, Trace

    pid = str(project.id)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    span_s = DAYS * 86400
    n_traces = OBSERVATIONS // 5
    t_set = {"project_id", "id", "name", "timestamp", "user_id", "environment", "release", "metadata", "created_at",
             "updated_at", "tags"}
    t_cols, t_vals = _defaults(Trace, t_set)
    o_set = {"project_id", "id", "trace_id", "type", "name", "start_time", "end_time", "completion_start_time", "status",
             "environment", "model", "prompt_name", "prompt_version", "input_tokens", "cached_input_tokens",
             "output_tokens", "total_tokens", "total_cost", "created_at", "updated_at", "parent_observation_id"}
    o_cols, o_vals = _defaults(Observation, o_set)
    s_set = {"project_id", "id", "trace_id", "name", "value", "data_type", "source", "timestamp", "created_at",
             "updated_at", "string_value"}
    s_cols, s_vals = _defaults(Score, s_set)
    ph = lambda values: ", ".join(["%s"] * len(values))  # noqa: E731
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # seeding statements run for minutes at 10M
        for low in range(0, n_traces, CHUNK):
            high = min(n_traces, low + CHUNK)
            cursor.execute(
                f'INSERT INTO "{Trace._meta.db_table}" (project_id, id, name, timestamp, user_id, environment, release, '
                f"metadata, created_at, updated_at, tags, {', '.join(t_cols)}) "
                f"SELECT %s::uuid, 't' || g, 'flow-' || (g %% {FEATURES}), "
                f"%s::timestamptz + ((g::bigint * 7919) %% {span_s}) * interval '1 second', 'user-' || (g %% 5000), "
                f"CASE WHEN g %% 20 = 0 THEN 'staging' ELSE 'production' END, 'r' || (((g::bigint * 7919) %% {span_s}) / 864000), "
                f"jsonb_build_object('feature', 'feature-' || (g %% {FEATURES})), "
                f"%s::timestamptz + ((g::bigint * 7919) %% {span_s}) * interval '1 second', now(), ARRAY['bench'], {ph(t_vals)} "
                f"FROM generate_series(%s, %s) g",
                [pid, start, start, *t_vals, low, high - 1],
            )
            print(f"  traces {high:,}/{n_traces:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for low in range(0, OBSERVATIONS, CHUNK):
            high = min(OBSERVATIONS, low + CHUNK)
            # Observation g belongs to trace g / 5 and starts a few seconds after it; g %% 5 < 3 are LLM calls.
            cursor.execute(
                f'INSERT INTO "{Observation._meta.db_table}" (project_id, id, trace_id, type, name, start_time, end_time, '
                f"completion_start_time, status, environment, model, prompt_name, prompt_version, input_tokens, "
                f"cached_input_tokens, output_tokens, total_tokens, total_cost, created_at, updated_at, "
                f"parent_observation_id, {', '.join(o_cols)}) "
                f"SELECT %s::uuid, 'o' || g, 't' || (g / 5), CASE WHEN g %% 5 < 3 THEN 'GENERATION' ELSE 'SPAN' END, "
                f"'step-' || (g %% 5), ts, ts + (50 + (g * 37) %% 4000) * interval '1 millisecond', "
                f"CASE WHEN g %% 5 < 3 THEN ts + (20 + (g * 13) %% 900) * interval '1 millisecond' END, "
                f"CASE WHEN g %% 97 = 0 THEN 'error' WHEN g %% 193 = 0 THEN 'refused' ELSE 'success' END, "
                f"CASE WHEN (g / 5) %% 20 = 0 THEN 'staging' ELSE 'production' END, "
                f"CASE WHEN g %% 5 < 3 THEN 'model-' || ((((g / 5) %% {FEATURES}) + g %% 2) %% {MODELS}) ELSE '' END, "
                f"CASE WHEN g %% 5 = 0 AND (g / 5) %% {FEATURES} < 5 THEN 'answer-' || ((g / 5) %% {FEATURES}) ELSE '' END, "
                f"CASE WHEN g %% 5 = 0 AND (g / 5) %% {FEATURES} < 5 THEN 1 + ((((g / 5)::bigint * 7919) %% {span_s}) / 864000) END, "
                f"CASE WHEN g %% 5 < 3 THEN 100 + g %% 2000 END, CASE WHEN g %% 5 < 3 THEN (g %% 4) * 500 END, "
                f"CASE WHEN g %% 5 < 3 THEN 20 + g %% 700 END, CASE WHEN g %% 5 < 3 THEN 120 + g %% 2000 + g %% 700 + (g %% 4) * 500 END, "
                f"CASE WHEN g %% 5 < 3 AND g %% 50 <> 0 THEN ((g %% 1000) + 1) / 100000.0 END, ts, ts, "
                f"CASE WHEN g %% 5 = 0 THEN '' ELSE 'o' || (g - g %% 5) END, {ph(o_vals)} "
                f"FROM (SELECT g, %s::timestamptz + (((g / 5)::bigint * 7919) %% {span_s}) * interval '1 second' "
                f"+ (g %% 5) * interval '1 second' AS ts FROM generate_series(%s, %s) g) s",
                [pid, *o_vals, start, low, high - 1],
            )
            print(f"  observations {high:,}/{OBSERVATIONS:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        cursor.execute(
            f'INSERT INTO "{Score._meta.db_table}" (project_id, id, trace_id, name, value, data_type, source, timestamp, '
            f"created_at, updated_at, string_value, {', '.join(s_cols)}) "
            f"SELECT %s::uuid, 's' || g, 't' || g, 'thumbs', CASE WHEN g %% 7 = 0 THEN 0 ELSE 1 END, 'BOOLEAN', 'USER', "
            f"%s::timestamptz + ((g::bigint * 7919) %% {span_s}) * interval '1 second', now(), now(), '', {ph(s_vals)} "
            f"FROM generate_series(0, %s, 10) g",
            [pid, start, *s_vals, n_traces - 1],
        )
    print(f"  raw rows seeded in {time.perf_counter() - t0:.0f} s", flush=True)


def seed_rollups(project, connection) -> None:
    """The hourly and daily-per-user rollups of the seeded rows, in SQL (see the module docstring)."""
    from monitoring.models import HISTOGRAM_BUCKETS
    from monitoring.rules import bucket_sql
    from traces.models import Observation, Trace

    pid = str(project.id)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        last = HISTOGRAM_BUCKETS - 1
        lat_us = "(extract(epoch from (o.end_time - o.start_time)) * 1000000)::bigint"
        ttft_us = "(extract(epoch from (o.completion_start_time - o.start_time)) * 1000000)::bigint"
        dims = "hour, feature, trace_name, model, environment, release, prompt_name, prompt_version"
        # Set-based: calls → groups (sums) → per-group bucket counts → dense 80-bucket arrays.
        cursor.execute(
            "CREATE TEMP TABLE bench_calls AS SELECT date_trunc('hour', o.start_time, 'UTC') AS hour, "
            "COALESCE(t.metadata ->> 'feature', '') AS feature, t.name AS trace_name, "
            "COALESCE(NULLIF(o.response_model, ''), o.model) AS model, o.environment, t.release, o.prompt_name, "
            "COALESCE(o.prompt_version, 0) AS prompt_version, t.user_id, (o.start_time AT TIME ZONE 'UTC')::date AS day, "
            "o.status, o.input_tokens, o.cached_input_tokens, o.output_tokens, o.total_tokens, o.total_cost, "
            "(extract(epoch from (o.end_time - o.start_time)) * 1000000)::bigint AS lat_us, "
            "(extract(epoch from (o.completion_start_time - o.start_time)) * 1000000)::bigint AS ttft_us, "
            f"CASE WHEN o.end_time IS NOT NULL THEN {bucket_sql(lat_us)} END AS lb, "
            f"CASE WHEN o.completion_start_time IS NOT NULL THEN {bucket_sql(ttft_us)} END AS tb "
            f'FROM "{Observation._meta.db_table}" o JOIN "{Trace._meta.db_table}" t '
            "ON t.project_id = o.project_id AND t.id = o.trace_id "
            "WHERE o.project_id = %s::uuid AND o.type IN ('GENERATION', 'EMBEDDING') AND o.duplicate_of = ''",
            [pid],
        )
        print(f"  calls gathered ({time.perf_counter() - t0:.0f} s)", flush=True)
        cursor.execute("ANALYZE bench_calls")  # temp tables have no statistics until analysed
        sums = ("count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors, "
                "count(*) FILTER (WHERE status = 'refused') AS refusals, sum(COALESCE(input_tokens, 0)) AS input_tokens, "
                "sum(COALESCE(cached_input_tokens, 0)) AS cached_input_tokens, sum(COALESCE(output_tokens, 0)) AS output_tokens, "
                "sum(COALESCE(total_tokens, 0)) AS total_tokens, sum(COALESCE(total_cost, 0)) AS cost, "
                "count(*) FILTER (WHERE total_cost IS NULL) AS unpriced_calls")
        cursor.execute(
            f"CREATE TEMP TABLE bench_groups AS SELECT row_number() OVER () AS gk, * FROM (SELECT {dims}, {sums}, "
            f"count(lat_us) AS latency_count, COALESCE(sum(lat_us), 0) AS latency_us_sum, count(ttft_us) AS ttft_count, "
            f"COALESCE(sum(ttft_us), 0) AS ttft_us_sum FROM bench_calls GROUP BY {dims}) g"
        )
        cursor.execute("ANALYZE bench_groups")
        join = " AND ".join(f"c.{d.strip()} = g.{d.strip()}" for d in dims.split(","))
        cursor.execute(f"CREATE TEMP TABLE bench_buckets AS SELECT g.gk, c.lb, c.tb FROM bench_calls c JOIN bench_groups g ON {join}")
        cursor.execute("ANALYZE bench_buckets")
        print(f"  groups ({time.perf_counter() - t0:.0f} s)", flush=True)
        hist = ("(SELECT d.gk, array_agg(COALESCE(n.n, 0) ORDER BY d.i) AS h FROM "
                "(SELECT gk, i FROM bench_groups CROSS JOIN generate_series(0, {last}) i) d LEFT JOIN "
                "(SELECT gk, {col} AS b, count(*) AS n FROM bench_buckets WHERE {col} IS NOT NULL GROUP BY gk, {col}) n "
                "ON n.gk = d.gk AND n.b = d.i GROUP BY d.gk)")
        cursor.execute(
            "INSERT INTO monitoring_hourlyrollup (project_id, hour, feature, trace_name, model, environment, release, "
            "prompt_name, prompt_version, calls, errors, refusals, input_tokens, cached_input_tokens, cache_write_tokens, "
            "output_tokens, reasoning_tokens, total_tokens, cost, unpriced_calls, latency_count, latency_us_sum, "
            "latency_hist, ttft_count, ttft_us_sum, ttft_hist) "
            f"SELECT %s::uuid, {dims}, calls, errors, refusals, input_tokens, cached_input_tokens, 0, output_tokens, 0, "
            "total_tokens, cost, unpriced_calls, latency_count, latency_us_sum, lh.h, ttft_count, ttft_us_sum, th.h "
            f"FROM bench_groups g JOIN {hist.format(col='lb', last=last)} lh USING (gk) "
            f"JOIN {hist.format(col='tb', last=last)} th USING (gk)",
            [pid],
        )
        print(f"  hourly rollups ({time.perf_counter() - t0:.0f} s)", flush=True)
        cursor.execute(
            "INSERT INTO monitoring_dailyuserrollup (project_id, day, user_id, calls, errors, refusals, input_tokens, "
            "cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, total_tokens, cost, unpriced_calls) "
            f"SELECT %s::uuid, day, user_id, calls, errors, refusals, input_tokens, cached_input_tokens, 0, output_tokens, 0, "
            f"total_tokens, cost, unpriced_calls FROM (SELECT day, user_id, {sums} FROM bench_calls WHERE user_id <> '' "
            "GROUP BY day, user_id) u",
            [pid],
        )
        cursor.execute("DROP TABLE bench_calls, bench_groups, bench_buckets")
        cursor.execute("ANALYZE")
    print(f"  rollups built in {time.perf_counter() - t0:.0f} s", flush=True)
    seed_daily_rollups(project, connection)
    seed_score_rollups(project, connection)


def seed_daily_rollups(project, connection) -> None:
    """The daily call rollup: the hourly rows summed by UTC day (histograms bucket by bucket)."""
    from monitoring.selectors import hist_sum_sql

    dims = "feature, trace_name, model, environment, release, prompt_name, prompt_version"
    sums = ("sum(calls), sum(errors), sum(refusals), sum(input_tokens), sum(cached_input_tokens), sum(cache_write_tokens), "
            "sum(output_tokens), sum(reasoning_tokens), sum(total_tokens), sum(cost), sum(unpriced_calls), "
            "sum(latency_count), sum(latency_us_sum), sum(ttft_count), sum(ttft_us_sum)")
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute(
            f"INSERT INTO monitoring_dailyrollup (project_id, day, {dims}, calls, errors, refusals, input_tokens, "
            "cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, total_tokens, cost, unpriced_calls, "
            "latency_count, latency_us_sum, ttft_count, ttft_us_sum, latency_hist, ttft_hist) "
            f"SELECT %s::uuid, (hour AT TIME ZONE 'UTC')::date AS day, {dims}, {sums}, {hist_sum_sql('latency_hist')}, "
            f"{hist_sum_sql('ttft_hist')} FROM monitoring_hourlyrollup WHERE project_id = %s::uuid GROUP BY day, {dims}",
            [str(project.id), str(project.id)],
        )
        cursor.execute("ANALYZE monitoring_dailyrollup")
    print(f"  daily rollups built in {time.perf_counter() - t0:.0f} s", flush=True)


def seed_score_rollups(project, connection) -> None:
    """The score rollups of the seeded scores (thumbs), in SQL: each score under its trace."""
    from scores.models import Score
    from traces.models import Trace

    pid = str(project.id)
    t0 = time.perf_counter()
    measures = ("count(*), count(s.value), sum(s.value::numeric), "
                "count(*) FILTER (WHERE s.source = 'USER' AND s.data_type = 'BOOLEAN' AND s.value = 1), "
                "count(*) FILTER (WHERE s.source = 'USER' AND s.data_type = 'BOOLEAN' AND s.value = 0)")
    join = (f'FROM "{Score._meta.db_table}" s LEFT JOIN "{Trace._meta.db_table}" t '
            "ON t.project_id = s.project_id AND t.id = s.trace_id WHERE s.project_id = %s::uuid")
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute(
            "INSERT INTO monitoring_hourlyscorerollup (project_id, hour, name, source, data_type, feature, trace_name, "
            "environment, release, scores, value_count, value_sum, thumbs_up, thumbs_down) "
            "SELECT %s::uuid, date_trunc('hour', s.timestamp, 'UTC'), s.name, s.source, s.data_type, "
            "COALESCE(t.metadata ->> 'feature', ''), COALESCE(t.name, ''), s.environment, COALESCE(t.release, ''), "
            f"{measures} {join} GROUP BY 2, 3, 4, 5, 6, 7, 8, 9",
            [pid, pid],
        )
        cursor.execute(
            "INSERT INTO monitoring_dailyuserscorerollup (project_id, day, user_id, name, source, data_type, scores, "
            "value_count, value_sum, thumbs_up, thumbs_down) "
            "SELECT %s::uuid, (s.timestamp AT TIME ZONE 'UTC')::date, t.user_id, s.name, s.source, s.data_type, "
            f"{measures} {join} AND t.user_id <> '' GROUP BY 2, 3, 4, 5, 6",
            [pid, pid],
        )
        cursor.execute("ANALYZE monitoring_hourlyscorerollup, monitoring_dailyuserscorerollup")
    print(f"  score rollups built in {time.perf_counter() - t0:.0f} s", flush=True)


def timed(label: str, call, results: list, target_ms: float | None = None) -> None:
    call()  # warm-up (plans, caches)
    samples = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        out = call()
        samples.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(samples)
    verdict = "" if target_ms is None else ("  ok" if median < target_ms else f"  OVER {target_ms:.0f} ms")
    results.append((label, median, max(samples), target_ms))
    print(f"{label:<78} median {median:8.1f} ms  max {max(samples):8.1f} ms{verdict}", flush=True)
    return out


def timed_ab(label: str, text: dict, results: list, target_ms: float = 300) -> None:
    """The query through `run_query` (new: rollups + edge hours) and through the raw rows, as every
    query with a window off the hour was answered before, alternated run by run on the same data."""
    from monitoring import metrics

    project = _BENCH_PROJECT[0]
    query = metrics.parse_query(json.dumps(text), version=2)
    rule = metrics.applied_feature_rule(project=project)

    def new():
        answer = metrics.run_query(project=project, query=query)
        assert answer["source"] == "rollups+edges", answer["source"]
        return answer["data"]

    def old():
        rows = metrics._from_raw(project, query, rule)
        return metrics._zero_fill(query, rows) if query.granularity and query.order_by is None else rows

    # For scale: the same query with its window moved back to whole hours (the rollups alone).
    hours = dataclasses.replace(query, since=query.since.replace(minute=0, second=0, microsecond=0),
                                until=query.until.replace(minute=0, second=0, microsecond=0))

    def whole():
        answer = metrics.run_query(project=project, query=hours)
        assert answer["source"] == "rollups", answer["source"]

    new(), old(), whole()  # warm-up (plans, caches)
    samples: dict = {"new": [], "old": [], "whole": []}
    for _ in range(RUNS):
        for name, run in (("new", new), ("old", old), ("whole", whole)):
            t0 = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - t0) * 1000)
    tags = {"new": "rollups+edges", "old": "raw (before)", "whole": "whole hours, rollups only"}
    for name, target in (("new", target_ms), ("old", None), ("whole", None)):
        median = statistics.median(samples[name])
        verdict = "" if target is None else ("  ok" if median < target else f"  OVER {target:.0f} ms")
        tag = tags[name]
        results.append((f"{label} [{tag}]", median, max(samples[name]), target))
        print(f"{label + ' [' + tag + ']':<78} median {median:8.1f} ms  max {max(samples[name]):8.1f} ms{verdict}",
              flush=True)


_BENCH_PROJECT: list = []


def main() -> int:
    from bench.server import prepare_environment

    prepare_environment()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_all", verbosity=0)
    from monitoring import metrics
    from monitoring.models import DailyRollup, HourlyRollup, HourlyScoreRollup
    from tenancy.dataplane import data_connection
    from tenancy.services import project_bootstrap
    from traces.models import Observation

    project, _, _ = project_bootstrap(organization_name="Lookglass bench", project_name=f"dashboards-{OBSERVATIONS}",
                                      note="make bench-dashboards")
    connection = data_connection(project)
    have = Observation.objects.for_project(project).count()
    if have != OBSERVATIONS:
        if have:
            print(f"project holds {have:,} observations, not {OBSERVATIONS:,}: run `make clean-data` first", flush=True)
            return 1
        print(f"seeding {OBSERVATIONS:,} observations over {DAYS} days…", flush=True)
        seed(project, connection)
    if not HourlyRollup.objects.for_project(project).exists():
        seed_rollups(project, connection)
    if not DailyRollup.objects.for_project(project).exists():
        seed_daily_rollups(project, connection)  # a project seeded before the daily rollup
    if not HourlyScoreRollup.objects.for_project(project).exists():
        seed_score_rollups(project, connection)  # a project seeded before the score rollups
    _BENCH_PROJECT.append(project)
    rollup_rows = HourlyRollup.objects.for_project(project).count()
    print(f"\nproject {project.id}: {OBSERVATIONS:,} observations, {rollup_rows:,} hourly rollup rows; {RUNS} runs each\n")

    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    def q(text: dict):
        parsed = metrics.parse_query(json.dumps(text), version=2)
        return lambda: metrics.run_query(project=project, query=parsed)

    llm = {"column": "type", "operator": "any of", "value": ["GENERATION", "EMBEDDING"], "type": "stringOptions"}
    span = lambda days: {"fromTimestamp": (hour - timedelta(days=days)).isoformat(), "toTimestamp": hour.isoformat()}  # noqa: E731
    results: list = []
    edges_only = os.environ.get("BENCH_EDGES_ONLY") == "1"  # only the windows-with-seconds section
    if not edges_only:
        common_reads(project, q, llm, span, results)
    edge_reads(project, now, llm, results)
    over = [r for r in results if r[3] is not None and r[1] >= r[3]]
    print(f"\n{len(results) - len(over)} of {len(results)} within their target" if not over else
          f"\nOVER target: {', '.join(r[0] for r in over)}")
    return 1 if over else 0


def common_reads(project, q, llm, span, results) -> None:
    from monitoring import selectors

    print("dashboards (monitoring.selectors):")
    timed("cost by feature, last 7 days, 80/20 (the seed's question)",
          lambda: selectors.cost_breakdown(project=project, by="feature", days=7), results, 200)
    timed("cost by model, last 7 days", lambda: selectors.cost_breakdown(project=project, by="model", days=7), results, 300)
    timed("cost by user, last 7 days", lambda: selectors.cost_breakdown(project=project, by="user", days=7), results, 300)
    timed("cost by prompt version, last 30 days",
          lambda: selectors.cost_breakdown(project=project, by="prompt_version", days=30), results, 300)
    timed("quality series (rates, latency/TTFT p50/p95/p99), 30 days by day (daily rollup)",
          lambda: selectors.quality_series(project=project, days=30), results, 300)
    timed("spend by feature series, 7 days by hour",
          lambda: selectors.spend_series_by(project=project, days=7, granularity="hour"), results, 300)
    timed("cache savings, 30 days by day", lambda: selectors.cache_savings(project=project, days=30), results, 300)
    timed("thumbs-down rate, 30 days by day (score rollups)",
          lambda: selectors.thumbs_series(project=project, days=30), results, 300)
    timed("whole dashboard page's reads, 7 days", lambda: selectors.dashboard(project=project, days=7), results, None)
    print("\nmetrics API, answered from the rollups:")
    timed("v2 count + totalCost of LLM calls by day, 30 days",
          q({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"},
                                                  {"measure": "totalCost", "aggregation": "sum"}],
             "filters": [llm], "timeDimension": {"granularity": "day"}, **span(30)}), results, 300)
    timed("v2 p95 latency + avg TTFT by model, 7 days",
          q({"view": "observations", "dimensions": [{"field": "model"}],
             "metrics": [{"measure": "latency", "aggregation": "p95"}, {"measure": "timeToFirstToken", "aggregation": "avg"}],
             "filters": [llm], **span(7)}), results, 300)
    timed("v2 cost by traceName by hour, last 24 h",
          q({"view": "observations", "dimensions": [{"field": "traceName"}],
             "metrics": [{"measure": "totalCost", "aggregation": "sum"}], "filters": [llm],
             "timeDimension": {"granularity": "hour"}, **span(1)}), results, 300)
    timed("v2 tokens + errors by feature and environment, 30 days",
          q({"view": "observations", "dimensions": [{"field": "feature"}, {"field": "environment"}],
             "metrics": [{"measure": "totalTokens", "aggregation": "sum"}, {"measure": "errors", "aggregation": "sum"}],
             "filters": [llm], **span(30)}), results, 300)
    print("\nmetrics API, raw rows (not in the rollups: every observation type, spans, scores):")
    timed("v2 count of all observations by type, last 24 h",
          q({"view": "observations", "dimensions": [{"field": "type"}],
             "metrics": [{"measure": "count", "aggregation": "count"}], **span(1)}), results, None)
    timed("v2 avg latency of spans by name, last 24 h",
          q({"view": "observations", "dimensions": [{"field": "name"}],
             "metrics": [{"measure": "latency", "aggregation": "avg"}],
             "filters": [{"column": "type", "operator": "any of", "value": ["SPAN"], "type": "stringOptions"}],
             **span(1)}), results, None)
    timed("v2 scores-numeric avg value by name, 7 days",
          q({"view": "scores-numeric", "dimensions": [{"field": "name"}],
             "metrics": [{"measure": "value", "aggregation": "avg"}], **span(7)}), results, None)
    timed("billable-units by day, last 24 h (raw rows by creation time)",
          q({"view": "billable-units", "metrics": [{"measure": "units", "aggregation": "sum"}],
             "timeDimension": {"granularity": "hour"}, **span(1)}), results, None)


def edge_reads(project, now, llm, results) -> None:
    print("\nmetrics API, windows not on whole hours (\"now − N days\" with seconds, as the SDKs send them):")
    print(f"  rollups for the whole hours + the edge hours' raw calls (new) vs the raw rows (before), alternated; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    seconds = lambda days: {"fromTimestamp": (now - timedelta(days=days)).isoformat(), "toTimestamp": now.isoformat()}  # noqa: E731
    timed_ab("v2 count of LLM calls by model, 7 days",
             {"view": "observations", "dimensions": [{"field": "model"}],
              "metrics": [{"measure": "count", "aggregation": "count"}], "filters": [llm], **seconds(7)}, results)
    timed_ab("v2 cost + calls of LLM calls by feature, 7 days",
             {"view": "observations", "dimensions": [{"field": "feature"}],
              "metrics": [{"measure": "totalCost", "aggregation": "sum"}, {"measure": "count", "aggregation": "count"}],
              "filters": [llm], **seconds(7)}, results)
    timed_ab("v2 p95 latency + avg TTFT by model, 7 days",
             {"view": "observations", "dimensions": [{"field": "model"}],
              "metrics": [{"measure": "latency", "aggregation": "p95"},
                          {"measure": "timeToFirstToken", "aggregation": "avg"}], "filters": [llm], **seconds(7)},
             results)
    timed_ab("v2 cost by traceName by hour, last 24 h",
             {"view": "observations", "dimensions": [{"field": "traceName"}],
              "metrics": [{"measure": "totalCost", "aggregation": "sum"}], "filters": [llm],
              "timeDimension": {"granularity": "hour"}, **seconds(1)}, results)
    timed_ab("v2 count + totalCost of LLM calls, auto granularity (day), 30 days",
             {"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"},
                                                  {"measure": "totalCost", "aggregation": "sum"}],
              "filters": [llm], "timeDimension": {"granularity": "auto"}, **seconds(30)}, results)
    print(f"  load average after: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
