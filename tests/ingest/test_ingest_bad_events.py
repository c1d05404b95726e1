"""One bad event never fails a batch or poisons reads (Langfuse batch, OTLP, REST scores, feedback).

Every case sends one bad event next to a good one: the bad one is reported (207 entry with status 400
/ OTLP partial success), the good one is stored, and nothing answers 500.
"""

import json
from datetime import UTC, datetime
from urllib.parse import quote

import orjson
import pytest
from django.db import connections
from django.urls import reverse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest.adapters.otel.testing import make_request, make_span, to_otlp_json
from ingest.stages import price as costs
from scores.models import Score
from tenancy.models import Role
from tenancy.regions import region_database
from traces.models import Observation, Trace

URL = "/api/public/ingestion"
OTLP_URL = "/api/public/otel/v1/traces"
GOOD_TS = "2026-11-26T19:42:27.000000Z"


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


def event(env_id, type_, body, timestamp=GOOD_TS):
    return {"id": env_id, "type": type_, "timestamp": timestamp, "body": body}


def post_batch(client, api_key, *events):
    response = client.post(
        # stdlib json: orjson itself refuses to encode the deepest test values
        URL, data=json.dumps({"batch": list(events)}), content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207, (response.status_code, response.content[:500])
    return response.json()


def good_trace(env_id="good", trace_id="good-trace"):
    return event(env_id, "trace-create", {"id": trace_id, "name": "fine", "timestamp": GOOD_TS})


def assert_one_bad(answer, bad_id="bad", *, mentions=()):
    assert [s["id"] for s in answer["successes"]] == ["good"], answer
    assert len(answer["errors"]) == 1, answer
    error = answer["errors"][0]
    assert (error["id"], error["status"]) == (bad_id, 400), error
    for word in mentions:
        assert word in error["error"], error


def deep(levels: int):
    value = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


# --- 1. timestamps outside the accepted range ---------------------------------------------------

OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z", "2262-05-01T00:00:00Z"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(
    "type_,field",
    [
        ("trace-create", "timestamp"),
        ("span-create", "startTime"),
        ("span-create", "endTime"),
        ("generation-create", "completionStartTime"),
        ("score-create", "timestamp"),
    ],
)
def test_an_out_of_range_timestamp_is_refused_per_event(client, project, api_key, type_, field, value):
    body = {"id": "bad-1", "traceId": "t-bad", field: value}
    if type_ == "score-create":
        body.update(name="quality", value=1)
    answer = post_batch(client, api_key, good_trace(), event("bad", type_, body))
    assert_one_bad(answer, mentions=(f"`{field}`", "1970", "2262"))
    assert Trace.objects.for_project(project).filter(id="good-trace").exists()
    assert not Observation.objects.for_project(project).filter(id="bad-1").exists()


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", 1e15, -1e12])
def test_an_out_of_range_envelope_timestamp_is_refused_per_event(client, project, api_key, value):
    answer = post_batch(client, api_key, good_trace(), event("bad", "trace-create", {"id": "t2"}, timestamp=value))
    assert_one_bad(answer, mentions=("timestamp",))


@pytest.mark.parametrize("value", [1e15, -1e12, 1e300])
def test_numeric_timestamps_out_of_range_are_refused_per_event(client, project, api_key, value):
    answer = post_batch(client, api_key, good_trace(), event("bad", "trace-create", {"id": "t2", "timestamp": value}))
    assert_one_bad(answer, mentions=("`timestamp`",))


