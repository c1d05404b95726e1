"""The admin pages of erasure requests and retention runs: while a job is queued or running they
reload themselves and say how far it got (rows deleted so far, summed from the region's batch records,
and what is left only where it is known: the trace ids an erasure was asked for); once it is done or
failed they stop. Another organization's jobs are as absent as missing ones, and never make our
pages reload."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError
from django.test import Client

from privacy import erasure, services
from privacy.models import DeletionBatch, ErasureRequest, JobStatus, RetentionRun
from tenancy.models import Role

ERASURES = "/admin/privacy/erasurerequest/"
RETENTION_RUNS = "/admin/privacy/retentionrun/"
REFRESH = 'http-equiv="refresh"'


def console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def erasure_request(project, *, kind="user", subjects=("alice",), status=JobStatus.QUEUED, counts=None):
    request = services.erasure_request_create(project=project, kind=kind, subjects=list(subjects), via="admin",
                                              grace_days=0)
    ErasureRequest.objects.filter(id=request.id).update(status=status, counts=counts or {})
    request.refresh_from_db()
    return request


def retention_run(project, *, status=JobStatus.QUEUED, counts=None):
    return RetentionRun.objects.create(project=project, status=status, counts=counts or {})


def batch(project, job, table, rows):
    """One committed batch of a job, as `privacy.erasure.Deleter` records it in the region."""
    DeletionBatch.objects.for_project(project).create(job_id=job.id, table=table, rows=rows)


@pytest.fixture
def admin(organization, member_of):
    return console(member_of(organization, Role.ADMIN))


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response, response.content.decode()


# --- erasure requests ------------------------------------------------------------------------------


def test_a_queued_erasure_reloads_and_says_it_waits(admin, project):
    job = erasure_request(project)
    response, html = page(admin, f"{ERASURES}{job.id}/change/")
    assert response.context["refresh_seconds"] == 5 and REFRESH in html
    assert "Queued: waiting for a worker in the project&#x27;s region (eu)." in html


def test_a_running_erasure_shows_the_rows_deleted_so_far_from_the_region_and_reloads(admin, project):
    # The saved counts are a time slice behind; the region's batch records are not.
    job = erasure_request(project, status=JobStatus.RUNNING, counts={"traces.Observation": 2000})
    batch(project, job, "traces.Observation", 2000)
    batch(project, job, "traces.Observation", 1500)
    batch(project, job, "traces.Trace", 12)

    response, html = page(admin, f"{ERASURES}{job.id}/change/")

    assert response.context["refresh_seconds"] == 5 and REFRESH in html
    assert "Running: 3,512 rows deleted so far, counted from the region&#x27;s batch records just now." in html
    # What an end user matches is not counted beforehand, and the page says so rather than guess.
    assert "How many rows are left is not known" in html
    # The list reads no region: the saved counts, marked as growing, and it reloads too.
    response, html = page(admin, ERASURES)
    assert response.context["refresh_seconds"] == 5 and "2,000 so far" in html


def test_a_trace_id_erasure_says_how_many_of_the_ids_asked_for_are_gone(admin, project):
    job = erasure_request(project, kind="traces", subjects=[f"t{n}" for n in range(10)], status=JobStatus.RUNNING)
    batch(project, job, "traces.Observation", 40)
    batch(project, job, "traces.Trace", 3)

    _, html = page(admin, f"{ERASURES}{job.id}/change/")

    assert "43 rows deleted so far" in html
    assert "Traces: 3 of the 10 trace id(s) asked for" in html


def test_a_region_that_does_not_answer_leaves_the_saved_counts_said_as_such(admin, project, monkeypatch):
    job = erasure_request(project, status=JobStatus.RUNNING, counts={"traces.Trace": 7})

    def down(project, job_id):
        raise DatabaseError("region down")

    monkeypatch.setattr(erasure, "job_counts", down)
    _, html = page(admin, f"{ERASURES}{job.id}/change/")
    assert "7 rows deleted so far, as the run last saved them (the region did not answer)" in html


@pytest.mark.parametrize("status", [JobStatus.DONE, JobStatus.FAILED])
def test_a_finished_erasure_stops_reloading_and_shows_its_final_counts(admin, project, status):
    job = erasure_request(project, status=status, counts={"traces.Trace": 3, "traces.Observation": 9,
                                                          "privacy.ExportFile": 2})
    batch(project, job, "traces.Trace", 999)  # not read once the job has stopped: its saved counts are final

    response, html = page(admin, f"{ERASURES}{job.id}/change/")

    assert response.context["refresh_seconds"] is None and REFRESH not in html
    expected = "12 rows deleted, 2 export file(s) deleted"
    assert (f"Done: {expected}." if status == JobStatus.DONE else f"Failed: {expected} before it stopped") in html
    response, html = page(admin, ERASURES)
    assert response.context["refresh_seconds"] is None and REFRESH not in html and "so far" not in html


# --- retention runs --------------------------------------------------------------------------------


def test_a_running_retention_run_shows_deleted_and_emptied_rows_and_reloads(organization, member_of, project):
    viewer = console(member_of(organization, Role.VIEWER))  # retention runs are read by every member
    run = retention_run(project, status=JobStatus.RUNNING)
    batch(project, run, "traces.Observation", 2000)
    batch(project, run, "traces.Trace", 40)
    batch(project, run, "traces.Observation.payload", 500)

    response, html = page(viewer, f"{RETENTION_RUNS}{run.id}/change/")

    assert response.context["refresh_seconds"] == 5 and REFRESH in html
    assert "Running: 2,040 rows deleted, 500 rows&#x27; payloads emptied so far" in html
    assert "what is older than the cutoffs is not counted beforehand" in html
    response, html = page(viewer, RETENTION_RUNS)
    assert response.context["refresh_seconds"] == 5 and "0 so far" in html

    RetentionRun.objects.filter(id=run.id).update(status=JobStatus.DONE, counts={"traces.Trace": 40})
    response, html = page(viewer, f"{RETENTION_RUNS}{run.id}/change/")
    assert response.context["refresh_seconds"] is None and REFRESH not in html and "Done: 40 rows deleted." in html
    response, html = page(viewer, RETENTION_RUNS)
    assert response.context["refresh_seconds"] is None and REFRESH not in html


# --- isolation -------------------------------------------------------------------------------------


def test_another_organizations_jobs_answer_like_missing_ones_and_never_make_our_pages_reload(
    organization, owner, project, other_project
):
    client = console(owner)
    ours_erasure = erasure_request(project, status=JobStatus.DONE)
    ours_run = retention_run(project, status=JobStatus.DONE)
    theirs_erasure = erasure_request(other_project, status=JobStatus.RUNNING)
    theirs_run = retention_run(other_project, status=JobStatus.RUNNING)

    for base, ours, theirs in ((ERASURES, ours_erasure, theirs_erasure), (RETENTION_RUNS, ours_run, theirs_run)):
        # Their running job is not listed, and does not make our list reload.
        listing, html = page(client, base)
        assert list(listing.context["cl"].result_list) == [ours] and str(theirs.id) not in html
        assert listing.context["refresh_seconds"] is None and REFRESH not in html
        response = client.get(f"{base}{theirs.id}/change/")
        missing = client.get(f"{base}{uuid.uuid4()}/change/")
        # The admin's answer to an id it does not have: back to the index, the same for both.
        assert response.status_code == missing.status_code == 302 and response.url == missing.url == "/admin/"
