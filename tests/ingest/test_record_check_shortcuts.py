"""`contract.check_record` settles None and the exact types most values have without `isinstance`:
it refuses exactly what the rule as written (every value asked `isinstance`) refuses, with the same
message, whatever the types of the values."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest import contract
from ingest.contract import RecordError, check_record


class _Moment(datetime):
    pass


class _Text(str):
    pass


class _Count(int):
    pass


class _Map(dict):
    pass


def _reference(record):
    """The id and timestamp checks, and the JSON fields handed to the encoder, as the rule states them."""
    for key in contract.ID_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value in contract.UNADDRESSABLE_IDS:
            raise RecordError(f'`{key}` cannot be "." or "..": no URL can address it')
    documents = {}
    for key, value in record.items():
        if isinstance(value, datetime):
            contract.check_timestamp(value, key)
        elif key in contract.JSON_KEYS and value is not None:
            documents[key] = value
    for key, value in documents.items():
        contract.check_json(value, key)
    return record


def _outcome(check, record):
    try:
        check(dict(record))
    except RecordError as exc:
        return "refused", exc.message
    return "stored", None


NOW = datetime(2026, 12, 7, tzinfo=UTC)
LATE = datetime(2263, 1, 1, tzinfo=UTC)
VALUES = [
    None, "", ".", "..", _Text("."), _Text("x"), 7, _Count(2**64), True, 2**64, 1.5, Decimal("1.5"),
    {"a": 1}, _Map(a=2**64), [1], [[[]]], ("t",), {1: "non-string key"}, "\ud800",
    NOW, LATE, _Moment(2263, 1, 1, tzinfo=UTC), _Moment(2026, 1, 1), NOW.replace(tzinfo=None) - timedelta(days=30000),
]
KEYS = ["id", "observation_id", "session_id", "metadata", "input", "name", "start_time", "tool_calls"]


@pytest.mark.parametrize("key", KEYS)
def test_each_value_of_each_kind_is_checked_as_the_rule_says(key):
    for value in VALUES:
        record = {"id": "r1", key: value} if key != "id" else {"id": value}
        assert _outcome(check_record, record) == _outcome(_reference, record), (key, value)


def test_the_first_fault_of_a_record_is_the_one_reported():
    """Faults are found in the same order: ids first, then the fields in the record's order."""
    seen = set()
    for first, second in itertools.product(VALUES, repeat=2):
        for keys in (("start_time", "metadata"), ("metadata", "name"), ("session_id", "input")):
            record = {"id": "r1", keys[0]: first, keys[1]: second}
            outcome = _outcome(check_record, record)
            assert outcome == _outcome(_reference, record), record
            seen.add(outcome[0])
    assert seen == {"stored", "refused"}


# --- `check_records`: a batch's records checked with one encoding pass ------------------------


def _outcomes_one_by_one(records):
    return [_outcome(check_record, record) for record in records]


def _outcomes_at_once(records):
    problems = contract.check_records([dict(record) for record in records])
    assert len(problems) == len(records)
    return [("stored", None) if problem is None else ("refused", problem.message) for problem in problems]


def _deep(levels):
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


def test_records_checked_at_once_are_each_checked_as_on_their_own():
    """Every value of VALUES under every key, all in one batch (so the one pass fails and each record
    is encoded on its own), then only the stored ones (the one pass succeeds)."""
    records = [
        {"id": "r1", key: value} if key != "id" else {"id": value} for key in KEYS for value in VALUES
    ]
    records += [{"id": "r2", "input_tokens": 2**61}, {"id": "r3", "total_cost": 10**10, "input": [1]}]
    expected = _outcomes_one_by_one(records)
    assert _outcomes_at_once(records) == expected
    assert {outcome[0] for outcome in expected} == {"stored", "refused"}
    stored = [record for record, outcome in zip(records, expected) if outcome[0] == "stored"]
    assert _outcomes_at_once(stored) == [("stored", None)] * len(stored)


@pytest.mark.parametrize("levels", [99, 100, 101])
def test_the_depth_limit_falls_on_the_same_values_in_a_batch(levels):
    """Records in the one pass sit where `check_record` puts them: 100 levels pass, 101 do not."""
    records = [{"id": "a", "input": [1]}, {"id": "b", "metadata": {"k": _deep(levels - 1)}}, {"id": "c"}]
    assert _outcomes_at_once(records) == _outcomes_one_by_one(records)
    assert _outcomes_at_once(records)[1][0] == ("stored" if levels <= 100 else "refused")


def test_an_empty_batch_and_records_without_json_values():
    assert contract.check_records([]) == []
    assert contract.check_records([{"id": "a"}, {"id": ".", "name": "n"}])[0] is None


def test_a_batch_of_storable_records_is_encoded_once(monkeypatch):
    """The one pass holds values of the full depth (a pass padded one level too deep would refuse
    them and make every batch pay the record-by-record encoding)."""
    calls = []
    real = contract._encoded
    monkeypatch.setattr(contract, "_encoded", lambda value, levels: calls.append(levels) or real(value, levels))
    records = [{"id": "a", "input": _deep(100), "metadata": {"k": _deep(99)}}, {"id": "b", "output": "x"}]
    assert contract.check_records(records) == [None, None]
    assert len(calls) == 1
