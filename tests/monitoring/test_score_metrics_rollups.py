"""The metrics query's score views (`scores-numeric`, `scores-boolean`, `scores-categorical`) answer from
the score rollups when they hold the query, and that answer is the raw rows' answer: the same rows in
the same order, zero-filled series, row limits, ties — after a randomized mix of scores, updates,
deletes, trace renames and (in some seeds) scores of traces never stored. Queries the rollups cannot
hold, and windows whose rollup rows cannot tell a trace column exactly, read the raw rows."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest import writer
from monitoring import metrics
from monitoring.selectors import applied_feature_rule

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
SPAN_MINUTES = 3 * 24 * 60
# Values whose float sums are exact in any order: the raw path adds floats in scan order, the rollups
# add exact decimals, and both agree to the bit when no addition rounds (see the test with 0.1 below).
EXACT_VALUES = [0.0, 0.25, 0.5, 1.0, 1.5, 3.75, -2.0, 10.125, 7.0]
TRACE_NAMES = ["chat", "search", "summarise", "Chat", "ämne"]


def write_scores(project, rng: random.Random, *, orphans: bool, values=EXACT_VALUES, rounds: int = 6) -> None:
    """Traces t0–t5 (name, release, feature from metadata) and scores on them; with `orphans`, scores
    of traces never stored (t6–t8) and of a session. Updates (same id), deletes and renames between."""

    def traces():
        return [{"id": f"t{i}", "name": rng.choice(TRACE_NAMES), "release": rng.choice(["r1", "r2", ""]),
                 "user_id": rng.choice(["u0", "u1", "u10", ""]), "metadata": {"feature": rng.choice(["support", "search", "x"])},
                 "timestamp": START} for i in range(6)]

    writer.write_records(project=project, observations=[], scores=[], traces=traces())
    last_trace = 8 if orphans else 5
    for _ in range(rounds):
        batch = []
        for _ in range(rng.randint(20, 60)):
            kind = rng.random()
            score = {
                "id": f"s{rng.randint(0, 300)}",
                "timestamp": START + timedelta(minutes=rng.randint(0, SPAN_MINUTES), seconds=rng.randint(0, 59)),
                "environment": rng.choice(["default", "production", "staging"]),
            }
            if orphans and rng.random() < 0.1:
                score["session_id"] = "sess-1"
            else:
                score["trace_id"] = f"t{rng.randint(0, last_trace)}"
            if kind < 0.4:
                value = float(rng.choice([0, 1]))
                score.update(name=rng.choice(["thumbs", "user-feedback"]), source=rng.choice(["USER", "USER", "API"]),
                             data_type="BOOLEAN", value=value, string_value="True" if value else "False")
            elif kind < 0.85:
                score.update(name=rng.choice(["faithfulness", "relevance"]),
                             source=rng.choice(["EVAL", "API", "ANNOTATION"]), data_type="NUMERIC",
                             value=rng.choice(values))
            else:
                score.update(name="tone", source="ANNOTATION", data_type="CATEGORICAL",
                             string_value=rng.choice(["ok", "rude"]))
            batch.append(score)
        by_id = {s["id"]: s for s in batch}  # one record per id in a batch
        writer.write_records(project=project, traces=[], observations=[], scores=list(by_id.values()))
        for _ in range(rng.randint(0, 4)):
            writer.delete_score(project=project, score_id=f"s{rng.randint(0, 300)}")
        if rng.random() < 0.5:  # renames move the stored scores of those traces
            writer.write_records(project=project, observations=[], scores=[], traces=rng.sample(traces(), 2))


# --- random queries ----------------------------------------------------------------------------------

VIEW_DIMENSIONS = {
    "scores-numeric": sorted(metrics.SCORE_ROLLUP_COLUMNS),
    "scores-boolean": sorted({*metrics.SCORE_ROLLUP_COLUMNS, *metrics.SCORE_SPLIT_COLUMNS}),
    "scores-categorical": sorted(metrics.SCORE_ROLLUP_COLUMNS),
}
VIEW_METRICS = {
    "scores-numeric": [("count", a) for a in ("count", "sum", "avg", "min", "max", "p50", "p99")]
    + [("value", "count"), ("value", "sum"), ("value", "avg")],
    "scores-categorical": [("count", a) for a in ("count", "sum", "avg", "max", "p95")],
}
VIEW_METRICS["scores-boolean"] = VIEW_METRICS["scores-numeric"]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def random_moment(rng: random.Random, *, aligned: bool) -> datetime:
    moment = START + timedelta(hours=rng.randint(-3, 3 * 24 + 3))
    if not aligned:
        moment += timedelta(minutes=rng.randint(0, 59), seconds=rng.randint(0, 59), microseconds=rng.randint(0, 999))
    return moment


def random_filter(rng: random.Random, view: str) -> dict:
    options = [
        {"column": "name", "operator": rng.choice(["any of", "none of"]), "type": "stringOptions",
         "value": rng.sample(["thumbs", "user-feedback", "faithfulness", "relevance", "tone"], 2)},
        {"column": "source", "operator": rng.choice(["=", "!="]), "type": "string",
         "value": rng.choice(["USER", "API", "EVAL"])},
        {"column": "dataType", "operator": "any of", "type": "stringOptions", "value": [rng.choice(["BOOLEAN", "NUMERIC"])]},
        {"column": "environment", "operator": rng.choice(["contains", "starts with", "does not contain"]),
         "type": "string", "value": rng.choice(["prod", "st", "de"])},
        {"column": "traceName", "operator": rng.choice(["=", "!="]), "type": "string", "value": rng.choice(TRACE_NAMES)},
        {"column": "traceName", "operator": rng.choice(["is null", "is not null"]), "type": "null"},
        {"column": "traceRelease", "operator": rng.choice(["any of", "none of"]), "type": "stringOptions",
         "value": [rng.choice(["r1", "r2", ""])]},
        {"column": "feature", "operator": "any of", "type": "stringOptions", "value": [rng.choice(["support", "x"])]},
        {"column": "timestampDay", "operator": "=", "type": "string", "value": "2026-11-03"},
        {"column": "timestamp", "operator": rng.choice([">=", ">", "<", "<="]), "type": "datetime",
         "value": iso(random_moment(rng, aligned=rng.random() < 0.5))},
    ]
    if view == "scores-boolean":
        options += [
            {"column": "booleanValue", "operator": rng.choice(["=", "<>"]), "type": "boolean", "value": rng.random() < 0.5},
            {"column": "value", "operator": rng.choice([">", "<=", "="]), "type": "number", "value": rng.choice([0, 0.5, 1])},
            {"column": "value", "operator": "is not null", "type": "null"},
        ]
    return rng.choice(options)


def random_query(rng: random.Random) -> dict:
    view = rng.choice(sorted(VIEW_DIMENSIONS))
    since = random_moment(rng, aligned=rng.random() < 0.4)
    until = since + rng.choice([timedelta(minutes=rng.randint(1, 59)), timedelta(hours=rng.randint(1, 30)),
                                timedelta(hours=rng.randint(1, 80), minutes=rng.randint(0, 59))])
    granularity = rng.choice([None, None, "hour", "day", "week", "month", "auto"])
    if granularity == "auto" and until - since < timedelta(hours=2):
        granularity = "hour"
    q = {
        "view": view,
        "dimensions": [{"field": d} for d in rng.sample(VIEW_DIMENSIONS[view], rng.choice([0, 1, 1, 2]))],
        "metrics": [{"measure": m, "aggregation": a} for m, a in rng.sample(VIEW_METRICS[view], rng.randint(1, 3))],
        "filters": [random_filter(rng, view) for _ in range(rng.choice([0, 0, 1, 2]))],
        "fromTimestamp": iso(since), "toTimestamp": iso(until),
        "timeDimension": {"granularity": granularity} if granularity else None,
        "config": {"row_limit": rng.choice([1, 3, 100, 1000])},
    }
    if rng.random() < 0.3:
        fields = [d["field"] for d in q["dimensions"]] + [f"{m['aggregation']}_{m['measure']}" for m in q["metrics"]]
        if granularity:
            fields.append("time_dimension")
        q["orderBy"] = [{"field": f, "direction": rng.choice(["asc", "desc"])} for f in rng.sample(fields, 1)]
    return q


def raw_answer(project, parsed: metrics.Query) -> list[dict]:
    """What `run_query` answered before the score rollups: the raw rows, zero-filled, cut to the limit."""
    rows = metrics._from_raw(project, parsed, applied_feature_rule(project=project))
    if parsed.granularity and parsed.order_by is None:
        rows = metrics._zero_fill(parsed, rows)
    return rows[: parsed.row_limit]


def check(project, q: dict, *, version: int = 1) -> str:
    parsed = metrics.parse_query(json.dumps(q), version=version)
    answer = metrics.run_query(project=project, query=parsed)
    assert answer["data"] == raw_answer(project, parsed), q
    return answer["source"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_score_views_from_the_rollups_equal_the_raw_rows(project, other_project, seed):
    rng = random.Random(seed)
    orphans = seed % 2 == 0
    write_scores(project, rng, orphans=orphans)
    # Another tenant's scores, same ids, names and hours: never counted.
    write_scores(other_project, random.Random(seed), orphans=orphans)
    sources = {"rollups": 0, "raw": 0}
    seen_scores = 0
    for _ in range(150):
        q = random_query(rng)
        parsed = metrics.parse_query(json.dumps(q), version=1)
        answer = metrics.run_query(project=project, query=parsed)
        assert answer["data"] == raw_answer(project, parsed), q
        sources[answer["source"]] += 1
        if not orphans:
            # Every trace has a name and no score lacks its trace: whatever the rollups hold, they answer.
            assert answer["source"] == ("rollups" if metrics.rollup_answers(parsed) else "raw"), q
        seen_scores += any(value not in (None, "0", 0, []) for row in answer["data"] for key, value in row.items()
                           if key.startswith(("count_", "sum_")))
    assert sources["rollups"] > 100, sources
    assert seen_scores > 30, seen_scores  # a good share of the windows hold scores


@pytest.mark.parametrize("view", sorted(VIEW_DIMENSIONS))
def test_every_supported_dimension_and_metric_is_answered_from_the_rollups(project, view):
    rng = random.Random(7)
    write_scores(project, rng, orphans=False)
    whole = {"fromTimestamp": iso(START - timedelta(hours=2)), "toTimestamp": iso(START + timedelta(days=3, hours=5))}
    edges = {"fromTimestamp": iso(START + timedelta(hours=5, minutes=17, seconds=3)),
             "toTimestamp": iso(START + timedelta(days=2, hours=7, minutes=41))}
    for dimension in [None, *VIEW_DIMENSIONS[view]]:
        for granularity in (None, "hour", "day", "week", "month"):
            for window in (whole, edges):
                q = {"view": view, "dimensions": [{"field": dimension}] if dimension else [],
                     "metrics": [{"measure": m, "aggregation": a} for m, a in VIEW_METRICS[view]],
                     "filters": [], "timeDimension": {"granularity": granularity} if granularity else None,
                     "config": {"row_limit": 1000}, **window}
                assert check(project, q) == "rollups", q


def test_ties_row_limits_and_orderings_follow_the_raw_rows(project):
    write_scores(project, random.Random(11), orphans=False)
    base = {"view": "scores-numeric", "fromTimestamp": iso(START), "toTimestamp": iso(START + timedelta(days=3)),
            "filters": [], "config": {"row_limit": 2}}
    for dims in (["name"], ["name", "environment"], ["source", "dataType"], ["feature", "traceName"]):
        for order in (None, "count_count", "avg_value", "sum_value", "count_value", dims[0]):
            for direction in ("asc", "desc"):
                q = {**base, "dimensions": [{"field": d} for d in dims],
                     "metrics": [{"measure": "count", "aggregation": "count"},
                                 {"measure": "value", "aggregation": "avg"},
                                 {"measure": "value", "aggregation": "sum"},
                                 {"measure": "value", "aggregation": "count"}]}
                if order:
                    q["orderBy"] = [{"field": order, "direction": direction}]
                for limit in (1, 2, 5, 1000):
                    q["config"] = {"row_limit": limit}
                    assert check(project, q, version=2) == "rollups", q


def test_a_zero_filled_series_and_an_empty_window(project):
    write_scores(project, random.Random(5), orphans=False)
    q = {"view": "scores-boolean", "dimensions": [], "filters": [
        {"column": "source", "operator": "=", "value": "USER", "type": "string"}],
        "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "value", "aggregation": "sum"},
                    {"measure": "value", "aggregation": "avg"}],
        "fromTimestamp": iso(START - timedelta(days=2, minutes=30)),
        "toTimestamp": iso(START + timedelta(days=5, minutes=12)), "timeDimension": {"granularity": "day"}}
    assert check(project, q) == "rollups"
    rows = metrics.run_query(project=project, query=metrics.parse_query(json.dumps(q), version=1))["data"]
    assert len(rows) == 9 and rows[0] == {"count_count": "0", "sum_value": 0, "avg_value": None,
                                          "time_dimension": "2026-10-30T00:00:00.000Z"}
    # Nothing in the window: one row of zeros without a time dimension, as an aggregate over no rows.
    empty = {**q, "timeDimension": None, "fromTimestamp": iso(START - timedelta(days=9)),
             "toTimestamp": iso(START - timedelta(days=8, minutes=1))}
    assert check(project, empty) == "rollups"
    assert metrics.run_query(project=project, query=metrics.parse_query(json.dumps(empty), version=1))["data"] == [
        {"count_count": "0", "sum_value": 0.0, "avg_value": None}]


def test_true_and_false_counts_of_boolean_scores(project):
    write_scores(project, random.Random(3), orphans=False)
    q = {"view": "scores-boolean", "dimensions": [{"field": "name"}, {"field": "booleanValue"}],
         "metrics": [{"measure": "count", "aggregation": "count"}], "filters": [],
         "fromTimestamp": iso(START), "toTimestamp": iso(START + timedelta(days=3, hours=1))}
    assert check(project, q) == "rollups"
    rows = metrics.run_query(project=project, query=metrics.parse_query(json.dumps(q), version=1))["data"]
    assert {r["booleanValue"] for r in rows} == {True, False}
    q["dimensions"] = [{"field": "value"}]
    q["filters"] = [{"column": "booleanValue", "operator": "=", "value": False, "type": "boolean"}]
    assert check(project, q) == "rollups"


def test_sums_of_any_floats_are_the_exact_sum_rounded_once(project):
    """Values like 0.1 make the raw path's float additions round (in scan order); the rollups add the
    exact decimals and round once: equal counts, sums and averages within the last bits."""
    write_scores(project, random.Random(9), orphans=False, values=[0.1, 0.7, 0.93, 1 / 3, 2.5e-7, 12345.678])
    q = {"view": "scores-numeric", "dimensions": [{"field": "name"}, {"field": "environment"}],
         "metrics": [{"measure": "value", "aggregation": "sum"}, {"measure": "value", "aggregation": "avg"},
                     {"measure": "count", "aggregation": "count"}], "filters": [],
         "fromTimestamp": iso(START + timedelta(minutes=13)), "toTimestamp": iso(START + timedelta(days=3)),
         "orderBy": [{"field": "name", "direction": "asc"}, {"field": "environment", "direction": "asc"}]}
    parsed = metrics.parse_query(json.dumps(q), version=1)
    answer = metrics.run_query(project=project, query=parsed)
    assert answer["source"] == "rollups"
    raw = raw_answer(project, parsed)
    assert [(r["name"], r["environment"], r["count_count"]) for r in answer["data"]] == [
        (r["name"], r["environment"], r["count_count"]) for r in raw]
    for got, want in zip(answer["data"], raw, strict=True):
        assert got["sum_value"] == pytest.approx(want["sum_value"], rel=1e-12, abs=1e-12)
        assert got["avg_value"] == pytest.approx(want["avg_value"], rel=1e-12, abs=1e-12)


FALLBACKS = [
    ({"dimensions": [{"field": "configId"}]}, "a dimension the rollups lack"),
    # The scored observation's columns are answered by the rollups (test_score_observation_rollups.py),
    # but not together with a user (the per-user rollup path).
    ({"filters": [{"column": "userId", "type": "string", "operator": "=", "value": "u1"}],
      "dimensions": [{"field": "observationName"}]}, "a user by the scored observation"),
    ({"dimensions": [{"field": "tags"}]}, "the trace's tags"),
    ({"view": "scores-categorical", "dimensions": [{"field": "stringValue"}]}, "a categorical score's label"),
    ({"view": "scores-boolean", "dimensions": [{"field": "stringValue"}]}, "a boolean score's label"),
    ({"dimensions": [{"field": "value"}]}, "a numeric score's value"),
    ({"metrics": [{"measure": "value", "aggregation": "p50"}]}, "a percentile of values"),
    ({"metrics": [{"measure": "value", "aggregation": "max"}]}, "a maximum of values"),
    ({"metrics": [{"measure": "value", "aggregation": "histogram"}]}, "a histogram"),
    ({"metrics": [{"measure": "count", "aggregation": "histogram"}]}, "a histogram of counts"),
    ({"filters": [{"column": "metadata", "type": "stringObject", "key": "k", "operator": "=", "value": "v"}]},
     "a metadata filter"),
    ({"filters": [{"column": "comment", "type": "string", "operator": "contains", "value": "x"}]}, "a comment"),
    ({"filters": [{"column": "traceId", "type": "string", "operator": "=", "value": "t1"}]}, "a trace id"),
    ({"filters": [{"column": "userId", "type": "stringOptions", "operator": "none of", "value": ["u1"]}]},
     "every user but one"),
    ({"filters": [{"column": "userId", "type": "string", "operator": "=", "value": "u1"}],
      "timeDimension": {"granularity": "hour"}}, "a user by the hour"),
    ({"filters": [{"column": "userId", "type": "string", "operator": "=", "value": "u1"}],
      "dimensions": [{"field": "environment"}]}, "a user by environment"),
    ({"filters": [{"column": "timestamp", "type": "datetime", "operator": "=", "value": iso(START)}]},
     "a timestamp equality"),
    ({"filters": [{"column": "value", "type": "number", "operator": ">", "value": 1}]}, "a numeric value filter"),
    ({"timeDimension": {"granularity": "minute"}, "toTimestamp": iso(START + timedelta(hours=1))}, "minutes"),
]


@pytest.mark.parametrize("change, why", FALLBACKS, ids=[why for _, why in FALLBACKS])
def test_queries_the_rollups_cannot_hold_read_the_raw_rows(project, change, why):
    write_scores(project, random.Random(2), orphans=True, rounds=2)
    q = {"view": "scores-numeric", "dimensions": [], "metrics": [{"measure": "count", "aggregation": "count"}],
         "filters": [], "fromTimestamp": iso(START), "toTimestamp": iso(START + timedelta(days=3)), **change}
    assert not metrics.rollup_answers(metrics.parse_query(json.dumps(q), version=1))
    assert check(project, q) == "raw"


def test_trace_columns_read_the_raw_rows_when_the_rollups_cannot_tell_them(project):
    """A score of a trace not stored counts under '' in the rollups, where the raw rows' join reads NULL;
    a trace name of 200 characters or more is cut there. Either in the window: the raw rows answer."""
    writer.write_records(project=project, observations=[], traces=[
        {"id": "a", "name": "chat", "release": "r1", "timestamp": START},
        {"id": "b", "name": "n" * 300, "release": "r1", "timestamp": START}], scores=[
        {"id": "s1", "trace_id": "a", "name": "q", "value": 1.0, "data_type": "NUMERIC", "timestamp": START},
        {"id": "s2", "trace_id": "a", "name": "q", "value": 0.5, "data_type": "NUMERIC",
         "timestamp": START + timedelta(days=1)},
        {"id": "s3", "trace_id": "b", "name": "q", "value": 0.5, "data_type": "NUMERIC",
         "timestamp": START + timedelta(days=2)},
        {"id": "s4", "trace_id": "missing", "name": "q", "value": 0.5, "data_type": "NUMERIC",
         "timestamp": START + timedelta(days=3)}])

    def q(days_from: int, days_to: int, column: str = "traceName") -> dict:
        return {"view": "scores-numeric", "dimensions": [{"field": column}],
                "metrics": [{"measure": "count", "aggregation": "count"}], "filters": [],
                "fromTimestamp": iso(START + timedelta(days=days_from)),
                "toTimestamp": iso(START + timedelta(days=days_to))}

    assert check(project, q(0, 2)) == "rollups"
    assert check(project, q(0, 2, "traceRelease")) == "rollups"
    assert check(project, q(1, 3)) == "raw"  # the long name
    assert check(project, q(3, 4)) == "raw"  # the missing trace
    assert check(project, q(3, 4, "traceRelease")) == "raw"
    assert check(project, q(1, 4, "feature")) == "rollups"  # '' in both for a missing trace
    rows = metrics.run_query(project=project, query=metrics.parse_query(json.dumps(q(3, 4)), version=1))["data"]
    assert rows == [{"traceName": None, "count_count": "1"}]
    # Once the trace arrives its score moves to it, and the rollups can answer again.
    writer.write_records(project=project, observations=[], scores=[],
                         traces=[{"id": "missing", "name": "late", "release": "r2", "timestamp": START}])
    assert check(project, q(3, 4)) == "rollups"


@pytest.mark.parametrize("who", ["other_api_key", "far_api_key"])
def test_another_tenant_sees_nothing_of_the_scores(client, project, api_key, request, who):
    from urllib.parse import quote

    write_scores(project, random.Random(1), orphans=False, rounds=2)
    q = {"view": "scores-numeric", "dimensions": [{"field": "name"}],
         "metrics": [{"measure": "count", "aggregation": "count"}], "filters": [],
         "fromTimestamp": iso(START), "toTimestamp": iso(START + timedelta(days=3, hours=1))}
    path = f"/api/public/v2/metrics?query={quote(json.dumps(q))}"
    own = client.get(path, HTTP_AUTHORIZATION=api_key.basic)
    assert own["X-Lookglass-Metrics-Source"] == "rollups" and own.json()["data"]
    key = request.getfixturevalue(who)
    response = client.get(path, HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 200
    assert response["X-Lookglass-Metrics-Source"] == "rollups"
    assert response.json() == {"data": []}


def test_the_console_feedback_page_reads_thumbs_by_feature_from_the_rollups(project, monkeypatch):
    """The console's feedback analytics (`console.selectors.thumbs_breakdowns`, a window ending now):
    thumbs by feature, by model and by prompt version (the scored generation's: the rollups for the
    thumbs on whole traces, the raw rows for those on a generation) come from the score rollups; the page
    shows the same numbers either way."""
    from console.selectors import thumbs_breakdowns

    write_scores(project, random.Random(13), orphans=True)
    answered = []
    run_query = metrics.run_query

    def recording(*, project, query):
        answer = run_query(project=project, query=query)
        answered.append((query.dimensions, answer["source"]))
        return answer

    monkeypatch.setattr(metrics, "run_query", recording)
    now = START + timedelta(days=3, minutes=17)
    breakdowns = thumbs_breakdowns(project=project, days=3, now=now)
    assert answered == [(("feature",), "rollups"), (("observationModelName",), "rollups"),
                        (("observationPromptName", "observationPromptVersion"), "rollups")]
    assert sum(r["thumbs"] for r in breakdowns["feature"]) > 20
    monkeypatch.setattr(metrics, "USE_SCORE_ROLLUPS", False)
    assert thumbs_breakdowns(project=project, days=3, now=now) == breakdowns


USER_FILTERS = [
    ("string", "="), ("string", "starts with"), ("string", "contains"), ("string", "ends with"),
    ("stringOptions", "any of"), ("categoryOptions", "any of"),
]


@pytest.mark.parametrize("seed", [21, 22])
def test_scores_of_a_user_from_the_daily_user_rollup_equal_the_raw_rows(project, other_project, seed):
    """A `userId` filter reads the per-user daily score rollup (whole days; edge days from the score
    rows); users change with trace updates, and some traces have none."""
    rng = random.Random(seed)
    write_scores(project, rng, orphans=seed % 2 == 0)
    write_scores(other_project, random.Random(seed), orphans=False)
    sources = {"rollups": 0, "raw": 0}
    for _ in range(80):
        view = rng.choice(sorted(VIEW_DIMENSIONS))
        kind, operator = rng.choice(USER_FILTERS)
        value = rng.choice(["u0", "u1", "u", "0", ""])
        user_filter = {"column": "userId", "type": kind, "operator": operator,
                       "value": [value, "u10"] if kind != "string" else value}
        dims = ["name", "source", "dataType", "timestampDay", "timestampMonth", "userId"]
        if view == "scores-boolean":
            dims += ["booleanValue", "value"]
        since = random_moment(rng, aligned=rng.random() < 0.3)
        q = {"view": view, "dimensions": [{"field": d} for d in rng.sample(dims, rng.choice([0, 1, 2]))],
             "metrics": [{"measure": m, "aggregation": a} for m, a in rng.sample(VIEW_METRICS[view], rng.randint(1, 3))],
             "filters": [user_filter] + ([random_filter(rng, view)] if rng.random() < 0.3 else []),
             "fromTimestamp": iso(since), "toTimestamp": iso(since + timedelta(hours=rng.randint(1, 90))),
             "timeDimension": rng.choice([None, {"granularity": "day"}, {"granularity": "week"}]),
             "config": {"row_limit": rng.choice([2, 1000])}}
        source = check(project, q)
        sources[source] += 1
        if not q["filters"][1:]:
            assert source == "rollups", q
    assert sources["rollups"] > 50, sources
    # Filters that also match scores without a user read the raw rows.
    for operator, kind, value in (("none of", "stringOptions", ["u0"]), ("!=", "string", "u0"),
                                  ("does not contain", "string", "u"), ("is null", "null", None)):
        q = {"view": "scores-numeric", "dimensions": [{"field": "name"}],
             "metrics": [{"measure": "count", "aggregation": "count"}],
             "filters": [{"column": "userId", "type": kind, "operator": operator, "value": value}],
             "fromTimestamp": iso(START), "toTimestamp": iso(START + timedelta(days=3))}
        assert check(project, q) == "raw", q


def test_a_user_id_the_rollup_may_have_cut_reads_the_raw_rows(project):
    writer.write_records(project=project, observations=[], traces=[
        {"id": "a", "name": "chat", "user_id": "u" * 250, "timestamp": START}], scores=[
        {"id": "s1", "trace_id": "a", "name": "q", "value": 1.0, "data_type": "NUMERIC",
         "timestamp": START + timedelta(hours=5)}])
    q = {"view": "scores-numeric", "dimensions": [], "metrics": [{"measure": "count", "aggregation": "count"}],
         "filters": [{"column": "userId", "type": "string", "operator": "=", "value": "u" * 250}],
         "fromTimestamp": iso(START), "toTimestamp": iso(START + timedelta(days=2))}
    assert check(project, q) == "raw"
    assert metrics.run_query(project=project, query=metrics.parse_query(json.dumps(q), version=1))["data"] == [
        {"count_count": "1"}]
