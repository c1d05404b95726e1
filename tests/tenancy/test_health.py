import time

import pytest
from django.db import connections

from config.devstack import free_port
from tests.faults import silent_server


def test_health_reports_ok_and_version(client):
    response = client.get("/api/public/health")
    assert response.status_code == 200
    assert response.json()["status"] == "OK"
    assert response.json()["version"]


def test_health_with_database_check_passes_when_database_is_up(client):
    response = client.get("/api/public/health?failIfDatabaseUnavailable=true")
    assert response.status_code == 200


@pytest.fixture
def default_database_at(monkeypatch):
    """Points the control-plane database at another address; connections opened from now on go there."""

    def point(host, port):
        monkeypatch.setitem(connections["default"].settings_dict, "HOST", host)
        monkeypatch.setitem(connections["default"].settings_dict, "PORT", str(port))

    return point


def test_health_with_database_check_returns_503_when_database_is_down(client, default_database_at):
    default_database_at("127.0.0.1", free_port())  # nothing listens there: connection refused
    response = client.get("/api/public/health?failIfDatabaseUnavailable=true")
    assert response.status_code == 503
    assert response.json()["status"] == "Database not available"


def test_health_answers_within_two_seconds_when_the_database_is_frozen(client, default_database_at):
    with silent_server() as (host, port):
        default_database_at(host, port)
        for _ in range(2):  # the second one shares (or follows) the first's stuck probe
            started = time.monotonic()
            response = client.get("/api/public/health?failIfDatabaseUnavailable=true")
            assert time.monotonic() - started < 2
            assert response.status_code == 503
        # A request without the database check never waits on the database.
        started = time.monotonic()
        assert client.get("/api/public/health").status_code == 200
        assert time.monotonic() - started < 0.5


def test_ready(client):
    response = client.get("/api/public/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "OK", "version": response.json()["version"]}
