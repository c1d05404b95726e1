"""Region-pinned nodes: two gunicorn processes, one serving `eu` and one serving `us`, each given a
database URL for the other region that cannot be connected to (so reaching across would fail loudly).
Each stores its own region's data and redirects (307 + that region's base URL) the other's."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys

import orjson
import pytest
from django.conf import settings
from django.db import connections

from bench.server import free_port, wait_ready
from tenancy.regions import RegionNotServed, data_databases, region_alias, region_database
from traces.models import Trace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNREACHABLE = "postgres://nobody:nothing@127.0.0.1:1/not_here"


def _url(alias: str) -> str:
    s = connections[alias].settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture(scope="module")
def nodes(django_db_setup, django_db_blocker):
    """{"eu": port, "us": port}: one node per region."""
    ports = {"eu": free_port(), "us": free_port()}
    with django_db_blocker.unblock():
        urls = {name: _url(region_alias(name)) for name in ("eu", "us")}
        base = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        base.update(
            DJANGO_SETTINGS_MODULE="config.test_settings", DATABASE_URL=_url("default"),
            DEFAULT_REGION="eu", REDIS_URL=settings.REDIS_URL,
            REGION_URLS=",".join(f"{name}=http://127.0.0.1:{port}" for name, port in ports.items()),
        )
    procs = {}
    try:
        for region, port in ports.items():
            other = "us" if region == "eu" else "eu"
            env = dict(base, SERVE_REGIONS=region,
                       DATA_REGIONS=f"{region}={urls[region]},{other}={UNREACHABLE}")
            procs[region] = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                 "--worker-class", "gthread", "--workers", "1", "--threads", "2", "--log-level", "warning"],
                cwd=ROOT, env=env, start_new_session=True,
            )
        for region, port in ports.items():
            wait_ready(f"http://127.0.0.1:{port}", procs[region])
        yield ports
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


def send(port: int, method: str, path: str, key, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": key.basic, "Content-Type": "application/json"}
        conn.request(method, path, body=orjson.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def batch(trace_id: str) -> dict:
    return {"batch": [{"id": f"e-{trace_id}", "type": "trace-create", "timestamp": "2026-11-26T10:00:00Z",
                       "body": {"id": trace_id, "name": "pinned"}}]}


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_each_node_serves_its_region_and_redirects_the_other(nodes, project, api_key, far_project, far_api_key):
    # The eu project on the eu node: stored; on the us node: sent to the eu node, nothing touched.
    status, _, body = send(nodes["eu"], "POST", "/api/public/ingestion", api_key, batch("t-eu"))
    assert status == 207 and orjson.loads(body)["errors"] == []
    status, headers, body = send(nodes["us"], "POST", "/api/public/ingestion", api_key, batch("t-eu-2"))
    assert status == 307, body
    assert headers["Location"] == f"http://127.0.0.1:{nodes['eu']}/api/public/ingestion"
    assert orjson.loads(body)["region"] == "eu" and orjson.loads(body)["baseUrl"].endswith(str(nodes["eu"]))
    # Following the redirect stores it where it belongs.
    status, _, _ = send(nodes["eu"], "POST", "/api/public/ingestion", api_key, batch("t-eu-2"))
    assert status == 207

    status, _, body = send(nodes["us"], "POST", "/api/public/ingestion", far_api_key, batch("t-us"))
    assert status == 207 and orjson.loads(body)["errors"] == []
    status, headers, _ = send(nodes["eu"], "GET", "/api/public/traces/t-us", far_api_key)
    assert status == 307 and headers["Location"] == f"http://127.0.0.1:{nodes['us']}/api/public/traces/t-us"
    status, _, body = send(nodes["us"], "GET", "/api/public/traces/t-us", far_api_key)
    assert status == 200 and orjson.loads(body)["name"] == "pinned"

    assert sorted(Trace.objects.for_project(project).values_list("id", flat=True)) == ["t-eu", "t-eu-2"]
    assert list(Trace.objects.for_project(far_project).values_list("id", flat=True)) == ["t-us"]
    # Both nodes are healthy: neither ever tried the database it was not given.
    for port in nodes.values():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/public/health?failIfDatabaseUnavailable=true")
        assert conn.getresponse().status == 200
        conn.close()


def test_a_node_never_names_a_region_it_does_not_serve(settings):
    settings.SERVE_REGIONS = ["eu"]
    assert region_database("eu") == region_alias("eu")
    with pytest.raises(RegionNotServed):
        region_database("us")
    assert data_databases() == [region_alias("eu")]


def test_management_urls_of_another_regions_project_are_redirected(client, settings, far_organization, far_project,
                                                                   far_owner, organization, project, owner):
    settings.SERVE_REGIONS = ["eu"]
    settings.REGION_URLS = {"us": "https://us.lookglass.example"}
    client.force_login(far_owner)
    path = f"/api/v1/organizations/{far_organization.id}/projects/{far_project.id}/retention"
    response = client.get(path)
    assert response.status_code == 307 and response["Location"] == f"https://us.lookglass.example{path}"
    settings.REGION_URLS = {}
    response = client.get(path)
    assert response.status_code == 421 and response.json()["region"] == "us"
    client.force_login(owner)
    assert client.get(f"/api/v1/organizations/{organization.id}/projects/{project.id}/retention").status_code == 200


def test_a_worker_consumes_only_the_queues_of_its_regions(settings):
    from config.celery import _declare_queues, app

    settings.SERVE_REGIONS = ["us"]
    _declare_queues(app)
    try:
        assert [q.name for q in app.conf.task_queues] == ["default", "region.us"]
    finally:
        settings.SERVE_REGIONS = list(settings.DATA_REGIONS)
        _declare_queues(app)
