"""The Langfuse adapter's and the shared output walks' shortcuts give exactly what the rule they skip
would give: each test sits on the edge of one shortcut's condition."""

import pytest

from ingest.adapters.langfuse import (
    ERROR_METADATA_KEYS,
    MAX_BIGINT,
    MAX_ID,
    EventError,
    _datetime,
    _errors_from_metadata,
    _id,
    _non_negative_int,
    _string,
    _usage_details,
    event_datetime,
    parse_batch,
)
from ingest.rules import environment, messages

# --- `_string`: a str sent as is skips the checks only when none of them can fail ----------------


def test_a_plain_string_within_its_limit_is_returned_as_sent():
    assert _string({"k": "x" * 5}, "k", max_length=5) == "x" * 5
    assert _string({"k": ""}, "k") == ""
    assert _string({"k": "a"}, "k", required=True) == "a"


def test_a_string_over_its_limit_is_still_refused():
    with pytest.raises(EventError, match="longer than 5"):
        _string({"k": "x" * 6}, "k", max_length=5)


def test_an_empty_required_string_is_still_refused():
    with pytest.raises(EventError, match="must not be empty"):
        _string({"k": ""}, "k", required=True)


def test_numbers_are_still_converted_and_other_values_refused():
    assert _string({"k": 7}, "k") == "7"
    with pytest.raises(EventError, match="must be a string"):
        _string({"k": True}, "k")


# --- `_datetime`: an ISO string in range skips the general path; the rest still takes it --------


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T05:00:00+05:00",
        "1970-01-01T00:00:00Z",
        "2026-01-01",
    ],
)
def test_an_iso_string_in_range_is_the_general_path(text):
    assert _datetime({"t": text}, "t") == event_datetime(text, "t")
    assert _datetime({"t": text}, "t").tzinfo is not None


@pytest.mark.parametrize("text", ["1969-12-31T23:59:59Z", "2263-01-01T00:00:00Z"])
def test_an_iso_string_out_of_range_is_still_refused(text):
    with pytest.raises(EventError, match="outside the accepted range"):
        _datetime({"t": text}, "t")


def test_bad_text_and_numbers_still_take_the_general_path():
    with pytest.raises(EventError, match="not an ISO-8601 datetime"):
        _datetime({"t": "yesterday"}, "t")
    assert _datetime({"t": 1.7e12}, "t") == event_datetime(1.7e12, "t")
    assert _datetime({}, "t") is None


# --- `_errors_from_metadata`: metadata without any error key is skipped in one set test ----------


@pytest.mark.parametrize(
    ("column", "key"), [(column, key) for column, keys in ERROR_METADATA_KEYS for key in keys]
)
def test_every_error_key_still_fills_its_column(column, key):
    rec: dict = {}
    _errors_from_metadata({"tools": [], key: "boom"}, rec)
    assert rec == {column: "boom"}


@pytest.mark.parametrize(
    ("nested", "expected"),
    [
        ({"type": "T"}, {"error_type": "T"}),
        ({"message": "M"}, {"error_message": "M"}),
        ({"stacktrace": "S"}, {"error_stack": "S"}),
        ({"stack": "S2"}, {"error_stack": "S2"}),
    ],
)
def test_a_nested_exception_still_fills_its_columns(nested, expected):
    rec: dict = {}
    _errors_from_metadata({"exception": nested}, rec)
    assert rec == expected


def test_metadata_without_error_keys_fills_nothing():
    rec: dict = {}
    _errors_from_metadata({"tools": [{"type": "function"}], "error": "not a key read"}, rec)
    assert rec == {}


# --- parse_batch: the id of a refused envelope, read only when it is refused --------------------


def test_a_refused_envelope_is_reported_under_its_id_or_unknown():
    parsed = parse_batch(
        [
            {"id": "e1", "type": "span-create", "timestamp": "not a time", "body": {}},
            {"id": 5, "type": "span-create", "timestamp": "2026-01-01T00:00:00Z", "body": {}},
            "not an event",
            {"id": "e4", "type": "span-create", "timestamp": "2026-01-01T00:00:00Z", "body": []},
        ]
    )
    assert [error["id"] for error in parsed.errors] == ["e1", "unknown", "unknown", "e4"]
    assert parsed.successes == []