def test_an_out_of_range_rest_score_timestamp_is_400(client, project, api_key):
    response = client.post(
        "/api/public/scores",
        data=orjson.dumps({"traceId": "t", "name": "q", "value": 1, "timestamp": "9999-12-31T23:59:59-14:00"}),
        content_type="application/json", HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 400 and "`timestamp`" in response.json()["error"]
    batch = client.post(
        "/api/public/scores",
        data=orjson.dumps([
            {"traceId": "t", "name": "q", "value": 1, "timestamp": "0001-01-01T00:00:00+14:00"},
            {"traceId": "t", "name": "q", "value": 1, "id": "ok-score"},
        ]),
        content_type="application/json", HTTP_AUTHORIZATION=api_key.basic,
    )
    assert batch.status_code == 207 and batch.json()["accepted"] == 1
    assert Score.objects.for_project(project).filter(id="ok-score").exists()


def _otlp_json(client, api_key, document):
    response = client.post(OTLP_URL, data=json.dumps(document), content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return response.json().get("partialSuccess", {})


def _two_spans(bad_attributes, good_attributes=None):
    return make_request(
        [
            make_span(span_id="aaaaaaaaaaaaaaaa", name="good", attributes=good_attributes or {"x": 1}),
            make_span(span_id="bbbbbbbbbbbbbbbb", parent_span_id="aaaaaaaaaaaaaaaa", name="bad",
                      attributes=bad_attributes),
        ]
    )


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_otlp_completion_start_time_out_of_range_rejects_that_span(client, project, api_key, value):
    request = _two_spans({"langfuse.observation.type": "generation",
                          "langfuse.observation.completion_start_time": value})
    response = client.post(OTLP_URL, data=request.SerializeToString(), content_type="application/x-protobuf",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "bbbbbbbbbbbbbbbb" in answer.partial_success.error_message
    assert "completion_start_time" in answer.partial_success.error_message
    assert list(Observation.objects.for_project(project).values_list("id", flat=True)) == ["aaaaaaaaaaaaaaaa"]


# --- 1b. rows already stored out of range never break reads --------------------------------------

def _poison(project):
    """Rows as an older version stored them: timestamps psycopg cannot load into a datetime (year 0
    and year 10000 in UTC), written with raw SQL."""
    Trace.objects.for_project(project).create(id="poisoned", name="p", timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    Observation.objects.for_project(project).create(
        id="poisoned-obs", trace_id="poisoned", start_time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute(
            "UPDATE traces_trace SET timestamp = '0001-01-01T00:00:00+14:00' WHERE project_id = %s AND id = 'poisoned'",
            [project.id],
        )
        Score.objects.for_project(project).create(
            id="poisoned-score", trace_id="poisoned", name="q", value=1.0, data_type="NUMERIC", source="API"
        )
        cursor.execute(
            "UPDATE feedback_score SET timestamp = '9999-12-31T23:59:59-14:00' WHERE project_id = %s",
            [project.id],
        )
        cursor.execute(
            "UPDATE traces_observation SET start_time = '0001-01-01T00:00:00+14:00',"
            " end_time = '9999-12-31T23:59:59-14:00', completion_start_time = '9999-12-31T23:59:59-14:00'"
            " WHERE project_id = %s AND id = 'poisoned-obs'",
            [project.id],
        )


def test_rows_stored_out_of_range_do_not_break_the_read_api(client, project, api_key):
    post_batch(client, api_key, good_trace())
    _poison(project)
    auth = {"HTTP_AUTHORIZATION": api_key.basic}
    listed = client.get("/api/public/traces", **auth)
    assert listed.status_code == 200, listed.content[:300]
    assert {t["id"] for t in listed.json()["data"]} == {"good-trace", "poisoned"}
    detail = client.get("/api/public/traces/poisoned", **auth)
    assert detail.status_code == 200, detail.content[:300]
    assert detail.json()["timestamp"].startswith("0001-01-01")
    assert detail.json()["observations"][0]["endTime"].startswith("9999-12-31")
    assert detail.json()["scores"][0]["timestamp"].startswith("9999-12-31")
    for path in ("/api/public/observations", "/api/public/v2/observations?fields=core,basic,time",
                 "/api/public/observations/poisoned-obs", "/api/public/scores",
                 "/api/public/scores/poisoned-score", "/api/public/sessions"):
        response = client.get(path, **auth)
        assert response.status_code == 200, (path, response.content[:300])


def test_rows_stored_out_of_range_do_not_break_the_console(client, project, organization, member_of, superuser):
    _poison(project)
    client.force_login(member_of(organization, Role.VIEWER))
    assert client.get("/admin/traces/").status_code == 200
    assert client.get(reverse("admin:traces_trace_detail", args=[project.id, "poisoned"])).status_code == 200
    client.force_login(superuser)  # the operator's cross-tenant list
    response = client.get("/admin/traces/")
    assert response.status_code == 200
    assert "poisoned" in [row.trace.id for row in response.context["rows"]]


# --- 2. one bad value fails its event, not the batch ------------------------------------------------

BIG = 2**62


@pytest.mark.parametrize(
    "body",
    [
        {"usageDetails": {"input": BIG, "output": BIG}},  # the derived total overflows bigint
        {"usage": {"input": BIG, "output": BIG, "total": BIG}, "usageDetails": {"input": BIG, "cache_read_input_tokens": BIG}},
        {"usageDetails": {"input": 2**63}},
        {"usageDetails": {"input": 18446744073709551615}},
        {"costDetails": {"input": 9e9, "output": 9e9}},  # each fits, the total does not
        {"usage": {"inputCost": 9e9, "outputCost": 9e9}},
        {"costDetails": {"input": 1e300}},
        {"level": ["x"]},
        {"level": {"a": 1}},
        {"startTime": ["2026-01-01"]},
        {"input": deep(300)},
        {"metadata": deep(300)},
        {"output": deep(300)},
        {"modelParameters": {"schema": deep(300)}},
        {"promptName": "p", "promptVersion": 2**40},
    ],
    ids=lambda b: ",".join(b)[:40],
)
def test_a_bad_observation_value_fails_only_its_event(client, project, api_key, body):
    answer = post_batch(
        client, api_key, good_trace(), event("bad", "generation-create", {"id": "bad-obs", "traceId": "t-bad", **body})
    )
    assert_one_bad(answer)
    assert Trace.objects.for_project(project).filter(id="good-trace").exists()
    assert not Observation.objects.for_project(project).filter(id="bad-obs").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"input": deep(300)},
        {"metadata": deep(300)},
        {"tags": [["x"]]},
        {"name": ["x"]},
    ],
    ids=lambda b: ",".join(b),
)
def test_a_bad_trace_value_fails_only_its_event(client, project, api_key, body):
    answer = post_batch(client, api_key, good_trace(), event("bad", "trace-create", {"id": "bad-trace", **body}))
    assert_one_bad(answer)
    assert not Trace.objects.for_project(project).filter(id="bad-trace").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"dataType": ["NUMERIC"]},
        {"dataType": {"a": 1}},
        {"source": ["API"]},
        {"value": ["x"]},
        {"value": 1, "dataType": "BOOLEAN", "source": {"a": 1}},
        {"metadata": deep(300)},
        {"environment": ["prod"]},
        {"comment": {"a": 1}},
    ],
    ids=lambda b: ",".join(b),
)
def test_a_bad_score_value_fails_only_its_event(client, project, api_key, body):
    score = {"id": "bad-score", "traceId": "t", "name": "q", "value": 1, **body}
    answer = post_batch(client, api_key, good_trace(), event("bad", "score-create", score))
    assert_one_bad(answer)
    assert not Score.objects.for_project(project).filter(id="bad-score").exists()


