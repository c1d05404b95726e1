"""Metrics queries whose window is not on whole hours ("now − 7 days" with seconds, as the Langfuse SDKs
and dashboards send them) are answered from the hourly rollups for the whole hours inside the window
plus the raw LLM calls of the partial edge hours, rolled up in SQL the way the ingest path rolls them
up (`monitoring.metrics._edge_rows_sql`).

The reference for exactness is the ingest path itself: the calls of the window are written again, alone,
to a second project (the other organization's), whose rollups — written by `ingest.rollups` — then
hold exactly the window's calls in whole hours. The hybrid answer must equal that project's rollup
answer to the last digit (percentiles included: same merged histograms), and the raw rows' answer
for counts, sums and averages. The second project's calls lie in the same hours as the first's, so
counting another tenant's calls would show at once."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ingest import writer
from monitoring import metrics
from monitoring.models import DailyRollup, DailyUserRollup, HourlyRollup
from monitoring.rules import (
    BUCKET_STARTS_US,
    ROLLUP_TOKENS_CAP,
    ROLLUP_US_CAP,
    FeatureRule,
    bucket_of,
    bucket_sql,
)
from tenancy.dataplane import data_connection
from traces.models import Observation, Trace

BASE = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
LLM = {"column": "type", "operator": "any of", "value": ["GENERATION", "EMBEDDING"], "type": "stringOptions"}
TRACES = [
    {"id": "a", "name": "chat", "release": "r1", "metadata": {"feature": "support"}, "tags": ["f:billing"]},
    {"id": "b", "name": "chat", "release": "r2", "metadata": {"feature": "search"}, "tags": ["f:search", "x"]},
    {"id": "c", "name": "summarise", "release": "", "metadata": {}},
    {"id": "d", "name": "", "release": "r1", "metadata": {"feature": 42}, "tags": ["f:" + "é" * 300]},
]
PERCENTILES = (("latency", "p50"), ("latency", "p95"), ("timeToFirstToken", "p90"), ("latency", "p99"))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse(**fields) -> metrics.Query:
    body = {"view": "observations", "dimensions": [], "metrics": [{"measure": "count", "aggregation": "count"}],
            "filters": [LLM], "config": {"row_limit": 1000}}
    body.update(fields)
    return metrics.parse_query(json.dumps(body), version=2)


def call(index: int, trace: str, start: datetime, *, latency_ms=1000, ttft_ms=None, model="gpt-4o", **extra) -> dict:
    obs = {"id": f"x{index}", "trace_id": trace, "type": "GENERATION", "start_time": start, "status": "success",
           "model": model, "environment": "default", "input_tokens": 100 + index, "output_tokens": index,
           "total_tokens": 100 + 2 * index, "total_cost": Decimal("0.5"), "cost_details": {"total": 0.5}}
    if latency_ms is not None:
        obs["end_time"] = start + timedelta(milliseconds=latency_ms)
    if ttft_ms is not None:
        obs["completion_start_time"] = start + timedelta(milliseconds=ttft_ms)
    obs.update(extra)
    return obs


def write(project, observations: list[dict]) -> None:
    writer.write_records(project=project, traces=[{**t, "timestamp": BASE} for t in TRACES],
                         observations=observations, scores=[])


def inside(obs: dict, query: metrics.Query) -> bool:
    return query.since <= obs["start_time"] < query.until


def whole_hours_of(query: metrics.Query) -> metrics.Query:
    """The same query over the whole hours covering its window (granularity already resolved)."""
    window = metrics._window_parts(query)
    return dataclasses.replace(query, since=window.cover_from, until=window.cover_to)


def raw_answer(project, query: metrics.Query) -> list[dict]:
    rows = metrics._from_raw(project, query, metrics.applied_feature_rule(project=project))
    return metrics._zero_fill(query, rows) if query.granularity and query.order_by is None else rows


def rounded(rows: list[dict]) -> list[dict]:
    rows = [{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def without_percentiles(query: metrics.Query) -> metrics.Query:
    return dataclasses.replace(query, metrics=tuple(m for m in query.metrics if m.aggregation not in metrics.QUANTILE),
                               order_by=None)


def clear(*projects) -> None:
    # Test-only cleanup between examples (the rows are the test's own; ingest has no delete).
    for project in projects:
        with data_connection(project).cursor() as cursor:
            for model in (HourlyRollup, DailyRollup, DailyUserRollup, Observation, Trace):
                cursor.execute(f'DELETE FROM "{model._meta.db_table}" WHERE project_id = %s', [project.id])


# --- the window's parts ---------------------------------------------------------------------------

H = timedelta(hours=1)


@pytest.mark.parametrize("since, until, whole, edges", [
    # Whole hours: no edge, read as before.
    (BASE, BASE + 3 * H, (BASE, BASE + 3 * H), []),
    # Both ends with seconds: two partial hours around the whole ones.
    (BASE + timedelta(minutes=10, seconds=5), BASE + 3 * H + timedelta(seconds=7),
     (BASE + H, BASE + 3 * H),
     [(BASE + timedelta(minutes=10, seconds=5), BASE + H), (BASE + 3 * H, BASE + 3 * H + timedelta(seconds=7))]),
    # Within one hour: one edge, no whole hour.
    (BASE + timedelta(minutes=10), BASE + timedelta(minutes=50), (BASE + H, BASE + H),
     [(BASE + timedelta(minutes=10), BASE + timedelta(minutes=50))]),
    # On the hour at one end only.
    (BASE, BASE + timedelta(minutes=30), (BASE, BASE), [(BASE, BASE + timedelta(minutes=30))]),
    (BASE + timedelta(minutes=30), BASE + 2 * H, (BASE + H, BASE + 2 * H), [(BASE + timedelta(minutes=30), BASE + H)]),
    # Adjacent partial hours, no whole hour between them.
    (BASE + timedelta(minutes=30), BASE + H + timedelta(minutes=1), (BASE + H, BASE + H),
     [(BASE + timedelta(minutes=30), BASE + H), (BASE + H, BASE + H + timedelta(minutes=1))]),
])
def test_a_window_splits_into_whole_hours_and_at_most_two_partial_ones(since, until, whole, edges):
    query = parse(fromTimestamp=iso(since), toTimestamp=iso(until))
    window = metrics._window_parts(query)
    assert window.whole == whole and list(window.edges) == edges
    assert window.cover_from <= since and window.cover_to >= until


def test_the_sql_histogram_bucket_is_bucket_of_for_every_microsecond_value(project):
    values = {0, 1, 999, 1000, ROLLUP_US_CAP, *(1000 * 2**k for k in range(23))}
    for start in BUCKET_STARTS_US:
        values |= {start - 1, start, start + 1}
    rng = random.Random(12)
    values |= {rng.randrange(0, ROLLUP_US_CAP + 1) for _ in range(2000)}
    values = sorted(v for v in values if 0 <= v <= ROLLUP_US_CAP)
    with data_connection(project).cursor() as cursor:
        cursor.execute(f"SELECT v, {bucket_sql('v')} FROM unnest(%s::bigint[]) AS v", [values])
        got = dict(cursor.fetchall())
    assert {v: got[v] for v in values} == {v: bucket_of(v / 1000) for v in values}


# --- exactness -----------------------------------------------------------------------------------

def test_edge_hours_hold_duplicates_and_capped_values_and_never_another_tenants_calls(project, other_project):
    """An edge hour holding a call recorded twice (counted once), tokens and durations past the
    per-call bounds (bounded as the rollups bound them), and another tenant's calls in the same hours."""
    since, until = BASE + timedelta(hours=1, minutes=20, seconds=13), BASE + timedelta(hours=4, minutes=7, seconds=59)
    edge = since + timedelta(minutes=5)
    common = {"model": "gpt-4o", "input_tokens": 70, "output_tokens": 7, "total_tokens": 77}
    calls = [
        # Outside the window, in the edge hours: not counted.
        call(1, "a", since - timedelta(seconds=1)),
        call(2, "b", until, latency_ms=30),
        # In the head edge hour: a pair recorded twice (same call; the inner one is marked), huge values.
        call(3, "a", edge, latency_ms=3000, ttft_ms=200, **common),
        call(4, "a", edge, latency_ms=2500, ttft_ms=200, parent_observation_id="x3", **common),
        call(5, "b", edge + timedelta(seconds=1), latency_ms=3 * 3600 * 1000, ttft_ms=5000 * 1000,
             input_tokens=2**40, total_tokens=2**40 + 5, status="error"),
        call(6, "c", edge + timedelta(seconds=2), latency_ms=-5000, total_cost=None, cost_details={},
             type="EMBEDDING", model="text-embedding-3-small"),
        # Whole hours.
        call(7, "d", BASE + timedelta(hours=2, minutes=1), latency_ms=700, status="refused"),
        call(8, "a", BASE + timedelta(hours=3, minutes=59, seconds=59), latency_ms=900),
        # In the tail edge hour, up to its last microsecond.
        call(9, "b", until - timedelta(microseconds=1), latency_ms=0.4, ttft_ms=0.1),
        call(10, "c", BASE + timedelta(hours=4), latency_ms=None, input_tokens=ROLLUP_TOKENS_CAP + 1),
    ]
    write(project, calls)
    assert Observation.objects.for_project(project).get(id="x4").duplicate_of == "x3"
    # The other tenant holds the window's calls (the reference) and calls in the same edge hours.
    reference = [c for c in calls if since <= c["start_time"] < until]
    write(other_project, reference)
    query = parse(
        dimensions=[{"field": "feature"}, {"field": "model"}],
        metrics=[{"measure": m, "aggregation": a} for m, a in (
            ("count", "count"), ("inputTokens", "sum"), ("totalTokens", "sum"), ("totalCost", "sum"),
            ("errors", "sum"), ("refusals", "sum"), ("latency", "avg"), ("latency", "count"),
            ("timeToFirstToken", "avg"), *PERCENTILES)],
        fromTimestamp=iso(since), toTimestamp=iso(until), timeDimension={"granularity": "hour"})
    hybrid = metrics.run_query(project=project, query=query)
    assert hybrid["source"] == "rollups+edges"
    expected = metrics.run_query(project=other_project, query=whole_hours_of(query))
    assert expected["source"] == "rollups"
    assert hybrid["data"] == expected["data"]
    totals = metrics.run_query(project=project, query=dataclasses.replace(query, dimensions=(), granularity=None))
    row = totals["data"][0]
    # x4 counted once with x3; x5's tokens and durations bounded; x6's negative latency is 0.
    assert row["count_count"] == "7"
    assert row["sum_inputTokens"] == str(70 + ROLLUP_TOKENS_CAP + 106 + 107 + 108 + 109 + ROLLUP_TOKENS_CAP)
    assert row["sum_errors"] == "1" and row["sum_refusals"] == "1"
    assert row["sum_totalCost"] == 3.0
    latencies_us = [3_000_000, ROLLUP_US_CAP, 0, 700_000, 900_000, 400]
    assert row["count_latency"] == str(len(latencies_us))
    assert row["avg_latency"] == pytest.approx(sum(latencies_us) / len(latencies_us) / 1000)
    # Another tenant's calls in the same hours are never counted (and the other way round).
    other = metrics.run_query(project=other_project, query=dataclasses.replace(query, dimensions=(), granularity=None))
    assert other["source"] == "rollups+edges" and other["data"][0]["count_count"] == "7"


