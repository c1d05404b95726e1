"""A database outage answers 503 with Retry-After on every kind of endpoint, never a 500."""

import pytest
from django.db import OperationalError, ProgrammingError

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


@pytest.mark.parametrize(
    "error",
    [
        ProgrammingError("relation does not exist"),  # a bug, not an outage: retrying cannot help
        RuntimeError("a plain bug"),
    ],
    ids=lambda error: type(error).__name__,
)
@pytest.mark.parametrize("path", ["/api/public/projects", "/api/public/traces"])
def test_other_errors_are_not_turned_into_503(client, api_key, monkeypatch, error, path):
    """Only an unavailable database is a 503 that clients retry; any other failure on the same code
    path stays a 500 (a retry loop would hide the bug and hammer the server)."""

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(type(ApiKey.objects.select_related("project")), "first", fail)
    client.raise_request_exception = False  # answer as in production instead of re-raising here
    response = client.get(path, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 500
    assert not response.has_header("Retry-After")
