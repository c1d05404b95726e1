"""Monitoring rollups are exact: after any mix of creates, updates, replays and out-of-order events
through the real ingest API (and concurrent batches through a real server), the rollup tables equal
a recomputation from the raw rows. The reference here is computed independently, in Python, from
the stored traces and observations."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import rollups, writer
from monitoring.models import (
    HISTOGRAM_BUCKETS,
    DailyRollup,
    DailyUserRollup,
    DailyUserScoreRollup,
    FeatureSource,
    HourlyRollup,
    HourlyScoreRollup,
)
from monitoring.rules import FeatureRule, bucket_of
from scores.models import Score
from traces.models import Observation, Trace

URL = "/api/public/ingestion"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
DEFAULT_RULE = FeatureRule()
ROLLED = {"GENERATION", "EMBEDDING"}


# --- the reference: a recomputation from the raw rows ----------------------------------------------


def _feature(rule: FeatureRule, trace: Trace) -> str:
    if rule.source == FeatureSource.TRACE_NAME:
        return trace.name
    if rule.source == FeatureSource.TAG_PREFIX:
        matching = sorted(t for t in trace.tags if t.startswith(rule.key))
        return matching[0][len(rule.key):] if matching else ""
    value = (trace.metadata or {}).get(rule.key)
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def recompute(project, rule: FeatureRule = DEFAULT_RULE) -> tuple[dict, dict]:
    traces = {t.id: t for t in Trace.objects.for_project(project)}
    hourly: dict = defaultdict(lambda: defaultdict(int))
    users: dict = defaultdict(lambda: defaultdict(int))
    for obs in Observation.objects.for_project(project).filter(type__in=ROLLED, duplicate_of=""):
        trace = traces[obs.trace_id]
        key = (
            obs.start_time.replace(minute=0, second=0, microsecond=0), _feature(rule, trace)[:200], trace.name[:200],
            (obs.response_model or obs.model)[:200], obs.environment, trace.release[:200], obs.prompt_name[:200],
            obs.prompt_version or 0,
        )
        row = hourly[key]
        values = {
            "calls": 1, "errors": int(obs.status == "error"), "refusals": int(obs.status == "refused"),
            "unpriced_calls": int(obs.total_cost is None), "cost": obs.total_cost or Decimal(0),
            # The rollups' bound on what one call adds (the rows keep the exact values).
            **{k: min(getattr(obs, k) or 0, rollups.ROLLUP_TOKENS_CAP) for k in rollups.TOKEN_KINDS},
        }
        for name, value in values.items():
            row[name] += value
        row.setdefault("latency_hist", [0] * HISTOGRAM_BUCKETS)
        row.setdefault("ttft_hist", [0] * HISTOGRAM_BUCKETS)
        if obs.end_time is not None:
            us = min(round((obs.end_time - obs.start_time).total_seconds() * 1_000_000), rollups.ROLLUP_US_CAP)
            row["latency_count"] += 1
            row["latency_us_sum"] += us
            row["latency_hist"][bucket_of(us / 1000)] += 1
        if obs.completion_start_time is not None:
            us = min(max(0, round((obs.completion_start_time - obs.start_time).total_seconds() * 1_000_000)),
                     rollups.ROLLUP_US_CAP)
            row["ttft_count"] += 1
            row["ttft_us_sum"] += us
            row["ttft_hist"][bucket_of(us / 1000)] += 1
        if trace.user_id:
            user = users[(obs.start_time.date(), trace.user_id[:200])]
            for name in rollups.USER_SUMS:
                user[name] += values[name]
    return _clean(hourly), _clean(users)


def _clean(table: dict) -> dict:
    out = {}
    for key, row in table.items():
        row = {k: (list(v) if isinstance(v, list) else v) for k, v in row.items()}
        for name in ("latency_hist", "ttft_hist"):
            if name in row and not any(row[name]):
                row.pop(name)
        out[key] = {k: v for k, v in row.items() if v}
    return out


def stored(project) -> tuple[dict, dict]:
    hourly = {}
    for r in HourlyRollup.objects.for_project(project):
        key = (r.hour, r.feature, r.trace_name, r.model, r.environment, r.release, r.prompt_name, r.prompt_version)
        row = {name: getattr(r, name) for name in rollups.HOURLY_SUMS}
        row["latency_hist"], row["ttft_hist"] = list(r.latency_hist), list(r.ttft_hist)
        hourly[key] = row
    users = {
        (r.day, r.user_id): {name: getattr(r, name) for name in rollups.USER_SUMS}
        for r in DailyUserRollup.objects.for_project(project)
    }
    hourly, users = _clean(hourly), _clean(users)
    # Rows whose contributions all moved away are all zeros: equal to no row.
    return {k: v for k, v in hourly.items() if v}, {k: v for k, v in users.items() if v}


def recompute_scores(project, rule: FeatureRule = DEFAULT_RULE) -> tuple[dict, dict]:
    """Score aggregates from the raw rows: each score under its trace as stored now (empty dimensions
    without one), by the hour of its timestamp, its name, source, data type and environment."""
    traces = {t.id: t for t in Trace.objects.for_project(project)}
    hourly: dict = defaultdict(lambda: defaultdict(int))
    users: dict = defaultdict(lambda: defaultdict(int))
    for score in Score.objects.for_project(project):
        trace = traces.get(score.trace_id) if score.trace_id else None
        feature = _feature(rule, trace)[:200] if trace else ""
        name, release, user = (trace.name[:200], trace.release[:200], trace.user_id[:200]) if trace else ("", "", "")
        moment = score.timestamp.astimezone(UTC)
        kind = (score.name, score.source, score.data_type)
        numeric = score.value is not None and math.isfinite(score.value)
        thumb = score.source == "USER" and score.data_type == "BOOLEAN"
        values = {
            "scores": 1, "value_count": int(numeric),
            "value_sum": Decimal(str(score.value)) if numeric else Decimal(0),
            "thumbs_up": int(thumb and score.value == 1.0), "thumbs_down": int(thumb and score.value == 0.0),
        }
        keys = [(hourly, (moment.replace(minute=0, second=0, microsecond=0), *kind, feature, name,
                          score.environment[:200], release))]
        if user:
            keys.append((users, (moment.date(), user, *kind)))
        for table, key in keys:
            for measure, value in values.items():
                table[key][measure] += value
    return _clean(hourly), _clean(users)


def stored_scores(project) -> tuple[dict, dict]:
    measures = ("scores", "value_count", "value_sum", "thumbs_up", "thumbs_down")
    hourly = {
        (r.hour, r.name, r.source, r.data_type, r.feature, r.trace_name, r.environment, r.release):
            {m: getattr(r, m) for m in measures}
        for r in HourlyScoreRollup.objects.for_project(project)
    }
    users = {
        (r.day, r.user_id, r.name, r.source, r.data_type): {m: getattr(r, m) for m in measures}
        for r in DailyUserScoreRollup.objects.for_project(project)
    }
    hourly, users = _clean(hourly), _clean(users)
    return {k: v for k, v in hourly.items() if v}, {k: v for k, v in users.items() if v}


def by_day(hourly: dict) -> dict:
    """The reference's hourly rows summed by UTC day (histograms bucket by bucket)."""
    out: dict = defaultdict(lambda: defaultdict(int))
    for key, row in hourly.items():
        day = out[(key[0].astimezone(UTC).date(), *key[1:])]
        for name, value in row.items():
            if isinstance(value, list):
                day[name] = [a + b for a, b in zip(day.get(name) or [0] * HISTOGRAM_BUCKETS, value)]
            else:
                day[name] += value
    return _clean(out)