@pytest.mark.parametrize(
    "body",
    [{"dataType": ["NUMERIC"]}, {"source": ["API"]}, {"metadata": deep(300)}, {"timestamp": 1e15}],
    ids=lambda b: ",".join(b),
)
def test_a_bad_rest_score_is_refused_with_400(client, project, api_key, body):
    response = client.post(
        "/api/public/scores",
        data=json.dumps({"traceId": "t", "name": "q", "value": 1, **body}),
        content_type="application/json", HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 400, response.content[:300]


def test_browser_feedback_with_a_deep_metadata_is_refused_with_400(client, project, api_key):
    response = client.post(
        "/api/v1/feedback",
        data=json.dumps({"trace_id": "t", "rating": "up", "user_id": "u", "metadata": deep(300)}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key.public}",
    )
    assert response.status_code == 400, response.content[:300]


# --- 2b. OTLP ------------------------------------------------------------------------------------------


def _assert_only_good_span(project, partial, *, mentions=()):
    assert partial.get("rejectedSpans") == "1", partial
    assert "bbbbbbbbbbbbbbbb" in partial["errorMessage"] or "span ?" not in partial["errorMessage"], partial
    for word in mentions:
        assert word in partial["errorMessage"], partial
    assert list(Observation.objects.for_project(project).values_list("id", flat=True)) == ["aaaaaaaaaaaaaaaa"]


@pytest.mark.parametrize("raw", ["18446744073709551616", 18446744073709551616, "-9223372036854775809"])
def test_an_otlp_json_int_value_beyond_int64_rejects_only_its_span(client, project, api_key, raw):
    document = to_otlp_json(_two_spans({"n": 1}))
    bad = document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    bad["attributes"] = [{"key": "n", "value": {"intValue": raw}}]
    _assert_only_good_span(project, _otlp_json(client, api_key, document), mentions=("intValue",))


def test_otlp_token_counts_near_2_63_reject_only_their_span(client, project, api_key):
    request = _two_spans({
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 2**63 - 10,
        "gen_ai.usage.output_tokens": 2**63 - 10,
    })
    document = to_otlp_json(request)
    partial = _otlp_json(client, api_key, document)
    _assert_only_good_span(project, partial)


def test_otlp_deeply_nested_json_attributes_reject_only_their_span(client, project, api_key):
    nested = json.dumps(deep(300))
    request = _two_spans({"langfuse.observation.input": nested})
    _assert_only_good_span(project, _otlp_json(client, api_key, to_otlp_json(request)))


def test_otlp_deep_kvlist_attributes_reject_only_their_span(client, project, api_key):
    document = to_otlp_json(_two_spans({"n": 1}))
    value = {"stringValue": "x"}
    for _ in range(300):
        value = {"arrayValue": {"values": [value]}}
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["attributes"] = [{"key": "deep", "value": value}]
    _assert_only_good_span(project, _otlp_json(client, api_key, document))


# --- 3. replays of events without a body id stay idempotent ----------------------------------------------


def test_replaying_events_without_body_ids_stores_them_once(client, project, api_key):
    batch = [
        event("ev-trace", "trace-create", {"name": "no id"}),
        event("ev-span", "span-create", {"name": "orphan span"}),
        event("ev-score", "score-create", {"traceId": "t", "name": "q", "value": 1}),
    ]
    for _ in range(2):
        answer = post_batch(client, api_key, *batch)
        assert not answer["errors"]
    assert Trace.objects.for_project(project).filter(name="no id").count() == 1
    assert Observation.objects.for_project(project).filter(name="orphan span").count() == 1
    # the span's own trace: one, not one per replay
    assert Trace.objects.for_project(project).count() == 2
    assert Score.objects.for_project(project).count() == 1


# --- 4. ids that are not URL-safe --------------------------------------------------------------------------

ODD_IDS = ["a/b", "../../auth/user", "x?y#z", "100%", "sp ace"]


@pytest.mark.parametrize("trace_id", ODD_IDS)
def test_odd_trace_ids_read_back_through_the_api_and_the_console(client, project, api_key, organization, member_of, trace_id):
    answer = post_batch(
        client, api_key,
        event("good", "trace-create", {"id": trace_id, "name": "odd"}),
        event("obs", "span-create", {"id": trace_id + "-o", "traceId": trace_id, "name": "s"}),
        event("score", "score-create", {"id": trace_id + "-s", "traceId": trace_id, "name": "q", "value": 1}),
    )
    assert not answer["errors"]
    auth = {"HTTP_AUTHORIZATION": api_key.basic}
    encoded = quote(trace_id, safe="")
    detail = client.get(f"/api/public/traces/{encoded}", **auth)
    assert detail.status_code == 200 and detail.json()["id"] == trace_id
    assert detail.json()["htmlPath"].endswith("/traces/" + encoded)
    assert client.get(f"/api/public/observations/{quote(trace_id + '-o', safe='')}", **auth).json()["id"] == trace_id + "-o"
    assert client.get(f"/api/public/scores/{quote(trace_id + '-s', safe='')}", **auth).json()["id"] == trace_id + "-s"

    client.force_login(member_of(organization, Role.VIEWER))
    listed = client.get("/admin/traces/")
    link = next(row.detail_url for row in listed.context["rows"] if row.trace.id == trace_id)
    assert link == f"/admin/traces/{project.id}/{encoded}/"
    page = client.get(link)
    assert page.status_code == 200 and page.context["trace"].id == trace_id


@pytest.mark.parametrize("bad_id", [".", ".."])
@pytest.mark.parametrize("field", ["id", "traceId"])
def test_dot_segment_ids_no_url_can_carry_are_refused_per_event(client, project, api_key, bad_id, field):
    body = {"id": "obs-1", "traceId": "t-1", field: bad_id}
    answer = post_batch(client, api_key, good_trace(), event("bad", "span-create", body))
    assert_one_bad(answer, mentions=(f"`{field}`",))


def test_session_ids_with_slashes_read_back(client, project, api_key):
    post_batch(client, api_key, event("good", "trace-create", {"id": "t", "sessionId": "s/1"}))
    response = client.get("/api/public/sessions/s%2F1", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200 and response.json()["id"] == "s/1"


def test_the_trace_timestamp_is_kept_exactly(client, project, api_key):
    post_batch(client, api_key, event("good", "trace-create", {"id": "t", "timestamp": "2262-01-01T00:00:00Z"}))
    assert Trace.objects.for_project(project).get(id="t").timestamp == datetime(2262, 1, 1, tzinfo=UTC)


def test_a_catalog_cost_too_large_for_the_cost_columns_is_left_out_not_failing_the_batch(
    client, project, api_key, monkeypatch
):
    import importlib
    from datetime import timezone as dt_timezone
    from decimal import Decimal

    from pricing.models import ModelPrice, PriceSource

    monkeypatch.setattr(costs, "_pricing", lambda: importlib.import_module("pricing.pricing"))
    ModelPrice.objects.create(
        project=None, model_name="gpt-4o", provider="openai", match_pattern=r"^gpt-4o$",
        input_price=Decimal("2.5"), output_price=Decimal("10"), source=PriceSource.CATALOG,
        effective_from=datetime(2024, 8, 6, tzinfo=dt_timezone.utc),
    )
    answer = post_batch(
        client, api_key,
        event("good", "generation-create", {"id": "small", "traceId": "t", "model": "gpt-4o",
                                             "usageDetails": {"input": 1000, "output": 100}}),
        event("huge", "generation-create", {"id": "huge", "traceId": "t", "model": "gpt-4o",
                                             "usageDetails": {"input": 2**60, "output": 2**60}}),
    )
    assert not answer["errors"], answer
    small = Observation.objects.for_project(project).get(id="small")
    assert (small.cost_source, small.total_cost) == ("catalog", Decimal("0.0035"))
    huge = Observation.objects.for_project(project).get(id="huge")
    assert (huge.input_tokens, huge.cost_source, huge.total_cost) == (2**60, "none", None)


def test_the_json_depth_limit_is_exactly_100_levels_in_every_field():
    from ingest.contract import MAX_JSON_DEPTH, RecordError, check_record

    assert MAX_JSON_DEPTH == 100
    check_record({"id": "a", "input": deep(100), "metadata": deep(100), "output": [deep(99)]})
    for field in ("input", "output", "metadata", "model_parameters", "usage_details", "tool_calls"):
        with pytest.raises(RecordError, match=f"`{field}` cannot be stored: it nests deeper than 100 levels"):
            check_record({"id": "a", "input": deep(3), field: deep(101)})
    with pytest.raises(RecordError, match="64-bit"):
        check_record({"id": "a", "metadata": {"n": 2**64}})
