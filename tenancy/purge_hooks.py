"""Where higher apps add to the purge of a deleted project (what is not a data-plane row).

`tenancy.tasks.purge_project_data` deletes every data-plane row of the project in its region; a
project may also own files there (privacy's exports, stored per region on disk or in a bucket) that
no row names any more once the project's control-plane rows are gone. Tenancy sits below privacy,
so privacy registers its cleanup here when it loads (privacy/apps.py).
"""

from __future__ import annotations

from collections.abc import Callable

_hooks: list[Callable] = []


def register(hook: Callable) -> None:
    """`hook(project_id=…, region=…) -> dict[str, int]`: what it deleted, by kind. Must be idempotent."""
    if hook not in _hooks:
        _hooks.append(hook)


def run(*, project_id: str, region: str) -> dict[str, int]:
    deleted: dict[str, int] = {}
    for hook in _hooks:
        deleted.update(hook(project_id=project_id, region=region))
    return deleted
