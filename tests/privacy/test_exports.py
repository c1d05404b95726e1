"""Exports: built in the project's region, every field of every row round-trips, one end user's or a
time range only when asked, downloaded through an expiring signed link (audited), erased with the
data, and another tenant's export is not found."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from urllib.parse import urlsplit

import orjson
import pytest
from django.apps import apps

from config.export_storage import export_storages
from privacy import services, tasks
from privacy.models import ExportJob
from tenancy.models import AuditLogEntry
from tests.privacy.test_erasure import ALICE, BOB, TRACES_EACH, seed_person

EXPORTS = "/api/public/exports"


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    """Every region's export storage on the filesystem (the default), under a fresh directory."""
    settings.EXPORT_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, **export_storages(
        {}, root=tmp_path, regions=settings.DATA_REGIONS, link_seconds=settings.EXPORT_LINK_SECONDS)}
    return tmp_path


@pytest.fixture
def people(client, api_key, project, other_api_key, other_project, far_api_key, far_project):
    seed_person(client, api_key, project, ALICE)
    seed_person(client, api_key, project, BOB)
    seed_person(client, other_api_key, other_project, ALICE)
    seed_person(client, far_api_key, far_project, ALICE)


def ask(client, key, body) -> dict:
    response = client.post(EXPORTS, data=orjson.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 202, response.content
    return response.json()


def built(client, key, project, body) -> dict:
    export = ask(client, key, body)
    tasks.build_export(project_id=str(project.id), export_id=export["id"])
    detail = client.get(f"{EXPORTS}/{export['id']}", HTTP_AUTHORIZATION=key.basic).json()
    assert detail["status"] == "done", detail
    return detail


def download(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def lines(response) -> list[dict]:
    body = gzip.decompress(b"".join(response.streaming_content))
    # Decimals as Decimals: costs must come back digit for digit.
    return [json.loads(line, parse_float=Decimal) for line in body.decode().splitlines()]


def test_an_export_round_trips_every_field_of_every_row(client, api_key, project, people, export_root):
    detail = built(client, api_key, project, {})
    assert str(export_root / "eu") in str(next(export_root.rglob("*.jsonl.gz")))  # the region's storage
    records = lines(download(client, detail["downloadUrl"]))
    assert detail["counts"]["traces.Trace"] == 2 * TRACES_EACH
    assert detail["counts"]["traces.Observation"] == 2 * 2 * TRACES_EACH
    checked = 0
    for record in records:
        model = apps.get_model(record["table"])
        row = record["row"]
        assert row["project_id"] == str(project.id)
        stored = model.objects.for_project(project).get(id=row["id"])
        for field in model._meta.concrete_fields:
            if field.primary_key and field.name == "pk":
                continue
            value = field.to_python(row[field.column])
            if field.get_internal_type() == "DateTimeField" and isinstance(row[field.column], str):
                from django.utils.dateparse import parse_datetime

                value = parse_datetime(row[field.column])
            if field.get_internal_type() == "JSONField":
                value = json.loads(json.dumps(row[field.column]))
            assert value == getattr(stored, field.attname), (record["table"], field.name)
            checked += 1
    assert checked > 500
    assert {r["table"] for r in records} == {
        "traces.Trace", "traces.Observation", "scores.Score", "feedback.FeedbackEvent", "evals.DatasetRunItem"}


def test_one_end_users_export_holds_only_their_rows_and_the_control_plane_never_their_id(
    client, api_key, project, people
):
    detail = built(client, api_key, project, {"userId": ALICE})
    records = lines(download(client, detail["downloadUrl"]))
    assert records and all(BOB not in json.dumps(r) for r in records)
    assert {r["row"]["user_id"] for r in records if r["table"] == "traces.Trace"} == {ALICE}
    assert detail["userHash"] == services.subject_hash(project=project, kind="user", subjects=[ALICE])
    assert ALICE not in json.dumps(list(ExportJob.objects.values()), default=str)


def test_the_build_task_builds_only_its_own_projects_export(client, api_key, project, other_project, people):
    export = ask(client, api_key, {})
    tasks.build_export(project_id=str(other_project.id), export_id=export["id"])  # not that project's export
    assert ExportJob.objects.get(id=export["id"]).status == "queued"
    tasks.build_export(project_id=str(project.id), export_id=export["id"])
    assert ExportJob.objects.get(id=export["id"]).status == "done"


def test_a_time_range_export_holds_only_traces_in_it(client, api_key, project, people):
    detail = built(client, api_key, project, {"fromTimestamp": "2026-11-26T10:01:00Z",
                                              "toTimestamp": "2026-11-26T10:02:00Z"})
    records = lines(download(client, detail["downloadUrl"]))
    assert sorted(r["row"]["id"] for r in records if r["table"] == "traces.Trace") == [f"{ALICE}-t1", f"{BOB}-t1"]


def test_links_expire_are_unforgeable_and_downloads_are_audited(client, api_key, project, people, settings):
    detail = built(client, api_key, project, {})
    assert download(client, detail["downloadUrl"]).status_code == 200
    assert AuditLogEntry.objects.filter(action="export.downloaded", target_id=detail["id"]).count() == 1
    assert AuditLogEntry.objects.filter(action="export.requested", target_id=detail["id"]).count() == 1
    tampered = detail["downloadUrl"][:-3] + "abc"
    assert download(client, tampered).status_code == 404
    path = urlsplit(detail["downloadUrl"]).path
    assert client.get(path).status_code == 401  # the token is the credential
    assert client.get(path, HTTP_AUTHORIZATION=api_key.basic).status_code == 401  # a key does not replace it
    settings.EXPORT_LINK_SECONDS = -1
    assert download(client, detail["downloadUrl"]).status_code == 404


def test_an_erasure_deletes_export_files_built_before_it(client, api_key, project, people, export_root):
    detail = built(client, api_key, project, {})
    erasure = services.erasure_request_create(project=project, kind="user", subjects=[ALICE], via="api",
                                              grace_days=0)
    tasks.run_erasure(project_id=str(project.id), erasure_id=str(erasure.id))
    assert list(export_root.rglob("*.jsonl.gz")) == []
    assert download(client, detail["downloadUrl"]).status_code == 404
    erasure.refresh_from_db()
    assert erasure.counts["privacy.ExportFile"] == 1


@pytest.mark.parametrize("body", [[], {"userId": ""}, {"fromTimestamp": "yesterday"},
                                  {"fromTimestamp": "2026-11-27T00:00:00Z", "toTimestamp": "2026-11-26T00:00:00Z"}])
def test_bad_export_requests_answer_400(client, api_key, body):
    response = client.post(EXPORTS, data=orjson.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 400 and ExportJob.objects.count() == 0


def test_another_tenants_export_is_not_found(client, api_key, other_api_key, far_api_key, project, people):
    detail = built(client, api_key, project, {})
    for key in (other_api_key, far_api_key):
        assert client.get(f"{EXPORTS}/{detail['id']}", HTTP_AUTHORIZATION=key.basic).status_code == 404
    # A link for one export does not open another.
    other = built(client, api_key, project, {"userId": BOB})
    token = urlsplit(detail["downloadUrl"]).query
    assert client.get(f"{EXPORTS}/{other['id']}/download?{token}").status_code == 404


def test_a_node_pinned_to_another_region_sends_the_download_to_that_region(
    client, far_api_key, far_project, people, settings
):
    detail = built(client, far_api_key, far_project, {})  # a US project's export
    settings.SERVE_REGIONS = ["eu"]
    settings.REGION_URLS = {"us": "https://us.lookglass.example"}
    parts = urlsplit(detail["downloadUrl"])
    response = client.get(f"{parts.path}?{parts.query}")
    # Never read from the other region's storage: the same signed link, on the region's own node.
    assert response.status_code == 307
    assert response["Location"] == f"https://us.lookglass.example{parts.path}?{parts.query}"
    settings.REGION_URLS = {}
    assert client.get(f"{parts.path}?{parts.query}").status_code == 421


def test_an_erasure_during_a_build_leaves_no_file_behind(client, api_key, project, people, export_root, monkeypatch):
    from privacy import exports

    export = ask(client, api_key, {})
    write = exports.write_export

    def erased_meanwhile(**kwargs):
        counts = write(**kwargs)
        erasure = services.erasure_request_create(project=project, kind="user", subjects=[ALICE], via="api",
                                                  grace_days=0)
        tasks.run_erasure(project_id=str(project.id), erasure_id=str(erasure.id))
        return counts

    monkeypatch.setattr(exports, "write_export", erased_meanwhile)
    tasks.build_export(project_id=str(project.id), export_id=export["id"])
    assert list(export_root.rglob("*.jsonl.gz")) == []
    assert ExportJob.objects.get(id=export["id"]).erased_at is not None


def test_deleting_a_project_purges_its_export_files_and_only_its_own(client, api_key, other_api_key, project,
                                                                     other_project, people, export_root):
    from tenancy.services import project_delete
    from tenancy.tasks import purge_project_data

    built(client, api_key, project, {})
    built(client, api_key, project, {"userId": ALICE})
    built(client, other_api_key, other_project, {})
    mine = list(export_root.rglob(f"{project.id}/*.jsonl.gz"))
    assert len(mine) == 2
    project_id, region = str(project.id), project.region
    project_delete(project=project, actor=None)
    deleted = purge_project_data(project_id=project_id, region=region)
    assert deleted["privacy.ExportFile"] == 2
    assert list(export_root.rglob(f"{project_id}/*")) == [] and not any(export_root.rglob(project_id))
    # The same-region neighbour's export is untouched; a second purge finds nothing left.
    assert len(list(export_root.rglob(f"{other_project.id}/*.jsonl.gz"))) == 1
    assert purge_project_data(project_id=project_id, region=region)["privacy.ExportFile"] == 0
