"""Writes of the console's own configuration (saved views)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from console.models import SavedView

# Page position is not part of a view.
NOT_SAVED = ("page", "csrfmiddlewaretoken", "view_name")


def saved_view_save(*, project, name: str, query: str, actor) -> SavedView:
    """Create the view `name`, or replace the query of the project's view of that name."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("A view needs a name of 1–200 characters.")
    if len(query) > 4000:
        raise ValidationError("This view's filters are too long to save.")
    try:
        with transaction.atomic():
            view, _ = SavedView.objects.update_or_create(
                project=project, name=name, defaults={"query": query, "created_by": actor}
            )
    except IntegrityError:
        raise ValidationError("A view with this name was just saved; try again.") from None
    return view


def saved_view_delete(*, project, view_id) -> bool:
    deleted, _ = SavedView.objects.filter(project=project, pk=view_id).delete()
    return bool(deleted)
