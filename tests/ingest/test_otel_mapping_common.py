"""Convention-independent mapping: nothing dropped, resource/scope, times, status, batches."""

from datetime import UTC, datetime

from ingest.adapters.otel import mapping
from ingest.adapters.otel.mapping import map_request
from ingest.adapters.otel.testing import T0_NANOS, TRACE_ID, make_request, make_span

RECEIVED = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _one(attributes=None, resource=None, **span):
    request = make_request([make_span(attributes=attributes or {}, **span)], resource=resource)
    batch = map_request(request, received_at=RECEIVED)
    assert batch.rejected == []
    return batch


def test_unmapped_attributes_resource_scope_links_and_events_are_kept():
    batch = _one(
        {"http.method": "POST", "app.custom": [1, 2], "nested": {"a": {"b": True}}},
        resource={"service.name": "checkout", "service.version": "1.4.2", "host.name": "web-1"},
        events=[("cache.miss", T0_NANOS + 10, {"key": "k1"})],
        links=[("ab" * 16, "cd" * 8, {"why": "retry"})],
        kind=2,
    )
    obs = batch.observations[0]
    otel = obs["metadata"]["otel"]
    assert otel["attributes"] == {"http.method": "POST", "app.custom": [1, 2], "nested": {"a": {"b": True}}}
    assert otel["resource"] == {"service.name": "checkout", "service.version": "1.4.2", "host.name": "web-1"}
    assert otel["scope"] == {"name": "tests", "version": "1.0"}
    assert otel["span_kind"] == "SERVER"
    assert otel["events"] == [
        {"name": "cache.miss", "time": "2026-11-26T19:41:58.704042Z", "attributes": {"key": "k1"}}
    ]
    assert otel["links"] == [{"trace_id": "ab" * 16, "span_id": "cd" * 8, "attributes": {"why": "retry"}}]
    # service.version is the version when the span names none.
    assert obs["version"] == "1.4.2" and batch.traces[0]["version"] == "1.4.2"


def test_environment_comes_from_span_then_resource():
    assert _one(resource={"deployment.environment.name": "Prod"}).observations[0]["environment"] == "prod"
    assert _one(resource={"deployment.environment": "qa"}).observations[0]["environment"] == "qa"
    batch = _one({"langfuse.environment": "staging"}, resource={"deployment.environment.name": "prod"})
    assert batch.observations[0]["environment"] == "staging" and batch.traces[0]["environment"] == "staging"
    assert "environment" not in _one().observations[0]


def test_times_come_from_nanos_and_are_repaired_when_missing_or_inverted():
    obs = _one(start_ns=T0_NANOS, end_ns=T0_NANOS + 1_500_000_000).observations[0]
    assert (obs["end_time"] - obs["start_time"]).total_seconds() == 1.5
    inverted = _one(start_ns=T0_NANOS, end_ns=T0_NANOS - 10**9).observations[0]
    assert inverted["end_time"] == inverted["start_time"]
    no_start = _one(start_ns=0, end_ns=T0_NANOS).observations[0]
    assert no_start["start_time"] == no_start["end_time"]
    neither = _one(start_ns=0, end_ns=0).observations[0]
    assert neither["start_time"] == RECEIVED == neither["end_time"]


def test_an_error_status_without_an_exception_is_an_error():
    obs = _one(status=(2, "upstream timed out")).observations[0]
    assert (obs["status"], obs["level"], obs["error_message"], obs["status_message"]) == (
        "error",
        "ERROR",
        "upstream timed out",
        "upstream timed out",
    )
    ok = _one(status=(1, "")).observations[0]
    assert "status" not in ok and "level" not in ok


def test_the_escaped_exception_is_the_error_and_the_others_are_kept():
    obs = _one(
        events=[
            ("exception", T0_NANOS + 1, {"exception.type": "KeyError", "exception.message": "handled"}),
            (
                "exception",
                T0_NANOS + 2,
                {"exception.type": "ValueError", "exception.message": "fatal", "exception.escaped": True},
            ),
            ("exception", T0_NANOS + 3, {"exception.type": "IOError", "exception.message": "cleanup"}),
        ]
    ).observations[0]
    assert (obs["error_type"], obs["error_message"]) == ("ValueError", "fatal")
    assert [e["attributes"]["exception.type"] for e in obs["metadata"]["otel"]["events"]] == [
        "KeyError",
        "IOError",
    ]


def test_lookglass_status_overrides_what_is_derived():
    assert _one({"lookglass.status": "refused"}).observations[0]["status"] == "refused"
    obs = _one({"lookglass.status": "SUCCESS"}, status=(2, "boom")).observations[0]
    assert obs["status"] == "success" and obs["level"] == "ERROR"
    unknown = _one({"lookglass.status": "meh"}).observations[0]
    assert "status" not in unknown
    assert unknown["metadata"]["otel"]["attributes"]["lookglass.status"] == "meh"