def stored_daily(project) -> dict:
    daily = {}
    for r in DailyRollup.objects.for_project(project):
        key = (r.day, r.feature, r.trace_name, r.model, r.environment, r.release, r.prompt_name, r.prompt_version)
        row = {name: getattr(r, name) for name in rollups.HOURLY_SUMS}
        row["latency_hist"], row["ttft_hist"] = list(r.latency_hist), list(r.ttft_hist)
        daily[key] = row
    return {k: v for k, v in _clean(daily).items() if v}


def assert_exact(project, rule: FeatureRule = DEFAULT_RULE):
    expected = recompute(project, rule)
    actual = stored(project)
    assert actual[0] == expected[0]
    assert actual[1] == expected[1]
    assert stored_daily(project) == by_day(expected[0])
    expected_scores = recompute_scores(project, rule)
    actual_scores = stored_scores(project)
    assert actual_scores[0] == expected_scores[0]
    assert actual_scores[1] == expected_scores[1]


# --- events -----------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def post(client, events, api_key):
    body = orjson.dumps({"batch": events})
    response = client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 207, response.content
    assert all(200 <= entry["status"] < 300 for entry in response.json()["successes"])
    assert not response.json()["errors"], response.json()["errors"]


def envelope(kind, body):
    return {"id": uuid.uuid4().hex, "type": kind, "timestamp": iso(T0), "body": body}


