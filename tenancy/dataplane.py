"""The one door to data-plane rows: it picks the region database and filters by project.

    Trace.objects.for_project(project).filter(...)
    Trace.objects.for_project(project).create(...)        # project_id filled in
    with data_connection(project) as cursor: ...          # bulk SQL on hot paths

Anything else raises (see `config.db_router`), so a forgotten scope fails loudly instead of
reading another tenant's rows or the wrong region.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import connections, models

from tenancy.planes import Plane
from tenancy.regions import region_database

if TYPE_CHECKING:
    from tenancy.models import Project


class CrossProjectWrite(ValueError):
    pass


class DataPlaneQuerySet(models.QuerySet):
    _project_id: uuid.UUID | None = None

    def _clone(self):
        clone = super()._clone()
        clone._project_id = self._project_id
        return clone

    def _require_scope(self) -> uuid.UUID:
        if self._project_id is None:
            raise CrossProjectWrite(
                f"{self.model.__name__} writes must go through {self.model.__name__}.objects.for_project(project)"
            )
        return self._project_id

    def create(self, **kwargs):
        project_id = self._require_scope()
        if kwargs.setdefault("project_id", project_id) != project_id:
            raise CrossProjectWrite("refusing to create a row for another project")
        return super().create(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        project_id = self._require_scope()
        objs = list(objs)
        for obj in objs:
            if obj.project_id is None:
                obj.project_id = project_id
            elif obj.project_id != project_id:
                raise CrossProjectWrite("refusing to bulk-create rows for another project")
        return super().bulk_create(objs, *args, **kwargs)

    def get_or_create(self, defaults=None, **kwargs):
        self._require_scope()
        return super().get_or_create(defaults=defaults, **kwargs)

    def update_or_create(self, defaults=None, create_defaults=None, **kwargs):
        self._require_scope()
        return super().update_or_create(defaults=defaults, create_defaults=create_defaults, **kwargs)


class DataPlaneManager(models.Manager.from_queryset(DataPlaneQuerySet)):
    def for_project(self, project: Project) -> DataPlaneQuerySet:
        qs = self.get_queryset().using(region_database(project.region)).filter(project_id=project.id)
        qs._project_id = project.id
        return qs

    def dangerously_in_region(self, region: str) -> DataPlaneQuerySet:
        """Every project's rows in a region: for operators' maintenance and cross-project admin lists."""
        return self.get_queryset().using(region_database(region))


class DataPlaneModel(models.Model):
    """Base for customer-content models: no foreign key to the control plane, project_id in every key."""

    PLANE = Plane.DATA

    project_id = models.UUIDField(db_index=False)

    objects = DataPlaneManager()

    class Meta:
        abstract = True


def data_connection(project: Project):
    """Raw connection to the project's region database, for bulk SQL. Callers still filter by project."""
    return connections[region_database(project.region)]
