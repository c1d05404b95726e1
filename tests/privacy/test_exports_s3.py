"""Exports in S3-compatible storage (django-storages' boto3 backend), against a real S3 HTTP server:
moto's server in its own process on loopback, spoken to over the S3 wire protocol (nothing in this
process is patched). Round-trip, the signed link's redirect to a presigned URL that expires with it,
expiry refused, erasure deleting the object, and another tenant's export not found."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from config.export_storage import export_storages, parse_export_storage_urls, s3_storage
from privacy import exports, services, tasks
from tests.privacy.test_erasure import ALICE, BOB, TRACES_EACH, seed_person
from tests.privacy.test_exports import EXPORTS, built, download

KEY, SECRET = "lookglass-test", "lookglass-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server in a child process on a free loopback port, for this module's tests."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the S3 test server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def s3_client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        region_name="us-east-1")


@pytest.fixture
def buckets(settings, s3_endpoint):
    """A fresh bucket per region, configured the way an operator would (EXPORT_STORAGE_URLS)."""
    suffix = uuid.uuid4().hex[:8]
    names = {region: f"lg-exports-{region}-{suffix}" for region in settings.DATA_REGIONS}
    client = s3_client(s3_endpoint)
    for name in names.values():
        client.create_bucket(Bucket=name)
    value = ",".join(
        f"{region}=s3://{KEY}:{SECRET}@{name}/exports?endpoint_url={s3_endpoint}&region_name=us-east-1"
        f"&addressing_style=path"
        for region, name in names.items()
    )
    urls = parse_export_storage_urls(value, settings.DATA_REGIONS)
    settings.STORAGES = {**settings.STORAGES, **export_storages(
        urls, root="/nonexistent", regions=settings.DATA_REGIONS, link_seconds=settings.EXPORT_LINK_SECONDS)}
    return names


def objects(endpoint, bucket) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


@pytest.fixture
def people(client, api_key, project, other_api_key, other_project, far_api_key, far_project):
    seed_person(client, api_key, project, ALICE)
    seed_person(client, api_key, project, BOB)
    seed_person(client, other_api_key, other_project, ALICE)
    seed_person(client, far_api_key, far_project, ALICE)


def fetch(client, url: str) -> httpx.Response:
    """Follow the signed link as a browser would: our redirect, then the object store itself."""
    response = download(client, url)
    assert response.status_code == 302, response.content
    assert response["Cache-Control"] == "no-store"
    return httpx.get(response["Location"], timeout=10)


def rows(body: bytes) -> list[dict]:
    return [json.loads(line, parse_float=Decimal) for line in gzip.decompress(body).decode().splitlines()]


def test_an_export_is_stored_in_the_regions_bucket_and_round_trips(client, api_key, project, people, buckets,
                                                                   s3_endpoint):
    detail = built(client, api_key, project, {})
    assert objects(s3_endpoint, buckets["eu"]) == [f"exports/{project.id}/{detail['id']}.jsonl.gz"]
    assert objects(s3_endpoint, buckets["us"]) == []  # nothing of an EU project lands in the US bucket
    answer = fetch(client, detail["downloadUrl"])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in answer.headers  # the client keeps the .gz it asked for
    assert f'filename="lookglass-export-{detail["id"]}.jsonl.gz"' in answer.headers["content-disposition"]
    records = rows(answer.content)
    assert len(answer.content) == detail["size"]
    traces = sorted(r["row"]["id"] for r in records if r["table"] == "traces.Trace")
    assert traces == sorted(f"{who}-t{n}" for who in (ALICE, BOB) for n in range(TRACES_EACH))
    assert detail["counts"]["traces.Observation"] == sum(r["table"] == "traces.Observation" for r in records)
    assert {r["row"]["project_id"] for r in records} == {str(project.id)}


def test_one_end_users_export_from_the_bucket_holds_only_their_rows(client, api_key, project, people, buckets):
    detail = built(client, api_key, project, {"userId": ALICE})
    records = rows(fetch(client, detail["downloadUrl"]).content)
    assert {r["row"]["user_id"] for r in records if r["table"] == "traces.Trace"} == {ALICE}
    assert all(BOB not in json.dumps(r) for r in records)


def test_the_presigned_url_expires_with_the_signed_link_and_an_expired_link_is_refused(
    client, api_key, project, people, buckets, settings
):
    settings.EXPORT_LINK_SECONDS = 600
    detail = built(client, api_key, project, {})
    location = download(client, detail["downloadUrl"])["Location"]
    query = parse_qs(urlsplit(location).query)
    assert 590 <= int(query["X-Amz-Expires"][0]) <= 600  # what the link has left, never more
    assert "X-Amz-Signature" in query  # a private object: only the presigned URL opens it
    assert httpx.get(location.split("?")[0], timeout=10).status_code == 403
    settings.EXPORT_LINK_SECONDS = -1
    refused = download(client, detail["downloadUrl"])
    assert refused.status_code == 404 and "Location" not in refused


def test_downloads_from_the_bucket_are_audited(client, api_key, project, people, buckets):
    from tenancy.models import AuditLogEntry

    detail = built(client, api_key, project, {})
    fetch(client, detail["downloadUrl"])
    assert AuditLogEntry.objects.filter(action="export.downloaded", target_id=detail["id"]).count() == 1


def test_an_erasure_deletes_the_export_objects(client, api_key, project, people, buckets, s3_endpoint):
    first = built(client, api_key, project, {})
    second = built(client, api_key, project, {"userId": BOB})
    assert len(objects(s3_endpoint, buckets["eu"])) == 2
    erasure = services.erasure_request_create(project=project, kind="user", subjects=[ALICE], via="api",
                                              grace_days=0)
    tasks.run_erasure(project_id=str(project.id), erasure_id=str(erasure.id))
    assert objects(s3_endpoint, buckets["eu"]) == []
    erasure.refresh_from_db()
    assert erasure.counts["privacy.ExportFile"] == 2
    for detail in (first, second):
        assert download(client, detail["downloadUrl"]).status_code == 404


def test_another_tenants_export_in_the_bucket_is_not_found(
    client, api_key, other_api_key, far_api_key, project, people, buckets
):
    detail = built(client, api_key, project, {})
    for key in (other_api_key, far_api_key):
        assert client.get(f"{EXPORTS}/{detail['id']}", HTTP_AUTHORIZATION=key.basic).status_code == 404
    other = built(client, api_key, project, {"userId": BOB})
    token = urlsplit(detail["downloadUrl"]).query
    assert client.get(f"{EXPORTS}/{other['id']}/download?{token}").status_code == 404


def test_an_unreachable_bucket_answers_503_not_500(client, api_key, project, people, settings):
    dead = f"http://127.0.0.1:{_free_port()}"
    settings.STORAGES = {**settings.STORAGES, **export_storages(
        {"eu": f"s3://{KEY}:{SECRET}@lg-gone/exports?endpoint_url={dead}&region_name=us-east-1"},
        root="/nonexistent", regions=settings.DATA_REGIONS, link_seconds=settings.EXPORT_LINK_SECONDS)}
    export = services.export_create(project=project)
    from privacy.models import ExportJob

    ExportJob.objects.filter(id=export.id).update(status="done", file_name=f"{project.id}/{export.id}.jsonl.gz")
    export.refresh_from_db()
    path = f"{EXPORTS}/{export.id}/download?token={exports.download_token(export)}"
    response = client.get(path)
    assert response.status_code == 503 and response["Retry-After"]


@pytest.mark.parametrize("value, message", [
    ("mars=s3://b/p", "not one of DATA_REGIONS"),
    ("eu", "expected region=s3://bucket/prefix"),
    ("eu=https://b/p", "is not s3://bucket/prefix"),
    ("eu=s3://b/p?acl=public-read", "unknown option 'acl'"),
])
def test_bad_storage_urls_refuse_to_start(value, message, settings):
    with pytest.raises(ImproperlyConfigured, match=message):
        for url in parse_export_storage_urls(value, settings.DATA_REGIONS).values():
            s3_storage(url, link_seconds=60)


def test_storage_urls_become_one_storage_per_region(settings):
    urls = parse_export_storage_urls(
        "eu=s3://AK%2F1:S%40CRET@lg-eu/a/b?endpoint_url=https://minio.eu.example:9000&region_name=eu-central-1",
        settings.DATA_REGIONS)
    built_storages = export_storages(urls, root="/srv/exports", regions=["eu", "us"], link_seconds=900)
    eu, us = built_storages["exports-eu"], built_storages["exports-us"]
    assert eu["BACKEND"] == "storages.backends.s3.S3Storage"
    assert {k: eu["OPTIONS"][k] for k in ("bucket_name", "location", "endpoint_url", "region_name",
                                          "access_key", "secret_key", "querystring_expire", "default_acl")} == {
        "bucket_name": "lg-eu", "location": "a/b", "endpoint_url": "https://minio.eu.example:9000",
        "region_name": "eu-central-1", "access_key": "AK/1", "secret_key": "S@CRET", "querystring_expire": 900,
        "default_acl": None}
    assert us == {"BACKEND": "django.core.files.storage.FileSystemStorage",
                  "OPTIONS": {"location": "/srv/exports/us", "allow_overwrite": True}}
