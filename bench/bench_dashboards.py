"""Dashboard and metrics-query latency at volume: `make bench-dashboards`.

Seeds one bench project (kept between runs, reused when it has the asked volume) on the embedded
stack (`python -m config.devstack exec -- …`), then times the reads the dashboards and the metrics
API make, warm, BENCH_RUNS times each (median and max, milliseconds, in-process: the selector or
`metrics.run_query`, no HTTP).

BENCH_PROJECT=name times an existing project seeded by the same SQL (e.g. `console-sql-10000000` of
`make bench-console ARGS="--observations 10000000"`) instead of seeding `dashboards-N`.

Volume (BENCH_OBSERVATIONS, default 10,000,000, over BENCH_DAYS = 30 days): raw rows and rollups
seeded with SQL by `bench/volume_sql.py` (its docstring has the shape: 20 features on 2 of 6 models,
5,000 users, a thumb on one trace in ten, ~45 dimension combinations an hour).

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

from bench.volume_sql import seed, seed_daily_rollups, seed_rollups, seed_score_rollups  # noqa: E402

OBSERVATIONS = int(os.environ.get("BENCH_OBSERVATIONS", "10000000"))
DAYS = int(os.environ.get("BENCH_DAYS", "30"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))


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

    if os.environ.get("BENCH_PROJECT"):
        # A project another benchmark seeded with the same SQL seed (bench/volume_sql.py), e.g. the console
        # bench's `console-sql-10000000`: 10M observations take ~25 min to seed, so one seed serves both.
        from tenancy.models import Project

        project = Project.objects.filter(name=os.environ["BENCH_PROJECT"]).first()
        if project is None:
            print(f"no project named {os.environ['BENCH_PROJECT']!r}", flush=True)
            return 1
    else:
        project, _, _ = project_bootstrap(organization_name="Lookglass bench",
                                          project_name=f"dashboards-{OBSERVATIONS}", note="make bench-dashboards")
    connection = data_connection(project)
    # A borrowed project is taken as it is (its own benchmark may have added a few rows).
    have = OBSERVATIONS if os.environ.get("BENCH_PROJECT") else Observation.objects.for_project(project).count()
    if have > OBSERVATIONS:
        print(f"project holds {have:,} observations, not {OBSERVATIONS:,}: run `make clean-data` first", flush=True)
        return 1
    if have < OBSERVATIONS:  # a run that stopped midway resumes after its last whole chunk
        print(f"seeding {OBSERVATIONS:,} observations over {DAYS} days…", flush=True)
        seed(project, connection, observations=OBSERVATIONS, days=DAYS)
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
        common_reads(project, q, llm, span, now, results)
    edge_reads(project, now, llm, results)
    over = [r for r in results if r[3] is not None and r[1] >= r[3]]
    print(f"\n{len(results) - len(over)} of {len(results)} within their target" if not over else
          f"\nOVER target: {', '.join(r[0] for r in over)}")
    return 1 if over else 0


def dashboard_users_ab(project, days: int, results: list) -> None:
    """The dashboard's reads with the by-user breakdown ranked in SQL (top `DASHBOARD_USERS`) and, as
    before, with every user returned to Python to rank (`DASHBOARD_USERS = None`), alternated run by
    run on the same data."""
    from monitoring import selectors

    kept = selectors.DASHBOARD_USERS
    samples: dict[str, list[float]] = {"top in SQL": [], "every user": []}
    try:
        for run in range(RUNS + 1):
            for mode in (("top in SQL", "every user") if run % 2 else ("every user", "top in SQL")):
                selectors.DASHBOARD_USERS = kept if mode == "top in SQL" else None
                t0 = time.perf_counter()
                selectors.dashboard(project=project, days=days)
                if run:  # the first round warms up
                    samples[mode].append((time.perf_counter() - t0) * 1000)
    finally:
        selectors.DASHBOARD_USERS = kept
    for mode, values in samples.items():
        label = f"whole dashboard page's reads, {days} days, by user: {mode}"
        results.append((label, statistics.median(values), max(values), None))
        print(f"{label:<78} median {statistics.median(values):8.1f} ms  max {max(values):8.1f} ms", flush=True)


def common_reads(project, q, llm, span, now, results) -> None:
    from monitoring import metrics, selectors

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
    for days in (7, 30):
        dashboard_users_ab(project, days, results)
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
    timed("billable-units by day, last 24 h (raw rows by creation time)",
          q({"view": "billable-units", "metrics": [{"measure": "units", "aggregation": "sum"}],
             "timeDimension": {"granularity": "hour"}, **span(1)}), results, None)
    # Score views: the raw rows (metrics.USE_SCORE_ROLLUPS = False, the code before the score rollups
    # answered them) and the score rollups, alternated twice in this run so both see the same load.
    from console.selectors import thumbs_breakdowns

    ago = lambda days: {"fromTimestamp": (now - timedelta(days=days)).isoformat(), "toTimestamp": now.isoformat()}  # noqa: E731
    score_reads = [
        ("v2 scores-numeric avg value by name, 7 days (whole hours)",
         q({"view": "scores-numeric", "dimensions": [{"field": "name"}],
            "metrics": [{"measure": "value", "aggregation": "avg"}], **span(7)})),
        ("v1 scores-boolean thumbs (count + sum of value) by feature, last 30 days to now (the feedback page's)",
         (lambda parsed: lambda: metrics.run_query(project=project, query=parsed))(metrics.parse_query(json.dumps(
             {"view": "scores-boolean", "dimensions": [{"field": "feature"}],
              "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "value", "aggregation": "sum"}],
              "filters": [{"column": "source", "operator": "=", "value": "USER", "type": "string"}],
              "config": {"row_limit": 100}, **ago(30)}), version=1))),
        ("v2 scores-boolean true/false counts by day, last 30 days to now",
         q({"view": "scores-boolean", "dimensions": [{"field": "booleanValue"}],
            "metrics": [{"measure": "count", "aggregation": "count"}], "timeDimension": {"granularity": "day"},
            **ago(30)})),
        ("v2 scores-numeric count + avg by traceName and environment, 30 days (whole hours)",
         q({"view": "scores-numeric", "dimensions": [{"field": "traceName"}, {"field": "environment"}],
            "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "value", "aggregation": "avg"}],
            **span(30)})),
        ("console feedback page: thumbs by feature, model, prompt version (30 days; model/prompt stay raw)",
         lambda: thumbs_breakdowns(project=project, days=30)),
    ]
    print("\nmetrics API, score views: raw rows vs score rollups (alternated, same run):")
    for round_ in (1, 2):
        for use in (False, True):
            metrics.USE_SCORE_ROLLUPS = use
            for label, call in score_reads:
                timed(f"[{'rollups' if use else 'raw'} {round_}] {label}", call, results, None)
    metrics.USE_SCORE_ROLLUPS = True
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


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
