"""Exports in the management API (/api/v1, admins): create (the project, a time range, or one end
user), list, status with build progress, and a signed download link; in the OpenAPI schema; and
another tenant's export is not found, in either region."""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlsplit

import pytest
from rest_framework.test import APIClient

from config.export_storage import export_storages
from privacy import exports, tasks
from privacy.models import ExportJob
from tenancy.models import AuditLogEntry, Role
from tests.privacy.test_erasure import ALICE, BOB, TRACES_EACH, seed_person


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, **export_storages(
        {}, root=tmp_path, regions=settings.DATA_REGIONS, link_seconds=settings.EXPORT_LINK_SECONDS)}
    return tmp_path


@pytest.fixture
def people(client, api_key, project, other_api_key, other_project, far_api_key, far_project):
    seed_person(client, api_key, project, ALICE)
    seed_person(client, api_key, project, BOB)
    seed_person(client, other_api_key, other_project, ALICE)
    seed_person(client, far_api_key, far_project, ALICE)


def v1(organization, project) -> str:
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/exports/"


def signed_in(user) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


def traces_in(client, url: str) -> list[str]:
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200
    body = gzip.decompress(b"".join(response.streaming_content)).decode()
    return sorted(json.loads(line)["row"]["id"] for line in body.splitlines() if '"traces.Trace"' in line[:30])


def test_an_admin_exports_through_the_management_api_and_follows_its_progress(
    client, organization, project, member_of, people, monkeypatch
):
    admin = member_of(organization, Role.ADMIN)
    api = signed_in(admin)
    response = api.post(v1(organization, project), {}, format="json")
    assert response.status_code == 202, response.content
    created = response.json()
    assert created["status"] == "queued" and created["download_url"] is None
    assert created["progress"] == {"traces_done": 0, "traces_total": None, "percent": None}
    assert created["requested_by"] == admin.email and created["user_hash"] is None

    # Progress is written while the build runs: two traces per batch, read back from the API each time.
    monkeypatch.setattr(exports, "TRACE_BATCH", 2)
    seen = []
    write = exports.write_export

    def observed(**kwargs):
        report = kwargs["on_progress"]

        def on_progress(done, total):
            report(done, total)
            seen.append(api.get(f"{v1(organization, project)}{created['id']}/").json()["progress"])

        return write(**{**kwargs, "on_progress": on_progress})

    monkeypatch.setattr(exports, "write_export", observed)
    tasks.build_export(project_id=str(project.id), export_id=created["id"])
    total = 2 * TRACES_EACH
    assert seen == [{"traces_done": done, "traces_total": total, "percent": min(99, 100 * done // total)}
                    for done in range(0, total + 1, 2)]

    detail = api.get(f"{v1(organization, project)}{created['id']}/").json()
    assert detail["status"] == "done" and detail["progress"]["percent"] == 100
    assert detail["counts"]["traces.Trace"] == total and detail["size"] > 0
    assert len(traces_in(client, detail["download_url"])) == total
    assert AuditLogEntry.objects.filter(action="export.downloaded", target_id=created["id"]).count() == 1
    entry = AuditLogEntry.objects.get(action="export.requested", target_id=created["id"])
    assert entry.actor_id == admin.id
    listing = api.get(v1(organization, project)).json()["results"]
    assert [e["id"] for e in listing] == [created["id"]] and listing[0]["download_url"]


def test_a_time_range_and_one_end_users_export(client, organization, project, owner, people):
    api = signed_in(owner)
    ranged = api.post(v1(organization, project), {"since": "2026-11-26T10:01:00Z", "until": "2026-11-26T10:02:00Z"},
                      format="json").json()
    one = api.post(v1(organization, project), {"user_id": ALICE}, format="json").json()
    assert one["user_hash"] and ALICE not in json.dumps(list(ExportJob.objects.values()), default=str)
    for export in (ranged, one):
        tasks.build_export(project_id=str(project.id), export_id=export["id"])
    ranged = api.get(f"{v1(organization, project)}{ranged['id']}/").json()
    one = api.get(f"{v1(organization, project)}{one['id']}/").json()
    assert traces_in(client, ranged["download_url"]) == [f"{ALICE}-t1", f"{BOB}-t1"]
    assert traces_in(client, one["download_url"]) == [f"{ALICE}-t{n}" for n in range(TRACES_EACH)]


@pytest.mark.parametrize("body", [
    {"since": "2026-11-27T00:00:00Z", "until": "2026-11-26T00:00:00Z"},
    {"since": "yesterday"},
    {"user_id": ""},
    {"user_id": "x" * 1001},
])
def test_bad_export_requests_answer_400(organization, project, owner, body):
    response = signed_in(owner).post(v1(organization, project), body, format="json")
    assert response.status_code == 400, response.content
    assert ExportJob.objects.count() == 0


def test_members_and_viewers_may_not_export(organization, project, member_of):
    for role in (Role.MEMBER, Role.VIEWER):
        api = signed_in(member_of(organization, role))
        assert api.post(v1(organization, project), {}, format="json").status_code == 403
        assert api.get(v1(organization, project)).status_code == 403
    assert ExportJob.objects.count() == 0


def test_another_tenants_export_is_not_found_in_either_region(
    organization, project, owner, other_organization, other_project, other_owner, far_organization, far_project,
    far_owner,
):
    from privacy.services import export_create

    mine = export_create(project=project, actor=owner)
    for user, org, proj in ((other_owner, other_organization, other_project), (far_owner, far_organization, far_project)):
        api = signed_in(user)
        assert api.get(f"{v1(organization, project)}{mine.id}/").status_code == 404
        assert api.get(v1(organization, project)).status_code == 404
        assert api.post(v1(organization, project), {}, format="json").status_code == 404
        # Their own project's routes do not show ours either.
        assert api.get(v1(org, proj)).json()["results"] == []
        assert api.get(f"{v1(org, proj)}{mine.id}/").status_code == 404
        assert api.get(f"{v1(org, proj)}not-a-uuid/").status_code == 404
    assert ExportJob.objects.filter(project__in=[other_project, far_project]).count() == 0


def test_the_schema_documents_the_export_routes(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    base = "/api/v1/organizations/{organization_id}/projects/{project_id}/exports/"
    assert set(schema["paths"][base]) >= {"get", "post"}
    detail = schema["paths"][base + "{data_export_id}/"]["get"]
    assert {p["name"]: p["schema"] for p in detail["parameters"]}["data_export_id"] == {"type": "string",
                                                                                       "format": "uuid"}
    properties = schema["components"]["schemas"]["Export"]["properties"]
    assert {"status", "progress", "counts", "download_url", "user_hash"} <= set(properties)
    assert schema["paths"][base]["post"]["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Export")
