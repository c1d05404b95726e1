from django.db import connections


def test_health_reports_ok_and_version(client):
    response = client.get("/api/public/health")
    assert response.status_code == 200
    assert response.json()["status"] == "OK"
    assert response.json()["version"]


def test_health_with_database_check_passes_when_database_is_up(client):
    response = client.get("/api/public/health?failIfDatabaseUnavailable=true")
    assert response.status_code == 200


def test_health_with_database_check_returns_503_when_database_is_down(client, monkeypatch):
    from django.db import OperationalError

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", broken_cursor)
    response = client.get("/api/public/health?failIfDatabaseUnavailable=true")
    assert response.status_code == 503
    assert response.json()["status"] == "Database not available"


def test_ready(client):
    response = client.get("/api/public/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "OK", "version": response.json()["version"]}
