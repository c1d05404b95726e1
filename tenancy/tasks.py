"""Enqueueing helpers for region work."""

from __future__ import annotations

import functools
import json
import logging

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from tenancy.regions import RegionNotServed, region_database, region_queue

logger = logging.getLogger(__name__)


def publish(task, *, kwargs: dict, queue: str) -> bool:
    """Send `task` to `queue` now; False (logged with everything needed to resend it) when the broker
    does not take it within the broker timeouts.

    Called after commit: the write the task follows up on is already durable, so failing the request
    (a 503 the client would retry against a committed write) would be wrong. Region tasks are
    idempotent and derive their work from the database, so a missed message is made good by
    running the task again for the same ids (e.g. `purge_project_data` for a deleted project).
    """
    try:
        task.apply_async(kwargs=kwargs, queue=queue)
        return True
    except Exception:  # noqa: BLE001 - kombu/redis errors of every kind: the commit stands regardless
        logger.error(
            "could not enqueue %s on %s (broker unavailable); run it again with kwargs=%s",
            task.name, queue, json.dumps(kwargs, sort_keys=True), exc_info=True,
        )
        return False


def _databases_of(project) -> list[str]:
    """The databases a write the task follows up on can be in: the control plane and the project's
    region database (one alias when the region is stored on `default`)."""
    try:
        region_db = region_database(project.region)
    except (RegionNotServed, ImproperlyConfigured):
        region_db = None  # this process never connects there: no transaction of ours can be open on it
    return list(dict.fromkeys(alias for alias in ("default", region_db) if alias))


def enqueue_for_project(task, *, project, kwargs: dict | None = None) -> None:
    """Send `task` to the project's region queue once every transaction open at the call has
    committed, and never if one of them rolls back.

    `transaction.on_commit` waits for one database only, and the write a task follows up on may be
    in the control plane, in the project's region database, or in both (each in its own transaction).
    So a callback is registered on each of them — it runs at once on a database in no transaction and
    is discarded with a transaction that rolls back — and the last of them to run publishes.

    Tasks receive ids only (always including project_id) and re-fetch what they need, scoped.
    A broker outage is logged, never raised into the request (see `publish`).
    """
    payload = {"project_id": str(project.id), **(kwargs or {})}
    queue = region_queue(project.region)
    databases = _databases_of(project)
    waiting = set(databases)

    def committed(alias: str) -> None:
        waiting.discard(alias)
        if not waiting:
            publish(task, kwargs=payload, queue=queue)

    for alias in databases:
        transaction.on_commit(functools.partial(committed, alias), using=alias)


PURGE_BATCH = 5000


@shared_task(name="tenancy.purge_project_data", acks_late=True)
def purge_project_data(*, project_id: str, region: str) -> dict[str, int]:
    """Delete every data-plane row of a deleted project from its region database.

    Runs on the region's queue. Idempotent: a second run finds nothing left. Refuses to touch a project
    that still exists (a delete that was rolled back, or a redelivered message after a re-create).
    Deletes in batches so no statement holds locks on a large table for long.
    """
    from django.apps import apps
    from django.db import connections

    from tenancy.models import Project
    from tenancy.planes import Plane, plane_of

    if Project.objects.filter(pk=project_id).exists():
        return {}
    connection = connections[region_database(region)]
    quote = connection.ops.quote_name
    deleted: dict[str, int] = {}
    for model in apps.get_models():
        if plane_of(model) != Plane.DATA:
            continue
        table = quote(model._meta.db_table)
        total = 0
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    f"DELETE FROM {table} WHERE ctid IN "
                    f"(SELECT ctid FROM {table} WHERE project_id = %s LIMIT {PURGE_BATCH})",
                    [project_id],
                )
                total += cursor.rowcount
                if cursor.rowcount < PURGE_BATCH:
                    break
        deleted[model._meta.label] = total
    from tenancy import purge_hooks

    deleted.update(purge_hooks.run(project_id=str(project_id), region=region))
    return deleted


PURGE_SWEEP_DAYS = 7


@shared_task(name="tenancy.sweep_project_purges")
def sweep_project_purges(*, days: int = PURGE_SWEEP_DAYS) -> int:
    """Enqueue the purge of every project deleted in the last `days` days, again.

    The audit log is the durable record of each deletion (written in the deleting transaction), so a
    purge whose message was lost to a broker outage after commit is still done within a sweep
    interval. Purges are idempotent and cheap once nothing is left (one indexed DELETE per table).
    Returns how many purges were enqueued.
    """
    from datetime import timedelta

    from django.utils import timezone

    from tenancy.models import AuditAction, AuditLogEntry

    since = timezone.now() - timedelta(days=days)
    entries = AuditLogEntry.objects.filter(action=AuditAction.PROJECT_DELETED, created_at__gte=since)
    sent = 0
    for target_id, data in entries.values_list("target_id", "data").iterator():
        region = (data or {}).get("region")
        if region not in settings.DATA_REGIONS:
            continue  # a region since removed from the deployment: nothing here can reach it
        sent += publish(
            purge_project_data, kwargs={"project_id": target_id, "region": region}, queue=region_queue(region)
        )
    return sent