trace_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["chat", "search", "summarise"]),
        "userId": st.sampled_from(["u1", "u2"]),
        "release": st.sampled_from(["r1", "r2"]),
        "metadata": st.fixed_dictionaries(
            {"feature": st.sampled_from(["support", "billing", "search", 3, {"team": "b", "area": "a"}])}
        ),
        "tags": st.lists(st.sampled_from(["feature:a", "feature:b", "beta"]), max_size=2),
        "timestamp": st.integers(0, 50).map(lambda m: iso(T0 + timedelta(minutes=m))),
    },
)
generation_bodies = st.fixed_dictionaries(
    {},
    optional={
        "startTime": st.integers(0, 150).map(lambda m: T0 + timedelta(minutes=m)),
        "latencyMs": st.integers(0, 40_000),
        "ttftMs": st.integers(0, 3000),
        "model": st.sampled_from(["gpt-4o", "claude-sonnet-4", "no-such-model"]),
        "usage": st.fixed_dictionaries(
            {"input": st.integers(0, 5000), "output": st.integers(0, 2000)},
            optional={"cache_read_input_tokens": st.integers(0, 1000)},
        ),
        "costDetails": st.fixed_dictionaries({"input": st.sampled_from([0.001, 0.25]), "output": st.sampled_from([0.5, 1.25])}),
        "level": st.sampled_from(["ERROR", "DEFAULT"]),
        "statusMessage": st.sampled_from(["rate limited", "I can't help with that"]),
        "finishReason": st.sampled_from(["stop", "content_filter"]),
        "prompt": st.tuples(st.sampled_from(["qa", "triage"]), st.integers(1, 3)),
        "environment": st.sampled_from(["production", "staging"]),
    },
)


def generation_body(obs_id: str, trace_id: str, fields: dict) -> dict:
    body = {"id": obs_id, "traceId": trace_id}
    start = fields.get("startTime")
    if start is not None:
        body["startTime"] = iso(start)
        if "latencyMs" in fields:
            body["endTime"] = iso(start + timedelta(milliseconds=fields["latencyMs"]))
        if "ttftMs" in fields:
            body["completionStartTime"] = iso(start + timedelta(milliseconds=fields["ttftMs"]))
    for key in ("model", "usage", "costDetails", "level", "statusMessage", "environment"):
        if key in fields:
            body[key] = fields[key]
    if "finishReason" in fields:
        body["metadata"] = {"finish_reason": fields["finishReason"]}
    if "prompt" in fields:
        body["promptName"], body["promptVersion"] = fields["prompt"]
    return body


operations = st.lists(
    st.one_of(
        st.tuples(st.just("trace"), st.integers(0, 2), trace_bodies),
        st.tuples(st.sampled_from(["generation-create", "generation-update"]), st.integers(0, 5), generation_bodies),
        st.tuples(st.just("span-create"), st.integers(0, 5), st.just({})),  # the same id as a non-call
        st.tuples(st.just("replay"), st.integers(0, 1000), st.just({})),
    ),
    min_size=1,
    max_size=24,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(ops=operations, batch_sizes=st.lists(st.integers(1, 5), min_size=1, max_size=10))
def test_the_rollups_equal_a_recomputation_after_any_mix_of_events(client, project, api_key, ops, batch_sizes):
    run = uuid.uuid4().hex[:8]  # each example writes its own ids; the reference covers them all
    sent: list[dict] = []
    events = []
    for kind, index, fields in ops:
        if kind == "replay":
            if not sent:
                continue
            events.append(sent[index % len(sent)])  # the very same envelope, sent again
            continue
        trace_id = f"{run}-t{index % 3}"
        if kind == "trace":
            event = envelope("trace-create", {"id": trace_id, **fields})
        elif kind == "span-create":
            event = envelope("span-create", {"id": f"{run}-o{index}", "traceId": f"{run}-t{index % 3}"})
        else:
            event = envelope(kind, generation_body(f"{run}-o{index}", f"{run}-t{index % 3}", fields))
        sent.append(event)
        events.append(event)
    position = 0
    for size in batch_sizes * 10:
        if position >= len(events):
            break
        post(client, events[position:position + size], api_key)
        position += size
    if position < len(events):
        post(client, events[position:], api_key)
    assert_exact(project)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_concurrent_batches_on_the_same_calls_and_traces_stay_exact(live_server, project, api_key):
    """Many requests at once through gunicorn-like threads of the live server, each updating the
    same few calls and renaming the same traces: row locks order them, and the rollups still equal
    the raw rows (a lost or doubled delta would show)."""
    import random

    rng = random.Random(12)
    bodies = []
    for _request in range(48):
        events = []
        for _ in range(rng.randint(1, 6)):
            trace = f"t{rng.randint(0, 2)}"
            if rng.random() < 0.3:
                events.append(envelope("trace-create", {
                    "id": trace, "name": rng.choice(["chat", "search"]), "userId": rng.choice(["u1", "u2"]),
                    "metadata": {"feature": rng.choice(["a", "b", "c"])},
                }))
            else:
                start = T0 + timedelta(minutes=rng.randint(0, 120))
                events.append(envelope(rng.choice(["generation-create", "generation-update"]), {
                    "id": f"g{rng.randint(0, 7)}", "traceId": trace, "startTime": iso(start),
                    "endTime": iso(start + timedelta(milliseconds=rng.randint(1, 9000))),
                    "model": rng.choice(["gpt-4o", "claude-sonnet-4"]),
                    "usage": {"input": rng.randint(1, 900), "output": rng.randint(1, 900)},
                    "level": rng.choice(["DEFAULT", "ERROR"]),
                }))
        bodies.append({"batch": events})

    def send(body):
        with httpx.Client(timeout=60) as http:
            return http.post(f"{live_server.url}{URL}", json=body, auth=(api_key.public, api_key.secret)).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, bodies))
    assert statuses == [207] * len(bodies)
    assert Observation.objects.for_project(project).count() > 0
    assert_exact(project)


