"""Model price API: /api/v1/model-prices/ (the catalog) and per-project overrides.

A second organization (Globex, with `other_project`) is always present; its overrides must never be
readable or writable from Acme's URLs, and must answer exactly like missing ones.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from pricing.models import ModelPrice, PriceSource
from pricing.services import AUDIT_CREATED, AUDIT_DELETED, AUDIT_UPDATED
from tenancy.models import AuditLogEntry

V1 = "/api/v1"


@pytest.fixture
def client_for():
    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


def prices_url(project, suffix=""):
    return f"{V1}/organizations/{project.organization_id}/projects/{project.id}/model-prices/{suffix}"


def catalog_row(model_name="gpt-4o", **kwargs):
    values = {
        "provider": "openai", "match_pattern": rf"^(openai/)?{model_name}$", "input_price": Decimal("2.5"),
        "cached_input_price": Decimal("1.25"), "output_price": Decimal("10"), "source": PriceSource.CATALOG,
        "effective_from": datetime(2024, 8, 6, tzinfo=dt_timezone.utc), **kwargs,
    }
    return ModelPrice.objects.create(project=None, model_name=model_name, **values)


def override_row(project, model_name="gpt-4o", **kwargs):
    values = {
        "provider": "openai", "match_pattern": rf"^{model_name}$", "input_price": Decimal("1"),
        "output_price": Decimal("4"), "effective_from": datetime(2024, 1, 1, tzinfo=dt_timezone.utc), **kwargs,
    }
    return ModelPrice.objects.create(project=project, model_name=model_name, **values)


NEW_OVERRIDE = {
    "provider": "openai", "model_name": "gpt-4o", "match_pattern": r"^(azure/)?gpt-4o(-\d{4}-\d{2}-\d{2})?$",
    "effective_from": "2025-01-01", "input_price": "2.00", "cached_input_price": "1.00", "output_price": "8.00",
}


# --- the catalog --------------------------------------------------------------------------------


def test_any_signed_in_person_can_list_the_catalog(client_for, member_of, organization, project):
    catalog_row("gpt-4o")
    catalog_row("claude-sonnet-4", provider="anthropic")
    override_row(project)
    viewer = member_of(organization, "viewer")

    response = client_for(viewer).get(f"{V1}/model-prices/")

    assert response.status_code == 200
    body = response.json()
    assert [row["model_name"] for row in body["results"]] == ["claude-sonnet-4", "gpt-4o"]
    assert all(row["project_id"] is None for row in body["results"])
    gpt = body["results"][1]
    assert (gpt["input_price"], gpt["cached_input_price"], gpt["cache_write_price"]) == ("2.500000", "1.250000", None)


def test_the_catalog_filters_by_provider_and_model(client_for, owner):
    catalog_row("gpt-4o")
    catalog_row("gpt-4o-mini")
    catalog_row("claude-sonnet-4", provider="anthropic")
    client = client_for(owner)

    by_provider = client.get(f"{V1}/model-prices/?provider=Anthropic").json()["results"]
    by_model = client.get(f"{V1}/model-prices/?model=4o-mi").json()["results"]

    assert [row["model_name"] for row in by_provider] == ["claude-sonnet-4"]
    assert [row["model_name"] for row in by_model] == ["gpt-4o-mini"]


def test_the_catalog_lists_without_a_query_per_row(client_for, owner, django_assert_max_num_queries):
    for i in range(30):
        catalog_row(f"model-{i}")
    client = client_for(owner)

    with django_assert_max_num_queries(6):
        response = client.get(f"{V1}/model-prices/?limit=100")

    assert len(response.json()["results"]) == 30


def test_the_catalog_refuses_anonymous_callers_and_api_keys(client_for, api_key):
    assert client_for().get(f"{V1}/model-prices/").status_code == 401
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=api_key.basic)
    assert keyed.get(f"{V1}/model-prices/").status_code == 403


def test_an_override_is_not_reachable_through_the_catalog(client_for, owner, other_project):
    hidden = override_row(other_project)
    visible = catalog_row()
    client = client_for(owner)

    assert client.get(f"{V1}/model-prices/{visible.id}/").status_code == 200
    assert client.get(f"{V1}/model-prices/{hidden.id}/").status_code == 404
    assert client.get(f"{V1}/model-prices/not-a-uuid/").status_code == 404


# --- project overrides: roles -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "member", "admin", "owner"])
def test_every_member_can_read_the_projects_overrides(client_for, member_of, organization, project, role):
    override = override_row(project)

    client = client_for(member_of(organization, role))
    listed = client.get(prices_url(project))
    one = client.get(prices_url(project, f"{override.id}/"))

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [str(override.id)]
    assert one.json()["project_id"] == str(project.id)


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_viewers_and_members_cannot_change_overrides(client_for, member_of, organization, project, role):
    override = override_row(project)
    client = client_for(member_of(organization, role))

    assert client.post(prices_url(project), NEW_OVERRIDE, format="json").status_code == 403
    assert client.patch(prices_url(project, f"{override.id}/"), {"input_price": "0"}, format="json").status_code == 403
    assert client.delete(prices_url(project, f"{override.id}/")).status_code == 403
    assert ModelPrice.objects.filter(project=project).count() == 1


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_admins_and_owners_create_change_and_delete_overrides(client_for, member_of, organization, project, role):
    person = member_of(organization, role)
    client = client_for(person)

    created = client.post(prices_url(project), NEW_OVERRIDE, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["project_id"], body["source"], body["input_price"]) == (str(project.id), "custom", "2.000000")
    assert body["effective_from"].startswith("2025-01-01T00:00:00")

    url = prices_url(project, f"{body['id']}/")
    patched = client.patch(url, {"output_price": "7.5", "reasoning_price": "9"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["output_price"], patched.json()["reasoning_price"]) == ("7.500000", "9.000000")

    replacement = {k: v for k, v in NEW_OVERRIDE.items() if k not in ("match_pattern", "cached_input_price")}
    replaced = client.put(url, {**replacement, "input_price": "3"}, format="json")
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["match_pattern"] == "^gpt\\-4o$"
    assert (replaced.json()["cached_input_price"], replaced.json()["reasoning_price"]) == (None, None)

    assert client.delete(url).status_code == 204
    assert not ModelPrice.objects.filter(project=project).exists()
    actions = set(AuditLogEntry.objects.filter(organization_id=organization.id).values_list("action", flat=True))
    assert {AUDIT_CREATED, AUDIT_UPDATED, AUDIT_DELETED} <= actions


def test_a_new_override_starts_today_by_default(client_for, owner, project):
    from django.utils import timezone

    payload = {key: value for key, value in NEW_OVERRIDE.items() if key != "effective_from"}
    body = client_for(owner).post(prices_url(project), payload, format="json").json()

    assert body["effective_from"].startswith(timezone.now().date().isoformat() + "T00:00:00")


# --- project overrides: validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"match_pattern": "^(gpt-4o"}, "match_pattern", "not a valid regular expression"),
        ({"match_pattern": r"^(\w+)+$"}, "match_pattern", "exponential"),
        ({"match_pattern": "^(a|ab)*$"}, "match_pattern", "exponential"),
        ({"match_pattern": r"^(gpt)\1$"}, "match_pattern", "backreferences"),
        ({"match_pattern": "x" * 501}, "match_pattern", "500"),
        ({"match_pattern": "^claude$"}, "match_pattern", "does not match the model's own name"),
        ({"input_price": "-1"}, "input_price", "greater than or equal to 0"),
        ({"output_price": "abc"}, "output_price", "valid number"),
        ({"model_name": "  "}, "model_name", "blank"),
        ({"effective_from": "next tuesday"}, "effective_from", "ISO 8601"),
    ],
)
def test_it_rejects_bad_overrides_with_a_400(client_for, owner, project, change, field, message):
    response = client_for(owner).post(prices_url(project), {**NEW_OVERRIDE, **change}, format="json")

    assert response.status_code == 400, response.json()
    assert message in " ".join(response.json()[field])
    assert not ModelPrice.objects.filter(project=project).exists()


def test_it_rejects_a_second_override_for_the_same_model_and_date(client_for, owner, project):
    client = client_for(owner)
    assert client.post(prices_url(project), NEW_OVERRIDE, format="json").status_code == 201

    response = client.post(prices_url(project), NEW_OVERRIDE, format="json")

    assert response.status_code == 400
    assert response.json()["non_field_errors"] == ["this project already has a price for this model from this date"]


def test_a_missing_required_field_is_a_400(client_for, owner, project):
    payload = {key: value for key, value in NEW_OVERRIDE.items() if key != "output_price"}
    response = client_for(owner).post(prices_url(project), payload, format="json")
    assert response.status_code == 400
    assert "output_price" in response.json()


# --- project overrides: isolation ---------------------------------------------------------------


def test_another_organizations_project_answers_404(client_for, owner, other_project):
    override = override_row(other_project)
    client = client_for(owner)

    for response in (
        client.get(prices_url(other_project)),
        client.post(prices_url(other_project), NEW_OVERRIDE, format="json"),
        client.get(prices_url(other_project, f"{override.id}/")),
        client.patch(prices_url(other_project, f"{override.id}/"), {"input_price": "0"}, format="json"),
        client.delete(prices_url(other_project, f"{override.id}/")),
        client.get(prices_url(other_project, "resolve?model=gpt-4o")),
    ):
        assert response.status_code == 404
    assert ModelPrice.objects.get(pk=override.pk).input_price == Decimal("1")


def test_another_projects_override_in_my_projects_url_answers_404(client_for, owner, project, other_project):
    foreign = override_row(other_project)
    client = client_for(owner)

    for response in (
        client.get(prices_url(project, f"{foreign.id}/")),
        client.patch(prices_url(project, f"{foreign.id}/"), {"input_price": "0"}, format="json"),
        client.delete(prices_url(project, f"{foreign.id}/")),
    ):
        assert response.status_code == 404
    assert client.get(prices_url(project)).json()["results"] == []
    assert ModelPrice.objects.filter(pk=foreign.pk).exists()


def test_a_catalog_row_cannot_be_edited_through_a_project(client_for, owner, project):
    row = catalog_row()
    client = client_for(owner)

    assert client.patch(prices_url(project, f"{row.id}/"), {"input_price": "0"}, format="json").status_code == 404
    assert client.delete(prices_url(project, f"{row.id}/")).status_code == 404
    row.refresh_from_db()
    assert row.input_price == Decimal("2.5")


def test_the_other_tenant_cannot_see_my_overrides(client_for, other_owner, project):
    override_row(project)
    client = client_for(other_owner)

    assert client.get(prices_url(project)).status_code == 404
    assert client.get(f"{V1}/model-prices/").json()["results"] == []


# --- resolve ------------------------------------------------------------------------------------


def test_resolve_shows_the_catalog_price_then_a_new_override(client_for, member_of, organization, owner, project,
                                                             django_capture_on_commit_callbacks):
    catalog_row("gpt-4o")
    viewer = client_for(member_of(organization, "viewer"))

    before = viewer.get(prices_url(project, "resolve?model=openai/gpt-4o&at=2025-06-01"))
    assert before.status_code == 200
    assert before.json()["applies"] == "catalog"
    assert before.json()["price"]["input_price"] == "2.500000"

    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(owner).post(
            prices_url(project), {**NEW_OVERRIDE, "match_pattern": "^(openai/)?gpt-4o$"}, format="json"
        ).status_code == 201

    after = viewer.get(prices_url(project, "resolve?model=openai/gpt-4o&at=2025-06-01T12:00:00Z"))
    assert after.json()["applies"] == "override"
    assert after.json()["price"]["project_id"] == str(project.id)
    assert after.json()["price"]["input_price"] == "2.000000"
    older = viewer.get(prices_url(project, "resolve?model=gpt-4o&at=2024-12-31"))
    assert older.json()["applies"] == "catalog"


def test_resolve_answers_null_for_an_unknown_model(client_for, owner, project):
    body = client_for(owner).get(prices_url(project, "resolve?model=my-own-model")).json()
    assert (body["model"], body["applies"], body["price"]) == ("my-own-model", None, None)


def test_resolve_needs_a_model_and_a_valid_time(client_for, owner, project):
    client = client_for(owner)
    assert client.get(prices_url(project, "resolve")).status_code == 400
    response = client.get(prices_url(project, "resolve?model=gpt-4o&at=soon"))
    assert response.status_code == 400
    assert "at" in response.json()


def test_resolve_never_uses_another_projects_override(client_for, owner, project, other_project):
    catalog_row("gpt-4o")
    override_row(other_project, input_price=Decimal("0.01"))

    body = client_for(owner).get(prices_url(project, "resolve?model=gpt-4o")).json()

    assert body["applies"] == "catalog"
    assert body["price"]["project_id"] is None
