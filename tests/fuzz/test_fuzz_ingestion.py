"""Property-based fuzzing of `POST /api/public/ingestion` (every Langfuse event type).

Batches mix valid events with invalid ones (wrong types, numbers beyond 2^63 and 2^64, odd and
out-of-range timestamps, deep nesting, huge strings, NUL and lone surrogates, ids with `/` and `..`).
The properties, per request: never a 500 nor a failed batch (always 207); every event answered once;
a valid event stored and readable back through the read API; an invalid one rejected with a 4xx entry
of its own while the rest of its batch is stored; and the read API still answers afterwards.
"""

from __future__ import annotations

import os
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz_support import (
    EITHER,
    OK,
    REJECT,
    CountingClient,
    Deep,
    combine,
    describe_known,
    encode,
    fuzz_settings,
    known,
    v,
)

# Real transactions, as in production: each request commits or fails on its own (inside one test-wide
# transaction, a database error that a view turns into a 4xx would poison every later request).
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


# ≥ 10,000 requests across the fuzz suite (see tests/fuzz/test_fuzz_api.py): this test makes ~1.9 per example.
EXAMPLES = int(os.environ.get("FUZZ_N", "1700"))
MIN_REQUESTS = 2900

# --- field values --------------------------------------------------------------------------------

PLAIN = string.ascii_letters + string.digits + "-_:"

ids = st.one_of(
    st.uuids().map(lambda u: v(u.hex)),
    st.uuids().map(lambda u: v(str(u))),
    st.text(PLAIN, min_size=1, max_size=40).map(v),
    st.text(st.characters(exclude_characters="\x00/"), min_size=1, max_size=30)
    .filter(lambda s: s.strip(".") and s.strip())
    .map(lambda s: v(s, EITHER)),
    known(
        st.sampled_from(["a/b", "../x", "..", "x/../y", "/lead", "%2F"]).map(
            lambda s: v(s + uuid.uuid4().hex[:4], EITHER, "id-path")
        )
    ),
    st.integers(0, 10**6).map(lambda n: v(n, EITHER)),
    st.integers(201, 800).map(lambda n: v("i" * n, REJECT)),
    st.sampled_from([{"a": 1}, [1], True, 1.5e300]).map(
        lambda x: v(x, REJECT if not isinstance(x, float) else EITHER)
    ),
)


def _iso(moment: datetime, offset_minutes: int, style: int) -> str:
    moment = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    if style == 0:
        return moment.isoformat()
    if style == 1:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=None).isoformat()  # no offset: read as UTC


timestamps = st.one_of(
    st.builds(
        _iso,
        st.datetimes(datetime(2000, 1, 1), datetime(2035, 1, 1), timezones=st.just(UTC)),
        st.integers(-14 * 60, 14 * 60),
        st.integers(0, 2),
    ).map(v),
    st.integers(10**9, 2 * 10**9).map(v),  # epoch seconds
    st.integers(10**12, 2 * 10**12).map(v),  # epoch milliseconds
    st.floats(10**9, 2 * 10**9).map(v),
    known(
        st.sampled_from(
            [
                "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
                "9999-12-31T23:30:00-01:00",  # after 9999 in UTC
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999999Z",
            ]
        ).map(lambda s: v(s, EITHER, "ts-range"))
    ),
    known(
        st.sampled_from([1e15, -1e12, 1e20, -1, 0, 2**63, 2**64 + 1]).map(
            lambda n: v(n, EITHER, "ts-numeric")
        )
    ),
    st.sampled_from(["yesterday", "2026-13-45T00:00:00Z", "", "10000-01-01T00:00:00Z", "-0001-01-01"]).map(
        lambda s: v(s, REJECT)
    ),
    st.sampled_from([{}, [], True, {"t": 1}]).map(lambda x: v(x, REJECT)),
)

