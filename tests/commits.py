"""Commits as a test inside the test case's own transactions sees them (`django_db` without
`transaction=True`): nothing commits, so on-commit callbacks are captured, and run on request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from django.db import connections
from django.test import TestCase


@contextmanager
def on_commit_of_every_database(*, execute: bool = True) -> Iterator[dict[str, list]]:
    """`django_capture_on_commit_callbacks` on every database at once: region work is enqueued only
    after the control plane and the project's region database have both committed
    (`tenancy.tasks.enqueue_for_project` holds a callback on each), so capturing `default`'s alone
    sends nothing. Yields {database alias: its captured callbacks}."""
    with ExitStack() as stack:
        yield {
            alias: stack.enter_context(TestCase.captureOnCommitCallbacks(using=alias, execute=execute))
            for alias in connections
        }