# --- rules.messages: the one-pass finish reason is the two-pass rule ---------------------------

OUTPUTS = [
    None,
    "",
    "text",
    7,
    [],
    {},
    ["a", 1],
    {"content": None, "refusal": "I can't"},
    {"content": None, "refusal": "I can't", "finish_reason": "stop"},
    {"content": "a", "refusal": 1},
    [{"content": None, "refusal": "no"}, {"stop_reason": "end_turn"}],
    [{"content": None, "refusal": "no"}],
    {"finish_reason": 3, "stop_reason": "refusal"},
    {"finish_reason": "", "stop_reason": "max_tokens"},
    {"choices": [{"message": {"content": None, "refusal": "r"}}, 1]},
    {"choices": [{"message": {"content": "x"}, "finish_reason": "content_filter"}]},
    {"choices": [{"message": {"content": "x", "finish_reason": "length"}, "finish_reason": "stop"}]},
    {"choices": "not a list", "refusal": "r"},
]


@pytest.mark.parametrize("output", OUTPUTS)
def test_finish_reason_is_the_rule_over_finish_reasons_of(output):
    assert messages.finish_reason(output) == messages.pick_finish_reason(
        messages.finish_reasons_of(output), output
    )


def test_finish_reason_names_a_refusal_without_a_reason():
    assert messages.finish_reason({"content": None, "refusal": "I can't"}) == "refusal"
    assert messages.finish_reason([{"refusal": "no"}]) == "refusal"


@pytest.mark.parametrize(
    ("output", "names"),
    [
        ("a string", []),
        ({"content": [{"type": "tool_use", "name": "a", "input": {}}]}, ["a"]),
        ([{"message": {"tool_calls": [{"function": {"name": "b", "arguments": "{}"}}]}}], ["b"]),
        ({"output": [{"type": "function_call", "name": "c", "arguments": "1"}]}, ["c"]),
        ({"choices": [{"message": {"function_call": {"name": "d"}}}]}, ["d"]),
        ({"content": {"content": {"content": {"content": {"type": "tool_use", "name": "e"}}}}}, ["e"]),
        (
            {
                "content": {
                    "content": {"content": {"content": {"content": {"type": "tool_use", "name": "f"}}}}
                }
            },
            [],
        ),
        ({"content": "text", "choices": None, "message": 1}, []),
    ],
)
def test_extract_tool_calls_walks_the_same_containers(output, names):
    assert [call["name"] for call in messages.extract_tool_calls(output)] == names


# --- rules.environment: a repeated environment is looked up, not normalized again ---------------


@pytest.mark.parametrize(
    "value", ["Production", " staging ", "langfuse-prod", "LANGFUSE", "a b", "", "e" * 41]
)
def test_a_repeated_environment_is_normalized_as_the_first_time(value):
    expected = environment._normalized(value)
    assert environment.normalize_environment(value) == expected
    assert environment.normalize_environment(value) == expected  # from the cache


def test_the_environment_cache_keeps_only_short_values_and_stays_bounded():
    environment.normalize_environment("x" * 65)
    assert "x" * 65 not in environment._KNOWN
    for index in range(3000):
        environment.normalize_environment(f"env-{index}")
    assert len(environment._KNOWN) <= 1024
    assert environment.normalize_environment(None) is None
    assert environment.normalize_environment(5) == environment.DEFAULT_ENVIRONMENT


# --- `observation_record`: readers of fields most events leave out run only for a key sent ------

GUARDED = {  # field: a value its reader refuses
    "completionStartTime": "not a time", "level": "LOUD", "statusMessage": {"a": 1}, "version": ["v"],
    "model": {"m": 1}, "modelParameters": "hot", "promptName": 5, "costDetails": "cheap",
    "usageDetails": "many", "usage": 3,
}


