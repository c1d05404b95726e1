"""`enqueue_for_project` publishes once every transaction open at the call has committed — on the
control plane, on the project's region database, or both — and never when one of them rolls back.
Real commits (`transaction=True`): each publish checks, over a connection of its own, that the row the
task would read is committed by then."""

from __future__ import annotations

import pytest
from django.db import connections, transaction

from evals.models import Dataset
from tenancy.models import Organization
from tenancy.regions import region_database
from tenancy.tasks import enqueue_for_project
from tests.factories import OrganizationFactory
from tests.tenancy.test_region_queues import region_probe

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


class Rollback(Exception):
    pass


def _committed(alias: str, table: str, pk) -> bool:
    """Whether another session sees the row: only a committed one is visible there."""
    other = connections.create_connection(alias)
    try:
        with other.cursor() as cursor:
            cursor.execute(f'SELECT 1 FROM "{table}" WHERE id = %s', [pk])
            return cursor.fetchone() is not None
    finally:
        other.close()


class Sent(list):
    """What was published, each with whether the rows written before the enqueue were committed then."""

    def __init__(self):
        super().__init__()
        self.written: list[tuple[str, str, object]] = []  # (database, table, id)

    def publish(self, task, *, kwargs, queue) -> bool:
        self.append({"task": task.name, "kwargs": kwargs, "queue": queue,
                     "committed": [_committed(*row) for row in self.written]})
        return True


@pytest.fixture
def sent(monkeypatch):
    sent = Sent()
    monkeypatch.setattr("tenancy.tasks.publish", sent.publish)
    return sent


def write_region(project, sent) -> Dataset:
    dataset = Dataset.objects.for_project(project).create(name="follow-up")
    sent.written.append((region_database(project.region), Dataset._meta.db_table, dataset.id))
    return dataset


def write_control(project, sent) -> Organization:
    organization = OrganizationFactory(name="follow-up")
    sent.written.append(("default", Organization._meta.db_table, organization.id))
    return organization


def enqueue(project):
    enqueue_for_project(region_probe, project=project, kwargs={"marker": "m"})


def test_in_no_transaction_it_publishes_at_once(project, sent):
    enqueue(project)
    assert [(m["task"], m["queue"], m["kwargs"]) for m in sent] == [
        ("tests.region_probe", "region.eu", {"project_id": str(project.id), "marker": "m"})]


def test_inside_a_region_transaction_it_publishes_after_its_commit(project, sent):
    with transaction.atomic(using=region_database(project.region)):
        write_region(project, sent)
        enqueue(project)
        assert sent == []  # the worker would find nothing yet
    assert [m["committed"] for m in sent] == [[True]]


def test_a_region_transaction_rolled_back_publishes_nothing(project, sent):
    with pytest.raises(Rollback), transaction.atomic(using=region_database(project.region)):
        write_region(project, sent)
        enqueue(project)
        raise Rollback
    assert sent == []


def test_a_rolled_back_savepoint_on_the_region_publishes_nothing(project, sent):
    region = region_database(project.region)
    with transaction.atomic(using=region):
        with pytest.raises(Rollback), transaction.atomic(using=region):
            enqueue(project)
            raise Rollback
    assert sent == []


@pytest.mark.parametrize("outer", ["default", "region"])
def test_inside_both_it_publishes_after_both_commit(project, sent, outer):
    region = region_database(project.region)
    first, second = ("default", region) if outer == "default" else (region, "default")
    with transaction.atomic(using=first):
        with transaction.atomic(using=second):
            write_control(project, sent)
            write_region(project, sent)
            enqueue(project)
        assert sent == []  # one of the two has committed, the other not yet
    assert [m["committed"] for m in sent] == [[True, True]]


@pytest.mark.parametrize("rolled_back", ["default", "region"])
def test_inside_both_either_rolling_back_publishes_nothing(project, sent, rolled_back):
    region = region_database(project.region)
    inner = region if rolled_back == "region" else "default"
    outer = "default" if inner == region else region
    with transaction.atomic(using=outer):
        with pytest.raises(Rollback), transaction.atomic(using=inner):
            enqueue(project)
            raise Rollback
    assert sent == []
    # The other order: the inner one commits, the outer one rolls back.
    with pytest.raises(Rollback), transaction.atomic(using=inner):
        with transaction.atomic(using=outer):
            enqueue(project)
        raise Rollback
    assert sent == []


def test_a_control_plane_transaction_alone_still_waits_for_its_commit(project, sent):
    with transaction.atomic():
        write_control(project, sent)
        enqueue(project)
        assert sent == []
    assert [m["committed"] for m in sent] == [[True]]


@pytest.mark.django_db(databases="__all__")  # inside the test case's transactions, as most tests are
def test_captured_callbacks_publish_once_both_databases_run_theirs(project, sent, django_capture_on_commit_callbacks):
    # Each database holds a callback: a test that captures only `default`'s sees nothing published.
    with django_capture_on_commit_callbacks(using=region_database(project.region), execute=True) as region_cbs:
        with django_capture_on_commit_callbacks(execute=True) as default_cbs:
            enqueue(project)
        assert (len(default_cbs), sent) == (1, [])
    assert len(region_cbs) == 1 and len(sent) == 1