def test_the_feature_rule_of_the_project_applies_to_the_edge_calls(project, other_project):
    """A tag-prefix feature (cut to 200 characters) read from the edge calls' traces as the rollups read it."""
    from monitoring.services import apply_feature_rule

    since, until = BASE + timedelta(minutes=1, seconds=1), BASE + timedelta(hours=2, minutes=2)
    calls = [call(i, trace, BASE + timedelta(minutes=3 * i + 1, seconds=i)) for i, trace in enumerate("abcdabcdabcd")]
    calls += [call(20 + i, trace, BASE + timedelta(hours=2, minutes=i % 2 * 30)) for i, trace in enumerate("abcd")]
    for p in (project, other_project):
        assert apply_feature_rule(project=p, rule=FeatureRule(source="tag_prefix", key="f:"))
    write(project, calls)
    write(other_project, [c for c in calls if since <= c["start_time"] < until])
    query = parse(dimensions=[{"field": "feature"}], metrics=[{"measure": "count", "aggregation": "count"},
                                                             {"measure": "latency", "aggregation": "p50"}],
                  fromTimestamp=iso(since), toTimestamp=iso(until),
                  filters=[LLM, {"column": "feature", "operator": "none of", "value": ["search"],
                                 "type": "stringOptions"}])
    hybrid = metrics.run_query(project=project, query=query)
    assert hybrid["source"] == "rollups+edges"
    assert hybrid["data"] == metrics.run_query(project=other_project, query=whole_hours_of(query))["data"]
    assert {r["feature"] for r in hybrid["data"]} == {"billing", "", "é" * 200}
    plain = without_percentiles(query)
    assert rounded(metrics.run_query(project=project, query=plain)["data"]) == rounded(raw_answer(project, plain))


