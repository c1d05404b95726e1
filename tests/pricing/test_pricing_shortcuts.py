"""The price lookup's shortcuts (issue 13, web-tier CPU) against the rules they stand in for:

- `_Snapshot.resolve_key` answers a name matched by one catalog row and no override of the project
  with that row, without the in-force / first-known-price rules: it must be what those rules choose,
  at every time, and a name with more rows (or an override) must still go through them.
- `_aware` returns an aware `datetime` as it is: the same value and object the general path returns.
- `compute_costs` unpacks the ingest writer's (model, usage, at) tuples itself: the same results as
  the same items given as `CostItem`s, and the same refusal (naming the item) for a bad one.

No database: snapshots are built from `Price` values directly.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

import pytest
from django.utils import timezone as dj_timezone

from pricing import pricing

T0 = datetime(2025, 6, 1, tzinfo=UTC)
PROJECT = uuid.UUID("6f1d2a7e-0c1b-4e9f-9a55-3b2f0d1c4e88")
NAMES = ("gpt-4o", "gpt-4o-mini", "claude-3", "llama")


def _price(rng: random.Random, name: str, *, project_id=None) -> pricing.Price:
    return pricing.Price(
        id=uuid.uuid4(), project_id=project_id, provider="p", model_name=name + "x" * rng.randrange(3),
        match_pattern=f"(?i)^{name}" + rng.choice(["$", "(-.*)?$"]),
        effective_from=T0 + timedelta(days=rng.randrange(-400, 400)),
        input_price=Decimal(rng.randrange(1, 100)), cached_input_price=None, cache_write_price=None,
        output_price=Decimal(rng.randrange(1, 100)), reasoning_price=None, source="catalog",
    )


class _ByTheRules(pricing._Snapshot):
    """The same snapshot with the one-row answer withheld: every lookup goes through the rules."""

    def _matching(self, project_key, name):
        overrides, catalog, _only = super()._matching(project_key, name)
        return overrides, catalog, None


def test_a_single_matching_row_is_what_the_rules_choose_at_every_time():
    rng = random.Random(11)
    shortcut_taken = rules_taken = 0
    for _ in range(400):
        prices = [
            _price(rng, rng.choice(NAMES), project_id=PROJECT if rng.random() < 0.15 else None)
            for _ in range(rng.randrange(0, 6))
        ]
        fast, slow = pricing._Snapshot(prices, "v"), _ByTheRules(prices, "v")
        for _ in range(10):
            name = rng.choice(NAMES) + rng.choice(["", "-2024-08-06", " "])
            at = T0 + timedelta(days=rng.randrange(-800, 800))
            key = rng.choice([PROJECT, None])
            answer = fast.resolve_key(key, name, at)
            assert answer == slow.resolve_key(key, name, at), (name, at, prices)
            only = fast._matching(key, name.strip())[2]
            if only is not None:
                shortcut_taken += 1
                assert answer is only
            elif answer is not None:
                rules_taken += 1
    assert shortcut_taken > 100 and rules_taken > 100


def test_the_single_row_answer_is_kept_only_for_one_catalog_row_without_overrides():
    rng = random.Random(3)
    one = _price(rng, "gpt-4o")
    two = [_price(rng, "gpt-4o"), _price(rng, "gpt-4o")]
    override = _price(rng, "gpt-4o", project_id=PROJECT)
    assert pricing._Snapshot([one], None)._matching(PROJECT, "gpt-4o")[2] is not None
    assert pricing._Snapshot(two, None)._matching(PROJECT, "gpt-4o")[2] is None
    assert pricing._Snapshot([one, override], None)._matching(PROJECT, "gpt-4o")[2] is None
    # The override belongs to its project only: another project still has the one catalog row.
    assert pricing._Snapshot([one, override], None)._matching(uuid.uuid4(), "gpt-4o")[2] is not None


@pytest.mark.parametrize(
    "at",
    [T0, datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=5))), datetime(2025, 1, 1), "2025-01-01T10:00:00Z",
     "2025-01-01T10:00:00", None],
    ids=repr,
)
def test_aware_returns_an_aware_datetime_itself_and_converts_the_rest(at):
    answer = pricing._aware(at)
    assert dj_timezone.is_aware(answer)
    if isinstance(at, datetime) and dj_timezone.is_aware(at):
        assert answer is at
    elif isinstance(at, datetime):
        assert answer == dj_timezone.make_aware(at, UTC)
    elif isinstance(at, str):
        assert answer == datetime(2025, 1, 1, 10, tzinfo=UTC)


def test_aware_takes_a_naive_datetime_as_utc_even_with_a_tzinfo_that_gives_no_offset():
    class NoOffset(tzinfo):  # a tzinfo whose utcoffset is None: naive by Python's rule
        def utcoffset(self, dt):
            return None

    naive = datetime(2025, 1, 1, 10, tzinfo=NoOffset())
    assert pricing._aware(naive) == datetime(2025, 1, 1, 10, tzinfo=UTC)


def test_the_writers_tuples_price_as_the_same_items_given_as_cost_items(monkeypatch):
    rng = random.Random(5)
    prices = [_price(rng, name) for name in NAMES for _ in range(rng.randrange(1, 3))]
    prices += [_price(rng, "gpt-4o", project_id=PROJECT), _price(rng, "claude-3", project_id=uuid.uuid4())]
    monkeypatch.setattr(pricing, "_snapshot", lambda: pricing._Snapshot(prices, "v"))
    items = []
    for _ in range(300):
        usage = {kind: rng.choice([None, 0, rng.randrange(10**6)]) for kind in pricing.USAGE_KINDS}
        at = rng.choice([T0 + timedelta(days=rng.randrange(-500, 500)), datetime(2025, 3, 1), None])
        items.append((rng.choice([*NAMES, "unknown", "", None]), usage, at))
    frozen = dj_timezone.now()
    monkeypatch.setattr(pricing.timezone, "now", lambda: frozen)
    fast = pricing.compute_costs(items, project_id=PROJECT)
    general = pricing.compute_costs([pricing.CostItem(PROJECT, *item) for item in items])
    assert fast == general
    assert sum(r is not None for r in fast) > 100

    bad = [*items[:3], ("gpt-4o", {"input": -1}, None)]
    with pytest.raises(pricing.InvalidUsage, match="item 3: "):
        pricing.compute_costs(bad, project_id=PROJECT)
    # Other shapes still go through `_as_item`: a mapping, a CostItem, and a short tuple (refused as before).
    mixed = [{"model": "gpt-4o", "usage": {"input": 5}, "at": T0}, pricing.CostItem(None, "llama", {"output": 2}, T0)]
    assert pricing.compute_costs(mixed, project_id=PROJECT) == [
        pricing.compute_costs([pricing.CostItem(PROJECT, "gpt-4o", {"input": 5}, T0)])[0],
        pricing.compute_costs([pricing.CostItem(None, "llama", {"output": 2}, T0)])[0],
    ]
    with pytest.raises(TypeError):
        pricing.compute_costs([("gpt-4o", {"input": 5})], project_id=PROJECT)


def test_catalog_columns_add_the_kinds_as_the_result_properties_do():
    """`stages.price` reads a catalog result's input and output costs with its own loop: the same
    additions in the same order as `CostResult.input_cost`/`output_cost`, which matters once a sum
    is rounded to the context's 28 digits (the random comparison in test_write_path_shortcuts
    rarely gets there)."""
    from ingest.stages import price as costs

    big, small = Decimal("1234567890.123456789012345678"), Decimal("6E-19")  # 28 digits, and less than its last one
    price = _price(random.Random(1), "gpt-4o")
    for order in (("input", "cached_input", "cache_write"), ("output", "reasoning")):
        for values in ((big, small, small), (small, small, big), (small, big, small)):
            result = pricing.CostResult(price=price, costs=dict(zip(order, values)), total=Decimal(0))
            columns = costs.to_columns(result)
            if order[0] == "input":
                assert columns["input_cost"].as_tuple() == result.input_cost.as_tuple(), values
            else:
                assert columns["output_cost"].as_tuple() == result.output_cost.as_tuple(), values
