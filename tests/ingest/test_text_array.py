"""`ingest.rollups.text_array`: the writer's and the rollups' id lists, sent as array text, are the
arrays PostgreSQL would have built from the Python lists, whatever the ids hold."""

import pytest
from django.db import connections

from ingest import rollups
from ingest.writer import _server_bound
from tenancy.regions import region_database

IDS = ["plain", "", "NULL", "null", 'a"quote', "back\\slash", "\\", '"', "com,ma", "{brace}", " spaced ",
       "tab\tnew\nline", "ünïcødé ✓", "'single'", "a\\\"b"]


@pytest.mark.parametrize("server_bound", [True, False])
def test_ids_round_trip_as_array_text(project, server_bound):
    with connections[region_database(project.region)].cursor() as plain:
        cursor = _server_bound(plain) if server_bound else plain
        cursor.execute("SELECT %s::text[], %s::text[]", [rollups.text_array(IDS), rollups.text_array([])])
        assert cursor.fetchone() == (IDS, [])
        cursor.execute(
            "SELECT %s = ANY(%s), 'absent' = ANY(%s), x FROM unnest(%s::text[]) AS x",
            ['a"quote', rollups.text_array(IDS), rollups.text_array(IDS), rollups.text_array(IDS)],
        )
        rows = cursor.fetchall()
        assert [row[2] for row in rows] == IDS
        assert all(row[0] and not row[1] for row in rows)