def _observation(**fields):
    from datetime import UTC, datetime

    from ingest.adapters.langfuse import observation_record

    body = {"id": "o-1", "traceId": "t-1", "name": "step", "startTime": "2026-01-01T00:00:00Z", **fields}
    return observation_record(
        body, obs_type="GENERATION", is_create=True, envelope_ts=datetime(2026, 1, 1, tzinfo=UTC), event_id="e-1"
    )


@pytest.mark.parametrize("field", sorted(GUARDED))
def test_a_guarded_field_left_out_is_the_field_sent_as_null(field):
    assert _observation() == _observation(**{field: None})


@pytest.mark.parametrize("field", sorted(GUARDED))
def test_a_guarded_field_sent_is_still_read_and_refused(field):
    with pytest.raises(EventError):
        _observation(**{field: GUARDED[field]})


def test_guarded_fields_sent_are_still_stored():
    record = _observation(
        completionStartTime="2026-01-01T00:00:01Z", level="WARNING", statusMessage="slow", version="v2",
        model="gpt-4o", modelParameters={"temperature": 0}, promptName="p", promptVersion=3,
        costDetails={"input": 0.5}, usageDetails={"input": 5, "output": 2},
    )
    assert {"completion_start_time", "level", "status_message", "version", "model", "model_parameters",
            "prompt_name", "prompt_version", "cost_details", "usage_details", "input_tokens"} <= record.keys()
    assert _observation(usage={"input": 4, "output": 1})["usage_details"] == {"input": 4, "output": 1}
    with pytest.raises(EventError, match="sent together"):
        _observation(promptVersion=3)


# --- parse_batch: the records of a batch are checked against the contract at once ----------------


def _events(*bodies):
    return [
        {"id": f"e{i}", "type": "span-create", "timestamp": "2026-01-01T00:00:00Z", "body": body}
        for i, body in enumerate(bodies)
    ]


def _deep(levels):
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


BATCH = _events(
    {"id": "ok-1", "traceId": "t"},
    {"id": "deep", "traceId": "t", "input": _deep(101)},
    {"id": "ok-2", "traceId": "t", "output": {"content": "x"}},
    {"id": "big", "traceId": "t", "metadata": {"n": 2**64}},
    {"id": "ok-3", "traceId": "t", "input": _deep(100)},
) + [{"id": "s", "type": "sdk-log", "timestamp": "2026-01-01T00:00:00Z", "body": {}}]


def _one_by_one(events):
    """Each event parsed alone: its record checked on its own, as `check_record` does."""
    successes, errors, records = [], [], []
    for event in events:
        parsed = parse_batch([event])
        successes += parsed.successes
        errors += parsed.errors
        records += parsed.observations
    return successes, errors, records


def test_records_refused_by_the_contract_fail_only_their_event_in_order():
    parsed = parse_batch(BATCH)
    assert (parsed.successes, parsed.errors, parsed.observations) == _one_by_one(BATCH)
    assert parsed.successes == ["e0", "e2", "e4", "s"]
    assert [error["id"] for error in parsed.errors] == ["e1", "e3"]
    assert parsed.observation_events == [0, 1, 2]


def test_a_check_that_breaks_on_the_batch_checks_each_record_on_its_own(monkeypatch):
    from ingest.adapters import langfuse

    def broken(records):
        raise TypeError("a record no adapter builds")

    expected = parse_batch(BATCH)
    monkeypatch.setattr(langfuse, "check_records", broken)
    parsed = parse_batch(BATCH)
    assert (parsed.successes, parsed.errors, parsed.observations) == (
        expected.successes, expected.errors, expected.observations,
    )


def test_a_record_that_breaks_the_check_is_a_500_for_its_event_alone(monkeypatch):
    from ingest.adapters import langfuse

    real = langfuse.check_record

    def check(record):
        if record["id"] == "ok-2":
            raise TypeError("bug")
        return real(record)

    monkeypatch.setattr(langfuse, "check_records", lambda records: 1 / 0)
    monkeypatch.setattr(langfuse, "check_record", check)
    parsed = parse_batch(BATCH)
    assert parsed.successes == ["e0", "e4", "s"]
    assert [(error["id"], error["status"]) for error in parsed.errors] == [("e1", 400), ("e2", 500), ("e3", 400)]