texts = st.one_of(
    st.text(max_size=40).map(v),  # any unicode, NUL included
    st.text(st.characters(categories=["Cs", "Ll"]), min_size=1, max_size=10).map(v),  # lone surrogates
    st.integers(-(10**6), 10**6).map(v),  # numbers are written as strings
)


def bounded_text(limit: int):
    return st.one_of(
        texts,
        st.just(v("n" * limit)),
        st.just(v("n" * (limit + 1), REJECT)),
        st.sampled_from([{"a": 1}, ["x"], True]).map(lambda x: v(x, REJECT)),
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),  # beyond 2^63 and 2^64: kept in JSON as numbers
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.text(st.characters(categories=["Cs", "Lu"]), max_size=5),
)
json_values = st.one_of(
    st.recursive(
        json_scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    ).map(v),
    st.sampled_from([1_000, 30_000, 300_000]).map(lambda n: v("h" * n)),  # huge, under the body limit
    st.just(v(Deep(15))),  # valid anywhere: metadata (where unknown fields go) nests at most 20 levels
    st.just(v(Deep(40), EITHER)),  # fine in input/output, over the metadata cap in metadata
    # Deeper than the JSON encoder (255) but within what the body parser reads (1,024): refused per
    # event. A body nested deeper than the parser reads is malformed as a whole (a 400 for the request,
    # test_a_body_nested_beyond_the_parser_limit_is_a_clear_400).
    known(st.sampled_from([Deep(400), Deep(1000, "{")]).map(lambda d: v(d, EITHER, "deep"))),
)

token_counts = st.one_of(
    st.integers(0, 10**7).map(v),
    st.integers(0, 10**6).map(lambda n: v(str(n))),
    st.sampled_from([-1, 1.5, "many", True]).map(lambda x: v(x, REJECT)),
    known(
        st.sampled_from([2**63 - 1, 2**63, 2**64, 2**64 + 7, 10**30, 1e300]).map(
            lambda n: v(n, EITHER, "big-number")
        )
    ),
)
costs = st.one_of(
    st.floats(0, 1000).map(v),
    st.integers(0, 1000).map(v),
    st.sampled_from([-0.5, "1.0", True, [1]]).map(lambda x: v(x, REJECT)),
    known(st.sampled_from([1e10, 2**63, 2**64 + 1, 10**30, 1e300]).map(lambda n: v(n, EITHER, "big-number"))),
)
levels = st.one_of(
    st.sampled_from(["DEBUG", "DEFAULT", "WARNING", "ERROR"]).map(v),
    st.sampled_from(["x", "error", 5, True]).map(lambda x: v(x, REJECT)),
    known(st.sampled_from([["x"], {"a": 1}]).map(lambda x: v(x, EITHER, "level-list"))),
)


KEYS = st.text(PLAIN, min_size=1, max_size=12)


@st.composite
def mapping_of(draw, values, keys=KEYS):
    items = draw(st.lists(st.tuples(keys, values), max_size=4))
    parts = [p for _, p in items]
    return v({k: p.value for k, p in items}, *_merge(parts))


def _merge(parts):
    expect, known = combine(parts)
    return expect, (next(iter(known)) if known else None)


usage_details = st.one_of(
    mapping_of(token_counts, st.sampled_from(["input", "output", "total", "input_cached_tokens", "x"])),
    # OpenAI's shape (details subtracted from their totals): stored or rejected, never a failed batch.
    st.builds(
        lambda p, c, t: v(
            {
                "prompt_tokens": p.value,
                "completion_tokens": c.value,
                "total_tokens": t.value,
                "prompt_tokens_details": {"cached_tokens": 1},
            },
            EITHER,
            _merge([p, c, t])[1],
        ),
        token_counts,
        token_counts,
        token_counts,
    ),
)
legacy_usage = st.builds(
    lambda i, o, unit, ic: v(
        {"input": i.value, "output": o.value, "unit": unit.value, "inputCost": ic.value},
        *_merge([i, o, unit, ic]),
    ),
    token_counts,
    token_counts,
    st.one_of(st.sampled_from(["TOKENS", "CHARACTERS", None]).map(v), st.just(v("BYTES", REJECT))),
    costs,
)