def test_many_traces_in_one_batch_get_one_record_each():
    other_trace = "0123456789abcdef0123456789abcdef"
    request = make_request(
        [
            make_span(span_id="1000000000000001", parent_span_id="1000000000000000", start_ns=T0_NANOS + 2),
            make_span(trace_id=other_trace, span_id="2000000000000000", name="b-root"),
            make_span(
                span_id="1000000000000000",
                name="a-root",
                start_ns=T0_NANOS + 1,
                attributes={"user.id": "u", "tag.tags": ["x"]},
            ),
            make_span(
                span_id="1000000000000002", parent_span_id="1000000000000000", attributes={"tag.tags": ["y"]}
            ),
        ]
    )
    batch = map_request(request)
    assert len(batch.observations) == 4
    traces = {t["id"]: t for t in batch.traces}
    assert set(traces) == {TRACE_ID, other_trace}
    assert traces[TRACE_ID]["name"] == "a-root" and sorted(traces[TRACE_ID]["tags"]) == ["x", "y"]
    assert traces[other_trace]["name"] == "b-root"


def _poison_fails_to_map(monkeypatch) -> None:
    """A span named "poison" raises in `map_span`, as a mapping bug would."""
    real = mapping.map_span

    def flaky(span, **kwargs):
        if span.name == "poison":
            raise RuntimeError("bug")
        return real(span, **kwargs)

    monkeypatch.setattr(mapping, "map_span", flaky)


def test_a_span_that_cannot_be_mapped_is_rejected_and_the_others_are_kept(monkeypatch):
    _poison_fails_to_map(monkeypatch)
    batch = map_request(make_request([make_span(name="poison"), make_span(span_id="1000000000000000")]))
    assert [o["id"] for o in batch.observations] == ["1000000000000000"]
    assert batch.rejected == ["span eee19b7ec3c1b174: could not be mapped (RuntimeError)"]


def test_records_use_only_known_keys():
    from ingest.contract import OBSERVATION_KEYS, SCORE_KEYS, TRACE_KEYS

    batch = map_request(
        make_request(
            [
                make_span(
                    attributes={
                        "openinference.span.kind": "LLM",
                        "llm.model_name": "m",
                        "llm.token_count.prompt": 1,
                        "annotations.0.annotation.name": "a",
                        "annotations.0.annotation.score": 1,
                        "user.id": "u",
                        "langfuse.observation.cost_details": '{"total": 1}',
                        "llm.output_messages.0.message.role": "assistant",
                    }
                )
            ]
        )
    )
    assert set(batch.observations[0]) <= OBSERVATION_KEYS
    assert set(batch.traces[0]) <= TRACE_KEYS
    assert set(batch.scores[0]) <= SCORE_KEYS


def test_records_checked_in_one_call_are_answered_span_by_span_in_order(monkeypatch):
    """`map_spans` checks every span's records with one `check_records` call: each span is still
    answered by its own records' first problem, in span order, beside spans that could not be mapped,
    exactly as checking each record on its own (`check_record`) answers them."""
    from ingest import contract

    _poison_fails_to_map(monkeypatch)
    deep = "[" * 300 + "]" * 300
    request = make_request(
        [
            make_span(span_id="1000000000000001", attributes={"input.value": deep, "input.mime_type": "application/json"}),
            make_span(name="poison", span_id="1000000000000002"),
            make_span(span_id="1000000000000003", attributes={"langfuse.observation.metadata.k": "v"}),
            make_span(span_id="1000000000000004", attributes={"langfuse.trace.metadata": deep}),
            make_span(span_id="1000000000000005", attributes={"input.value": deep, "langfuse.trace.metadata": deep}),
            make_span(span_id="1000000000000006"),
        ]
    )
    batch = map_request(request, received_at=RECEIVED)
    nests = "cannot be stored: it nests deeper than 100 levels"
    assert batch.rejected == [
        f"span 1000000000000001: `input` {nests}",
        "span 1000000000000002: could not be mapped (RuntimeError)",
        f"span 1000000000000004: `metadata` {nests}",
        f"span 1000000000000005: `input` {nests}",  # its observation is checked before its trace
    ]
    assert [o["id"] for o in batch.observations] == ["1000000000000003", "1000000000000006"]

    def one_by_one(records):
        problems = []
        for record in records:
            try:
                contract.check_record(record)
                problems.append(None)
            except contract.RecordError as exc:
                problems.append(exc)
        return problems

    monkeypatch.setattr(mapping, "check_records", one_by_one)
    reference = map_request(request, received_at=RECEIVED)
    assert (batch.rejected, batch.observations, batch.traces) == (
        reference.rejected,
        reference.observations,
        reference.traces,
    )
