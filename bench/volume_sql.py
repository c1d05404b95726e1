"""Volume seeded with SQL, shared by the benchmarks that need millions of rows (bench_dashboards,
the console's `console_bench --observations N`).

Raw rows are written directly with SQL (`generate_series`; the ingest path is `make bench-ingest`'s
subject): one trace per five observations; 60% of observations are LLM calls (GENERATION), the rest
spans; 20 features (= trace names), each on 2 of 6 models; 5% staging, the rest production; one
release and one prompt version at a time (a new one every 10 days; prompts on 5 features); 5,000
end users; a thumb on one trace in ten. About 45 dimension combinations per hour, as a team with
a few features and models has; the observation count scales the calls, not the combinations.
Callers add columns of their own (`trace_extra`, `observation_extra`: text, session ids).

The hourly, daily, daily-per-user and score rollups are **generated directly with SQL** from those raw
rows (one GROUP BY per table, histograms bucketed by `monitoring.rules.bucket_sql`, equal to
`monitoring.rules.bucket_of`), not by replaying the ingest path: 10M calls through ingest would take
hours on this machine. Their exactness is the rollup tests' subject; here only their size matters.

Seeding is resumable: rows go in chunks of CHUNK, one transaction each, in index order, so a run that
stopped resumes after the last whole chunk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

CHUNK = 500_000  # rows per INSERT statement (one transaction each)
FEATURES, MODELS = 20, 6
USERS = 5_000

# A column the caller adds: (SQL expression over the row index `g` — and `ts`, the start time, for
# observations — with `%s` placeholders, their parameters). `%` of the modulo is written `%%`.
Extra = dict[str, tuple[str, list]]


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


def _extra_sql(extra: Extra | None) -> tuple[str, str, list]:
    """(`, col…` for the column list, `, expr…` for the SELECT list, their parameters)."""
    extra = extra or {}
    return ("".join(f", {c}" for c in extra), "".join(f", {sql}" for sql, _ in extra.values()),
            [p for _, params in extra.values() for p in params])


def _count(cursor, table: str, pid: str) -> int:
    cursor.execute(f'SELECT count(*) FROM "{table}" WHERE project_id = %s::uuid', [pid])
    return cursor.fetchone()[0]


# Observation `o`'s cost: two LLM calls in three have one (one in fifty of them is unpriced). Its trace's
# `cost`/`cost_calls` (what `ingest.rollups` keeps) are summed from the same expression at insert time.
def _obs_cost(o: str) -> str:
    return f"CASE WHEN {o} %% 5 < 3 AND {o} %% 50 <> 0 THEN (({o} %% 1000) + 1) / 100000.0 END"


def seed(project, connection, *, observations: int, days: int, trace_extra: Extra | None = None,
         observation_extra: Extra | None = None, end: datetime | None = None) -> None:
    """The raw rows (traces, observations, thumbs) of the module docstring, resuming after the chunks
    already stored. `end` (default: this hour) is the end of the `days`-long span."""
    from scores.models import Score
    from traces.models import Observation, Trace

    pid = str(project.id)
    end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    span_s = days * 86400
    n_traces = observations // 5
    t_extra_cols, t_extra_sel, t_extra_params = _extra_sql(trace_extra)
    o_extra_cols, o_extra_sel, o_extra_params = _extra_sql(observation_extra)
    t_set = {"project_id", "id", "name", "timestamp", "user_id", "environment", "release", "metadata", "created_at",
             "updated_at", "tags", "cost", "cost_calls", *(trace_extra or {})}
    t_cols, t_vals = _defaults(Trace, t_set)
    o_set = {"project_id", "id", "trace_id", "type", "name", "start_time", "end_time", "completion_start_time", "status",
             "environment", "model", "prompt_name", "prompt_version", "input_tokens", "cached_input_tokens",
             "output_tokens", "total_tokens", "total_cost", "created_at", "updated_at", "parent_observation_id",
             *(observation_extra or {})}
    o_cols, o_vals = _defaults(Observation, o_set)
    s_set = {"project_id", "id", "trace_id", "name", "value", "data_type", "source", "timestamp", "created_at",
             "updated_at", "string_value"}
    s_cols, s_vals = _defaults(Score, s_set)
    ph = lambda values: ", ".join(["%s"] * len(values))  # noqa: E731
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # seeding statements run for minutes at 10M
        # Whole chunks only (one transaction each), so the stored count is where to resume.
        have = _count(cursor, Trace._meta.db_table, pid)
        for low in range(have - have % CHUNK, n_traces, CHUNK):
            high = min(n_traces, low + CHUNK)
            cursor.execute(
                f'INSERT INTO "{Trace._meta.db_table}" (project_id, id, name, timestamp, user_id, environment, release, '
                f"metadata, created_at, updated_at, tags, cost, cost_calls, {', '.join(t_cols)}{t_extra_cols}) "
                f"SELECT %s::uuid, 't' || g, 'flow-' || (g %% {FEATURES}), "
                f"%s::timestamptz + ((g::bigint * 7919) %% {span_s}) * interval '1 second', 'user-' || (g %% {USERS}), "
                f"CASE WHEN g %% 20 = 0 THEN 'staging' ELSE 'production' END, 'r' || (((g::bigint * 7919) %% {span_s}) / 864000), "
                f"jsonb_build_object('feature', 'feature-' || (g %% {FEATURES})), "
                f"%s::timestamptz + ((g::bigint * 7919) %% {span_s}) * interval '1 second', now(), ARRAY['bench'], "
                f"tc.cost, tc.calls, {ph(t_vals)}{t_extra_sel} "
                f"FROM generate_series(%s, %s) g CROSS JOIN LATERAL (SELECT sum(c) AS cost, count(c)::integer AS calls "
                f"FROM (SELECT {_obs_cost('o')} AS c FROM generate_series(5 * g, 5 * g + 4) o) x) tc",
                [pid, start, start, *t_vals, *t_extra_params, low, high - 1],
            )
            print(f"  traces {high:,}/{n_traces:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        have = _count(cursor, Observation._meta.db_table, pid)
        for low in range(have - have % CHUNK, observations, CHUNK):
            high = min(observations, low + CHUNK)
            # Observation g belongs to trace g / 5 and starts a few seconds after it; g %% 5 < 3 are LLM calls.
            cursor.execute(
                f'INSERT INTO "{Observation._meta.db_table}" (project_id, id, trace_id, type, name, start_time, end_time, '
                f"completion_start_time, status, environment, model, prompt_name, prompt_version, input_tokens, "
                f"cached_input_tokens, output_tokens, total_tokens, total_cost, created_at, updated_at, "
                f"parent_observation_id, {', '.join(o_cols)}{o_extra_cols}) "
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
                f"{_obs_cost('g')}, ts, ts, "
                f"CASE WHEN g %% 5 = 0 THEN '' ELSE 'o' || (g - g %% 5) END, {ph(o_vals)}{o_extra_sel} "
                f"FROM (SELECT g, %s::timestamptz + (((g / 5)::bigint * 7919) %% {span_s}) * interval '1 second' "
                f"+ (g %% 5) * interval '1 second' AS ts FROM generate_series(%s, %s) g) s",
                [pid, *o_vals, *o_extra_params, start, low, high - 1],
            )
            print(f"  observations {high:,}/{observations:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if not _count(cursor, Score._meta.db_table, pid):
            cursor.execute(
                f'INSERT INTO "{Score._meta.db_table}" (project_id, id, trace_id, name, value, data_type, source, '
                f"timestamp, created_at, updated_at, string_value, {', '.join(s_cols)}) "
                f"SELECT %s::uuid, 's' || g, 't' || g, 'thumbs', CASE WHEN g %% 7 = 0 THEN 0 ELSE 1 END, 'BOOLEAN', "
                f"'USER', %s::timestamptz + ((g::bigint * 7919) %% {span_s}) * interval '1 second', now(), now(), '', "
                f"{ph(s_vals)} FROM generate_series(0, %s, 10) g",
                [pid, start, *s_vals, n_traces - 1],
            )
    print(f"  raw rows seeded in {time.perf_counter() - t0:.0f} s", flush=True)


@contextmanager
def indexes_dropped(connection, tables: tuple[str, ...]) -> Iterator[None]:
    """Bulk-load shape: the tables' secondary indexes are dropped for the inserts and built again after
    (one sort per index instead of ~10M random insertions into each, GIN ones included). Constraint
    indexes (primary keys, unique) stay. Each definition is saved in `bench_dropped_index` first, so a
    run that stops midway builds them back on its next start. Only for a bench database: while they
    are gone every read of these tables scans."""
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_dropped_index (name text PRIMARY KEY, definition text NOT NULL)")
        _restore_indexes(cursor)
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(%s::name[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
            "WHERE k.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)",
            [list(tables)],
        )
        for name, definition in cursor.fetchall():
            cursor.execute("INSERT INTO bench_dropped_index VALUES (%s, %s) ON CONFLICT DO NOTHING", [name, definition])
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            _restore_indexes(cursor)


def _restore_indexes(cursor) -> None:
    cursor.execute("SELECT name, definition FROM bench_dropped_index ORDER BY name")
    saved = cursor.fetchall()
    if not saved:
        return
    cursor.execute("SET maintenance_work_mem = '1GB'")
    cursor.execute("SET max_parallel_maintenance_workers = 2")
    for name, definition in saved:
        t0 = time.perf_counter()
        cursor.execute(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
                       .replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1))
        cursor.execute("DELETE FROM bench_dropped_index WHERE name = %s", [name])
        print(f"  index {name} built in {time.perf_counter() - t0:.0f} s", flush=True)
    cursor.execute("RESET maintenance_work_mem")
    cursor.execute("RESET max_parallel_maintenance_workers")


def seed_rollups(project, connection) -> None:
    """The hourly and daily-per-user rollups of the seeded rows, in SQL (see the module docstring), then
    the daily and the score rollups."""
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
