"""Control plane vs data plane: every model declares its plane, no foreign key crosses planes,
data-plane tables keep project_id in every key, and region data stays in its region."""

import pytest
from django.apps import apps
from django.db import connections

from config.db_router import DataPlaneRoutingError
from tenancy.dataplane import CrossProjectWrite
from tenancy.planes import Plane, plane_of
from tenancy.regions import region_database
from traces.models import Trace

OUR_APPS = {"tenancy", "pricing", "privacy", "scores", "traces", "prompts", "evals", "feedback", "billing"}


def test_every_model_declares_a_plane():
    missing = [m._meta.label for m in apps.get_models() if plane_of(m) is None]
    assert missing == [], f"models without PLANE: {missing}"


def test_our_models_declare_plane_explicitly():
    implicit = [
        m._meta.label for m in apps.get_models() if m._meta.app_label in OUR_APPS and "PLANE" not in vars(m)
        and not any("PLANE" in vars(base) for base in m.__mro__[1:] if base.__module__.startswith(tuple(OUR_APPS)))
    ]
    assert implicit == []


def test_no_foreign_key_crosses_planes():
    crossings = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.is_relation and field.concrete and field.related_model is not None:
                if plane_of(model) != plane_of(field.related_model):
                    crossings.append(f"{model._meta.label}.{field.name} -> {field.related_model._meta.label}")
    assert crossings == []


def _lead(index) -> str | None:
    """An index's first column, whether named in `fields` or given as an expression (an index with a
    NULLS LAST key, such as `trace_project_cost`, can only be written with expressions)."""
    if index.fields:
        return index.fields[0]
    first = index.expressions[0]
    return getattr(getattr(first, "expression", first), "name", None)


def test_data_plane_models_lead_every_key_and_index_with_project_id():
    data_models = [m for m in apps.get_models() if plane_of(m) == Plane.DATA]
    assert data_models, "expected data-plane models"
    for model in data_models:
        pk_fields = [f.name for f in model._meta.pk_fields]
        assert pk_fields[0] == "project_id", f"{model._meta.label} primary key {pk_fields}"
        for index in model._meta.indexes:
            assert _lead(index) == "project_id", f"{model._meta.label} index {index.name}"
        for constraint in model._meta.constraints:
            fields = getattr(constraint, "fields", ())
            if fields:
                assert fields[0] == "project_id", f"{model._meta.label} constraint {constraint.name}"


def test_data_plane_tables_exist_only_in_region_databases():
    def tables(alias):
        with connections[alias].cursor() as cursor:
            return set(connections[alias].introspection.table_names(cursor))

    default_tables = tables("default")
    for alias in ("region_eu", "region_us"):
        region_tables = tables(alias)
        assert "traces_trace" in region_tables and "feedback_score" in region_tables
        assert "tenancy_project" not in region_tables and "tenancy_apikey" not in region_tables
    assert "traces_trace" not in default_tables
    assert "tenancy_apikey" in default_tables


def test_an_unscoped_data_plane_query_is_refused():
    with pytest.raises(DataPlaneRoutingError):
        list(Trace.objects.all())
    with pytest.raises((DataPlaneRoutingError, CrossProjectWrite)):
        Trace.objects.create(id="t1")


def test_for_project_refuses_rows_for_another_project(project, other_project):
    with pytest.raises(CrossProjectWrite):
        Trace.objects.for_project(project).create(id="t1", project_id=other_project.id)
    with pytest.raises(CrossProjectWrite):
        Trace.objects.for_project(project).bulk_create([Trace(id="t2", project_id=other_project.id)])


def _raw_trace_ids(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT project_id::text, id FROM traces_trace")
        return set(cursor.fetchall())


def test_eu_rows_never_appear_in_the_us_database(project, far_project):
    assert (project.region, far_project.region) == ("eu", "us")
    Trace.objects.for_project(project).create(id="eu-trace", name="in europe")
    Trace.objects.for_project(far_project).create(id="us-trace", name="in america")

    assert _raw_trace_ids("region_eu") == {(str(project.id), "eu-trace")}
    assert _raw_trace_ids("region_us") == {(str(far_project.id), "us-trace")}
    assert region_database("eu") == "region_eu"
    assert [t.id for t in Trace.objects.for_project(project)] == ["eu-trace"]
    assert [t.id for t in Trace.objects.for_project(far_project)] == ["us-trace"]


def test_for_project_filters_other_projects_in_the_same_region(organization, project):
    from tests.factories import ProjectFactory

    sibling = ProjectFactory(organization=organization, region="eu", name="sibling")
    Trace.objects.for_project(project).create(id="mine")
    Trace.objects.for_project(sibling).create(id="theirs")
    assert [t.id for t in Trace.objects.for_project(project)] == ["mine"]
    assert _raw_trace_ids("region_eu") == {(str(project.id), "mine"), (str(sibling.id), "theirs")}
