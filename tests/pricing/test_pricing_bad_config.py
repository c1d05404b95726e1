"""One tenant's price configuration must never stop another's ingestion (issue 8).

A project override with `effective_from` "0001-01-01T00:00:00+14:00" used to be accepted, and one at
"9999-12-31T23:59:59-14:00" answered 400 after it was committed. PostgreSQL holds both; Python cannot
read them, and the whole price table is loaded into every process at once: every tenant's ingestion
failed. Rows written that way (simulated here with raw SQL) must be skipped by the shared snapshot,
and stay listable and deletable.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from ingest.adapters.otel.testing import make_request, make_span
from pricing import pricing
from pricing.models import ModelPrice, PriceSource
from tenancy.models import AuditLogEntry
from traces.models import Observation

V1 = "/api/v1"
CHANGELIST = "/admin/pricing/modelprice/"
# The two instants the incident stored: year 1 BC and year 10000 once converted to UTC.
UNREADABLE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


def prices_url(project, suffix=""):
    return f"{V1}/organizations/{project.organization_id}/projects/{project.id}/model-prices/{suffix}"


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def new_override(**overrides):
    return {
        "provider": "openai", "model_name": "gpt-4o-mini", "effective_from": "2025-01-01",
        "input_price": "1.00", "output_price": "4.00", **overrides,
    }


def store_unreadable_row(project, when: str, model_name="gpt-4o-mini") -> uuid.UUID:
    """What the old code left behind: a row the ORM can no longer read."""
    row_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_modelprice (id, project_id, provider, model_name, match_pattern, effective_from,"
            " input_price, output_price, source, created_at, updated_at)"
            " VALUES (%s, %s, 'openai', %s, %s, %s::timestamptz, 1, 4, 'custom', now(), now())",
            [row_id, project.id if project else None, model_name, f"^{model_name}$", when],
        )
    pricing.reset_local_cache()
    return row_id


def catalog_price():
    return ModelPrice.objects.create(
        project=None, provider="openai", model_name="gpt-4o-mini", match_pattern=r"^(openai/)?gpt-4o-mini$",
        effective_from=datetime(2024, 1, 1, tzinfo=dt_timezone.utc), input_price=Decimal("0.15"),
        output_price=Decimal("0.60"), source=PriceSource.CATALOG,
    )


# --- validation: nothing out of range is stored -------------------------------------------------


@pytest.mark.parametrize("when", [*UNREADABLE, "1999-12-31T23:59:59Z", "2100-01-01", "2024-13-45T00:00:00Z"])
def test_an_override_starting_outside_the_sane_range_is_refused_and_not_saved(owner, project, when):
    response = signed_in(owner).post(prices_url(project), new_override(effective_from=when), format="json")

    assert response.status_code == 400
    assert "effective_from" in response.json()
    assert not ModelPrice.objects.filter(project=project).exists()
    assert not AuditLogEntry.objects.filter(target_type="model_price").exists()


def test_an_override_cannot_be_moved_out_of_range(owner, project):
    client = signed_in(owner)
    created = client.post(prices_url(project), new_override(), format="json").json()

    response = client.patch(prices_url(project, f"{created['id']}/"), {"effective_from": UNREADABLE[1]}, format="json")

    assert response.status_code == 400 and "effective_from" in response.json()
    assert ModelPrice.objects.get(pk=created["id"]).effective_from == datetime(2025, 1, 1, tzinfo=dt_timezone.utc)


def test_the_service_refuses_an_out_of_range_start_too(owner, project):
    # The admin and any other caller go through model validation, not only the API serializer.
    from django.core.exceptions import ValidationError

    from pricing.services import model_price_create

    with pytest.raises(ValidationError) as error:
        model_price_create(
            project=project, actor=owner,
            data={**new_override(), "effective_from": datetime(1, 1, 1, tzinfo=dt_timezone.utc)},
        )
    assert "effective_from" in error.value.message_dict
    assert not ModelPrice.objects.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("input_price", "NaN"), ("input_price", "Infinity"), ("output_price", "-1"),
        ("output_price", "1e20"), ("cached_input_price", "0.0000001"), ("reasoning_price", "sNaN"),
    ],
)
def test_prices_must_be_finite_non_negative_and_fit_the_column(owner, project, field, value):
    response = signed_in(owner).post(prices_url(project), new_override(**{field: value}), format="json")

    assert response.status_code == 400 and field in response.json()
    assert not ModelPrice.objects.exists()


def test_an_invalid_pattern_is_refused(owner, project):
    response = signed_in(owner).post(prices_url(project), new_override(match_pattern="(gpt"), format="json")

    assert response.status_code == 400 and "match_pattern" in response.json()


def test_the_admin_form_refuses_an_out_of_range_start(member_of, organization, project):
    client = Client()
    client.force_login(member_of(organization, "admin"))
    data = {
        "project": str(project.id), "provider": "openai", "model_name": "gpt-4o", "match_pattern": "",
        "effective_from_0": "0001-01-01", "effective_from_1": "00:00:00", "input_price": "1.5",
        "cached_input_price": "", "cache_write_price": "", "output_price": "6", "reasoning_price": "",
    }

    response = client.post(f"{CHANGELIST}add/", data)

    assert response.status_code == 200  # the form again, with the error
    assert "must be between 2000-01-01 and 2100-01-01" in response.content.decode()
    assert not ModelPrice.objects.exists()


# --- a bad row already stored --------------------------------------------------------------------


@pytest.mark.parametrize("when", UNREADABLE)
def test_the_shared_snapshot_skips_an_unreadable_row_and_prices_everyone_else(
    project, other_project, when, caplog
):
    catalog_price()
    bad = store_unreadable_row(other_project, when)

    with caplog.at_level(logging.ERROR, logger="pricing.pricing"):
        mine = pricing.price_for(project_id=project.id, model="gpt-4o-mini")
        theirs = pricing.price_for(project_id=other_project.id, model="gpt-4o-mini")

    assert mine is not None and mine.input_price == Decimal("0.15")
    assert theirs is not None and not theirs.is_override  # their bad override is skipped, the catalog applies
    assert str(bad) in caplog.text


def _generation_batch(generation_id: str) -> bytes:
    return orjson.dumps(
        {
            "batch": [
                {
                    "id": str(uuid.uuid4()), "type": "generation-create", "timestamp": "2026-11-26T19:42:27.000Z",
                    "body": {
                        "id": generation_id, "traceId": str(uuid.uuid4()), "name": "chat",
                        "startTime": "2026-11-26T19:42:27.000Z", "model": "gpt-4o-mini",
                        "usageDetails": {"input": 1_000_000, "output": 1_000_000},
                    },
                }
            ]
        }
    )


def _genai_span() -> bytes:
    return make_request(
        [
            make_span(
                name="chat gpt-4o-mini", kind=3,
                attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 1_000_000,
                },
            )
        ]
    ).SerializeToString()


@pytest.mark.parametrize("when", UNREADABLE)
def test_one_projects_bad_row_leaves_other_projects_ingestion_priced(
    client, project, api_key, other_project, other_api_key, when
):
    catalog_price()
    store_unreadable_row(other_project, when)

    batch = client.post(
        "/api/public/ingestion", data=_generation_batch("gen-1"), content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    otlp = client.post(
        "/api/public/otel/v1/traces", data=_genai_span(), content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=api_key.basic,
    )

    assert batch.status_code == 207 and batch.json()["errors"] == []
    assert otlp.status_code == 200
    generations = Observation.objects.for_project(project).filter(model="gpt-4o-mini")
    assert generations.count() == 2
    # 1M input tokens at 0.15 + 1M output tokens at 0.60 (the catalog row).
    assert {(g.cost_source, g.total_cost) for g in generations} == {("catalog", Decimal("0.75"))}

    # The project with the bad row keeps ingesting too, priced by the catalog.
    theirs = client.post(
        "/api/public/ingestion", data=_generation_batch("gen-2"), content_type="application/json",
        HTTP_AUTHORIZATION=other_api_key.basic,
    )
    assert theirs.status_code == 207 and theirs.json()["errors"] == []
    assert Observation.objects.for_project(other_project).get(id="gen-2").total_cost == Decimal("0.75")


@pytest.mark.parametrize("when", UNREADABLE)
def test_the_price_list_api_shows_and_deletes_an_unreadable_row(owner, project, when):
    readable = ModelPrice.objects.create(
        project=project, provider="openai", model_name="gpt-4o", match_pattern="^gpt-4o$",
        effective_from=datetime(2025, 1, 1, tzinfo=dt_timezone.utc), input_price=1, output_price=4,
    )
    bad = store_unreadable_row(project, when)
    client = signed_in(owner)

    listed = client.get(prices_url(project))

    assert listed.status_code == 200
    rows = {row["id"]: row for row in listed.json()["results"]}
    assert set(rows) == {str(readable.id), str(bad)}
    assert rows[str(bad)]["effective_from"] is None
    assert client.get(prices_url(project, f"{bad}/")).status_code == 200
    assert client.delete(prices_url(project, f"{bad}/")).status_code == 204
    assert list(ModelPrice.objects.values_list("id", flat=True)) == [readable.id]


def test_the_catalog_list_survives_an_unreadable_catalog_row(owner):
    catalog_price()
    store_unreadable_row(None, UNREADABLE[0], model_name="old-model")

    response = signed_in(owner).get(f"{V1}/model-prices/")

    assert response.status_code == 200
    assert sorted(row["model_name"] for row in response.json()["results"]) == ["gpt-4o-mini", "old-model"]


@pytest.mark.parametrize("when", UNREADABLE)
def test_the_admin_lists_and_deletes_an_unreadable_row(member_of, organization, project, when):
    bad = store_unreadable_row(project, when)
    client = Client()
    client.force_login(member_of(organization, "admin"))

    assert client.get(CHANGELIST).status_code == 200
    assert client.get(f"{CHANGELIST}{bad}/change/").status_code == 200
    assert client.get(f"{CHANGELIST}{bad}/delete/").status_code == 200
    response = client.post(f"{CHANGELIST}{bad}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not ModelPrice.objects.filter(pk=bad).exists()
