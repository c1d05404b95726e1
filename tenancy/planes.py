"""Control plane vs data plane.

Every model declares `PLANE`. Control-plane rows (people, organizations, projects, keys, billing)
live in the `default` database; data-plane rows (anything holding customer content) live only in
their project's region database and are reached through `DataPlaneManager.for_project`.
"""

from enum import StrEnum

from django.db import models


class Plane(StrEnum):
    CONTROL = "control"
    DATA = "data"


# Django's own apps and third-party apps hold no customer content.
# axes keeps failed sign-in attempts (account, address): people data, on the control plane.
CONTROL_APP_LABELS = frozenset(
    {"admin", "auth", "contenttypes", "sessions", "messages", "staticfiles", "postgres", "axes"}
)


def plane_of(model: type[models.Model]) -> Plane | None:
    plane = getattr(model, "PLANE", None)
    if plane is not None:
        return Plane(plane)
    if model._meta.app_label in CONTROL_APP_LABELS:
        return Plane.CONTROL
    return None
