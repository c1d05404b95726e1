"""Enqueueing helpers for region work."""

from __future__ import annotations

from django.db import transaction

from tenancy.regions import region_queue


def enqueue_for_project(task, *, project, kwargs: dict | None = None) -> None:
    """Send `task` to the project's region queue once the current transaction commits.

    Tasks receive ids only (always including project_id) and re-fetch what they need, scoped.
    """
    payload = {"project_id": str(project.id), **(kwargs or {})}
    queue = region_queue(project.region)
    transaction.on_commit(lambda: task.apply_async(kwargs=payload, queue=queue))