# --- events --------------------------------------------------------------------------------------


class Ev:
    """One generated batch item and what the server must do with it."""

    def __init__(self, kind, event, parts, *, read_id=None, envelope_ok=True):
        self.kind = kind  # trace | observation | score | log | bad
        self.event = event
        self.expect, self.known = combine(parts)
        self.read_id = read_id  # the body id the read API must know if the event is stored
        self.envelope_ok = envelope_ok


def _optional(draw, body, parts, key, strategy, p=0.35):
    if draw(st.floats(0, 1)) < p:
        value = draw(strategy)
        body[key] = value.value
        parts.append(value)


def _envelope(draw, event_type, body, parts, timestamp=None):
    ts = timestamp or draw(st.one_of(st.just(v(datetime.now(UTC).isoformat())), timestamps))
    parts.append(ts)
    return {"id": uuid.uuid4().hex, "type": event_type, "timestamp": ts.value, "body": body}


def _body_id(draw, body, parts, *, required_on_update=False):
    if draw(st.floats(0, 1)) < 0.9:
        ident = draw(ids)
        body["id"] = ident.value
        parts.append(ident)
        if ident.expect != REJECT:
            return str(ident.value)
    elif required_on_update:
        parts.append(v(None, REJECT))
    return None


@st.composite
def trace_events(draw):
    body, parts = {}, []
    read_id = _body_id(draw, body, parts)
    _optional(draw, body, parts, "name", bounded_text(1000), 0.7)
    _optional(draw, body, parts, "timestamp", timestamps)
    for key in ("userId", "sessionId"):
        _optional(draw, body, parts, key, bounded_text(1000))
    for key in ("release", "version"):
        _optional(draw, body, parts, key, bounded_text(500), 0.2)
    for key in ("input", "output", "metadata"):
        _optional(draw, body, parts, key, json_values)
    _optional(
        draw,
        body,
        parts,
        "tags",
        st.one_of(
            st.lists(st.text(max_size=10), max_size=4).map(v),
            st.sampled_from([["a", 1], "tag"]).map(lambda x: v(x, REJECT)),
        ),
        0.2,
    )
    _optional(draw, body, parts, "public", st.one_of(st.booleans().map(v), st.just(v("yes", REJECT))), 0.1)
    _optional(draw, body, parts, "environment", st.one_of(st.text(max_size=50), st.integers()).map(v), 0.2)
    _optional(draw, body, parts, "unknownField", json_values, 0.1)
    return Ev("trace", _envelope(draw, "trace-create", body, parts), parts, read_id=read_id)


OBSERVATION_TYPES = [
    "span-create",
    "span-update",
    "generation-create",
    "generation-update",
    "event-create",
    "agent-create",
    "tool-create",
    "chain-create",
    "retriever-create",
    "evaluator-create",
    "embedding-create",
    "guardrail-create",
    "observation-create",
    "observation-update",
]