calls_strategy = st.lists(
    st.fixed_dictionaries({
        "trace": st.sampled_from(["a", "b", "c", "d"]),
        "type": st.sampled_from(["GENERATION", "GENERATION", "EMBEDDING", "SPAN", "EVENT"]),
        # Most calls near the window's ends (in its partial hours, on either side of its bounds).
        "anchor": st.sampled_from(["since", "until", "since", "until", "anywhere"]),
        "offset": st.integers(-3600, 3600),  # from the anchor, seconds
        "second": st.integers(0, 72 * 3600 - 1),  # from BASE ("anywhere")
        "micro": st.sampled_from([0, 0, 1, 999_999]),
        "latency": st.one_of(st.none(), st.integers(0, 90_000)),
        "ttft": st.one_of(st.none(), st.integers(0, 5_000)),
        "cost": st.one_of(st.none(), st.decimals("0", "5", places=4)),
        "status": st.sampled_from(["success", "success", "error", "refused"]),
        "model": st.sampled_from(["gpt-4o", "claude", ""]),
        "env": st.sampled_from(["default", "staging"]),
        "prompt": st.sampled_from([("", None), ("qa", 1), ("qa", 2)]),
        "twice": st.booleans(),  # recorded twice (an instrumentation's span around the SDK's)
    }),
    min_size=1, max_size=30,
)
windows = st.tuples(st.integers(0, 72 * 3600), st.integers(1, 72 * 3600), st.sampled_from([0, 0, 250_000]),
                    st.sampled_from(["free", "free", "from on the hour", "to on the hour"]))