# --- named cases --------------------------------------------------------------------------------------


def gen(obs_id, trace_id="t1", **extra):
    return {"id": obs_id, "trace_id": trace_id, "type": "GENERATION", **extra}


def test_a_replayed_batch_counts_once(project):
    obs = gen("g1", start_time=T0, end_time=T0 + timedelta(seconds=2), model="gpt-4o", input_tokens=10,
              total_cost=Decimal("0.5"), cost_details={"total": 0.5})
    writer.write_records(project=project, traces=[{"id": "t1", "name": "chat"}], observations=[obs], scores=[])
    writer.write_records(project=project, traces=[{"id": "t1", "name": "chat"}], observations=[obs], scores=[])
    [row] = HourlyRollup.objects.for_project(project)
    assert (row.calls, row.cost, row.input_tokens, row.latency_count) == (1, Decimal("0.5"), 10, 1)
    assert_exact(project)


def test_a_later_cost_and_status_move_the_call_instead_of_adding_one(project):
    writer.write_records(project=project, traces=[], observations=[gen("g1", start_time=T0, model="m")], scores=[])
    row = HourlyRollup.objects.for_project(project).get()
    assert (row.calls, row.errors, row.unpriced_calls, row.cost) == (1, 0, 1, 0)
    writer.write_records(
        project=project, traces=[],
        observations=[{"id": "g1", "trace_id": "t1", "level": "ERROR", "total_cost": Decimal("2.5"),
                       "cost_details": {"total": 2.5}}],
        scores=[],
    )
    row = HourlyRollup.objects.for_project(project).get()
    assert (row.calls, row.errors, row.unpriced_calls, row.cost) == (1, 1, 0, Decimal("2.5"))
    assert_exact(project)


def test_a_late_trace_create_moves_its_calls_to_the_trace_s_feature_and_name(project):
    writer.write_records(
        project=project, traces=[], scores=[],
        observations=[gen("g1", start_time=T0, total_cost=Decimal(1), cost_details={"total": 1}),
                      gen("g2", start_time=T0, total_cost=Decimal(2), cost_details={"total": 2})],
    )
    assert HourlyRollup.objects.for_project(project).get().feature == ""
    writer.write_records(
        project=project, observations=[], scores=[],
        traces=[{"id": "t1", "name": "chat", "user_id": "u1", "metadata": {"feature": "support"}}],
    )
    rows = [r for r in HourlyRollup.objects.for_project(project) if r.calls]
    assert [(r.feature, r.trace_name, r.calls, r.cost) for r in rows] == [("support", "chat", 2, Decimal(3))]
    assert DailyUserRollup.objects.for_project(project).get(user_id="u1").calls == 2
    assert_exact(project)


def test_an_earlier_start_time_moves_the_call_to_its_hour(project):
    writer.write_records(project=project, traces=[], scores=[], observations=[gen("g1", start_time=T0 + timedelta(hours=3))])
    writer.write_records(project=project, traces=[], scores=[], observations=[gen("g1", start_time=T0)])
    assert [r.hour for r in HourlyRollup.objects.for_project(project) if r.calls] == [T0]
    assert_exact(project)