@st.composite
def observation_events(draw, event_type=None, body_id=None):
    event_type = event_type or draw(st.sampled_from(OBSERVATION_TYPES))
    body, parts = {}, []
    update = event_type.endswith("-update")
    if body_id is not None:
        body["id"], read_id = body_id, body_id
    else:
        read_id = _body_id(draw, body, parts, required_on_update=update)
    if event_type.startswith("observation-"):
        legacy = draw(
            st.one_of(
                st.sampled_from(["SPAN", "GENERATION", "EVENT", "TOOL"]).map(v),
                st.sampled_from(["span", None, 3]).map(lambda x: v(x, REJECT)),
            )
        )
        body["type"] = legacy.value
        parts.append(legacy)
    if draw(st.floats(0, 1)) < 0.8:
        trace = draw(ids)
        body["traceId"] = trace.value
        parts.append(trace)
    _optional(draw, body, parts, "name", bounded_text(1000), 0.7)
    _optional(draw, body, parts, "parentObservationId", ids, 0.2)
    for key in ("startTime", "endTime", "completionStartTime"):
        _optional(draw, body, parts, key, timestamps, 0.3)
    for key in ("input", "output", "metadata"):
        _optional(draw, body, parts, key, json_values)
    _optional(draw, body, parts, "level", levels, 0.25)
    _optional(draw, body, parts, "statusMessage", texts, 0.2)
    _optional(draw, body, parts, "version", bounded_text(500), 0.1)
    _optional(draw, body, parts, "environment", st.text(max_size=50).map(v), 0.1)
    if "generation" in event_type or event_type.startswith(("observation", "agent", "tool")):
        _optional(draw, body, parts, "model", bounded_text(500), 0.5)
        _optional(
            draw,
            body,
            parts,
            "modelParameters",
            st.one_of(
                st.dictionaries(
                    st.text(PLAIN, max_size=10), st.one_of(st.floats(0, 2), st.text(max_size=5)), max_size=3
                ).map(v),
                st.sampled_from([["t"], "hot"]).map(lambda x: v(x, REJECT)),
            ),
            0.3,
        )
        _optional(draw, body, parts, "usageDetails", usage_details, 0.4)
        if not body.get("usageDetails"):  # `usage` is read only without `usageDetails`
            _optional(draw, body, parts, "usage", legacy_usage, 0.3)
        _optional(draw, body, parts, "costDetails", mapping_of(costs), 0.3)
        if draw(st.floats(0, 1)) < 0.2:
            prompt = draw(
                st.one_of(
                    st.tuples(st.text(PLAIN, min_size=1, max_size=10), st.integers(0, 100)).map(
                        lambda t: v({"promptName": t[0], "promptVersion": t[1]})
                    ),
                    st.sampled_from(
                        [
                            {"promptName": "p"},
                            {"promptVersion": 1},
                            {"promptName": "p", "promptVersion": -1},
                            {"promptName": "p", "promptVersion": "2"},
                            {"promptName": "p", "promptVersion": 2**40},
                        ]
                    ).map(lambda x: v(x, REJECT)),
                )
            )
            body.update(prompt.value)
            parts.append(prompt)
    return Ev("observation", _envelope(draw, event_type, body, parts), parts, read_id=read_id)


@st.composite
def create_then_update(draw):
    """The same observation created and updated in one batch, as the v2 SDK sends it."""
    kind = draw(st.sampled_from(["span", "generation"]))
    body_id = uuid.uuid4().hex
    return [
        draw(observation_events(f"{kind}-create", body_id)),
        draw(observation_events(f"{kind}-update", body_id)),
    ]


score_values = st.one_of(
    st.tuples(st.sampled_from([None, "NUMERIC"]), st.floats(-1e12, 1e12)).map(v),
    st.tuples(st.sampled_from([None, "NUMERIC"]), st.integers(-(2**70), 2**70)).map(v),
    st.tuples(st.just("BOOLEAN"), st.sampled_from([0, 1, True, False, 0.0])).map(v),
    st.tuples(st.sampled_from([None, "CATEGORICAL"]), st.text(min_size=0, max_size=30)).map(v),
    st.tuples(st.just("TEXT"), st.text(min_size=1, max_size=30)).map(v),
    st.tuples(st.just("CORRECTION"), st.text(min_size=1, max_size=30)).map(v),
    st.sampled_from(
        [
            ("NUMERIC", "high"),
            ("BOOLEAN", 2),
            ("BOOLEAN", "true"),
            ("TEXT", ""),
            ("TEXT", "t" * 501),
            ("CATEGORICAL", 3.5),
            ("WEIRD", 1),
            (None, None),
            (None, {"a": 1}),
            (5, 1),
        ]
    ).map(lambda t: v(t, REJECT)),
    known(st.sampled_from([(["NUMERIC"], 1), ({"t": 1}, "x")]).map(lambda t: v(t, EITHER, "score-type"))),
)


