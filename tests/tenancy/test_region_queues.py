"""Region work goes to per-region Celery queues on the real Redis broker."""

import json

import redis
from celery import shared_task
from django.conf import settings

from config.celery import app
from tenancy.regions import region_queue
from tenancy.tasks import enqueue_for_project
from tests.commits import on_commit_of_every_database


@shared_task(name="tests.region_probe")
def region_probe(*, project_id: str, marker: str) -> None:  # pragma: no cover - never executed here
    raise AssertionError("the probe task is only enqueued, never run, in this test")


def _queue_messages(client, queue):
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_region_work_is_routed_to_the_project_region_queue(project, far_project):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for queue in ("region.eu", "region.us", "default"):
        client.delete(queue)

    with on_commit_of_every_database():
        enqueue_for_project(region_probe, project=project, kwargs={"marker": "eu-work"})
        enqueue_for_project(region_probe, project=far_project, kwargs={"marker": "us-work"})

    eu = _queue_messages(client, "region.eu")
    us = _queue_messages(client, "region.us")
    assert [m["headers"]["task"] for m in eu] == ["tests.region_probe"]
    assert [m["headers"]["task"] for m in us] == ["tests.region_probe"]
    assert "eu-work" in json.dumps(eu) and "us-work" not in json.dumps(eu)
    assert "us-work" in json.dumps(us) and str(project.id) not in json.dumps(us)
    assert client.llen("default") == 0


def test_nothing_is_enqueued_when_the_transaction_rolls_back(project):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("region.eu")
    with on_commit_of_every_database(execute=False) as callbacks:
        enqueue_for_project(region_probe, project=project, kwargs={"marker": "x"})
    # One on the control plane and one on the region's database; neither committed.
    assert sorted(len(c) for c in callbacks.values() if c) == [1, 1]
    assert client.llen("region.eu") == 0


def test_workers_declare_one_queue_per_region():
    app.finalize()
    names = {q.name for q in app.conf.task_queues}
    assert {region_queue(r) for r in settings.DATA_REGIONS} <= names
    assert "default" in names


def test_every_task_repeated_on_an_interval_expires_before_its_next_turn():
    """After a backlog the queued copies of a periodic task are dropped, not run all at once; a
    crontab (nightly) entry keeps its message."""
    app.finalize()
    intervals = {name: entry for name, entry in app.conf.beat_schedule.items()
                 if isinstance(entry["schedule"], (int, float))}
    assert len(intervals) >= 8
    for name, entry in intervals.items():
        expires = entry.get("options", {}).get("expires")
        assert expires is not None and 0 < expires < entry["schedule"], (name, entry)