asks = st.fixed_dictionaries({
    "dimensions": st.lists(st.sampled_from(sorted(metrics.ROLLUP_COLUMNS)), max_size=2, unique=True),
    "metrics": st.lists(st.sampled_from([("count", "count"), ("totalCost", "sum"), ("totalTokens", "sum"),
                                         ("inputTokens", "sum"), ("errors", "sum"), ("refusals", "sum"),
                                         ("latency", "avg"), ("timeToFirstToken", "avg"), ("latency", "count"),
                                         *PERCENTILES]),
                        min_size=1, max_size=4, unique=True),
    "granularity": st.sampled_from([None, "hour", "day", "auto"]),
    "filter": st.sampled_from([
        None,
        {"column": "environment", "operator": "any of", "value": ["default"], "type": "stringOptions"},
        {"column": "model", "operator": "=", "value": "gpt-4o", "type": "string"},
        {"column": "feature", "operator": "none of", "value": ["search"], "type": "stringOptions"},
        {"column": "traceName", "operator": "contains", "value": "ch", "type": "string"},
        {"column": "promptVersion", "operator": ">=", "value": 2, "type": "number"},
        {"column": "promptName", "operator": "is null", "value": None, "type": "null"},
    ]),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=calls_strategy, window=windows, questions=st.lists(asks, min_size=1, max_size=4))
def test_random_windows_with_seconds_equal_the_raw_rows_and_the_rollups_of_the_same_calls(
        project, other_project, batch, window, questions):
    offset, length, micro, alignment = window
    since = BASE + timedelta(seconds=offset, microseconds=micro)
    until = since + timedelta(seconds=length)
    if alignment == "from on the hour":
        since = since.replace(minute=0, second=0, microsecond=0)
    elif alignment == "to on the hour":
        until = until.replace(minute=0, second=0, microsecond=0) + H
    observations = []
    for index, c in enumerate(batch):
        if c["anchor"] == "anywhere":
            start = BASE + timedelta(seconds=c["second"], microseconds=c["micro"])
        else:
            start = (since if c["anchor"] == "since" else until) + timedelta(seconds=c["offset"],
                                                                          microseconds=c["micro"])
        obs = call(index, c["trace"], start, latency_ms=c["latency"], ttft_ms=c["ttft"], type=c["type"],
                   status=c["status"], model=c["model"], environment=c["env"], prompt_name=c["prompt"][0],
                   prompt_version=c["prompt"][1], total_cost=c["cost"],
                   cost_details={"total": float(c["cost"])} if c["cost"] is not None else {})
        if c["twice"]:
            # An instrumentation's span around the SDK's for one call: the same start, model and usage, so
            # the inner one is marked a duplicate and counted once.
            obs.update(type="GENERATION", model=c["model"] or "gpt-4o", end_time=obs.get("end_time") or start + H)
            observations.append({**obs, "id": f"x{index}-inner", "parent_observation_id": obs["id"]})
        observations.append(obs)
    probe = parse(fromTimestamp=iso(since), toTimestamp=iso(until))
    edges = metrics._window_parts(probe).edges
    at_edges = [o for o in observations if any(a <= o["start_time"] < b for a, b in edges)]
    # (`--hypothesis-show-statistics` shows how often the examples reach the edge hours.)
    event(f"calls in an edge hour: {bool(at_edges)}")
    event(f"a call recorded twice in an edge hour: {any(o.get('parent_observation_id') for o in at_edges)}")
    try:
        write(project, observations)
        write(other_project, [o for o in observations if inside(o, probe)])
        for ask in questions:
            filters = [LLM] + ([ask["filter"]] if ask["filter"] else [])
            query = parse(dimensions=[{"field": d} for d in ask["dimensions"]],
                          metrics=[{"measure": m, "aggregation": a} for m, a in ask["metrics"]], filters=filters,
                          timeDimension={"granularity": ask["granularity"]} if ask["granularity"] else None,
                          fromTimestamp=iso(since), toTimestamp=iso(until))
            if query.granularity == "minute":
                assert not metrics.rollup_answers(query)
                continue
            answer = metrics.run_query(project=project, query=query)
            on_the_hour = not metrics._window_parts(query).edges
            assert answer["source"] == ("rollups" if on_the_hour else "rollups+edges")
            # The rollups of exactly the window's calls (written by ingest) give the same answer.
            reference = metrics.run_query(project=other_project, query=whole_hours_of(query))
            assert reference["source"] == "rollups"
            assert answer["data"] == reference["data"], query
            # And the raw rows, for everything but percentiles (read from the ±9% histograms).
            plain = without_percentiles(query)
            if plain.metrics:
                assert rounded(metrics.run_query(project=project, query=plain)["data"]) == rounded(
                    raw_answer(project, plain)), query
    finally:
        clear(project, other_project)


def test_percentiles_from_the_merged_histograms_are_within_their_stated_error(project):
    """Each read as the geometric middle of its bucket (four per doubling): within 2^(1/8) − 1 ≈ 9%
    of the value at that rank."""
    rng = random.Random(5)
    since, until = BASE + timedelta(minutes=40, seconds=9), BASE + timedelta(hours=5, minutes=15, seconds=30)
    calls = [call(i, "abcd"[i % 4], BASE + timedelta(seconds=rng.randrange(6 * 3600)),
                  latency_ms=rng.lognormvariate(6, 1.5)) for i in range(300)]
    write(project, calls)
    latencies = sorted(c["end_time"] - c["start_time"] for c in calls if since <= c["start_time"] < until)
    latencies = [d / timedelta(milliseconds=1) for d in latencies]
    query = parse(metrics=[{"measure": "latency", "aggregation": a} for a in ("p50", "p90", "p95", "p99")],
                  fromTimestamp=iso(since), toTimestamp=iso(until))
    answer = metrics.run_query(project=project, query=query)
    assert answer["source"] == "rollups+edges"
    for aggregation, q in metrics.QUANTILE.items():
        if aggregation == "p75":
            continue
        true = latencies[max(1, math.ceil(q * len(latencies))) - 1]  # the value at that rank
        assert answer["data"][0][f"{aggregation}_latency"] == pytest.approx(true, rel=2 ** (1 / 8) - 1 + 1e-9), aggregation
