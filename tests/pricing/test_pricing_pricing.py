"""pricing.pricing: which price applies, what a call costs, and how fast a price change is seen."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.core.cache import cache

from pricing import pricing, services
from pricing.models import ModelPrice, PriceSource
from pricing.pricing import CostItem, InvalidUsage, compute_cost, compute_costs, price_for


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=dt_timezone.utc)


def make_price(model_name, *, pattern=None, project=None, effective="2024-01-01", provider="openai", **prices):
    values = {"input_price": Decimal("1"), "output_price": Decimal("2"), **{k: Decimal(str(v)) for k, v in prices.items()}}
    return ModelPrice.objects.create(
        project=project, provider=provider, model_name=model_name,
        match_pattern=pattern or rf"^(openai/)?{model_name}$", effective_from=at(effective),
        source=PriceSource.CATALOG if project is None else PriceSource.CUSTOM, **values,
    )


# --- resolution ---------------------------------------------------------------------------------


def test_it_prefers_a_project_override_to_the_catalog(project):
    catalog = make_price("gpt-4o", input_price=2.5, output_price=10)
    override = make_price("gpt-4o", project=project, effective="2024-06-01", input_price=2, output_price=8)

    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).id == override.id
    assert price_for(project_id=None, model="gpt-4o", at=at("2025-01-01")).id == catalog.id


def test_it_never_applies_another_projects_override(project, other_project):
    catalog = make_price("gpt-4o")
    make_price("gpt-4o", project=other_project, input_price=0.01)

    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).id == catalog.id


def test_it_uses_the_latest_row_in_force_at_the_time_of_the_call(project):
    first = make_price("o3", effective="2025-04-16", input_price=10, output_price=40)
    second = make_price("o3", effective="2025-06-10", input_price=2, output_price=8)

    assert price_for(project_id=project.id, model="o3", at=at("2025-05-01")).id == first.id
    assert price_for(project_id=project.id, model="o3", at=at("2025-06-10")).id == second.id
    assert price_for(project_id=project.id, model="o3", at=at("2026-01-01")).id == second.id


def test_a_catalog_model_called_before_its_first_row_gets_its_first_price(project):
    first = make_price("o3", effective="2025-04-16")
    make_price("o3", effective="2025-06-10", input_price=2)

    assert price_for(project_id=project.id, model="o3", at=at("2025-01-01")).id == first.id


def test_an_override_scheduled_for_later_does_not_apply_yet(project):
    catalog = make_price("gpt-4o", effective="2024-01-01")
    make_price("gpt-4o", project=project, effective="2025-03-01", input_price=0.5)

    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-02-28")).id == catalog.id
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-03-01")).project_id == project.id


def test_overlapping_patterns_resolve_to_the_most_specific_model(project):
    broad = make_price("gpt-4o", pattern=r"^gpt-4o")  # also matches gpt-4o-mini
    mini = make_price("gpt-4o-mini")

    assert price_for(project_id=project.id, model="gpt-4o-mini", at=at("2025-01-01")).id == mini.id
    assert price_for(project_id=project.id, model="gpt-4o-2024-08-06", at=at("2025-01-01")).id == broad.id


def test_it_matches_case_insensitively_and_with_a_provider_prefix(project):
    price = make_price("gpt-4o-mini")

    assert price_for(project_id=project.id, model="GPT-4o-Mini", at=at("2025-01-01")).id == price.id
    assert price_for(project_id=project.id, model=" openai/gpt-4o-mini ", at=at("2025-01-01")).id == price.id


def test_it_returns_none_for_unknown_or_missing_model_names(project):
    make_price("gpt-4o")

    assert price_for(project_id=project.id, model="my-local-llama", at=at("2025-01-01")) is None
    assert price_for(project_id=project.id, model=None, at=at("2025-01-01")) is None
    assert price_for(project_id=project.id, model="", at=at("2025-01-01")) is None
    assert price_for(project_id=project.id, model="gpt-4o" + "x" * 300, at=at("2025-01-01")) is None


def test_it_accepts_project_ids_as_strings_and_naive_times_as_utc(project):
    override = make_price("gpt-4o", project=project, effective="2025-01-01")
    make_price("gpt-4o", effective="2024-01-01")

    assert price_for(project_id=str(project.id), model="gpt-4o", at=datetime(2025, 1, 1)).id == override.id


# --- arithmetic ---------------------------------------------------------------------------------


def test_it_prices_fresh_cached_cache_write_and_output_tokens_separately(project):
    make_price(
        "claude-sonnet-4", provider="anthropic", pattern=r"^claude-sonnet-4(-\d{8})?$",
        input_price=3, cached_input_price="0.30", cache_write_price="3.75", output_price=15,
    )

    result = compute_cost(
        project_id=project.id, model="claude-sonnet-4-20250514", at=at("2025-07-01"),
        usage={"input": 1000, "cached_input": 20000, "cache_write": 5000, "output": 800},
    )

    # 1,000 × $3/M = 0.003; 20,000 × $0.30/M = 0.006; 5,000 × $3.75/M = 0.01875; 800 × $15/M = 0.012
    assert result.costs == {
        "input": Decimal("0.003"), "cached_input": Decimal("0.006"),
        "cache_write": Decimal("0.01875"), "output": Decimal("0.012"),
    }
    assert result.total == Decimal("0.03975")
    assert result.input_cost == Decimal("0.02775")
    assert result.output_cost == Decimal("0.012")
    assert result.price_source == "catalog"


def test_reasoning_tokens_are_billed_at_the_output_price_unless_the_model_has_a_reasoning_price(project):
    make_price("o3", input_price=2, cached_input_price="0.50", output_price=8)
    make_price("thinker", input_price=2, cached_input_price="0.50", output_price=8, reasoning_price=12)
    usage = {"input": 1500, "cached_input": 500, "output": 200, "reasoning": 1800}

    o3 = compute_cost(project_id=project.id, model="o3", usage=usage, at=at("2025-07-01"))
    thinker = compute_cost(project_id=project.id, model="thinker", usage=usage, at=at("2025-07-01"))

    # 1,500 × 2 + 500 × 0.5 + 200 × 8 + 1,800 × 8 = 3,000 + 250 + 1,600 + 14,400 = 19,250 µ$ per M
    assert o3.costs["reasoning"] == Decimal("0.0144")
    assert o3.total == Decimal("0.01925")
    # With a reasoning price of $12/M: 1,800 × 12 = 0.0216 instead of 0.0144
    assert thinker.costs["reasoning"] == Decimal("0.0216")
    assert thinker.total == Decimal("0.02645")


def test_cached_and_cache_write_tokens_fall_back_to_the_input_price(project):
    make_price("plain", input_price="0.15", output_price="0.60")

    result = compute_cost(
        project_id=project.id, model="plain", at=at("2025-07-01"),
        usage={"input": 0, "cached_input": 10000, "cache_write": 2000, "output": None},
    )

    assert result.costs == {"input": Decimal("0"), "cached_input": Decimal("0.0015"), "cache_write": Decimal("0.0003")}
    assert result.total == Decimal("0.0018")


def test_a_large_call_is_costed_exactly_without_float_rounding(project):
    make_price("gpt-5-nano", input_price="0.05", cached_input_price="0.005", output_price="0.40")

    result = compute_cost(
        project_id=project.id, model="gpt-5-nano", at=at("2025-09-01"),
        usage={"input": 123_456_789, "cached_input": 7, "output": 3},
    )

    assert result.costs["input"] == Decimal("6.17283945")
    assert result.costs["cached_input"] == Decimal("0.000000035")
    assert result.total == Decimal("6.172840685")


def test_it_returns_none_when_no_price_matches(project):
    assert compute_cost(project_id=project.id, model="gpt-4o", usage={"input": 10}, at=at("2025-01-01")) is None


@pytest.mark.parametrize(
    "usage",
    [{"input": -1}, {"output": 1.5}, {"input": True}, {"input": "12"}, {"prompt_tokens": 3}, ["input", 3]],
)
def test_it_rejects_malformed_usage(project, usage):
    make_price("gpt-4o")
    with pytest.raises(InvalidUsage):
        compute_cost(project_id=project.id, model="gpt-4o", usage=usage, at=at("2025-01-01"))


# --- batches ------------------------------------------------------------------------------------


def test_compute_costs_prices_a_batch_with_one_query(project, other_project, django_assert_num_queries):
    make_price("gpt-4o-mini", input_price="0.15", output_price="0.60")
    make_price("gpt-4o-mini", project=other_project, input_price="0.10", output_price="0.40")
    items = [
        CostItem(project.id if i % 2 else other_project.id, "gpt-4o-mini", {"input": 1000, "output": 100}, at("2025-01-01"))
        for i in range(200)
    ] + [CostItem(project.id, "unknown-model", {"input": 5}, at("2025-01-01"))]

    with django_assert_num_queries(1):
        results = compute_costs(items)

    assert len(results) == 201
    assert results[1].total == Decimal("0.00021")  # project: 1000 × 0.15 + 100 × 0.60 per M
    assert results[0].total == Decimal("0.00014")  # other project's override: 1000 × 0.10 + 100 × 0.40
    assert results[-1] is None


def test_compute_costs_accepts_a_project_wide_batch_of_tuples(project):
    make_price("gpt-4o", input_price="2.5", output_price="10")

    results = compute_costs(
        [("gpt-4o", {"input": 100, "output": 10}, at("2025-01-01")), ("nope", {"input": 1}, at("2025-01-01"))],
        project_id=project.id,
    )

    assert results[0].total == Decimal("0.00035")
    assert results[0].details == {"input": Decimal("0.00025"), "output": Decimal("0.0001")}
    assert results[1] is None


def test_compute_costs_names_the_bad_item_and_prices_nothing(project):
    make_price("gpt-4o")
    with pytest.raises(InvalidUsage, match="item 1"):
        compute_costs([CostItem(project.id, "gpt-4o", {"input": 1}, None), CostItem(project.id, "gpt-4o", {"input": -5}, None)])


# --- the in-process cache -----------------------------------------------------------------------


def test_repeated_lookups_need_no_database_query(project, django_assert_num_queries):
    make_price("gpt-4o")
    price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01"))

    with django_assert_num_queries(0):
        for _ in range(50):
            assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")) is not None


def test_a_price_change_is_seen_by_the_next_computation(project, superuser, django_capture_on_commit_callbacks):
    price = make_price("gpt-4o", input_price="2.5", output_price="10")
    usage = {"input": 1_000_000}
    assert compute_cost(project_id=project.id, model="gpt-4o", usage=usage, at=at("2025-01-01")).total == Decimal("2.5")
    version_before = cache.get(pricing.VERSION_CACHE_KEY)

    with django_capture_on_commit_callbacks(execute=True):
        services.model_price_update(price=price, actor=superuser, data={"input_price": Decimal("2.0")})

    assert cache.get(pricing.VERSION_CACHE_KEY) != version_before
    assert compute_cost(project_id=project.id, model="gpt-4o", usage=usage, at=at("2025-01-01")).total == Decimal("2.0")


def test_a_new_override_and_a_deleted_one_are_seen_by_the_next_computation(project, owner, django_capture_on_commit_callbacks):
    make_price("gpt-4o", input_price="2.5")
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).project_id is None

    with django_capture_on_commit_callbacks(execute=True):
        override = services.model_price_create(
            project=project, actor=owner,
            data={"provider": "openai", "model_name": "gpt-4o", "match_pattern": "", "effective_from": at("2024-01-01"),
                  "input_price": Decimal("1"), "output_price": Decimal("4")},
        )
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).id == override.id

    with django_capture_on_commit_callbacks(execute=True):
        services.model_price_delete(price=override, actor=owner)
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).project_id is None


def test_other_processes_see_a_change_once_the_version_stamp_moves(project, settings, django_assert_num_queries):
    settings.MODEL_PRICE_CACHE_CHECK_SECONDS = 0
    price = make_price("gpt-4o", input_price="2.5")
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).input_price == Decimal("2.5")

    # Another process changed the row; its bump has not reached Redis yet, so this process keeps
    # its snapshot (one Redis read, no database query).
    ModelPrice.objects.filter(pk=price.pk).update(input_price=Decimal("3"))
    with django_assert_num_queries(0):
        assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).input_price == Decimal("2.5")

    cache.set(pricing.VERSION_CACHE_KEY, "bumped-by-another-process", timeout=None)
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).input_price == Decimal("3")


def test_a_rolled_back_change_publishes_nothing(project, superuser, django_capture_on_commit_callbacks):
    from django.db import transaction

    price = make_price("gpt-4o", input_price="2.5")
    price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01"))
    version_before = cache.get(pricing.VERSION_CACHE_KEY)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.model_price_update(price=price, actor=superuser, data={"input_price": Decimal("9")})
                raise RuntimeError("abort")
        except RuntimeError:
            pass

    assert callbacks == []
    assert cache.get(pricing.VERSION_CACHE_KEY) == version_before
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).input_price == Decimal("2.5")


def test_deleting_a_project_removes_its_overrides_from_pricing(project, django_capture_on_commit_callbacks):
    make_price("gpt-4o")
    make_price("gpt-4o", project=project, input_price="0.5")
    assert price_for(project_id=project.id, model="gpt-4o", at=at("2025-01-01")).project_id == project.id
    project_id = project.id

    with django_capture_on_commit_callbacks(execute=True):
        project.delete()

    assert price_for(project_id=project_id, model="gpt-4o", at=at("2025-01-01")).project_id is None


def test_now_is_the_default_time(project):
    make_price("gpt-4o", effective="2024-01-01", input_price=1)
    make_price("gpt-4o", effective=(datetime.now(dt_timezone.utc) + timedelta(days=30)).date().isoformat(), input_price=5)

    assert price_for(project_id=project.id, model="gpt-4o").input_price == Decimal("1")
