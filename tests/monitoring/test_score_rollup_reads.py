"""The alerts' thumbs-down rate and score average, and the dashboards' thumbs series, are answered
from the score rollups: equal to the answer from the raw score rows (computed here, independently, in
Python) after a randomized mix of scores, updates, thumbs, deletes and scores of missing traces."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest import writer
from monitoring import alerts, selectors
from monitoring.alerts_models import AlertMetric, AlertRule
from scores.models import Score

NOW = datetime(2026, 11, 20, 14, 40, tzinfo=UTC)
START = NOW.replace(minute=0) - timedelta(days=3)


def seed(project, seed: int) -> None:
    rng = random.Random(seed)
    writer.write_records(project=project, observations=[], scores=[],
                         traces=[{"id": f"t{i}", "name": f"n{i % 3}", "user_id": f"u{i % 2}"} for i in range(6)])
    for _ in range(8):
        batch = []
        for _ in range(rng.randint(1, 25)):
            kind = rng.random()
            score = {
                "id": f"s{rng.randint(0, 120)}", "trace_id": f"t{rng.randint(0, 8)}",  # t6–t8 never exist
                "timestamp": START + timedelta(minutes=rng.randint(0, 3 * 24 * 60 + 100)),
                "environment": rng.choice(["default", "production", "staging"]),
            }
            if kind < 0.4:
                value = float(rng.choice([0, 1]))
                score.update(name=rng.choice(["thumbs", "user-feedback"]), source="USER", data_type="BOOLEAN",
                             value=value, string_value="True" if value else "False")
            elif kind < 0.85:
                score.update(name=rng.choice(["faithfulness", "relevance"]), source=rng.choice(["EVAL", "API"]),
                             data_type="NUMERIC", value=rng.choice([0.1, 0.25, 0.7, 0.93, 1.0, 3.5]))
            else:
                score.update(name="faithfulness", source="ANNOTATION", data_type="CATEGORICAL", string_value="ok")
            batch.append(score)
        writer.write_records(project=project, traces=[], observations=[], scores=batch)
        for _ in range(rng.randint(0, 4)):
            writer.delete_score(project=project, score_id=f"s{rng.randint(0, 120)}")


def raw_measure(project, rule: AlertRule, since, until) -> tuple[int, float | None]:
    """The old raw-row answer: count(value) and the thumbs-down share / the average value."""
    rows = [s for s in Score.objects.for_project(project)
            if since <= s.timestamp < until and (not rule.environment or s.environment == rule.environment)]
    if rule.metric == AlertMetric.THUMBS_DOWN_RATE:
        rows = [s for s in rows if s.source == "USER" and s.data_type == "BOOLEAN"
                and (not rule.score_name or s.name == rule.score_name)]
        values = [s.value for s in rows if s.value is not None]
        return len(values), (sum(1 for s in rows if s.value == 0) / len(values)) if values else None
    values = [s.value for s in rows if s.name == rule.score_name and s.data_type in ("NUMERIC", "BOOLEAN")
              and s.value is not None]
    return len(values), (sum(values) / len(values)) if values else None


@pytest.mark.parametrize("seed_value", [1, 2, 3])
def test_alert_score_measures_from_the_rollups_equal_the_raw_rows(project, seed_value):
    seed(project, seed_value)
    rules = [
        AlertRule(project=project, name="a", metric=AlertMetric.THUMBS_DOWN_RATE, window_minutes=60 * w,
                  score_name=name, environment=env)
        for w in (1, 6, 24) for name in ("", "thumbs") for env in ("", "staging")
    ] + [
        AlertRule(project=project, name="b", metric=AlertMetric.SCORE_AVG, window_minutes=60 * w,
                  score_name=name, environment=env)
        for w in (1, 6, 24, 72) for name in ("faithfulness", "relevance", "missing") for env in ("", "production")
    ]
    wanted = [(rule, alerts.windows_of(rule, NOW) + [alerts.Window(START, NOW.replace(minute=0) + alerts.HOUR)])
              for rule in rules]
    measured = alerts.measure_many(project, wanted)
    compared = 0
    for (rule, windows), measures in zip(wanted, measured):
        for window, m in zip(windows, measures):
            count, value = raw_measure(project, rule, window.since, window.until)
            assert m.calls == count, (rule.metric, rule.score_name, window)
            if value is None:
                assert m.value is None
            else:
                assert m.value == pytest.approx(value, rel=1e-12)
                compared += 1
    assert compared > 10  # the seed gives most windows data


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_the_thumbs_series_from_the_rollups_equals_the_raw_rows(project, granularity):
    seed(project, 4)
    series = selectors.thumbs_series(project=project, days=3, granularity=granularity, now=NOW)
    # The rollups hold whole hours: the current hour counts whole (a thumb stamped later in this hour
    # than `now` too, which the raw rows' `timestamp < now` left out).
    since, until = series["from"], series["to"].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    thumbs = [s for s in Score.objects.for_project(project)
              if s.source == "USER" and s.data_type == "BOOLEAN" and since <= s.timestamp < until]
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    expected = {}
    for s in thumbs:
        bucket = s.timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if granularity == "day":
            bucket = bucket.replace(hour=0)
        total, down = expected.get(bucket, (0, 0))
        expected[bucket] = (total + 1, down + (s.value == 0))
    assert thumbs
    for point in series["points"]:
        total, down = expected.get(point["time"], (0, 0))
        assert (point["thumbs"], point["down"]) == (total, down), point["time"]
        assert point["time"] + step > since
    assert series["total"]["thumbs"] == len(thumbs)


def test_the_daily_quality_series_from_the_daily_rollup_equals_the_hourly_rollup(project):
    """The 30-day quality series reads the daily rollup: the same numbers (sums, rates, percentiles from
    the summed histograms) as adding up the hourly rows, with filters, after calls moved between days."""
    rng = random.Random(9)
    for _round in range(4):
        observations = []
        for _ in range(30):
            start = NOW - timedelta(minutes=rng.randint(1, 9 * 24 * 60))
            observations.append({
                "id": f"g{rng.randint(0, 60)}", "trace_id": f"t{rng.randint(0, 4)}", "type": "GENERATION",
                "start_time": start, "end_time": start + timedelta(milliseconds=rng.randint(5, 30_000)),
                "completion_start_time": start + timedelta(milliseconds=rng.randint(1, 900)),
                "model": rng.choice(["gpt-4o", "claude-sonnet-4"]), "input_tokens": rng.randint(1, 900),
                "cached_input_tokens": rng.randint(0, 200), "level": rng.choice(["DEFAULT", "ERROR"]),
            })
        writer.write_records(project=project, observations=observations, scores=[], traces=[
            {"id": f"t{i}", "name": "chat", "metadata": {"feature": rng.choice(["a", "b"])}} for i in range(5)])
    for feature, model in ((None, None), ("a", None), (None, "gpt-4o")):
        window = selectors._series_window(days=7, granularity="day", now=NOW)
        from_daily = selectors._quality_rows(project=project, window=window, granularity="day", feature=feature,
                                             model=model, daily=True)
        from_hourly = selectors._quality_rows(project=project, window=window, granularity="day", feature=feature,
                                              model=model, daily=False)
        assert from_daily and from_daily == from_hourly
        series = selectors.quality_series(project=project, days=7, now=NOW, feature=feature, model=model)
        assert sum(p["calls"] for p in series["points"]) == sum(int(v[0]) for v in from_hourly.values())