def test_re_pricing_moves_the_cost(project, monkeypatch):
    from ingest.stages import price as costs

    writer.write_records(project=project, traces=[], scores=[],
                         observations=[gen("g1", start_time=T0, model="custom-x", input_tokens=1000)])
    assert HourlyRollup.objects.for_project(project).get().unpriced_calls == 1
    monkeypatch.setattr(
        costs, "catalog_costs",
        lambda *, project_id, items: [
            {"input_cost": Decimal("0.3"), "output_cost": None, "total_cost": Decimal("0.3"), "cost_details": {"input": 0.3}}
            for _ in items
        ],
    )
    report = writer.reprice_observations(project=project, since=T0, until=T0 + timedelta(hours=1))
    assert report.repriced == 1
    row = HourlyRollup.objects.for_project(project).get()
    assert (row.unpriced_calls, row.cost) == (0, Decimal("0.3"))
    assert_exact(project)


def test_rollups_stay_in_their_project_and_region(project, other_project, far_project):
    for target in (project, other_project, far_project):
        writer.write_records(project=target, traces=[], scores=[], observations=[gen("g1", start_time=T0)])
    assert HourlyRollup.objects.for_project(project).get().calls == 1
    assert HourlyRollup.objects.for_project(other_project).get().calls == 1
    assert HourlyRollup.objects.for_project(far_project).get().calls == 1


def test_rebuild_under_another_rule_counts_every_call_under_it(project):
    writer.write_records(
        project=project, scores=[],
        traces=[{"id": "t1", "name": "chat", "tags": ["feature:a"]}, {"id": "t2", "name": "search", "tags": ["feature:b"]}],
        observations=[gen("g1", start_time=T0), gen("g2", "t2", start_time=T0)],
    )
    rule = FeatureRule(FeatureSource.TAG_PREFIX.value, "feature:")
    assert rollups.rebuild(project=project, rule=rule) == 2
    assert sorted(r.feature for r in HourlyRollup.objects.for_project(project)) == ["a", "b"]
    # Later writes use the rule the rollups are built with.
    writer.write_records(project=project, scores=[], traces=[{"id": "t2", "tags": ["feature:c"]}], observations=[])
    assert_exact(project, rule)


def test_a_trace_and_its_calls_created_in_one_batch_count_under_the_trace_s_dimensions(client, project, api_key):
    post(client, [
        envelope("trace-create", {"id": "t1", "name": "chat", "userId": "u1", "release": "r1",
                                  "metadata": {"feature": {"team": "b", "area": "a"}}}),
        envelope("trace-create", {"id": "t2", "name": "search", "metadata": {"feature": "support"}}),
        envelope("generation-create", {"id": "g1", "traceId": "t1", "startTime": iso(T0), "model": "gpt-4o",
                                       "costDetails": {"input": 0.1, "output": 0.2000000000004}}),
        envelope("generation-create", {"id": "g2", "traceId": "t2", "startTime": iso(T0)}),
    ], api_key)
    rows = {(r.feature, r.trace_name, r.release): r for r in HourlyRollup.objects.for_project(project)}
    assert set(rows) == {('{"area":"a","team":"b"}', "chat", "r1"), ("support", "search", "")}
    assert DailyUserRollup.objects.for_project(project).get().user_id == "u1"
    assert_exact(project)
    # Sent again, and then the first trace renamed: every call follows.
    post(client, [envelope("trace-create", {"id": "t1", "name": "chat-v2"})], api_key)
    assert_exact(project)


