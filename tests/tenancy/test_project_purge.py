"""Deleting a project deletes its customer data in its region, on that region's queue."""

import json

import redis
from django.conf import settings
from django.db import connections

from scores.models import Score
from tenancy.services import project_delete
from tenancy.tasks import purge_project_data
from traces.models import Observation, Trace


def _count(alias, table, project_id):
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE project_id = %s", [str(project_id)])
        return cursor.fetchone()[0]


def _seed(project, n):
    Trace.objects.for_project(project).bulk_create([Trace(id=f"t{i}") for i in range(n)])
    Observation.objects.for_project(project).bulk_create(
        [Observation(id=f"o{i}", trace_id=f"t{i}") for i in range(n)]
    )
    Score.objects.for_project(project).create(id="s1", trace_id="t0", name="helpfulness", value=1)


def test_deleting_a_project_enqueues_the_purge_on_its_region_queue(project, django_capture_on_commit_callbacks):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("region.eu", "region.us")
    project_id = str(project.id)
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=project, actor=None)
    messages = [json.loads(m) for m in client.lrange("region.eu", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["tenancy.purge_project_data"]
    assert project_id in json.dumps(messages)
    assert client.llen("region.us") == 0


def test_the_purge_deletes_every_data_plane_row_of_the_project_and_nothing_else(
    organization, project, other_project, far_project, monkeypatch
):
    from tests.factories import ProjectFactory

    monkeypatch.setattr("tenancy.tasks.PURGE_BATCH", 2)  # exercise the batching loop
    sibling = ProjectFactory(organization=organization, region="eu", name="sibling")
    for p in (project, sibling, other_project, far_project):
        _seed(p, 5)
    project_id = project.id
    project_delete(project=project, actor=None)

    deleted = purge_project_data.run(project_id=str(project_id), region="eu")
    assert deleted["traces.Trace"] == 5 and deleted["traces.Observation"] == 5 and deleted["scores.Score"] == 1
    for table in ("traces_trace", "traces_observation", "feedback_score"):
        assert _count("region_eu", table, project_id) == 0
        assert _count("region_eu", table, sibling.id) > 0
        assert _count("region_eu", table, other_project.id) > 0
        assert _count("region_us", table, far_project.id) > 0
    assert sum(purge_project_data.run(project_id=str(project_id), region="eu").values()) == 0  # idempotent


def test_the_purge_refuses_a_project_that_still_exists(project):
    _seed(project, 2)
    assert purge_project_data.run(project_id=str(project.id), region="eu") == {}
    assert _count("region_eu", "traces_trace", project.id) == 2
