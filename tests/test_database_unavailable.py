"""A database outage answers 503 with Retry-After on every kind of endpoint, never a 500."""

import pytest
from django.db import OperationalError

from tenancy.models import ApiKey


@pytest.fixture
def control_plane_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    # Every key lookup goes through this queryset method; the key cache is empty in each test.
    monkeypatch.setattr(type(ApiKey.objects.select_related("project")), "first", refuse)


@pytest.mark.parametrize(
    "path",
    ["/api/public/projects", "/api/public/v2/prompts/greeting", "/api/public/traces", "/api/public/observations"],
)
def test_key_lookup_outage_is_a_503_with_retry_after(client, api_key, control_plane_down, path):
    response = client.get(path, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["message"]


def test_other_errors_are_not_turned_into_503(client):
    response = client.get("/api/public/health")
    assert response.status_code == 200
