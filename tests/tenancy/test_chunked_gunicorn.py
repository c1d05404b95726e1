"""Chunked request bodies (`Transfer-Encoding: chunked`, no Content-Length) against a real gunicorn,
the server `make run` uses: they used to be read as empty (`/v1/traces` answered `200 {}` and stored
nothing). The requests are genuinely chunked on the wire (http.client with an iterable body)."""

import gzip
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
from ingest.adapters.otel.testing import TRACE_ID, make_request, make_span, to_otlp_json
from tenancy.regions import region_alias
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _url(alias: str) -> str:
    s = connections[alias].settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker):
    """gunicorn (gthread) serving the test databases."""
    with django_db_blocker.unblock():
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            DJANGO_SETTINGS_MODULE="config.test_settings",
            DATABASE_URL=_url("default"),
            DATA_REGIONS=",".join(f"{name}={_url(region_alias(name))}" for name in settings.DATA_REGIONS),
            DEFAULT_REGION=settings.DEFAULT_REGION,
            REDIS_URL=settings.REDIS_URL,
        )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--workers", "1", "--threads", "2", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def _post_chunked(port, path, body: bytes, headers: dict, *, piece=1000, method="POST"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        pieces = (body[i : i + piece] for i in range(0, len(body), piece))
        conn.request(method, path, body=pieces, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/v1/traces", "/api/public/otel/v1/traces"])
def test_a_chunked_otlp_json_export_is_stored(gunicorn, project, api_key, path):
    body = orjson.dumps(to_otlp_json(make_request([make_span(name="over-the-wire")])))
    status, content = _post_chunked(
        gunicorn, path, body,
        {"Content-Type": "application/json", "Authorization": api_key.basic, "Transfer-Encoding": "chunked"},
    )
    assert status == 200, content
    assert Observation.objects.for_project(project).filter(trace_id=TRACE_ID, name="over-the-wire").exists()


def test_a_chunked_gzipped_protobuf_export_is_stored(gunicorn, project, api_key):
    body = gzip.compress(make_request([make_span(name="pb-over-the-wire")]).SerializeToString())
    status, content = _post_chunked(
        gunicorn, "/v1/traces", body,
        {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": api_key.basic,
         "Transfer-Encoding": "chunked"},
    )
    assert status == 200, content
    assert Observation.objects.for_project(project).filter(name="pb-over-the-wire").exists()


def test_a_chunked_ingestion_batch_is_stored(gunicorn, project, api_key):
    body = orjson.dumps(
        {"batch": [{"id": "ev-1", "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z",
                    "body": {"id": "t-wire", "name": "wire"}}]}
    )
    status, content = _post_chunked(
        gunicorn, "/api/public/ingestion", body,
        {"Content-Type": "application/json", "Authorization": api_key.basic, "Transfer-Encoding": "chunked"},
        piece=7,
    )
    assert status == 207, content
    assert orjson.loads(content)["successes"] == [{"id": "ev-1", "status": 201}]
    assert Trace.objects.for_project(project).get(id="t-wire").name == "wire"


def test_a_chunked_body_over_the_limit_is_413(gunicorn, project, api_key):
    body = b" " * (settings.INGEST_MAX_BODY_BYTES + 10)
    status, content = _post_chunked(
        gunicorn, "/api/public/ingestion", body,
        {"Content-Type": "application/json", "Authorization": api_key.basic, "Transfer-Encoding": "chunked"},
        piece=256 * 1024,
    )
    assert status == 413, content


def test_a_chunked_drf_patch_is_applied(gunicorn, client, project, owner):
    client.force_login(owner)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = "a" * 32  # DRF's session authentication checks CSRF: cookie and header must agree
    status, content = _post_chunked(
        gunicorn, f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/",
        orjson.dumps({"name": "renamed-over-the-wire"}),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked", "X-CSRFToken": csrf,
         "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"},
        method="PATCH", piece=5,
    )
    assert status == 200, content
    project.refresh_from_db()
    assert project.name == "renamed-over-the-wire"