# --- `_id`: a str id of 3 characters up to the limit is returned as sent; the rest takes `_string` --


class _Text(str):
    pass


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("x" * MAX_ID, "x" * MAX_ID),
        ("ab", "ab"),
        ("a", "a"),
        ("", None),
        (None, None),
        (7, "7"),
        (_Text("abc"), "abc"),
    ],
)
def test_an_id_is_the_string_sent_or_the_general_reading(value, expected):
    assert _id({"k": value}, "k") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (".", "cannot be"),
        ("..", "cannot be"),
        (_Text(".."), "cannot be"),
        ("x" * (MAX_ID + 1), "longer than"),
        (True, "must be a string"),
        ({"a": 1}, "must be a string"),
    ],
)
def test_an_id_the_general_reading_refuses_is_still_refused(value, message):
    with pytest.raises(EventError, match=message):
        _id({"k": value}, "k")
    with pytest.raises(EventError, match="is required"):
        _id({}, "k", required=True)


# --- `_non_negative_int`: an int in range is returned as sent; the message names prefix + key ------


@pytest.mark.parametrize("value", [0, 1, 371, MAX_BIGINT])
def test_a_count_in_range_is_returned_as_sent(value):
    assert _non_negative_int(value, "k", "usageDetails.") is value


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("12", 12), (3.0, 3), (2**31, 2**31)]
)
def test_other_counts_are_still_converted(value, expected):
    assert _non_negative_int(value, "k") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "`usageDetails.k` must be a non-negative integer"),
        (-1, "`usageDetails.k` must be a non-negative integer"),
        (1.5, "`usageDetails.k` must be a non-negative integer"),
        ("x", "`usageDetails.k` must be a non-negative integer"),
        (MAX_BIGINT + 1, "`usageDetails.k` is too large"),
    ],
)
def test_a_bad_count_is_refused_naming_the_whole_field(value, message):
    with pytest.raises(EventError) as caught:
        _non_negative_int(value, "k", "usageDetails.")
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"prompt_tokens": -1}, "`usageDetails.prompt_tokens` must be a non-negative integer"),
        ({"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": "x"}},
         "`usageDetails.prompt_tokens_details.cached_tokens` must be a non-negative integer"),
        ({"prompt_tokens": 5, "prompt_tokens_details": [1]}, "`usageDetails.prompt_tokens_details` must be an object"),
        ({"prompt_tokens": 5, "total_tokens": True}, "`usageDetails.total_tokens` must be a non-negative integer"),
        ({"prompt_tokens": 5, "audio": -2}, "`usageDetails.audio` must be a non-negative integer"),
        ({"input": 1.5}, "`usageDetails.input` must be a non-negative integer"),
    ],
)
def test_a_bad_usage_count_names_its_field(usage, message):
    with pytest.raises(EventError) as caught:
        _usage_details(usage)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 371, "completion_tokens": 24, "total_tokens": 395,
          "prompt_tokens_details": {"cached_tokens": 0}},
         {"input_cached_tokens": 0, "input": 371, "output": 24, "total": 395}),
        ({"prompt_tokens": 10, "prompt_tokens_details": {}, "completion_tokens_details": {"reasoning_tokens": 4},
          "completion_tokens": 6, "audio": 2, "meta": {"a": 1}},
         {"input": 10, "output_reasoning_tokens": 4, "output": 2, "audio": 2}),
        ({"input_tokens": 9, "output_tokens": 3, "total_tokens": 12, "input_tokens_details": {"cached_tokens": 4},
          "prompt_tokens_details": 7},
         {"input_cached_tokens": 4, "input": 5, "output": 3, "total": 12, "prompt_tokens_details": 7}),
    ],
)
def test_openai_usage_is_read_key_by_key_in_order(usage, expected):
    result = _usage_details(usage)
    assert result == expected
    assert list(result) == list(expected)


# --- `_unknown`: a body of schema fields only has nothing unknown; others keep theirs ------------


