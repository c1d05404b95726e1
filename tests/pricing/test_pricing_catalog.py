"""The shipped price catalog (pricing/data/model_prices.json) and `manage.py load_model_prices`."""

from __future__ import annotations

import json
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pricing.models import ModelPrice, PriceSource
from pricing.patterns import check_pattern
from pricing.pricing import compute_cost, price_for
from pricing.services import DEFAULT_CATALOG_FILE

CATALOG = json.loads(DEFAULT_CATALOG_FILE.read_text(), parse_float=Decimal)["models"]


def names_of(entry) -> list[str]:
    return [entry["model_name"], *entry.get("examples", [])]


def load(path=None) -> str:
    out = StringIO()
    call_command("load_model_prices", *(["--file", str(path)] if path else []), stdout=out)
    return out.getvalue()


# --- the data file ------------------------------------------------------------------------------


def test_the_catalog_covers_the_models_teams_use():
    names = {entry["model_name"] for entry in CATALOG}
    for expected in (
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3", "o3-mini", "o4-mini",
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "text-embedding-3-small", "text-embedding-3-large",
        "claude-3-5-haiku", "claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4", "claude-sonnet-4-5",
        "claude-opus-4", "claude-opus-4-1", "claude-haiku-4-5", "gemini-1.5-flash", "gemini-1.5-pro",
        "gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro", "mistral-large-2411", "mistral-small-2506",
        "codestral-2508", "llama-3.1-70b-instruct", "llama-3.3-70b-instruct", "llama-3.1-405b-instruct",
    ):
        assert expected in names, expected
    for entry in CATALOG:
        assert entry["effective_from"], entry["model_name"]
        if entry["provider"] == "anthropic":
            assert "cache_write" in entry and "cached_input" in entry, entry["model_name"]


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: f"{e['model_name']}@{e['effective_from']}")
def test_every_catalog_pattern_matches_its_own_names_and_no_other_models(entry):
    regex = check_pattern(entry["match_pattern"])
    for name in names_of(entry):
        assert regex.search(name), f"{entry['model_name']}'s pattern misses {name!r}"
    for other in CATALOG:
        if other["model_name"] == entry["model_name"]:
            continue
        for name in names_of(other):
            assert not regex.search(name), f"{entry['model_name']}'s pattern also matches {other['model_name']} ({name!r})"


def test_every_catalog_row_is_unique_by_model_and_date():
    keys = [(entry["model_name"], entry["effective_from"]) for entry in CATALOG]
    assert len(keys) == len(set(keys))


# --- loading ------------------------------------------------------------------------------------


def test_loading_is_idempotent():
    first = load()
    count = ModelPrice.objects.filter(project__isnull=True).count()

    second = load()

    assert count == len(CATALOG)
    assert f"{len(CATALOG)} created, 0 updated, 0 unchanged" in first
    assert f"0 created, 0 updated, {len(CATALOG)} unchanged" in second
    assert ModelPrice.objects.filter(project__isnull=True).count() == count
    assert not ModelPrice.objects.exclude(source=PriceSource.CATALOG).exists()


def test_a_loaded_catalog_prices_real_model_names(project):
    load()
    usage = {"input": 1_000_000, "cached_input": 1_000_000, "cache_write": 1_000_000, "output": 1_000_000}

    sonnet = compute_cost(
        project_id=project.id, model="us.anthropic.claude-sonnet-4-20250514-v1:0", usage=usage,
        at=datetime(2025, 8, 1, tzinfo=dt_timezone.utc),
    )
    # $3 input + $0.30 cache read + $3.75 cache write + $15 output, per million each
    assert sonnet.total == Decimal("22.05")
    o3_may = price_for(project_id=project.id, model="o3-2025-04-16", at=datetime(2025, 5, 1, tzinfo=dt_timezone.utc))
    o3_july = price_for(project_id=project.id, model="o3", at=datetime(2025, 7, 1, tzinfo=dt_timezone.utc))
    assert (o3_may.input_price, o3_july.input_price) == (Decimal("10"), Decimal("2"))
    assert price_for(project_id=project.id, model="gpt-4o-mini-2024-07-18").model_name == "gpt-4o-mini"


def test_a_fresh_database_without_a_catalog_prices_nothing(project):
    assert compute_cost(project_id=project.id, model="gpt-4o", usage={"input": 10}) is None


def test_a_changed_price_in_the_file_updates_the_row(tmp_path):
    load()
    changed = [dict(entry) for entry in CATALOG]
    gpt4o = next(entry for entry in changed if entry["model_name"] == "gpt-4o")
    gpt4o["input"] = Decimal("2.25")
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": changed}, default=str))

    output = load(path)

    assert f"0 created, 1 updated, {len(CATALOG) - 1} unchanged" in output
    assert ModelPrice.objects.get(project__isnull=True, model_name="gpt-4o").input_price == Decimal("2.25")


def test_a_new_dated_entry_adds_history_instead_of_rewriting_it(tmp_path):
    load()
    later = {**next(e for e in CATALOG if e["model_name"] == "gpt-4o"), "effective_from": "2030-01-01", "input": 1}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": [*CATALOG, later]}, default=str))

    output = load(path)

    assert "1 created, 0 updated" in output
    rows = ModelPrice.objects.filter(project__isnull=True, model_name="gpt-4o").order_by("effective_from")
    assert [row.input_price for row in rows] == [Decimal("2.5"), Decimal("1")]


def test_loading_keeps_rows_a_person_edited(superuser, tmp_path):
    from pricing.services import model_price_update

    load()
    row = ModelPrice.objects.get(project__isnull=True, model_name="gpt-4o")
    model_price_update(price=row, actor=superuser, data={"input_price": Decimal("1.99")})

    output = load()

    assert "1 kept (edited locally)" in output and "gpt-4o" in output
    row.refresh_from_db()
    assert (row.input_price, row.source) == (Decimal("1.99"), PriceSource.CUSTOM)


def test_loading_leaves_project_overrides_alone(project):
    override = ModelPrice.objects.create(
        project=project, provider="openai", model_name="gpt-4o", match_pattern="^gpt-4o$",
        effective_from=datetime(2024, 8, 6, tzinfo=dt_timezone.utc), input_price=1, output_price=1,
    )

    load()

    override.refresh_from_db()
    assert override.input_price == Decimal("1")
    assert ModelPrice.objects.filter(project=project).count() == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"match_pattern": "^(gpt-4o$"}, "not a valid regular expression"),
        ({"match_pattern": "^(a+)+$"}, "nested repetition"),
        ({"match_pattern": "^claude$"}, "does not match the model's own name"),
        ({"input": -1}, "greater than or equal to 0"),
        ({"effective_from": "yesterday"}, "effective_from"),
        ({"output": None}, "output is required"),
        ({"cached_inptu": 1}, "unknown keys: cached_inptu"),
    ],
)
def test_a_bad_entry_stops_the_load_before_anything_is_written(tmp_path, bad, message):
    entries = [dict(entry) for entry in CATALOG]
    entries[3] = {**entries[3], **bad}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": entries}, default=str))

    with pytest.raises(CommandError, match=message):
        load(path)

    assert not ModelPrice.objects.exists()


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        load(tmp_path / "broken.json")