@pytest.mark.parametrize("order", ["outer first", "inner first", "one batch"])
def test_a_call_recorded_twice_counts_once_and_moves_when_it_stops_matching(project, order):
    """An SDK's own span nested in its instrumentation's span for the same API call (same model,
    inside its time span, equal usage): the writer marks the inner one `duplicate_of`, and the rollups
    count the pair once, whichever arrives first; an update that makes them differ counts both."""
    common = {"model": "gpt-4o", "input_tokens": 100, "output_tokens": 10,
              "total_cost": Decimal("0.5"), "cost_details": {"total": 0.5}}
    outer = gen("outer", start_time=T0, end_time=T0 + timedelta(seconds=3), **common)
    inner = gen("inner", parent_observation_id="outer", start_time=T0 + timedelta(milliseconds=100),
                end_time=T0 + timedelta(seconds=2), **common)
    trace = [{"id": "t1", "name": "chat"}]
    if order == "one batch":
        writer.write_records(project=project, traces=trace, observations=[outer, inner], scores=[])
    else:
        first, second = (outer, inner) if order == "outer first" else (inner, outer)
        writer.write_records(project=project, traces=trace, observations=[first], scores=[])
        writer.write_records(project=project, traces=[], observations=[second], scores=[])
    assert Observation.objects.for_project(project).get(id="inner").duplicate_of == "outer"
    row = HourlyRollup.objects.for_project(project).get()
    assert (row.calls, row.input_tokens, row.cost) == (1, 100, Decimal("0.5"))
    assert_exact(project)

    # The inner call's usage changes: no longer the same call, so both count.
    writer.write_records(project=project, traces=[],
                         observations=[{"id": "inner", "trace_id": "t1", "output_tokens": 11}], scores=[])
    assert Observation.objects.for_project(project).get(id="inner").duplicate_of == ""
    assert HourlyRollup.objects.for_project(project).get().calls == 2
    assert_exact(project)


# --- scores ---------------------------------------------------------------------------------------


