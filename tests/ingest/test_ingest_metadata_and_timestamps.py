"""The metadata merge is linear, metadata is capped per record on every path, and a trace's own
timestamp wins over a placeholder's whichever order they arrive in."""

import random
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import orjson
import pytest
from django.db import connections

from ingest import limits
from ingest.adapters.otel.testing import make_request, make_span
from ingest.writer import write_records
from tenancy.regions import region_database
from traces.models import Observation, Trace

T0 = datetime(2026, 11, 26, 19, 42, 27, tzinfo=dt_timezone.utc)


def write(project, traces=(), observations=(), scores=()):
    write_records(project=project, traces=list(traces), observations=list(observations), scores=list(scores))


def trace_of(project, trace_id):
    return Trace.objects.for_project(project).get(id=trace_id)


def ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- linear deep merge ---------------------------------------------------------------------------


def _merge_calls(cursor) -> int:
    cursor.execute(
        "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_xact_user_functions "
        "WHERE funcname = 'lookglass_jsonb_deep_merge'"
    )
    return cursor.fetchone()[0]


def test_re_sent_metadata_with_20k_keys_merges_in_one_pass(project):
    connection = connections[region_database(project.region)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("counting function calls needs track_functions, which only a superuser can set")
        cursor.execute("SET LOCAL track_functions = 'pl'")
    first = {f"k{i}": i for i in range(20_000)}
    first["nested"] = {"kept": 1, "deeper": {"a": 1}}
    write(project, traces=[{"id": "t1", "metadata": first}],
          observations=[{"id": "o1", "trace_id": "t1", "start_time": T0, "metadata": first}])
    second = {f"k{i}": -i for i in range(0, 20_000, 2)}
    second["nested"] = {"deeper": {"b": 2}, "new": [1]}
    second["fresh"] = "x"
    with connection.cursor() as cursor:
        before = _merge_calls(cursor)
    write(project, traces=[{"id": "t1", "metadata": second}],
          observations=[{"id": "o1", "trace_id": "t1", "metadata": second}])
    with connection.cursor() as cursor:
        calls = _merge_calls(cursor) - before
    expected = {f"k{i}": (-i if i % 2 == 0 else i) for i in range(20_000)}
    expected["nested"] = {"kept": 1, "deeper": {"a": 1, "b": 2}, "new": [1]}
    expected["fresh"] = "x"
    assert trace_of(project, "t1").metadata == expected
    assert Observation.objects.for_project(project).get(id="o1").metadata == expected
    # Per row: metadata, its two nested objects present on both sides, and redactions. The old
    # function called itself once per existing key (20k+ calls, each copying the whole value).
    assert calls <= 2 * 4, calls


@pytest.mark.parametrize(
    ("current", "patch", "merged"),
    [
        ({"a": 1}, {"a": None}, {"a": None}),
        ({"a": {"x": 1}}, {"a": [1]}, {"a": [1]}),
        ({"a": [1]}, {"a": {"x": 1}}, {"a": {"x": 1}}),
        ({"a": None}, {"a": {"x": 1}}, {"a": {"x": 1}}),
        ({"a": {"x": {"y": 1}}}, {"a": {"x": {"z": 2}}}, {"a": {"x": {"y": 1, "z": 2}}}),
        ({"a": 1}, {}, {"a": 1}),
    ],
)
def test_the_sql_merge_keeps_its_semantics(project, current, patch, merged):
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute(
            "SELECT lookglass_jsonb_deep_merge(%s::jsonb, %s::jsonb)",
            [orjson.dumps(current).decode(), orjson.dumps(patch).decode()],
        )
        value = cursor.fetchone()[0]
    assert (orjson.loads(value) if isinstance(value, str) else value) == merged


def test_the_sql_merge_with_null_or_non_objects(project):
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute(
            "SELECT lookglass_jsonb_deep_merge('{\"a\":1}', NULL), lookglass_jsonb_deep_merge(NULL, '{\"b\":1}'), "
            "lookglass_jsonb_deep_merge('[1]', '{\"b\":1}'), lookglass_jsonb_deep_merge('{\"a\":1}', '\"s\"')"
        )
        row = [orjson.loads(v) if isinstance(v, str) else v for v in cursor.fetchone()]
    assert row == [{"a": 1}, {"b": 1}, {"b": 1}, "s"]


# --- metadata caps, on every path ----------------------------------------------------------------


def test_metadata_problem_counts_keys_at_every_level_and_depth():
    assert limits.metadata_problem({f"k{i}": i for i in range(limits.MAX_METADATA_KEYS)}) is None
    assert "more than" in limits.metadata_problem({f"k{i}": i for i in range(limits.MAX_METADATA_KEYS + 1)})
    spread = {f"g{g}": {f"k{i}": i for i in range(100)} for g in range(100)}  # 10,100 keys
    assert "more than" in limits.metadata_problem(spread)
    in_lists = {"items": [{"a": 1, "b": 2}] * (limits.MAX_METADATA_KEYS // 2 + 1)}
    assert "more than" in limits.metadata_problem(in_lists)
    deep = value = {}
    for _ in range(limits.MAX_METADATA_DEPTH - 1):
        value["d"] = {}
        value = value["d"]
    assert limits.metadata_problem(deep) is None
    value["d"] = [1]
    assert "deeper than" in limits.metadata_problem(deep)
    nested_lists = {"a": 1}
    for _ in range(limits.MAX_METADATA_DEPTH):
        nested_lists = {"a": [nested_lists]} if isinstance(nested_lists, dict) else [nested_lists]
    assert "deeper than" in limits.metadata_problem(nested_lists)
    assert limits.metadata_problem(None) is None
    assert limits.metadata_problem("text") is None


def _reference_metadata_problem(value):
    """`limits.metadata_problem` as the rule states it: every value asked `isinstance`, the last
    container found walked first (the order decides which message a record over both caps gets)."""
    keys, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
            keys += len(node)
            if keys > limits.MAX_METADATA_KEYS:
                return f"metadata has more than {limits.MAX_METADATA_KEYS} keys (counted at every level)"
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > limits.MAX_METADATA_DEPTH:
            return f"metadata is nested deeper than {limits.MAX_METADATA_DEPTH} levels"
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return None


class _Text(str):
    pass


class _Map(dict):
    pass


class _Items(list):
    pass


def _random_metadata(rng, depth=0):
    roll = rng.random()
    if depth > 9 or roll < 0.45:
        return rng.choice(["s", "", _Text("t"), 1, 2.5, True, None, b"x"])
    size = rng.randrange(0, 6)
    if roll < 0.75:
        kind = rng.choice([dict, _Map])
        return kind((f"k{i}", _random_metadata(rng, depth + 1)) for i in range(size))
    kind = rng.choice([list, tuple, _Items])
    return kind(_random_metadata(rng, depth + 1) for _ in range(size))


def test_metadata_problem_is_the_isinstance_walk(monkeypatch):
    """Exact `str` values skip the `isinstance` test (a str is never a container): containers of
    every subclass are still walked, in the same order, so a record gets the same message."""
    monkeypatch.setattr(limits, "MAX_METADATA_KEYS", 12)
    monkeypatch.setattr(limits, "MAX_METADATA_DEPTH", 4)
    rng = random.Random(8)
    seen = set()
    for _ in range(3000):
        value = _random_metadata(rng)
        got = limits.metadata_problem(value)
        assert got == _reference_metadata_problem(value), value
        seen.add(got and got.split()[2])
    assert seen == {None, "more", "nested"}  # both caps met, and records within them


def _deep(levels: int) -> dict:
    value = top = {}
    for _ in range(levels - 1):
        value["d"] = {}
        value = value["d"]
    return top


def test_langfuse_events_over_the_metadata_caps_are_reported_and_the_rest_stored(client, project, api_key):
    too_many = {f"k{i}": i for i in range(limits.MAX_METADATA_KEYS + 1)}
    batch = [
        {"id": "e-ok", "type": "trace-create", "timestamp": ts(T0), "body": {"id": "t-ok", "metadata": {"a": 1}}},
        {"id": "e-wide", "type": "trace-create", "timestamp": ts(T0), "body": {"id": "t-wide", "metadata": too_many}},
        {"id": "e-deep", "type": "span-create", "timestamp": ts(T0),
         "body": {"id": "o-deep", "traceId": "t-ok", "metadata": _deep(limits.MAX_METADATA_DEPTH + 1)}},
        {"id": "e-span", "type": "span-create", "timestamp": ts(T0), "body": {"id": "o-ok", "traceId": "t-ok"}},
    ]
    response = client.post(
        "/api/public/ingestion", data=orjson.dumps({"batch": batch}), content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207
    body = response.json()
    assert sorted(s["id"] for s in body["successes"]) == ["e-ok", "e-span"]
    errors = {e["id"]: e for e in body["errors"]}
    assert set(errors) == {"e-wide", "e-deep"}
    assert errors["e-wide"]["status"] == 400 and "more than 10000 keys" in errors["e-wide"]["error"]
    assert errors["e-deep"]["status"] == 400 and "deeper than 20 levels" in errors["e-deep"]["error"]
    assert set(Trace.objects.for_project(project).values_list("id", flat=True)) == {"t-ok"}
    assert set(Observation.objects.for_project(project).values_list("id", flat=True)) == {"o-ok"}


def test_an_otlp_span_over_the_metadata_cap_is_a_partial_success(client, project, api_key):
    wide = {f"custom.attr{i}": i for i in range(limits.MAX_METADATA_KEYS + 1)}
    request = make_request(
        [make_span(name="ok"), make_span(span_id="2222222222222222", name="wide", attributes=wide)]
    )
    response = client.post(
        "/v1/traces", data=request.SerializeToString(), content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 200
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "more than 10000 keys" in answer.partial_success.error_message
    assert list(Observation.objects.for_project(project).values_list("name", flat=True)) == ["ok"]


def test_a_score_over_the_metadata_cap_is_refused(client, project, api_key):
    response = client.post(
        "/api/public/scores",
        data=orjson.dumps({"traceId": "t1", "name": "q", "value": 1, "metadata": _deep(25)}),
        content_type="application/json", HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 400
    assert "deeper than 20 levels" in response.json()["error"]


# --- a trace's own timestamp wins over a placeholder's -----------------------------------------------


def _events(order: str):
    generation = {"id": "e-gen", "type": "generation-create", "timestamp": ts(T0),
                  "body": {"id": "g1", "traceId": "t1", "startTime": ts(T0)}}
    trace = {"id": "e-trace", "type": "trace-create", "timestamp": ts(T0 + timedelta(seconds=5)),
             "body": {"id": "t1", "name": "real", "timestamp": ts(T0 + timedelta(seconds=5))}}
    return [generation, trace] if order == "generation-first" else [trace, generation]


def _ingest(client, api_key, batch):
    response = client.post(
        "/api/public/ingestion", data=orjson.dumps({"batch": batch}), content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207 and not response.json()["errors"], response.content


@pytest.mark.parametrize("order", ["generation-first", "trace-first"])
@pytest.mark.parametrize("batches", ["one batch", "separate requests"])
def test_the_trace_timestamp_does_not_depend_on_arrival_order(client, project, api_key, order, batches):
    events = _events(order)
    if batches == "one batch":
        _ingest(client, api_key, events)
    else:
        for event in events:
            _ingest(client, api_key, [event])
    trace = trace_of(project, "t1")
    assert (trace.name, trace.timestamp) == ("real", T0 + timedelta(seconds=5))
    assert trace.timestamp_is_placeholder is False


def test_a_placeholder_stays_one_until_the_trace_sends_a_timestamp(project):
    write(project, observations=[{"id": "o1", "trace_id": "t1", "start_time": T0}])
    assert trace_of(project, "t1").timestamp_is_placeholder is True
    write(project, traces=[{"id": "t1", "name": "no time yet"}])
    trace = trace_of(project, "t1")
    assert (trace.name, trace.timestamp, trace.timestamp_is_placeholder) == ("no time yet", T0, True)
    write(project, traces=[{"id": "t1", "timestamp": T0 + timedelta(minutes=1)}])
    trace = trace_of(project, "t1")
    assert (trace.timestamp, trace.timestamp_is_placeholder) == (T0 + timedelta(minutes=1), False)
    # Once sent, the earliest sent timestamp stays, and later placeholders change nothing.
    write(project, traces=[{"id": "t1", "timestamp": T0 + timedelta(minutes=2)}],
          observations=[{"id": "o2", "trace_id": "t1", "start_time": T0 - timedelta(hours=1)}])
    assert trace_of(project, "t1").timestamp == T0 + timedelta(minutes=1)


def test_browser_feedback_over_the_metadata_cap_is_refused(client, project, api_key):
    response = client.post(
        "/api/v1/feedback",
        data=orjson.dumps({"trace_id": "t1", "rating": "up", "user_id": "u", "metadata": _deep(25)}),
        content_type="application/json", HTTP_AUTHORIZATION=api_key.bearer,
    )
    assert response.status_code == 400
    assert "deeper than 20 levels" in response.json()["message"]
