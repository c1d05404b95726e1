"""The Langfuse-compatible metrics API (`/api/public/metrics`, `/api/public/v2/metrics`,
`/api/public/metrics/daily`): shapes, ordering and zero-filled time series as Langfuse answers them;
the rollups and the raw rows give the same answer to the queries the rollups hold; invalid queries
are 400s with the reason; another tenant's key sees nothing of the project."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import writer
from monitoring import metrics

BASE = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
LLM = {"column": "type", "operator": "any of", "value": ["GENERATION", "EMBEDDING"], "type": "stringOptions"}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ask(client, api_key, query: dict | str, *, version: int = 2):
    text = query if isinstance(query, str) else json.dumps(query)
    path = "/api/public/v2/metrics" if version == 2 else "/api/public/metrics"
    return client.get(f"{path}?query={quote(text)}", HTTP_AUTHORIZATION=api_key.basic)


def query(**fields) -> dict:
    base = {"view": "observations", "dimensions": [], "metrics": [{"measure": "count", "aggregation": "count"}],
            "filters": [], "fromTimestamp": iso(BASE), "toTimestamp": iso(BASE + timedelta(days=3))}
    base.update(fields)
    return base


def gen(obs_id, trace_id, *, start, cost="1", latency_ms=1000, model="gpt-4o", type="GENERATION", **extra):
    return {
        "id": obs_id, "trace_id": trace_id, "type": type, "start_time": start,
        "end_time": start + timedelta(milliseconds=latency_ms), "model": model,
        "total_cost": Decimal(cost) if cost is not None else None,
        "cost_details": {"total": float(cost)} if cost is not None else {},
        "input_tokens": 100, "output_tokens": 20, "total_tokens": 120, **extra,
    }


@pytest.fixture
def traffic(project):
    """Day 0: support (3 calls, 60 USD) and search (1 call, 10 USD); day 2: support (1 call, 5 USD);
    day 1 has nothing. Plus a span (not an LLM call) and a scored call."""
    traces = [
        {"id": "t1", "name": "chat", "user_id": "alice", "release": "r1", "metadata": {"feature": "support"},
         "tags": ["prod"], "timestamp": BASE + timedelta(hours=1)},
        {"id": "t2", "name": "search", "user_id": "bob", "release": "r2", "metadata": {"feature": "search"},
         "timestamp": BASE + timedelta(hours=2)},
        {"id": "t3", "name": "chat", "user_id": "alice", "release": "r1", "metadata": {"feature": "support"},
         "tags": ["prod"], "timestamp": BASE + timedelta(days=2, hours=5)},
    ]
    observations = [
        gen("g1", "t1", start=BASE + timedelta(hours=1), cost="20", latency_ms=500),
        gen("g2", "t1", start=BASE + timedelta(hours=1, minutes=5), cost="30", latency_ms=1500, status="error",
            level="ERROR"),
        gen("g3", "t1", start=BASE + timedelta(hours=3), cost="10", latency_ms=2500, model="claude-sonnet-4",
            completion_start_time=BASE + timedelta(hours=3, milliseconds=200)),
        gen("g4", "t2", start=BASE + timedelta(hours=2), cost="10", latency_ms=800, type="EMBEDDING",
            model="text-embedding-3-small"),
        gen("g5", "t3", start=BASE + timedelta(days=2, hours=5), cost="5", latency_ms=300),
        {"id": "s1", "trace_id": "t1", "type": "SPAN", "name": "retrieve", "start_time": BASE + timedelta(hours=1),
         "end_time": BASE + timedelta(hours=1, seconds=2)},
    ]
    scores = [
        {"id": "sc1", "trace_id": "t1", "observation_id": "g1", "name": "quality", "value": 0.8,
         "data_type": "NUMERIC", "timestamp": BASE + timedelta(hours=1)},
        {"id": "sc2", "trace_id": "t1", "name": "quality", "value": 0.4, "data_type": "NUMERIC",
         "timestamp": BASE + timedelta(hours=2)},
        {"id": "sc3", "trace_id": "t2", "name": "tone", "string_value": "friendly", "data_type": "CATEGORICAL",
         "timestamp": BASE + timedelta(hours=2)},
    ]
    writer.write_records(project=project, traces=traces, observations=observations, scores=scores)
    return project


def test_count_by_trace_name_is_langfuse_shaped_with_counts_as_strings(client, api_key, traffic):
    response = ask(client, api_key, query(dimensions=[{"field": "traceName"}]))
    assert response.status_code == 200, response.content
    # Default ordering without a time dimension: the first metric, descending.
    assert response.json() == {"data": [{"traceName": "chat", "count_count": "5"},
                                         {"traceName": "search", "count_count": "1"}]}


def test_a_daily_series_is_zero_filled_per_step(client, api_key, traffic):
    body = ask(client, api_key, query(timeDimension={"granularity": "day"}, filters=[LLM],
                                      metrics=[{"measure": "count", "aggregation": "count"},
                                               {"measure": "totalCost", "aggregation": "sum"}])).json()
    assert body["data"] == [
        {"count_count": "4", "sum_totalCost": 70.0, "time_dimension": "2026-11-02T00:00:00.000Z"},
        {"count_count": "0", "sum_totalCost": 0, "time_dimension": "2026-11-03T00:00:00.000Z"},
        {"count_count": "1", "sum_totalCost": 5.0, "time_dimension": "2026-11-04T00:00:00.000Z"},
    ]


def test_auto_granularity_follows_langfuse(client, api_key, traffic):
    assert metrics.auto_granularity(BASE, BASE + timedelta(minutes=119)) == "minute"
    assert metrics.auto_granularity(BASE, BASE + timedelta(hours=71)) == "hour"
    assert metrics.auto_granularity(BASE, BASE + timedelta(days=59)) == "day"
    assert metrics.auto_granularity(BASE, BASE + timedelta(days=364)) == "week"
    assert metrics.auto_granularity(BASE, BASE + timedelta(days=400)) == "month"
    body = ask(client, api_key, query(timeDimension={"granularity": "auto"},
                                      toTimestamp=iso(BASE + timedelta(hours=48)))).json()
    assert len(body["data"]) == 48  # two days by the hour, zero-filled
    assert body["data"][1] == {"count_count": "3", "time_dimension": "2026-11-02T01:00:00.000Z"}


def test_order_by_in_both_spellings_and_row_limit(client, api_key, traffic):
    metrics_ = [{"measure": "totalCost", "aggregation": "sum"}]
    for spelling in ("sum_totalCost", "totalCost_sum"):
        body = ask(client, api_key, query(dimensions=[{"field": "providedModelName"}], metrics=metrics_, filters=[LLM],
                                          orderBy=[{"field": spelling, "direction": "asc"}])).json()
        assert [r["providedModelName"] for r in body["data"]] == ["claude-sonnet-4", "text-embedding-3-small", "gpt-4o"]
    body = ask(client, api_key, query(dimensions=[{"field": "providedModelName"}], metrics=metrics_, filters=[LLM],
                                      config={"row_limit": 1})).json()
    assert body["data"] == [{"providedModelName": "gpt-4o", "sum_totalCost": 55.0}]


def test_an_ordered_time_series_is_not_filled(client, api_key, traffic):
    body = ask(client, api_key, query(timeDimension={"granularity": "day"},
                                      orderBy=[{"field": "count_count", "direction": "desc"}])).json()
    assert [r["count_count"] for r in body["data"]] == ["5", "1"]


def test_percentiles_and_histogram(client, api_key, traffic):
    body = ask(client, api_key, query(metrics=[{"measure": "latency", "aggregation": "p50"},
                                               {"measure": "latency", "aggregation": "max"},
                                               {"measure": "latency", "aggregation": "histogram"}],
                                      filters=[LLM], config={"bins": 2})).json()
    (row,) = body["data"]
    assert row["p50_latency"] == pytest.approx(800)
    assert row["max_latency"] == pytest.approx(2500)
    assert row["histogram_latency"] == [[300.0, 1400.0, 3], [1400.0, 2500.0, 2]]


def test_score_views(client, api_key, traffic):
    body = ask(client, api_key, query(view="scores-numeric", dimensions=[{"field": "name"}],
                                      metrics=[{"measure": "value", "aggregation": "avg"},
                                               {"measure": "count", "aggregation": "count"}])).json()
    assert body["data"] == [{"name": "quality", "avg_value": pytest.approx(0.6), "count_count": "2"}]
    body = ask(client, api_key, query(view="scores-categorical", dimensions=[{"field": "stringValue"}])).json()
    assert body["data"] == [{"stringValue": "friendly", "count_count": "1"}]


def test_v1_traces_view(client, api_key, traffic):
    body = ask(client, api_key, query(view="traces", dimensions=[{"field": "name"}],
                                      metrics=[{"measure": "count", "aggregation": "count"},
                                               {"measure": "totalCost", "aggregation": "sum"},
                                               {"measure": "observationsCount", "aggregation": "sum"}]), version=1).json()
    assert body["data"] == [{"name": "chat", "count_count": "2", "sum_totalCost": 65.0, "sum_observationsCount": "5"},
                            {"name": "search", "count_count": "1", "sum_totalCost": 10.0, "sum_observationsCount": "1"}]
    assert ask(client, api_key, query(view="traces")).status_code == 400  # not a v2 view


def test_billable_units_count_traces_observations_and_scores_by_creation(client, api_key, traffic, project):
    now = datetime.now(UTC)
    q = query(view="billable-units", metrics=[{"measure": "units", "aggregation": "sum"},
                                              {"measure": "traces", "aggregation": "sum"},
                                              {"measure": "observations", "aggregation": "sum"},
                                              {"measure": "scores", "aggregation": "sum"}],
              fromTimestamp=iso(now - timedelta(hours=1)), toTimestamp=iso(now + timedelta(hours=1)))
    body = ask(client, api_key, q).json()
    assert body["data"] == [{"sum_units": "12", "sum_traces": "3", "sum_observations": "6", "sum_scores": "3"}]
    # An update (a later cost) and a replay do not count again: units are counted by creation.
    writer.write_records(project=project, traces=[], observations=[
        gen("g1", "t1", start=BASE + timedelta(hours=1), cost="21", latency_ms=500)], scores=[])
    assert ask(client, api_key, q).json() == body


@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month"])
def test_the_rollups_answer_what_they_hold_and_equal_the_raw_rows(client, api_key, traffic, granularity):
    q = query(dimensions=[{"field": "feature"}, {"field": "traceName"}, {"field": "model"}],
              metrics=[{"measure": m, "aggregation": a} for m, a in (
                  ("count", "count"), ("totalCost", "sum"), ("totalTokens", "sum"), ("errors", "sum"),
                  ("latency", "avg"), ("timeToFirstToken", "avg"))],
              filters=[LLM, {"column": "environment", "operator": "any of", "value": ["default"],
                             "type": "stringOptions"}],
              timeDimension={"granularity": granularity})
    parsed = metrics.parse_query(json.dumps(q), version=2)
    assert metrics.rollup_answers(parsed)
    from_rollups = ask(client, api_key, q)
    assert from_rollups["X-Lookglass-Metrics-Source"] == "rollups"
    raw = metrics._from_raw(traffic, parsed, metrics.FeatureRule())
    if parsed.order_by is None:
        raw = metrics._zero_fill(parsed, raw)
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(from_rollups.json()["data"], key=key) == sorted(raw, key=key)
    assert any(r["count_count"] != "0" for r in raw)


def test_a_query_the_rollups_cannot_hold_reads_the_raw_rows(client, api_key, traffic):
    response = ask(client, api_key, query(dimensions=[{"field": "traceName"}], filters=[LLM],
                                          metrics=[{"measure": "inputCost", "aggregation": "sum"}]))
    assert response["X-Lookglass-Metrics-Source"] == "raw"
    # No type filter: spans count too, so only the raw rows know.
    assert ask(client, api_key, query())["X-Lookglass-Metrics-Source"] == "raw"


# --- invalid queries -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad, reason", [
    ("not json", "Invalid JSON in query parameter"),
    ("[]", "query must be a JSON object"),
    (query(view="nope"), "view must be one of"),
    (query(dimensions=[{"field": "userId"}]), "high-cardinality"),
    (query(dimensions=[{"field": "bogus"}]), "unknown dimension"),
    (query(metrics=[{"measure": "count", "aggregation": "median"}]), "aggregation must be one of"),
    (query(metrics=[]), "at least one"),
    (query(orderBy=[{"field": "avg_nothing", "direction": "asc"}]), "Invalid orderBy field"),
    (query(orderBy=[{"field": "count_count", "direction": "up"}]), "direction"),
    (query(fromTimestamp="yesterday"), "fromTimestamp is not an ISO 8601"),
    (query(toTimestamp=iso(BASE - timedelta(days=1))), "must be before"),
    (query(timeDimension={"granularity": "fortnight"}), "granularity"),
    (query(timeDimension={"granularity": "minute"}, toTimestamp=iso(BASE + timedelta(days=30))), "steps"),
    (query(config={"row_limit": 5000}), "row_limit"),
    (query(config={"bins": 0}), "bins"),
    (query(filters=[{"column": "tags", "operator": ">", "value": 3, "type": "number"}]), "does not apply"),
    (query(filters=[{"column": "startTime", "operator": "=", "value": "x", "type": "string"}]), "does not apply"),
    (query(filters=[{"column": "name", "operator": "~", "value": "x", "type": "string"}]), "operator"),
    (query(filters=[{"column": "promptVersion", "operator": ">", "value": 10**400, "type": "number"}]), "finite"),
])
def test_invalid_queries_are_400_with_the_reason(client, api_key, traffic, bad, reason):
    response = ask(client, api_key, bad)
    assert response.status_code == 400, response.content
    assert reason in response.json()["message"]


@pytest.mark.parametrize("version", [1, 2])
def test_a_lone_surrogate_escape_in_the_query_is_read_as_the_replacement_character(client, api_key, traffic, version):
    """The query's JSON reader (the standard library, for integers of any size) kept `"\\ud800"` as a
    lone surrogate, which cannot be sent to PostgreSQL: every such filter answered 500. It becomes
    U+FFFD, as in every JSON body (tenancy.http.body.loads_json)."""
    by_name = {"column": "name", "operator": "=", "value": "chat\ud800", "type": "string"}
    by_metadata = {"column": "metadata", "operator": "contains", "value": "\udc00", "key": "feature\ud800",
                   "type": "stringObject"}
    text = json.dumps(query(filters=[by_name, by_metadata]))
    assert "\\ud800" in text and "\\udc00" in text  # sent as escapes, as Python's json module writes them
    response = ask(client, api_key, text, version=version)
    assert response.status_code == 200, response.content
    assert response.json()["data"] == [{"count_count": "0"}]
    # The replacement character is what a name sent so is stored with: the filter finds it.
    writer.write_records(project=traffic, traces=[], scores=[], observations=[
        {"id": "s-odd", "trace_id": "t1", "type": "SPAN", "name": "chat\ufffd", "start_time": BASE + timedelta(hours=1)}])
    response = ask(client, api_key, json.dumps(query(filters=[by_name])), version=version)
    assert response.status_code == 200, response.content
    assert response.json()["data"] == [{"count_count": "1"}]


def test_a_missing_query_is_400_and_a_missing_key_401(client, api_key):
    assert client.get("/api/public/v2/metrics", HTTP_AUTHORIZATION=api_key.basic).status_code == 400
    assert client.get("/api/public/v2/metrics").status_code == 401
    assert client.post("/api/public/v2/metrics", HTTP_AUTHORIZATION=api_key.basic).status_code == 405


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=12,
)
fields = st.fixed_dictionaries({}, optional={
    "view": st.sampled_from(["observations", "traces", "scores-numeric", "billable-units", "x"]) | json_values,
    "dimensions": st.lists(st.fixed_dictionaries({"field": st.sampled_from(["name", "tags", "feature", "x"]) | json_values})) | json_values,
    "metrics": st.lists(st.fixed_dictionaries({"measure": st.sampled_from(["count", "latency", "value"]),
                                               "aggregation": st.sampled_from(metrics.AGGREGATIONS) | json_values})),
    "filters": st.lists(st.fixed_dictionaries({
        "column": st.sampled_from(["name", "tags", "metadata", "startTime", "promptVersion", "type"]),
        "operator": st.sampled_from(["=", "any of", "all of", ">", "contains", "is null"]),
        "value": json_values, "type": st.sampled_from(metrics.FILTER_TYPES), "key": json_values})),
    "timeDimension": st.none() | st.fixed_dictionaries({"granularity": st.sampled_from(metrics.GRANULARITIES)}),
    "fromTimestamp": st.just(iso(BASE)) | json_values,
    "toTimestamp": st.just(iso(BASE + timedelta(days=1))) | json_values,
    "orderBy": st.none() | st.lists(st.fixed_dictionaries({"field": st.sampled_from(["count_count", "name", "x"]),
                                                            "direction": st.sampled_from(["asc", "desc", 1])})),
    "config": json_values,
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=fields)
def test_any_query_is_answered_or_refused_never_a_500(client, api_key, data):
    response = ask(client, api_key, data)
    assert response.status_code in (200, 400), response.content
    assert isinstance(response.json(), dict)


# --- daily metrics ---------------------------------------------------------------------------------

def test_daily_metrics_shape(client, api_key, traffic):
    response = client.get("/api/public/metrics/daily?limit=10", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["meta"] == {"page": 1, "limit": 10, "totalItems": 2, "totalPages": 1}
    newest, oldest = body["data"]
    assert newest == {"date": "2026-11-04", "countTraces": 1, "countObservations": 1, "totalCost": 5.0, "usage": [
        {"model": "gpt-4o", "inputUsage": 100, "outputUsage": 20, "totalUsage": 120, "countObservations": 1,
         "countTraces": 1, "totalCost": 5.0}]}
    assert oldest["date"] == "2026-11-02" and oldest["countTraces"] == 2 and oldest["countObservations"] == 5
    assert [u["model"] for u in oldest["usage"]] == ["claude-sonnet-4", "gpt-4o", "text-embedding-3-small"]
    filtered = client.get("/api/public/metrics/daily?traceName=search", HTTP_AUTHORIZATION=api_key.basic).json()
    assert [d["countTraces"] for d in filtered["data"]] == [1]
    assert client.get("/api/public/metrics/daily?limit=0", HTTP_AUTHORIZATION=api_key.basic).status_code == 400


# --- isolation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["other_api_key", "far_api_key"])
def test_other_tenants_keys_see_nothing_of_the_project(client, traffic, request, who):
    key = request.getfixturevalue(who)
    body = ask(client, key, query(dimensions=[{"field": "traceName"}])).json()
    assert body == {"data": []}
    body = ask(client, key, query(filters=[LLM], timeDimension={"granularity": "day"})).json()
    assert {r["count_count"] for r in body["data"]} == {"0"}
    daily = client.get("/api/public/metrics/daily", HTTP_AUTHORIZATION=key.basic).json()
    assert daily["data"] == []


def test_metadata_tag_and_string_filters(client, api_key, traffic, project):
    writer.write_records(project=project, traces=[], observations=[
        {"id": "m1", "trace_id": "t2", "type": "SPAN", "start_time": BASE + timedelta(hours=2),
         "metadata": {"tier": "gold", "score": 7}},
        {"id": "m2", "trace_id": "t2", "type": "SPAN", "start_time": BASE + timedelta(hours=2),
         "metadata": {"tier": "silver", "score": "n/a"}},
    ], scores=[])

    def count(*filters):
        body = ask(client, api_key, query(filters=list(filters))).json()
        return body["data"][0]["count_count"] if body["data"] else "0"

    assert count({"column": "metadata", "type": "stringObject", "key": "tier", "operator": "=", "value": "gold"}) == "1"
    assert count({"column": "metadata", "type": "numberObject", "key": "score", "operator": ">", "value": 5}) == "1"
    assert count({"column": "metadata", "type": "numberObject", "key": "score", "operator": "<", "value": 5}) == "0"
    assert count({"column": "tags", "type": "arrayOptions", "operator": "any of", "value": ["prod"]}) == "5"
    assert count({"column": "tags", "type": "arrayOptions", "operator": "none of", "value": ["prod"]}) == "3"
    assert count({"column": "name", "type": "string", "operator": "starts with", "value": "retr"}) == "1"
    assert count({"column": "providedModelName", "type": "string", "operator": "contains", "value": "_%"}) == "0"
    assert count({"column": "promptVersion", "type": "null", "operator": "is null"}) == "8"


def _rounded(rows: list[dict]) -> list[dict]:
    """Rows in a fixed order with floats to 6 places (an average computed in another order)."""
    rows = [{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


calls = st.lists(
    st.fixed_dictionaries({
        "trace": st.sampled_from(["a", "b", "c", "d"]),
        "type": st.sampled_from(["GENERATION", "GENERATION", "EMBEDDING", "SPAN", "EVENT"]),
        "hour": st.integers(0, 71),
        "minute": st.integers(0, 59),
        "latency": st.one_of(st.none(), st.integers(0, 90_000)),
        "ttft": st.one_of(st.none(), st.integers(0, 5_000)),
        "cost": st.one_of(st.none(), st.decimals("0", "5", places=4)),
        "status": st.sampled_from(["success", "success", "error", "refused"]),
        "model": st.sampled_from(["gpt-4o", "claude", ""]),
        "env": st.sampled_from(["default", "staging"]),
        "prompt": st.sampled_from([("", None), ("qa", 1), ("qa", 2)]),
    }),
    min_size=1, max_size=25,
)
TRACE_META = {
    "a": {"name": "chat", "release": "r1", "metadata": {"feature": "support"}},
    "b": {"name": "chat", "release": "r2", "metadata": {"feature": "search"}},
    "c": {"name": "summarise", "release": "", "metadata": {}},
    # A number as the feature: its JSON text is the same in both. (An object or array feature value
    # reads differently on the raw path, PostgreSQL's JSON text vs the rollups' compact JSON: documented.)
    "d": {"name": "", "release": "r1", "metadata": {"feature": 42}},
}
rollup_queries = st.fixed_dictionaries({
    "dimensions": st.lists(st.sampled_from(sorted(metrics.ROLLUP_COLUMNS)), max_size=2, unique=True),
    "metrics": st.lists(st.sampled_from([("count", "count"), ("totalCost", "sum"), ("totalTokens", "sum"),
                                         ("errors", "sum"), ("refusals", "sum"), ("latency", "avg"),
                                         ("timeToFirstToken", "avg"), ("latency", "count")]),
                        min_size=1, max_size=3, unique=True),
    "granularity": st.sampled_from([None, "hour", "day", "week"]),
    "env": st.sampled_from([None, ["default"], ["staging", "default"]]),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=calls, asks=st.lists(rollup_queries, min_size=1, max_size=4))
def test_rollups_equal_the_raw_rows_for_random_calls_and_queries(project, batch, asks):
    from monitoring.models import DailyUserRollup, HourlyRollup
    from tenancy.dataplane import data_connection
    from traces.models import Observation, Trace

    # Each example starts from an empty project (hypothesis reuses the function's fixtures).
    writer_rows = {"traces": [{"id": t, **meta, "timestamp": BASE} for t, meta in TRACE_META.items()],
                   "observations": []}
    for index, c in enumerate(batch):
        start = BASE + timedelta(hours=c["hour"], minutes=c["minute"])
        obs = {"id": f"x{index}", "trace_id": c["trace"], "type": c["type"], "start_time": start, "status": c["status"],
               "model": c["model"], "environment": c["env"], "prompt_name": c["prompt"][0],
               "prompt_version": c["prompt"][1], "total_cost": c["cost"], "total_tokens": index,
               "cost_details": {"total": float(c["cost"])} if c["cost"] is not None else {}}
        if c["latency"] is not None:
            obs["end_time"] = start + timedelta(milliseconds=c["latency"])
        if c["ttft"] is not None:
            obs["completion_start_time"] = start + timedelta(milliseconds=c["ttft"])
        writer_rows["observations"].append(obs)
    writer.write_records(project=project, traces=writer_rows["traces"], observations=writer_rows["observations"],
                         scores=[])
    try:
        for a in asks:
            filters = [LLM]
            if a["env"]:
                filters.append({"column": "environment", "operator": "any of", "value": a["env"], "type": "stringOptions"})
            q = query(dimensions=[{"field": d} for d in a["dimensions"]],
                      metrics=[{"measure": m, "aggregation": g} for m, g in a["metrics"]], filters=filters,
                      timeDimension={"granularity": a["granularity"]} if a["granularity"] else None,
                      config={"row_limit": 1000})
            parsed = metrics.parse_query(json.dumps(q), version=2)
            assert metrics.rollup_answers(parsed)
            from_rollups = metrics.run_query(project=project, query=parsed)
            assert from_rollups["source"] == "rollups"
            raw = metrics._from_raw(project, parsed, metrics.FeatureRule())
            if parsed.granularity:
                raw = metrics._zero_fill(parsed, raw)
            assert _rounded(from_rollups["data"]) == _rounded(raw), q
    finally:
        # Test-only cleanup between examples (the rows are the test's own; ingest has no delete).
        with data_connection(project).cursor() as cursor:
            for model in (HourlyRollup, DailyUserRollup, Observation, Trace):
                cursor.execute(f'DELETE FROM "{model._meta.db_table}" WHERE project_id = %s', [project.id])