score_bodies = st.one_of(
    st.fixed_dictionaries({"dataType": st.just("NUMERIC"), "value": st.sampled_from([0.1, 0.7, 3.25, -2.5, 1e-7, 1e12])}),
    st.fixed_dictionaries({"dataType": st.just("BOOLEAN"), "value": st.sampled_from([0, 1])}),
    st.fixed_dictionaries({"dataType": st.just("CATEGORICAL"), "value": st.sampled_from(["good", "bad"])}),
).flatmap(lambda typed: st.fixed_dictionaries(
    {**{k: st.just(v) for k, v in typed.items()}, "name": st.sampled_from(["quality", "user-feedback"])},
    optional={
        "source": st.sampled_from(["API", "EVAL", "ANNOTATION"]),  # USER: the feedback path only
        "environment": st.sampled_from(["production", "staging"]),
        "timestamp": st.integers(0, 180).map(lambda m: iso(T0 + timedelta(minutes=m))),
        "comment": st.just("why"),
    },
))
score_operations = st.lists(
    st.one_of(
        st.tuples(st.just("trace"), st.integers(0, 2), trace_bodies),
        st.tuples(st.just("generation-create"), st.integers(0, 3), generation_bodies),
        # Trace 3 is never created; 4 means a session score without a trace.
        st.tuples(st.just("score"), st.integers(0, 4), st.tuples(st.integers(0, 4), score_bodies)),
        st.tuples(st.just("score-delete"), st.integers(0, 4), st.just({})),
        st.tuples(st.just("feedback"), st.integers(0, 2), st.tuples(st.integers(0, 3), st.sampled_from([0.0, 1.0]))),
        st.tuples(st.just("replay"), st.integers(0, 1000), st.just({})),
    ),
    min_size=1,
    max_size=24,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(ops=score_operations, batch_sizes=st.lists(st.integers(1, 5), min_size=1, max_size=10))
def test_score_rollups_equal_a_recomputation_after_any_mix_of_events(client, project, api_key, ops, batch_sizes):
    """Scores created, updated (same id, new value, type, name or source), replayed, deleted, given as
    end-user feedback, before or after their trace (or for a trace never created, or a session),
    interleaved with trace renames and calls: the score rollups equal a recomputation."""
    run = uuid.uuid4().hex[:8]
    sent: list[dict] = []
    pending: list[dict] = []
    sizes = iter(batch_sizes * 10)

    def flush():
        if pending:
            post(client, pending, api_key)
            pending.clear()

    def queue(event):
        pending.append(event)
        if len(pending) >= next(sizes, 3):
            flush()

    for kind, index, fields in ops:
        if kind == "replay":
            if sent:
                queue(sent[index % len(sent)])
            continue
        if kind == "trace":
            event = envelope("trace-create", {"id": f"{run}-t{index}", **fields})
        elif kind == "generation-create":
            event = envelope(kind, generation_body(f"{run}-o{index}", f"{run}-t{index % 3}", fields))
        elif kind == "score":
            target, body = fields
            where = {"sessionId": f"{run}-session"} if target == 4 else {"traceId": f"{run}-t{target}"}
            event = envelope("score-create", {"id": f"{run}-s{index}", **where, **body})
        elif kind == "score-delete":
            flush()
            response = client.delete(f"/api/public/scores/{run}-s{index}", HTTP_AUTHORIZATION=api_key.basic)
            assert response.status_code in (204, 404)
            continue
        else:  # an end user's thumb, through the feedback write path
            flush()
            target, value = fields
            writer.write_user_feedback(project=project, record={
                "id": f"{run}-f{index}", "trace_id": f"{run}-t{target}", "name": "user-feedback", "source": "USER",
                "data_type": "BOOLEAN", "value": value, "string_value": "True" if value else "False",
            })
            continue
        sent.append(event)
        queue(event)
    flush()
    assert_exact(project)


def score_rows(project):
    return sorted(
        ((r.name, r.source, r.data_type, r.feature, r.trace_name, r.environment, r.scores, r.value_count, r.value_sum,
          r.thumbs_up, r.thumbs_down) for r in HourlyScoreRollup.objects.for_project(project) if r.scores),
    )


def test_a_score_before_its_trace_counts_under_empty_dimensions_and_moves_when_the_trace_arrives(project):
    """The attribution rule: a score counts under its trace as stored now. Before the trace exists:
    empty dimensions; the trace's create moves it (and its user's daily row appears); a later rename
    of the trace moves it again."""
    score = {"id": "s1", "trace_id": "t1", "name": "quality", "value": 0.7, "data_type": "NUMERIC",
             "timestamp": T0 + timedelta(minutes=5)}
    writer.write_records(project=project, traces=[], observations=[], scores=[score])
    assert score_rows(project) == [("quality", "API", "NUMERIC", "", "", "default", 1, 1, Decimal("0.7"), 0, 0)]
    assert not DailyUserScoreRollup.objects.for_project(project).exists()
    assert_exact(project)

    writer.write_records(project=project, observations=[], scores=[], traces=[
        {"id": "t1", "name": "chat", "user_id": "u1", "metadata": {"feature": "support"}}])
    assert score_rows(project) == [("quality", "API", "NUMERIC", "support", "chat", "default", 1, 1, Decimal("0.7"), 0, 0)]
    assert DailyUserScoreRollup.objects.for_project(project).get().user_id == "u1"
    assert_exact(project)

    writer.write_records(project=project, observations=[], scores=[], traces=[{"id": "t1", "name": "chat-v2"}])
    assert [r[4] for r in score_rows(project)] == ["chat-v2"]
    assert_exact(project)


def test_new_traces_look_for_their_stored_scores_only_when_their_insert_found_some(project, queries_everywhere):
    """The traces' INSERT says which of the traces it inserts a stored score names
    (`writer._insert_scored_sql`); the rollups read and lock the scores of new traces only then, and
    then move them as before. Pins the shortcut against the statement it skips: with none found, that
    statement would have found nothing."""

    def scores_of_traces(captured):
        return [q for q in captured if q["sql"].startswith("SELECT x.* FROM (SELECT c.id") and "feedback_score" in q["sql"]]

    other = {"id": "s0", "trace_id": "t0", "name": "quality", "value": 0.5, "data_type": "NUMERIC", "timestamp": T0}
    writer.write_records(project=project, traces=[], observations=[], scores=[other])  # a score of another trace
    with queries_everywhere() as captured:
        writer.write_records(project=project, scores=[], traces=[{"id": "t1", "name": "chat", "user_id": "u1"}],
                             observations=[{"id": "o1", "trace_id": "t1", "type": "GENERATION", "start_time": T0}])
    assert scores_of_traces(captured) == []
    assert_exact(project)

    score = {"id": "s2", "trace_id": "t2", "name": "quality", "value": 0.7, "data_type": "NUMERIC",
             "timestamp": T0 + timedelta(minutes=5)}
    writer.write_records(project=project, traces=[], observations=[], scores=[score])
    with queries_everywhere() as captured:
        writer.write_records(project=project, observations=[], scores=[], traces=[
            {"id": "t2", "name": "chat", "user_id": "u2", "metadata": {"feature": "support"}},
            {"id": "t3", "name": "other"}])
    assert len(scores_of_traces(captured)) == 1
    assert ("quality", "API", "NUMERIC", "support", "chat", "default", 1, 1, Decimal("0.7"), 0, 0) in score_rows(project)
    assert_exact(project)


def test_a_replayed_score_counts_once_an_update_moves_it_and_a_delete_takes_it_back(client, project, api_key):
    writer.write_records(project=project, observations=[], scores=[], traces=[{"id": "t1", "name": "chat"}])
    body = {"id": "s1", "traceId": "t1", "name": "quality", "value": 0.25, "timestamp": iso(T0)}
    post(client, [envelope("score-create", body)], api_key)
    post(client, [envelope("score-create", body)], api_key)  # a replay
    assert score_rows(project) == [("quality", "API", "NUMERIC", "", "chat", "default", 1, 1, Decimal("0.25"), 0, 0)]
    post(client, [envelope("score-create", {**body, "value": 0.75})], api_key)  # an update: same id
    assert score_rows(project) == [("quality", "API", "NUMERIC", "", "chat", "default", 1, 1, Decimal("0.75"), 0, 0)]
    assert_exact(project)
    response = client.delete("/api/public/scores/s1", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 204
    assert score_rows(project) == []
    assert_exact(project)
    # Deleting it again, or another project's score, changes nothing.
    assert client.delete("/api/public/scores/s1", HTTP_AUTHORIZATION=api_key.basic).status_code == 404
    assert_exact(project)


def test_end_user_thumbs_count_up_and_down_and_a_changed_mind_moves_the_thumb(project):
    from feedback.services import feedback_submit, parse_feedback

    writer.write_records(project=project, observations=[], scores=[],
                         traces=[{"id": "t1", "name": "chat", "user_id": "u1"}])

    def rate(rating, user):
        feedback_submit(project=project, feedback=parse_feedback(
            {"trace_id": "t1", "rating": rating, "user_id": user}, comment_max_length=1000))

    rate("up", "a")
    rate("down", "b")
    rate("up", "c")
    [row] = HourlyScoreRollup.objects.for_project(project)
    assert (row.source, row.data_type, row.scores, row.thumbs_up, row.thumbs_down) == ("USER", "BOOLEAN", 3, 2, 1)
    rate("down", "a")  # a changed mind: the same score, now down
    row = HourlyScoreRollup.objects.for_project(project).get()
    assert (row.scores, row.thumbs_up, row.thumbs_down) == (3, 1, 2)
    user = DailyUserScoreRollup.objects.for_project(project).get()
    assert (user.user_id, user.thumbs_up, user.thumbs_down) == ("u1", 1, 2)
    assert_exact(project)


def test_score_rollups_stay_in_their_project(project, other_project):
    for target in (project, other_project):
        writer.write_records(project=target, traces=[], observations=[],
                             scores=[{"id": "s1", "trace_id": "t1", "name": "q", "value": 1.0}])
    writer.delete_score(project=other_project, score_id="s1")
    assert HourlyScoreRollup.objects.for_project(project).get().scores == 1
    assert HourlyScoreRollup.objects.for_project(other_project).get().scores == 0


def test_rebuild_counts_scores_under_the_new_rule(project):
    writer.write_records(
        project=project, observations=[], traces=[{"id": "t1", "name": "chat", "tags": ["feature:a"]}],
        scores=[{"id": "s1", "trace_id": "t1", "name": "q", "value": 0.5},
                {"id": "s2", "trace_id": "nowhere", "name": "q", "value": 2.0}],
    )
    rule = FeatureRule(FeatureSource.TAG_PREFIX.value, "feature:")
    rollups.rebuild(project=project, rule=rule)
    assert sorted(r.feature for r in HourlyScoreRollup.objects.for_project(project)) == ["", "a"]
    assert_exact(project, rule)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_concurrent_scores_and_trace_creates_stay_exact(live_server, project, api_key):
    """Scores of traces that do not exist yet, trace creates and renames, and score updates, all at
    once through the live server: the trace-arrival lock and the row locks keep every score under
    its trace as stored (a score counted under empty dimensions after its trace arrived would show)."""
    import random

    rng = random.Random(7)
    bodies = []
    for request in range(40):
        events = []
        for _ in range(rng.randint(1, 5)):
            trace = f"t{rng.randint(0, 5)}"
            if rng.random() < 0.4:
                events.append(envelope("trace-create", {
                    "id": trace, "name": rng.choice(["chat", "search"]), "userId": rng.choice(["u1", "u2"]),
                    "metadata": {"feature": rng.choice(["a", "b"])},
                }))
            else:
                events.append(envelope("score-create", {
                    "id": f"s{rng.randint(0, 9)}-{request % 3}", "traceId": trace, "name": "quality",
                    "value": rng.choice([0.1, 0.5, 2.0]), "timestamp": iso(T0 + timedelta(minutes=rng.randint(0, 90))),
                }))
        bodies.append({"batch": events})

    def send(body):
        with httpx.Client(timeout=60) as http:
            return http.post(f"{live_server.url}{URL}", json=body, auth=(api_key.public, api_key.secret)).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, bodies))
    assert statuses == [207] * len(bodies)
    assert Score.objects.for_project(project).count() > 0
    assert_exact(project)