@st.composite
def score_events(draw):
    body, parts = {}, []
    read_id = _body_id(draw, body, parts)
    name = draw(
        st.one_of(
            st.text(min_size=1, max_size=30).map(v),
            st.sampled_from([None, "", {"n": 1}, "n" * 501]).map(lambda x: v(x, REJECT)),
        )
    )
    parts.append(name)
    if name.value is not None:
        body["name"] = name.value
    typed = draw(score_values)
    data_type, value = typed.value
    parts.append(typed)
    if data_type is not None:
        body["dataType"] = data_type
    if value is not None:
        body["value"] = value
    target = draw(st.sampled_from(["trace", "session", "run", "observation", "none", "orphan"]))
    if target in ("trace", "observation"):
        trace = draw(ids)
        body["traceId"] = trace.value
        parts.append(trace)
    if target == "observation":
        body["observationId"] = uuid.uuid4().hex
    if target == "session":
        body["sessionId"] = draw(st.text(PLAIN, min_size=1, max_size=20))
    if target == "run":
        body["datasetRunId"] = uuid.uuid4().hex
    if target in ("none", "orphan"):
        parts.append(v(None, REJECT))
        if target == "orphan":
            body["observationId"] = uuid.uuid4().hex
    _optional(draw, body, parts, "comment", st.one_of(texts, st.just(v({"c": 1}, REJECT))), 0.3)
    _optional(draw, body, parts, "metadata", json_values, 0.3)
    _optional(draw, body, parts, "timestamp", timestamps, 0.2)
    _optional(
        draw,
        body,
        parts,
        "source",
        st.one_of(
            st.sampled_from(["API", "EVAL", "ANNOTATION"]).map(v),
            st.just(v("HUMAN", REJECT)),
            known(st.just(v(["API"], EITHER, "score-type"))),
        ),
        0.2,
    )
    _optional(draw, body, parts, "environment", st.text(max_size=20).map(v), 0.1)
    return Ev("score", _envelope(draw, "score-create", body, parts), parts, read_id=read_id)


@st.composite
def log_events(draw):
    log = draw(json_values)
    parts = [log]
    return Ev("log", _envelope(draw, "sdk-log", {"log": log.value}, parts), parts)


@st.composite
def broken_events(draw):
    """Envelopes that are not events at all; each must be rejected on its own."""
    choice = draw(st.integers(0, 6))
    good_id = uuid.uuid4().hex
    event = [
        lambda: {
            "id": good_id,
            "type": "dataset-run-item-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {},
        },
        lambda: {"id": good_id, "type": "span-create", "timestamp": "2026-01-01T00:00:00Z", "body": [1]},
        lambda: {"id": good_id, "type": "nope", "timestamp": "2026-01-01T00:00:00Z", "body": {}},
        lambda: {"id": good_id, "type": 7, "timestamp": "2026-01-01T00:00:00Z", "body": {}},
        lambda: {"id": good_id, "type": "trace-create", "body": {}},
        lambda: {"type": "trace-create", "timestamp": "2026-01-01T00:00:00Z", "body": {}},
        lambda: draw(st.sampled_from([None, 1, "event", [], {"id": "\r" + good_id}])),
    ][choice]()
    envelope_ok = choice < 5
    return Ev("bad", event, [v(None, REJECT)], envelope_ok=envelope_ok)


single_events = st.one_of(
    trace_events(), observation_events(), score_events(), log_events(), broken_events()
).map(lambda e: [e])
batches = st.lists(st.one_of(single_events, single_events, create_then_update()), min_size=1, max_size=5).map(
    lambda groups: [e for group in groups for e in group]
)

