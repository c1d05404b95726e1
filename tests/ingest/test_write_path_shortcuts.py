"""The write path's per-row shortcuts (issue 13, web-tier CPU) against the one rule each stands in for:
what is stored must not move by a digit.

- `writer._normalise` looks each key up once (`_key_actions`) and takes the text of a char column and
  a whole number within its column's range itself: the result must be `_normalised_value` applied to
  every key, then the client-cost rule (`_client_cost`) — the same values, of the same types, or the
  same refusal.
- `pricing._cost` multiplies by rates moved six places once per snapshot: the same Decimal, digits and
  exponent, as the count times the per-million rate moved six places after.
- `stages.price.to_columns` reads a catalog result straight from its per-kind costs: the same columns
  as the generic reading of its `details` / `input_cost` / `output_cost` / `total_cost`.
- `rollups.Deltas` sums each row's calls column by column at the end: the same ints and Decimals as a
  running sum per name, `sign * value` at a time.
- `writer.derive_total`: the reported counts summed from 0, None when none is reported.
- `writer._NONEMPTY` / `writer._METADATA`: `_normalise` keeps a non-empty JSON map or list of a
  "nonempty" key, and a metadata map, itself (the spectrum test above covers them).
- `writer._JsonText`: the writer's documents reach PostgreSQL as the very bytes, type and format of
  the `str` they replace (`_dump`).
- `writer._NUL_ESCAPE`: finds a document's NUL escapes exactly where `b"\\u0000" in document` does.
- `rollups._hour`: the positional constructor gives `replace`'s value, type, zone and fold.
- `writer._insert_rows`: each new row built as one record's was (`_insert_row`), key order included,
  with a fresh map or list for every defaulted JSON column.
- `writer._normalise` copies the record and changes only what is not stored as sent: the rule's keys,
  values and key order (the documents' bytes), for records of many keys at once.
- `rollups.Deltas.add` takes a positive int token count within the cap as it is: `min(v or 0, cap)`
  of each kind, value and type; `rollups._us` reads a span's whole µs by `// 1 µs`.
- `rollups.Deltas.rows` sorts the daily user keys (date, user id) by their natural order: the order
  of `_sort_key` (the lock order).
- `rollups.Deltas.add` builds one hour value per UTC hour of fold 0 (`Deltas.hours`): each call is
  counted under `_hour(start)`, value, type, zone and fold.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import orjson
import psycopg
import pytest
from psycopg.adapt import PyFormat, Transformer

from ingest import rollups, writer
from ingest.stages import price as costs
from pricing import pricing

T0 = datetime(2026, 12, 6, 12, 30, tzinfo=UTC)

SPECTRUM = [
    None, "", "abc", "é" * 300, "x" * 5000, 0, 1, -1, 7, 2**31 - 1, 2**31, 2**62, 2**63 - 1, 2**63, -(2**63),
    True, False, 1.0, 3.0, 1.5, -2.0, 1e30, float("nan"), Decimal("1.5"), Decimal("0.0000000001"),
    Decimal(10) ** 10, Decimal(10) ** 10 - 1, {}, {"a": 1}, {"m": {"n": [1, 2]}}, [], ["b", "a", "b"],
    [3, "3"], datetime(2026, 1, 1), T0, ("t",),
]


def _outcome(function, *args):
    try:
        value = function(*args)
    except Exception as exc:  # noqa: BLE001 - the refusal itself is what is compared
        return ("refused", type(exc), str(exc))
    return ("stored", _typed(value))


def _typed(value):
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, Decimal):
        return (Decimal, value.as_tuple())
    if isinstance(value, float) and value != value:
        return (float, "nan")
    return (type(value), value)


def _by_the_rule(record: dict, table) -> dict:
    """`_normalise` as the rule states it: `_normalised_value` for every value sent, then the
    client-cost rule for calls."""
    out = {}
    for key, value in record.items():
        if value is None:
            continue
        value = writer._normalised_value(key, value, table)
        if value is not writer._SKIP:
            out[key] = value
    if table is writer.OBSERVATIONS:
        writer._client_cost(out)
    return out


@pytest.mark.parametrize("table", [writer.TRACES, writer.OBSERVATIONS, writer.SCORES], ids=lambda t: t.db_table)
def test_normalise_is_normalised_value_for_every_key_and_value(table):
    actions = writer._key_actions(table)
    compared = 0
    for key in sorted(table.keys - {"id", "trace_id"}):
        for value in SPECTRUM:
            record = {"id": "r-1", "trace_id": "t-1", key: value} if "trace_id" in table.keys else {"id": "r-1", key: value}
            fast = _outcome(writer._normalise, dict(record), table, actions)
            rule = _outcome(_by_the_rule, dict(record), table)
            assert fast == rule, (key, value)
            compared += 1
    assert compared > 300


def test_normalise_takes_client_costs_as_the_rule_does():
    actions = writer._key_actions(writer.OBSERVATIONS)
    for cost in ({"input_cost": 0.5}, {"cost_details": {"input": 1, "output": 2.5}}, {"total_cost": Decimal("3.25")},
                 {"output_cost": 2, "cost_details": {"total": 9}}, {"cost_details": {}}, {"usage_details": {"a": 1}}):
        record = {"id": "o-1", "trace_id": "t-1", "type": "GENERATION", **cost}
        assert _outcome(writer._normalise, dict(record), writer.OBSERVATIONS, actions) == _outcome(
            _by_the_rule, dict(record), writer.OBSERVATIONS
        ), cost


def _price(rng: random.Random, **rates) -> pricing.Price:
    def rate():
        return Decimal(rng.randrange(0, 10**rng.randrange(1, 16))).scaleb(-rng.randrange(0, 12))

    return pricing.Price(
        id=uuid.uuid4(), project_id=None, provider="p", model_name="m", match_pattern="^m$", effective_from=T0,
        input_price=rates.get("input", rate()), cached_input_price=rates.get("cached_input", rng.choice([None, rate()])),
        cache_write_price=rates.get("cache_write", rng.choice([None, rate()])), output_price=rates.get("output", rate()),
        reasoning_price=rates.get("reasoning", rng.choice([None, rate()])), source="catalog",
    )


def _tokens(rng: random.Random) -> dict[str, int]:
    kinds = rng.sample(pricing.USAGE_KINDS, rng.randrange(0, len(pricing.USAGE_KINDS) + 1))
    return {kind: rng.choice([0, 1, rng.randrange(10**6), rng.randrange(2**63)]) for kind in kinds}


def test_costs_from_rates_per_token_are_the_per_million_products_moved():
    rng = random.Random(13)
    for _ in range(3000):
        price = _price(rng)
        tokens = _tokens(rng)
        result = pricing._cost(price, dict(tokens), pricing._rates(price))
        for kind, count in tokens.items():
            expected = (Decimal(count) * price.rate(kind)).scaleb(-6)
            assert result.costs[kind].as_tuple() == expected.as_tuple(), (kind, count, price.rate(kind))
        assert result.total.as_tuple() == sum(
            ((Decimal(c) * price.rate(k)).scaleb(-6) for k, c in tokens.items()), Decimal(0)
        ).as_tuple()
        assert result.tokens == tokens


def test_catalog_results_become_the_columns_of_the_generic_reading():
    rng = random.Random(7)
    seen_none = seen_priced = 0
    for _ in range(3000):
        price = _price(rng, **({"input": Decimal(0)} if rng.random() < 0.1 else {}))
        result = pricing._cost(price, _tokens(rng), pricing._rates(price))
        generic = SimpleNamespace(
            details=result.details, input_cost=result.input_cost, output_cost=result.output_cost,
            total_cost=result.total_cost,
        )
        fast, slow = costs.to_columns(result), costs.to_columns(generic)
        assert _typed(fast) == _typed(slow)
        if fast is None:
            seen_none += 1  # beyond the cost columns
        else:
            seen_priced += 1
    assert seen_none and seen_priced


def _call(rng: random.Random, start: datetime) -> dict:
    cost = rng.choice([None, Decimal(0), Decimal("0E-10"), Decimal("0.0012000000"), Decimal("1.5"),
                       Decimal(rng.randrange(10**12)).scaleb(-10)])
    return {
        "id": uuid.uuid4().hex, "trace_id": "t-1", "type": "GENERATION", "start_time": start,
        "end_time": rng.choice([None, start + timedelta(milliseconds=rng.randrange(1, 90_000))]),
        "completion_start_time": rng.choice([None, start + timedelta(milliseconds=rng.randrange(0, 900))]),
        "status": rng.choice(["success", "error", "refused"]), "model": "m", "response_model": "", "environment": "e",
        "prompt_name": "", "prompt_version": None, "duplicate_of": "", "total_cost": cost,
        **{kind: rng.choice([None, 0, rng.randrange(10**6), 2**40]) for kind in rollups.TOKEN_KINDS},
    }


def test_rollup_rows_are_the_running_sums_of_each_call():
    rng = random.Random(5)
    dims = rollups.TraceDims(name="n", user_id="u", release="r", feature="f")
    for _ in range(50):
        deltas = rollups.Deltas()
        running: dict[str, object] = {}
        trace_cost = [Decimal(0), 0]
        for _ in range(rng.randrange(1, 40)):
            call = _call(rng, T0 + timedelta(minutes=rng.randrange(0, 20)))  # one hour, one row
            sign = rng.choice([1, 1, -1])
            deltas.add(call, dims, sign)
            cost = call["total_cost"]
            values = dict(zip(rollups._CALL_SUMS, (
                1, int(call["status"] == "error"), int(call["status"] == "refused"),
                *[min(call[k] or 0, rollups.ROLLUP_TOKENS_CAP) for k in rollups.TOKEN_KINDS],
                int(cost is None), cost or Decimal(0),
            )))
            for name, value in values.items():
                running[name] = running.get(name, 0) + sign * value
            if cost is not None:
                trace_cost[0] += sign * cost
                trace_cost[1] += sign
        hourly, users = deltas.rows()
        expected = {name: running[name] for name in rollups.USER_SUMS}
        # As `prompts.selectors` reads a row's sums of the calls it rolls up itself.
        [acc] = deltas.hourly.values()
        assert {k: _typed(v) for k, v in acc.sums.items() if k in expected} == {
            k: _typed(v) for k, v in expected.items()
        }
        if any(expected.values()):
            assert [{k: _typed(v) for k, v in row.items() if k in expected} for row in users] == [
                {k: _typed(v) for k, v in expected.items()}
            ]
        if hourly:
            assert {k: _typed(v) for k, v in hourly[0].items() if k in expected} == {
                k: _typed(v) for k, v in expected.items()
            }
        rows = deltas.trace_cost_rows()
        if trace_cost[0] or trace_cost[1]:
            assert rows == [{"id": "t-1", "cost": trace_cost[0], "calls": trace_cost[1]}]
            assert rows[0]["cost"].as_tuple() == trace_cost[0].as_tuple()


def test_derived_total_is_the_reported_counts_from_zero():
    rng = random.Random(3)
    for _ in range(2000):
        row = {f: rng.choice([None, 0, 1, rng.randrange(2**40)]) for f in writer.TOKEN_FIELDS if rng.random() < 0.8}
        parts = [row.get(f) for f in writer.TOKEN_FIELDS]
        expected = None if all(p is None for p in parts) else sum(p or 0 for p in parts)
        assert _typed(writer.derive_total(row)) == _typed(expected)


def test_a_price_whose_rates_cannot_be_computed_fails_only_its_own_costs():
    rng = random.Random(1)
    good, bad = _price(rng), _price(rng)
    bad = pricing.Price(**{**bad.__dict__, "input_price": None, "match_pattern": "^bad$", "model_name": "bad"})
    snapshot = pricing._Snapshot([good, bad], "v")
    entries = {entry.price.model_name: entry for entry in snapshot.catalog}
    assert entries["m"].rates == pricing._rates(good) and entries["bad"].rates is None
    # As before the rates were kept per snapshot: the kinds it can price are priced.
    assert pricing._cost(bad, {"output": 5}, None).total == (Decimal(5) * bad.output_price).scaleb(-6)
    with pytest.raises(TypeError):
        pricing._cost(bad, {"input": 5}, None)


DOCUMENT_ROWS = [
    [{"a": "plain", "b": T0, "c": Decimal("1.5"), "d": None}],
    [{"text": "é ü 漢字 \U0001F600", "nested": {"k": ["x", {"y": 2**62}]}}],
    [{"nul": "a\x00b", "key\x00": 1}],
    [{"backslash": "\\u0000 is text here", "quote": '"'}],
    [{"control": "\x01\x1f\t\n"}],
]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_documents_are_sent_as_the_text_of_their_str(project):
    from tenancy.dataplane import data_connection

    with data_connection(project).cursor() as plain, writer._server_bound(plain) as cursor:
        for rows in DOCUMENT_ROWS:
            document = writer._document(rows)
            sent = []
            for param in (writer._dump(rows), writer._JsonText(document)):
                transformer = Transformer(cursor.cursor)
                buffers = transformer.dump_sequence([param], [PyFormat.AUTO])
                sent.append((bytes(buffers[0]), list(transformer.types), list(transformer.formats)))
            assert sent[0] == sent[1], rows
            cursor.execute("SELECT %s::jsonb = %s::jsonb", [writer._JsonText(document), writer._dump(rows)])
            assert cursor.fetchone()[0] is True
            # Quoted into SQL text (client-side binding, Django's `last_executed_query`) as the str is.
            quoted = [
                psycopg.ClientCursor(cursor.cursor.connection).mogrify("SELECT %s::jsonb", [param])
                for param in (writer._JsonText(document), writer._dump(rows))
            ]
            assert quoted[0] == quoted[1]


def test_the_nul_search_is_the_substring_test():
    documents = [orjson.dumps(rows, default=str, option=orjson.OPT_NON_STR_KEYS) for rows in DOCUMENT_ROWS]
    documents += [b"", b"\\u0000", b"\\u000", b"u0000", b"\\\\u0000", b"x" * 5000 + b"\\u0000", b"\\u00000"]
    for document in documents:
        assert (writer._NUL_ESCAPE.search(document) is not None) == (b"\\u0000" in document), document[:80]
    # A document with a NUL is written again without it.
    assert writer._document(DOCUMENT_ROWS[2]) == orjson.dumps(rollups.strip_nul(DOCUMENT_ROWS[2]),
                                                              option=orjson.OPT_NON_STR_KEYS)
    assert b"\\u0000" not in writer._document(DOCUMENT_ROWS[2])


def test_insert_rows_are_each_records_row_with_fresh_containers():
    now = T0
    recs = [
        {"id": "o-1", "trace_id": "t-1", "metadata": {"m": 1}, "name": "n", "start_time": T0},
        {"id": "o-2", "trace_id": "t-1", "usage_details": {"input": 3}},
        {"trace_id": "t-2", "id": "o-3", "tool_calls": [{"id": "c"}], "type": "GENERATION"},
    ]
    for table in (writer.OBSERVATIONS, writer.TRACES, writer.SCORES):
        table_recs = [{k: v for k, v in rec.items() if k in table.keys} for rec in recs]
        rows = writer._insert_rows(table_recs, table, now)
        constants, at_now, factories = writer._default_plan(table)
        for rec, row in zip(table_recs, rows):
            expected = {**constants, **dict.fromkeys(at_now, now)}
            for column, factory in factories:
                if column not in rec:
                    expected[column] = factory()
            expected.update(rec)
            expected["created_at"] = expected["updated_at"] = now
            assert list(row.items()) == list(expected.items())
            assert row == writer._insert_row(rec, table, now)
        for column, _ in factories:
            defaulted = [row[column] for rec, row in zip(table_recs, rows) if column not in rec]
            assert len({id(value) for value in defaulted}) == len(defaulted), column


class _Moment(datetime):
    pass


def test_the_hour_of_a_moment_is_replace_s():
    from zoneinfo import ZoneInfo

    rng = random.Random(11)
    zones = [UTC, None, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3, minutes=-30))]
    moments = [datetime(2026, 11, 1, 1, 30, 5, 7, tzinfo=ZoneInfo("America/New_York"), fold=1),
               _Moment(2026, 12, 6, 12, 30, 1, 2, tzinfo=UTC)]
    for _ in range(3000):
        moments.append(datetime(rng.randrange(1970, 2262), rng.randrange(1, 13), rng.randrange(1, 29),
                                rng.randrange(24), rng.randrange(60), rng.randrange(60), rng.randrange(10**6),
                                tzinfo=rng.choice(zones), fold=rng.choice([0, 0, 1])))
    for moment in moments:
        fast, rule = rollups._hour(moment), moment.replace(minute=0, second=0, microsecond=0)
        assert (fast, type(fast), fast.tzinfo, fast.fold, fast.utcoffset()) == (
            rule, type(rule), rule.tzinfo, rule.fold, rule.utcoffset()), moment


def test_normalise_keeps_the_rules_keys_values_and_order_for_whole_records():
    rng = random.Random(23)
    for table in (writer.TRACES, writer.OBSERVATIONS, writer.SCORES):
        actions = writer._key_actions(table)
        keys = sorted(table.keys - {"id", "trace_id"})
        for _ in range(400):
            record = {"id": "r-1"}
            if "trace_id" in table.keys:
                record["trace_id"] = "t-1"
            for key in rng.sample(keys, rng.randrange(1, min(len(keys), 20))):
                record[key] = rng.choice(SPECTRUM)
            fast = _outcome(writer._normalise, dict(record), table, actions)
            rule = _outcome(_by_the_rule, dict(record), table)
            assert fast == rule, record
            if fast[0] == "stored":
                assert list(fast[1]) == list(rule[1]), record  # key order: the document's bytes


def test_rollup_token_counts_are_each_kinds_capped_value():
    cap = rollups.ROLLUP_TOKENS_CAP
    counts = [None, 0, 1, 7, cap - 1, cap, cap + 1, 2**40, -5, Decimal("0"), Decimal("5"), Decimal(cap + 1)]
    rng = random.Random(29)
    dims = rollups.TraceDims(name="n", user_id="", release="r", feature="f")
    for _ in range(500):
        call = _call(rng, T0)
        for kind in rollups.TOKEN_KINDS:
            call[kind] = rng.choice(counts)
        deltas = rollups.Deltas()
        deltas.add(call, dims, 1)
        [acc] = deltas.hourly.values()
        [values] = acc.calls
        tokens = values[3:3 + len(rollups.TOKEN_KINDS)]
        rule = [min(call[kind] or 0, cap) for kind in rollups.TOKEN_KINDS]
        assert [_typed(v) for v in tokens] == [_typed(v) for v in rule], call


def test_the_whole_microseconds_of_a_span_are_the_attribute_sum():
    rng = random.Random(31)
    spans = [timedelta(0), timedelta(microseconds=-1), timedelta(days=-1, microseconds=5), timedelta.max, timedelta.min]
    spans += [timedelta(days=rng.randrange(-3, 3), seconds=rng.randrange(86400), microseconds=rng.randrange(10**6))
              for _ in range(3000)]
    spans += [timedelta(microseconds=rng.randrange(-(2**34), 2**34)) for _ in range(3000)]
    for span in spans:
        whole = (span.days * 86400 + span.seconds) * 1_000_000 + span.microseconds
        assert rollups._us(span) == min(rollups.ROLLUP_US_CAP, max(0, whole)), span


def test_daily_user_rows_come_in_the_sort_key_order():
    rng = random.Random(37)
    users = ["", "a", "A", "b", "ä", "a b", "10", "9", "z" * 5]
    for _ in range(200):
        deltas = rollups.Deltas()
        for _ in range(rng.randrange(1, 30)):
            start = datetime(rng.choice([5, 999, 1000, 2026, 9999]), rng.randrange(1, 13), rng.randrange(1, 29),
                             rng.randrange(24), tzinfo=UTC)
            dims = rollups.TraceDims(name="n", user_id=rng.choice(users[1:]), release="", feature="")
            deltas.add(_call(rng, start), dims, 1)
        _, rows = deltas.rows()
        keys = [(row["day"], row["user_id"]) for row in rows]
        assert keys == sorted(keys, key=rollups._sort_key)
        assert len(keys) == len({k for k, acc in deltas.users.items() if any(acc.call_totals())})


def test_the_hour_of_each_call_is_its_own_within_one_batch():
    """`Deltas.add` builds one hour value per UTC hour of fold 0: every call is counted under
    `_hour(start)` — value, type, zone and fold — however many share a wall-clock hour."""
    from zoneinfo import ZoneInfo

    rng = random.Random(47)
    zones = [UTC, UTC, UTC, timezone.utc, timezone(timedelta(0)), ZoneInfo("America/New_York"), timezone(timedelta(hours=2))]
    dims = rollups.TraceDims(name="n", user_id="u", release="r", feature="f")
    for _ in range(60):
        deltas = rollups.Deltas()
        by_rule: dict = {}  # `_hour(start)` of each call, as a dict keeps the first of equal keys
        for _ in range(rng.randrange(1, 40)):
            start = datetime(2026, 11, 1, rng.choice([0, 1, 5]), rng.randrange(60), rng.randrange(60),
                             tzinfo=rng.choice(zones), fold=rng.choice([0, 0, 0, 1]))
            if rng.random() < 0.1:
                start = _Moment(start.year, start.month, start.day, start.hour, start.minute, tzinfo=start.tzinfo)
            call = _call(rng, start)
            call["end_time"] = None
            deltas.add(call, dims, 1)
            by_rule.setdefault(rollups._hour(start), None)

        def described(hours):
            return [(hour, type(hour), hour.tzinfo, hour.fold, hour.utcoffset()) for hour in hours]

        assert described(key[0] for key in deltas.hourly) == described(by_rule)