def test_unknown_fields_are_kept_and_schema_fields_left_out():
    from ingest.adapters.langfuse import OBSERVATION_FIELDS, TRACE_FIELDS, _unknown

    assert _unknown({"id": "a", "name": None, "input": 1}, OBSERVATION_FIELDS) == {}
    assert _unknown({"id": "a", "extra": 1, "gone": None, "tags": ["x"]}, OBSERVATION_FIELDS) == {
        "extra": 1, "tags": ["x"],
    }
    assert _unknown({"tags": ["x"], "other": None}, TRACE_FIELDS) == {}


# --- `_envelope`: the exact types settled without isinstance; subclasses still accepted ---------


class _Map(dict):
    pass


def test_envelopes_of_subclassed_values_are_read_and_bad_ones_refused():
    from ingest.adapters.langfuse import _envelope

    event = _Map(id=_Text("e1"), type=_Text("span-create"), timestamp="2026-01-01T00:00:00Z", body=_Map(id="s"))
    env_id, event_type, _, body = _envelope(event)
    assert (env_id, event_type, body) == ("e1", "span-create", {"id": "s"})
    for bad, message in (
        ({**event, "id": 5}, "event `id`"),
        ({**event, "id": ""}, "event `id`"),
        ({**event, "id": "a\r"}, "event `id`"),
        ({**event, "type": None}, "`type` is required"),
        ({**event, "body": []}, "`body` must be an object"),
        (["not", "an", "object"], "each batch item"),
    ):
        with pytest.raises(EventError, match=message):
            _envelope(bad)


# --- parse_batch's order: creates before updates, each by timestamp, then by position -----------


def test_events_are_ordered_creates_first_then_by_time_then_position():
    def event(i, kind, ts):
        return {"id": f"e{i}", "type": kind, "timestamp": ts, "body": {"id": f"o{i}", "traceId": "t"}}

    parsed = parse_batch(
        [
            event(0, "span-update", "2026-01-01T00:00:00Z"),
            event(1, "span-create", "2026-01-01T00:00:02Z"),
            event(2, "span-create", "2026-01-01T00:00:01+00:00"),
            event(3, "span-create", "2026-01-01T02:00:01+02:00"),
            event(4, "span-update", "2025-12-31T00:00:00Z"),
            event(5, "span-create", "2026-01-01T00:00:01Z"),
        ]
    )
    assert parsed.successes == ["e2", "e3", "e5", "e1", "e4", "e0"]


# --- `trace_record`: the fields written out read, and refuse, as `_put` did ----------------------


def test_trace_fields_are_read_and_refused_in_order():
    from datetime import UTC, datetime

    from ingest.adapters.langfuse import trace_record

    at = datetime(2026, 1, 1, tzinfo=UTC)
    full = trace_record(
        {"id": "t1", "name": "n", "userId": "u", "sessionId": "s", "release": "r", "version": "v",
         "environment": "Prod", "public": False, "tags": ["a", _Text("b")], "input": 0, "output": "",
         "metadata": None, "input2": None, "extra": 3},
        envelope_ts=at,
    )
    assert full == {"id": "t1", "timestamp": at, "name": "n", "user_id": "u", "session_id": "s", "release": "r",
                    "version": "v", "environment": full["environment"], "public": False, "tags": ["a", "b"],
                    "input": 0, "output": "", "metadata": {"extra": 3}}
    assert trace_record({"id": "t1", "input": None, "output": None}, envelope_ts=at) == {"id": "t1", "timestamp": at}
    for body, message in (
        ({"name": 1.5j}, "`name` must be a string"),
        ({"name": True, "userId": True}, "`name`"),
        ({"userId": [1]}, "`userId`"),
        ({"public": "yes"}, "`public` must be true or false"),
        ({"tags": ["a", 1]}, "`tags` must be a list of strings"),
        ({"tags": "a"}, "`tags` must be a list of strings"),
    ):
        with pytest.raises(EventError, match=message):
            trace_record({"id": "t1", **body}, envelope_ts=at)