LIST_EVERY = 8
LIST_PATHS = (
    "/api/public/traces?limit=5&fields=core",
    "/api/public/observations?limit=5",
    "/api/public/v2/observations?limit=5",
    "/api/public/sessions?limit=5",
    "/api/public/scores?limit=5",
)
READ_PATHS = {
    "trace": "/api/public/traces/",
    "observation": "/api/public/observations/",
    "score": "/api/public/scores/",
}


def _fail(message, events):
    known = frozenset().union(*(e.known for e in events))
    pytest.fail(f"{message}\n-> {describe_known(known)}", pytrace=False)


@pytest.fixture
def fuzz(api_key):
    client = CountingClient("ingestion")
    client.defaults["HTTP_AUTHORIZATION"] = api_key.basic
    return client


def test_fuzz_ingestion_batches(fuzz):
    start = fuzz.count
    examples = []

    @fuzz_settings(EXAMPLES)
    @given(batch=batches)
    def check(batch):
        body = encode({"batch": [e.event for e in batch], "metadata": {"sdk_name": "fuzz"}})
        response = fuzz.post("/api/public/ingestion", body, content_type="application/json")
        if response.status_code != 207:
            _fail(f"batch answered {response.status_code}: {response.content[:300]!r}", batch)
        result = response.json()
        successes = {item["id"] for item in result["successes"]}
        errors = {item["id"]: item for item in result["errors"]}
        if len(result["successes"]) + len(result["errors"]) != len(batch):
            _fail(f"{len(batch)} events, {len(successes)} successes + {len(errors)} errors", batch)
        for event in batch:
            if not event.envelope_ok:
                continue
            env_id = event.event["id"]
            if event.expect == OK and env_id not in successes:
                _fail(
                    f"valid {event.event['type']} rejected: {errors.get(env_id)}; event {event.event!r:.400}",
                    [event],
                )
            if event.expect == REJECT:
                if env_id not in errors:
                    _fail(f"invalid {event.event.get('type')} accepted: {event.event!r:.400}", [event])
                if not 400 <= errors[env_id]["status"] < 500:
                    _fail(f"invalid event answered {errors[env_id]}", [event])
            if env_id in successes and event.read_id is not None and event.kind in READ_PATHS:
                read = fuzz.get(READ_PATHS[event.kind] + quote(_as_stored(event.read_id), safe=""))
                if read.status_code != 200:
                    _fail(
                        f"stored {event.kind} {event.read_id!r} reads back {read.status_code}: "
                        f"{read.content[:200]!r}",
                        [event],
                    )
        # Whatever was stored, the read API still answers (every few batches: lists are the dearest
        # requests, and what broke them stays in the database for the next check).
        examples.append(batch)
        if len(examples) % LIST_EVERY == 0:
            recent = [e for b in examples[-LIST_EVERY:] for e in b]
            for path in LIST_PATHS:
                read = fuzz.get(path)
                if read.status_code != 200:
                    _fail(f"{path} answered {read.status_code}: {read.content[:200]!r}", recent)

    check()
    made = fuzz.count - start
    print(f"\nfuzz ingestion: {made} requests")
    assert made >= MIN_REQUESTS
    assert fuzz.get("/api/public/health").status_code == 200


def _as_stored(text: str) -> str:
    """A lone surrogate is stored as U+FFFD (text cannot hold one; tenancy.http.body.loads_json)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_a_body_nested_beyond_the_parser_limit_is_a_clear_400(client, api_key, opening):
    closing = "]" if opening == "[" else "}"
    value = opening * 30_000 + "1" + closing * 30_000
    body = '{"batch":[{"id":"e1","type":"trace-create","timestamp":"2026-01-01T00:00:00Z","body":{"id":"t1","metadata":%s}}]}' % value
    response = client.post("/api/public/ingestion", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 400
    assert "depth" in response.json()["message"]
