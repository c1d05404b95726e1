"""The console's exports page: admins list a project's exports with status and progress, ask for one
(POST with CSRF) and download it through the signed link; members and viewers are refused; another
organization's project (same region or the other) is not found. The last test drives it in Chromium."""

from __future__ import annotations

import gzip
import re
from urllib.parse import urlsplit

import httpx
import pytest
from django.test import Client
from selenium.webdriver.common.by import By

from config.export_storage import export_storages
from privacy import tasks
from privacy.models import ExportJob
from tenancy.models import AuditLogEntry, Role
from tests.console.support import llm_call
from tests.console.test_console_browser import Console, browser  # noqa: F401 - the session's Chromium


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, **export_storages(
        {}, root=tmp_path, regions=settings.DATA_REGIONS, link_seconds=settings.EXPORT_LINK_SECONDS)}
    return tmp_path


def page(project) -> str:
    return f"/console/p/{project.id}/exports/"


def new(project) -> str:
    return f"/console/p/{project.id}/exports/new"


def signed_in(user, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def csrf_token(client, project) -> str:
    response = client.get(page(project))
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content).group(1).decode()


def test_an_admin_asks_for_an_export_and_downloads_it(organization, project, member_of):
    llm_call(project, "t-1", question="q1", answer="a1", user_id="alice")
    llm_call(project, "t-2", question="q2", answer="a2", user_id="bob")
    admin = member_of(organization, Role.ADMIN)
    client = signed_in(admin, csrf=True)
    listing = client.get(page(project))
    assert listing.status_code == 200 and b"No exports yet." in listing.content
    assert b'http-equiv="refresh"' not in listing.content  # nothing is building
    # Without the CSRF token the form is refused and nothing is queued.
    assert client.post(new(project), {"user_id": "alice"}).status_code == 403
    assert ExportJob.objects.count() == 0

    response = client.post(new(project), {"user_id": "alice", "csrfmiddlewaretoken": csrf_token(client, project)})
    assert response.status_code == 302 and response["Location"] == page(project)
    export = ExportJob.objects.get()
    assert export.requested_by == admin and export.user_hash and export.status == "queued"
    queued = client.get(page(project)).content
    assert str(export.id).encode() in queued and b"queued" in queued and b"waiting" in queued
    assert b'http-equiv="refresh"' in queued  # the page follows the build by itself
    assert b"Download</a>" not in queued

    tasks.build_export(project_id=str(project.id), export_id=str(export.id))
    done = client.get(page(project)).content.decode()
    assert 'value="100"' in done and "1 / 1" in done and 'http-equiv="refresh"' not in done
    link = re.search(r'<a class="lg-download" href="([^"]+)"', done).group(1).replace("&amp;", "&")
    parts = urlsplit(link)
    body = gzip.decompress(b"".join(Client().get(f"{parts.path}?{parts.query}").streaming_content)).decode()
    assert '"user_id":"alice"' in body and '"bob"' not in body
    assert AuditLogEntry.objects.filter(action="export.downloaded", target_id=str(export.id)).count() == 1
    # The nav shows the page to admins.
    assert f'href="{page(project)}"' in done


def test_a_bad_form_says_why_and_queues_nothing(organization, project, owner):
    client = signed_in(owner)
    response = client.post(new(project), {"since": "2026-11-27T10:00", "until": "2026-11-26T10:00"})
    assert response.status_code == 400 and "must be after".encode() in response.content
    response = client.post(new(project), {"since": "not a time"})
    assert response.status_code == 400 and b"Enter a valid date/time." in response.content
    assert ExportJob.objects.count() == 0
    assert signed_in(owner).get(new(project)).status_code == 405


def test_members_and_viewers_are_refused_and_see_no_link(organization, project, member_of):
    for role in (Role.MEMBER, Role.VIEWER):
        client = signed_in(member_of(organization, role))
        assert client.get(page(project)).status_code == 403
        assert client.post(new(project), {}).status_code == 403
        assert page(project).encode() not in client.get(f"/console/p/{project.id}/traces/").content
    assert ExportJob.objects.count() == 0


def test_another_organizations_project_is_not_found(project, owner, other_owner, far_owner, other_project,
                                                    far_project):
    from privacy.services import export_create

    mine = export_create(project=project, actor=owner)
    for user, theirs in ((other_owner, other_project), (far_owner, far_project)):
        client = signed_in(user)
        assert client.get(page(project)).status_code == 404
        assert client.post(new(project), {}).status_code == 404
        assert str(mine.id).encode() not in client.get(page(theirs)).content
    assert ExportJob.objects.count() == 1
    assert signed_in(owner).get("/console/p/00000000-0000-0000-0000-000000000000/exports/").status_code == 404


def test_the_exports_page_in_a_browser(browser, live_server, organization, project, member_of):  # noqa: F811
    llm_call(project, "t-1", question="hello", answer="world", user_id="alice")
    console = Console(browser, live_server.url)
    console.sign_in(member_of(organization, Role.ADMIN), f"/console/p/{project.id}/")
    console.driver.find_element(By.LINK_TEXT, "Exports").click()
    console.wait("form [name=user_id]")
    console.shot("exports-empty")
    # Open ends: the whole project.
    console.driver.find_element(By.CSS_SELECTOR, 'form[action$="/exports/new"] button[type=submit]').click()
    console.wait(".lg-messages")
    export = ExportJob.objects.get()
    row = console.wait(f'tr[data-export="{export.id}"]')
    assert "queued" in row.text
    console.shot("exports-queued")
    tasks.build_export(project_id=str(project.id), export_id=str(export.id))
    console.open(f"/console/p/{project.id}/exports/")
    button = console.wait(f'tr[data-export="{export.id}"] a.lg-download')
    assert button.text == "Download"
    assert console.driver.find_element(By.CSS_SELECTOR, f'tr[data-export="{export.id}"] progress').get_attribute(
        "value") == "100"
    console.shot("exports-done")
    answer = httpx.get(button.get_attribute("href"), timeout=30)
    assert answer.status_code == 200 and gzip.decompress(answer.content).count(b'"traces.Trace"') == 1
    assert console.problems() == []
