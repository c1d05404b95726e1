"""`make bench-ingest` holds autovacuum off in both timed windows and charges each side a measured
VACUUM (ANALYZE) instead: the hold must take effect (or a worker could still land in one window and
not the other, which is what made the ratio a matter of luck) and must be released, and the maintained
tables must be every table ingestion writes."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connections

from bench import bench_ingest
from tenancy.regions import region_database

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _autovacuum(connection) -> str:
    # pg_reload_conf() signals the server; a backend applies the file at its next command.
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0]


def _eventually(connection, expected: str) -> str:
    deadline = time.monotonic() + 10
    value = _autovacuum(connection)
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        connection.close()  # a fresh backend reads the reloaded file
        value = _autovacuum(connection)
    return value


def test_the_hold_turns_autovacuum_off_and_the_release_restores_it():
    region = bench_ingest.Region("00000000-0000-0000-0000-000000000000", settings.DEFAULT_REGION)
    probe = connections[region_database(settings.DEFAULT_REGION)]
    try:
        region.hold_autovacuum(True)
        assert _eventually(probe, "off") == "off"
        with probe.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
            assert cursor.fetchone()[0] == 0
    finally:
        region.hold_autovacuum(False)
    assert _eventually(probe, "on") == "on"
    with probe.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_file_settings WHERE name = 'autovacuum'")
        assert cursor.fetchone()[0] == 0  # nothing left in postgresql.auto.conf


def test_the_maintained_tables_are_the_data_plane_ones_ingestion_writes():
    region = bench_ingest.Region("00000000-0000-0000-0000-000000000000", settings.DEFAULT_REGION)
    tables = region.data_tables()
    for written in (
        "traces_trace",
        "traces_observation",
        "feedback_score",
        "monitoring_hourlyrollup",
        "monitoring_dailyrollup",
        "monitoring_dailyuserrollup",
    ):
        assert written in tables
    assert "tenancy_project" not in tables and "tenancy_apikey" not in tables
    upkeep = region.maintain(tables)
    assert upkeep["wall"] > 0 and upkeep["postgres"] >= 0
