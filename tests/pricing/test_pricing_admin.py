"""Console page for model prices: superusers edit the catalog; organization admins manage the
overrides of their own projects only."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.test import Client

from pricing.models import ModelPrice, PriceSource

CHANGELIST = "/admin/pricing/modelprice/"


def row(project=None, model_name="gpt-4o", **kwargs):
    return ModelPrice.objects.create(
        project=project, provider="openai", model_name=model_name, match_pattern=rf"^{model_name}$",
        effective_from=datetime(2024, 1, 1, tzinfo=dt_timezone.utc), input_price=Decimal("2.5"),
        output_price=Decimal("10"), source=PriceSource.CATALOG if project is None else PriceSource.CUSTOM, **kwargs,
    )


def console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form(project=None, **overrides):
    data = {
        "project": str(project.id) if project else "", "provider": "openai", "model_name": "gpt-4o",
        "match_pattern": "", "effective_from_0": "2025-01-01", "effective_from_1": "00:00:00",
        "input_price": "1.5", "cached_input_price": "", "cache_write_price": "", "output_price": "6",
        "reasoning_price": "",
    }
    data.update(overrides)
    return data


def test_members_see_the_catalog_and_their_own_overrides_only(member_of, organization, project, other_project):
    catalog = row(model_name="catalog-model")
    mine = row(project, model_name="mine-model")
    theirs = row(other_project, model_name="theirs-model")
    client = console(member_of(organization, "viewer"))

    page = client.get(CHANGELIST)

    assert page.status_code == 200
    content = page.content.decode()
    assert "catalog-model" in content and "mine-model" in content and "theirs-model" not in content
    assert client.get(f"{CHANGELIST}{theirs.id}/change/").status_code == 302  # "doesn't exist" redirect
    assert client.get(f"{CHANGELIST}{catalog.id}/change/").status_code == 200  # view only
    assert client.post(f"{CHANGELIST}{mine.id}/change/", form(project)).status_code == 403
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_an_org_admin_adds_an_override_for_their_project(member_of, organization, project):
    client = console(member_of(organization, "admin"))

    response = client.post(f"{CHANGELIST}add/", form(project))

    assert response.status_code == 302, response.content.decode()[:2000]
    created = ModelPrice.objects.get(project=project)
    assert (created.match_pattern, created.input_price, created.source) == (r"^gpt\-4o$", Decimal("1.5"), "custom")


def test_an_org_admin_cannot_add_a_global_price_or_one_for_another_organization(member_of, organization, other_project):
    client = console(member_of(organization, "admin"))

    global_attempt = client.post(f"{CHANGELIST}add/", form(None))
    foreign_attempt = client.post(f"{CHANGELIST}add/", form(other_project))

    assert global_attempt.status_code == 200 and "This field is required" in global_attempt.content.decode()
    assert foreign_attempt.status_code == 200 and "Select a valid choice" in foreign_attempt.content.decode()
    assert not ModelPrice.objects.exists()


def test_an_org_admin_cannot_change_or_delete_catalog_rows(member_of, organization):
    catalog = row()
    client = console(member_of(organization, "admin"))

    assert client.post(f"{CHANGELIST}{catalog.id}/change/", form(None, input_price="0")).status_code == 403
    assert client.post(f"{CHANGELIST}{catalog.id}/delete/", {"post": "yes"}).status_code == 403
    catalog.refresh_from_db()
    assert catalog.input_price == Decimal("2.5")


def test_the_admin_form_rejects_a_catastrophic_pattern(member_of, organization, project):
    client = console(member_of(organization, "owner"))

    response = client.post(f"{CHANGELIST}add/", form(project, match_pattern=r"^(\w+)+$"))

    assert response.status_code == 200
    assert "exponential time" in response.content.decode()
    assert not ModelPrice.objects.exists()


def test_a_superuser_edit_of_a_catalog_row_is_kept_as_custom(superuser):
    catalog = row()
    client = console(superuser)

    response = client.post(f"{CHANGELIST}{catalog.id}/change/", form(None, input_price="2.25"))

    assert response.status_code == 302
    catalog.refresh_from_db()
    assert (catalog.input_price, catalog.source) == (Decimal("2.25"), PriceSource.CUSTOM)


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_org_admin_deletes_an_override_of_their_project(member_of, organization, project, role):
    mine = row(project)
    client = console(member_of(organization, role))

    response = client.post(f"{CHANGELIST}{mine.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not ModelPrice.objects.filter(pk=mine.pk).exists()
