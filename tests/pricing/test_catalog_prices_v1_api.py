"""The global model price catalog through `/api/v1/model-prices/`: everyone signed in reads it, only
superusers change it (as in the console), and an override of any organization is never reachable
through it — not even for a superuser's write."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from pricing.models import ModelPrice, PriceSource
from pricing.pricing import price_for, reset_local_cache
from tenancy.models import Role

CATALOG = "/api/v1/model-prices/"
NEW = {"provider": "anthropic", "model_name": "claude-sonnet-4-6", "effective_from": "2026-01-01",
       "input_price": "3.00", "cached_input_price": "0.30", "cache_write_price": "3.75", "output_price": "15.00"}


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _row(**kwargs):
    values = {"provider": "openai", "model_name": "gpt-4o", "match_pattern": r"^gpt-4o$", "input_price": Decimal("2.5"),
              "output_price": Decimal("10"), "source": PriceSource.CATALOG,
              "effective_from": datetime(2024, 8, 6, tzinfo=dt_timezone.utc), **kwargs}
    return ModelPrice.objects.create(**values)


def test_a_superuser_adds_changes_and_deletes_catalog_prices(superuser):
    client = person(superuser)
    created = client.post(CATALOG, NEW, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["project_id"] is None and body["source"] == "custom"
    assert Decimal(body["cache_write_price"]) == Decimal("3.75")
    row = ModelPrice.objects.get(pk=body["id"])
    assert row.project_id is None and row.cache_write_price == Decimal("3.75")
    reset_local_cache()
    assert price_for(project_id=None, model="claude-sonnet-4-6", at=datetime(2026, 6, 1, tzinfo=dt_timezone.utc))

    shipped = _row()
    patched = client.patch(f"{CATALOG}{shipped.id}/", {"output_price": "12"}, format="json")
    assert patched.status_code == 200, patched.content
    shipped.refresh_from_db()
    # A person's edit is theirs: `load_model_prices` will not revert it.
    assert shipped.output_price == Decimal("12") and shipped.source == PriceSource.CUSTOM

    assert client.delete(f"{CATALOG}{shipped.id}/").status_code == 204
    assert not ModelPrice.objects.filter(pk=shipped.id).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ADMIN, Role.OWNER])
def test_members_of_any_role_read_but_cannot_change_the_catalog(organization, member_of, role):
    shipped = _row()
    client = person(member_of(organization, role))
    assert client.get(f"{CATALOG}{shipped.id}/").status_code == 200
    assert client.post(CATALOG, NEW, format="json").status_code == 403
    assert client.patch(f"{CATALOG}{shipped.id}/", {"output_price": "1"}, format="json").status_code == 403
    assert client.put(f"{CATALOG}{shipped.id}/", NEW, format="json").status_code == 403
    assert client.delete(f"{CATALOG}{shipped.id}/").status_code == 403
    shipped.refresh_from_db()
    assert shipped.output_price == Decimal("10") and ModelPrice.objects.count() == 1


@pytest.mark.parametrize("neighbour", ["project", "other_project", "far_project"])
def test_an_override_is_never_a_catalog_row_even_for_a_superuser(request, superuser, neighbour):
    override = _row(project=request.getfixturevalue(neighbour), source=PriceSource.CUSTOM)
    client = person(superuser)
    for method in ("get", "put", "patch", "delete"):
        response = getattr(client, method)(f"{CATALOG}{override.id}/", NEW, format="json")
        assert response.status_code == 404, (method, response.content)
    override.refresh_from_db()
    assert override.output_price == Decimal("10")


def test_bad_catalog_prices_are_a_400(superuser):
    response = person(superuser).post(CATALOG, {**NEW, "input_price": "-1"}, format="json")
    assert response.status_code == 400 and "input_price" in response.json()
    assert not ModelPrice.objects.exists()
