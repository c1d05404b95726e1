"""Dashboard reads over whole days take the middle of their window from the daily rollup and only
the edge hours from the hourly one. The answer must be the hourly-only answer, exactly: same groups,
spend, calls, rates and (the same summed histograms) the same percentiles, for windows whose edges
fall mid-day and for day and hour buckets; and the spend must be what the raw calls say."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest import writer
from monitoring import selectors

NOW = datetime(2026, 11, 20, 14, 25, tzinfo=UTC)


@pytest.fixture
def calls(project, other_project):
    rng = random.Random(7)
    traces = [{"id": f"t-{f}", "name": f"flow-{f}", "user_id": f"u-{f}", "metadata": {"feature": f}}
              for f in ("search", "chat", "extract")]
    observations = []
    for i in range(240):
        start = NOW - timedelta(minutes=rng.randint(1, 6 * 24 * 60))
        observations.append({
            "id": f"c-{i}", "trace_id": rng.choice(traces)["id"], "type": "GENERATION", "start_time": start,
            "end_time": start + timedelta(milliseconds=rng.randint(50, 9000)),
            "completion_start_time": start + timedelta(milliseconds=rng.randint(10, 40)),
            "model": rng.choice(["gpt-4o", "gpt-4o-mini", "claude"]), "status": rng.choice(["ok"] * 9 + ["error"]),
            "total_cost": Decimal(rng.randint(1, 999)) / 100, "cached_input_tokens": rng.choice([0, 1000]),
            "input_tokens": 10,
        })
    writer.write_records(project=project, traces=traces, observations=observations, scores=[])
    # Another project's calls in the same hours must not leak into either read.
    writer.write_records(project=other_project, traces=traces, observations=observations[:50], scores=[])
    return observations


def _both(monkeypatch, read):
    mixed = read()
    monkeypatch.setattr(selectors, "USE_DAILY", False)
    hourly = read()
    monkeypatch.setattr(selectors, "USE_DAILY", True)
    return mixed, hourly


@pytest.mark.parametrize("days", [1, 2, 3, 6])
@pytest.mark.parametrize("by", ["feature", "model", "prompt_version"])
def test_breakdowns_equal_the_hourly_only_answer_and_the_raw_calls(monkeypatch, project, calls, days, by):
    mixed, hourly = _both(monkeypatch, lambda: selectors.cost_breakdown(project=project, by=by, days=days, now=NOW))
    assert mixed == hourly
    window = selectors.window_of(days=days, now=NOW)
    inside = [c for c in calls if window.since <= c["start_time"] < window.until]
    assert mixed["total"]["calls"] == len(inside) > 0
    assert mixed["total"]["spend"] == sum((c["total_cost"] for c in inside), Decimal(0))


@pytest.mark.parametrize("days", [1, 3, 6])
@pytest.mark.parametrize("granularity", ["day", "hour"])
def test_series_equal_the_hourly_only_answer(monkeypatch, project, calls, days, granularity):
    mixed, hourly = _both(monkeypatch, lambda: selectors.spend_series_by(
        project=project, by="model", days=days, granularity=granularity, now=NOW))
    assert mixed == hourly and any(any(s["spend"]) for s in mixed["series"])
    mixed, hourly = _both(monkeypatch, lambda: selectors.cache_savings(
        project=project, days=days, granularity=granularity, now=NOW))
    assert mixed == hourly


def test_a_multi_day_window_reads_the_daily_rollup(project, calls):
    source, params = selectors._rollup_source(pid=str(project.id), window=selectors.window_of(days=6, now=NOW),
                                              columns="calls")
    assert "UNION ALL" in source and params[-2:] == [NOW.date() - timedelta(days=5), NOW.date()]
