"""Routes models to databases by their plane.

Control-plane models: only the `default` database. Data-plane models: only region databases,
and only through `Model.objects.for_project(...)` (which names the database), so an unscoped
query raises instead of silently hitting `default`.
"""

from django.apps import apps

from tenancy.planes import Plane, plane_of


class DataPlaneRoutingError(RuntimeError):
    pass


class PlaneRouter:
    def _route(self, model, hints):
        plane = plane_of(model)
        if plane == Plane.DATA:
            instance = hints.get("instance")
            if instance is not None and instance._state.db:
                return instance._state.db
            raise DataPlaneRoutingError(
                f"{model.__name__} is a data-plane model: query it through "
                f"{model.__name__}.objects.for_project(project), which picks the region database"
            )
        return "default"

    def db_for_read(self, model, **hints):
        return self._route(model, hints)

    def db_for_write(self, model, **hints):
        return self._route(model, hints)

    def allow_relation(self, obj1, obj2, **hints):
        # `_meta.model`, not type(): request.user is a lazy proxy whose type is SimpleLazyObject.
        if plane_of(obj1._meta.model) != plane_of(obj2._meta.model):
            return False
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        from tenancy.regions import data_databases

        # Migrations pass historical models, which lack PLANE: look the real model up by name.
        model = None
        if model_name is not None:
            try:
                model = apps.get_model(app_label, model_name)
            except LookupError:
                model = None
        if model is None and hints.get("model") is not None:
            # A model that moved to another app (issue 9: billing -> pricing, traces -> privacy,
            # feedback -> scores) kept its table: its old app's migrations find it by that table.
            model = _model_for_table(hints["model"]._meta.db_table)
        if model is not None:
            plane = plane_of(model)
        else:
            plane = hints.get("plane")
            if plane is None:
                # RunSQL/RunPython without hints, or a model since deleted: go where the app's models live.
                plane = _app_plane(app_label)
        if plane == Plane.DATA:
            return db in data_databases()
        return db == "default"


def _app_plane(app_label: str):
    try:
        config = apps.get_app_config(app_label)
    except LookupError:
        return Plane.CONTROL
    planes = {plane_of(m) for m in config.get_models()}
    return Plane.DATA if planes == {Plane.DATA} else Plane.CONTROL


def _model_for_table(table: str):
    return next((m for m in apps.get_models() if m._meta.db_table == table), None)
