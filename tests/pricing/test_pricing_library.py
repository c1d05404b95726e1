"""The catalog kept current from the genai-prices library (`manage.py sync_model_prices`), and the
models of today priced end to end through a real Langfuse batch."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from io import StringIO

import orjson
import pytest
from django.core.management import call_command

from pricing import library
from pricing.models import ModelPrice, PriceSource
from pricing.pricing import price_for, reset_local_cache
from pricing.services import DEFAULT_CATALOG_FILE, catalog_sync, model_price_create
from traces.models import Observation

URL = "/api/public/ingestion"


def load():
    call_command("load_model_prices", stdout=StringIO())


def generation(gen_id, model, usage, start="2026-12-01T10:00:00Z"):
    return {
        "id": f"e-{gen_id}",
        "type": "generation-create",
        "timestamp": start,
        "body": {"id": gen_id, "traceId": "t-now", "name": "call", "model": model, "startTime": start,
                 "endTime": start, "usage": usage},
    }


def ingest(client, api_key, events):
    response = client.post(
        URL, data=orjson.dumps({"batch": events}), content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 207, response.content
    assert all(200 <= item["status"] < 300 for item in response.json()["successes"]), response.json()
    assert not response.json()["errors"], response.json()


def test_todays_models_get_a_cost_through_a_langfuse_batch(client, project, api_key):
    load()
    ingest(client, api_key, [
        # The seed's own example: the v2 SDK generation on claude-sonnet-4-6.
        generation("g-sonnet", "claude-sonnet-4-6", {"input": 2000, "output": 489}),
        generation("g-gpt", "gpt-5.5", {"input": 1_000_000, "output": 0}),
        generation("g-gemini", "gemini-3.5-flash", {"input": 1_000_000, "output": 0}),
        generation("g-mistral", "mistral-medium-3-5", {"input": 1_000_000, "output": 0}),
    ])
    rows = {o.id: o for o in Observation.objects.for_project(project)}
    sonnet = rows["g-sonnet"]
    # $3 / $15 per million tokens.
    assert (sonnet.cost_source, sonnet.total_cost) == ("catalog", Decimal("0.006000") + Decimal("0.007335"))
    for gen_id, model in (("g-gpt", "gpt-5.5"), ("g-gemini", "gemini-3.5-flash"), ("g-mistral", "mistral-medium-3-5")):
        expected = price_for(project_id=project.id, model=model).input_price
        assert rows[gen_id].cost_source == "catalog", model
        assert rows[gen_id].total_cost == expected > 0, model

    body = client.get("/api/public/traces/t-now", HTTP_AUTHORIZATION=api_key.basic).json()
    assert body["totalCost"] == pytest.approx(float(sum(o.total_cost for o in rows.values())))


def test_every_library_model_we_cover_is_priced_by_the_shipped_catalog(project):
    load()
    at = datetime(2026, 12, 1, tzinfo=dt_timezone.utc)
    models = library.library_models()
    assert {m.provider for m in models} == {"openai", "anthropic", "google", "mistral", "meta"}
    unpriced = [m.model_id for m in models if price_for(project_id=project.id, model=m.model_id, at=at) is None]
    assert unpriced == []


def test_the_shipped_file_is_in_step_with_the_installed_library(tmp_path):
    # The routine: after raising the genai-prices pin, run `manage.py sync_model_prices --write-file`.
    copy = tmp_path / "model_prices.json"
    shutil.copy(DEFAULT_CATALOG_FILE, copy)
    out = StringIO()
    call_command("sync_model_prices", "--write-file", str(copy), stdout=out)
    assert " 0 rows added" in out.getvalue(), out.getvalue()
    assert copy.read_text() == DEFAULT_CATALOG_FILE.read_text()


def _model(model_id, *periods, provider="acme"):
    return library.LibraryModel(
        provider=provider, model_id=model_id, pattern=f"^(?:.*/)?{model_id}$",
        periods=[(start, {k: Decimal(str(v)) for k, v in prices.items()}) for start, prices in periods],
    )


def _catalog(model_name):
    return list(
        ModelPrice.objects.filter(project__isnull=True, model_name=model_name)
        .order_by("effective_from").values_list("effective_from", "input_price", "output_price", "source")
    )


def test_sync_adds_new_models_and_changed_prices_as_new_rows_and_never_rewrites(project, superuser):
    def day(*parts):
        return datetime(*parts, tzinfo=dt_timezone.utc)

    ModelPrice.objects.create(provider="acme", model_name="acme-1", match_pattern="^acme-1$",
                              effective_from=day(2025, 1, 1), input_price=1, output_price=2, source=PriceSource.CATALOG)
    override = model_price_create(project=project, actor=superuser, data={
        "provider": "acme", "model_name": "acme-1", "input_price": Decimal("0.5"), "output_price": 1,
        "effective_from": day(2025, 1, 1)})
    models = [
        _model("acme-1", (None, {"input": "1.5", "output": 2})),  # changed, undated: from the sync date
        _model("acme-2", (None, {"input": 4, "output": 8}), (date(2026, 3, 1), {"input": 3, "output": 6})),
        _model("acme-3", (None, {"input": 1, "output": 1})),
    ]

    report = catalog_sync(since=date(2026, 12, 6), models=models)

    assert sorted(report.new_models) == ["acme-2", "acme-3"] and report.changed_models == ["acme-1"]
    assert _catalog("acme-1") == [
        (day(2025, 1, 1), Decimal("1.000000"), Decimal("2.000000"), "catalog"),
        (day(2026, 12, 6), Decimal("1.500000"), Decimal("2.000000"), "catalog"),
    ]
    # A new model with a dated change keeps both prices, the first one from before the change.
    assert [row[0] for row in _catalog("acme-2")] == [day(2000, 1, 1), day(2026, 3, 1)]
    assert _catalog("acme-3") == [(day(2026, 12, 6), Decimal("1.000000"), Decimal("1.000000"), "catalog")]
    override.refresh_from_db()
    assert (override.input_price, override.source) == (Decimal("0.500000"), "custom")

    # Running it again adds nothing, and a later undated run only adds what changed since.
    assert catalog_sync(since=date(2026, 12, 7), models=models).added == []
    models[0] = _model("acme-1", (None, {"input": "1.5", "output": 3}))
    again = catalog_sync(since=date(2027, 1, 1), models=models)
    assert [(e["model_name"], e["effective_from"]) for e in again.added] == [("acme-1", "2027-01-01")]
    assert len(_catalog("acme-1")) == 3


def test_sync_command_adds_todays_models_to_an_older_database(project):
    # A database loaded before claude-sonnet-4-6 existed in the catalog.
    entries = json.loads(DEFAULT_CATALOG_FILE.read_text(), parse_float=Decimal)["models"]
    from pricing.services import catalog_load

    catalog_load(entries=[e for e in entries if "notes" not in e or "genai-prices" not in e["notes"]])
    assert price_for(project_id=project.id, model="claude-sonnet-4-6") is None

    out = StringIO()
    call_command("sync_model_prices", "--since", "2026-12-06", stdout=out)
    reset_local_cache()  # the change is published on commit; a test never commits

    assert "new: claude-sonnet-4-6" in out.getvalue()
    price = price_for(project_id=project.id, model="claude-sonnet-4-6")
    assert (price.input_price, price.cached_input_price, price.cache_write_price, price.output_price) == (
        Decimal("3"), Decimal("0.3"), Decimal("3.75"), Decimal("15"))
