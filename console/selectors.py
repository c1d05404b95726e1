"""Reads of the console's own configuration."""

from __future__ import annotations

from console.models import SavedView


def saved_views(*, project) -> list[SavedView]:
    return list(SavedView.objects.filter(project=project).order_by("name"))
