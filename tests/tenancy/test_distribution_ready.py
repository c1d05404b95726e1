"""Every data-plane table stays ready to be distributed by project (Citus, README "Scaling out"):
its primary key, every unique constraint and every index lead with `project_id`, and every foreign key
carries `project_id` (so a row and what it points to always live on the same shard)."""

import pytest
from django.apps import apps
from django.db import connections

from tenancy.planes import Plane
from tenancy.regions import region_database

REGION = "eu"


def data_plane_tables() -> list[str]:
    return sorted(
        m._meta.db_table
        for m in apps.get_models()
        if getattr(m, "PLANE", None) == Plane.DATA and not m._meta.proxy and m._meta.managed
    )


def test_there_are_data_plane_tables_to_check():
    assert {"traces_trace", "traces_observation", "feedback_score"} <= set(data_plane_tables())


def violations(table: str) -> dict:
    with connections[region_database(REGION)].cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, x.indisprimary, x.indisunique,
                   (SELECT array_agg(a.attname ORDER BY k.ord)
                    FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum)
            FROM pg_index x
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            WHERE t.relname = %s
            """,
            [table],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            """
            SELECT c.conname,
                   (SELECT array_agg(a.attname) FROM pg_attribute a
                    WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey))
            FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
            WHERE t.relname = %s AND c.contype = 'f'
            """,
            [table],
        )
        foreign_keys = cursor.fetchall()
    return {
        "no primary key": not any(primary for _, primary, _, _ in indexes),
        # An expression index has no column list (NULL array): it cannot start from project_id either.
        "indexes not led by project_id": sorted(
            name for name, _, _, columns in indexes if not columns or columns[0] != "project_id"
        ),
        "foreign keys without project_id": sorted(
            name for name, columns in foreign_keys if "project_id" not in (columns or [])
        ),
    }


@pytest.mark.parametrize("table", data_plane_tables())
def test_keys_indexes_and_foreign_keys_lead_with_the_project(table):
    assert violations(table) == {
        "no primary key": False,
        "indexes not led by project_id": [],
        "foreign keys without project_id": [],
    }


def test_the_check_sees_an_index_that_does_not_lead_with_the_project():
    # DDL is transactional in PostgreSQL: the test's transaction rolls this back.
    with connections[region_database(REGION)].cursor() as cursor:
        cursor.execute("CREATE INDEX probe_by_name ON traces_trace (name, project_id)")
    assert violations("traces_trace")["indexes not led by project_id"] == ["probe_by_name"]
