"""The ingest writer's statements are server-side prepared on its pooled connection, and only they
(`INGEST_PREPARED_STATEMENTS`, `ingest.writer._preparing`); a schema change during a rolling deploy,
or prepared statements the session lost, never fail a write (issue 13)."""

import logging
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connections

from ingest import writer
from ingest.writer import _server_bound
from monitoring.models import HourlyRollup
from scores.models import Score
from tenancy.regions import region_database
from traces.models import Observation, Trace

# The writer prepares only in a transaction of its own, so these tests commit.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=dt_timezone.utc)
DROPPED = "dropping prepared statements"


def _batch(prefix: str, *, n: int = 6) -> dict:
    """A request of new traces with nested generations and scores, and updates to `prefix`'s rows
    when it was written before (the merge path)."""
    observations = []
    for t in range(n):
        for i in range(3):
            observations.append(
                {
                    "id": f"{prefix}-{t}-{i}",
                    "trace_id": f"{prefix}-trace-{t}",
                    "type": "GENERATION",
                    "name": f"call {i}",
                    "parent_observation_id": f"{prefix}-{t}-0" if i else None,
                    "model": "gpt-4o-mini",
                    "start_time": T0 + timedelta(seconds=i),
                    "end_time": T0 + timedelta(seconds=5 - i),
                    "input_tokens": 100 + i,
                    "output_tokens": 10 * i,
                    "metadata": {"step": i},
                }
            )
    return {
        "traces": [
            {"id": f"{prefix}-trace-{t}", "name": "turn", "user_id": "u1", "tags": [f"t{t}"], "timestamp": T0}
            for t in range(n)
        ],
        "observations": observations,
        "scores": [
            {"id": f"{prefix}-score-{t}", "trace_id": f"{prefix}-trace-{t}", "name": "quality", "value": t / 10,
             "timestamp": T0}
            for t in range(n)
        ],
    }


@pytest.fixture(autouse=True)
def _no_prepared_statements(project):
    """Each test starts with nothing prepared in its session: the pool hands back connections with
    whatever earlier tests prepared on them."""
    _forget(project)


def _forget(project) -> None:
    connection = _connection(project)
    connection.ensure_connection()
    writer._forget_prepared(connection)


def _write(project, batch: dict) -> None:
    writer.write_records(project=project, **batch)


def _connection(project):
    return connections[region_database(project.region)]


def _prepared(project) -> list[str]:
    """The statements prepared (by protocol, as psycopg does) in the session of `project`'s region
    connection — the one the writer used."""
    with _connection(project).cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql ORDER BY prepare_time")
        return [row[0] for row in cursor.fetchall()]


def _runs(project) -> int:
    with _connection(project).cursor() as cursor:
        cursor.execute("SELECT COALESCE(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


def _stored(project) -> dict:
    """Every row the writes left for `project`, without what differs between two writes of the
    same records (the project, the write's own timestamps)."""

    def rows(queryset, drop=("project_id", "created_at", "updated_at")):
        return sorted(
            ({k: v for k, v in row.items() if k not in drop} for row in queryset.values()),
            key=lambda row: sorted(map(str, row.items())),
        )

    return {
        "traces": rows(Trace.objects.for_project(project)),
        "observations": rows(Observation.objects.for_project(project)),
        "scores": rows(Score.objects.for_project(project)),
        "rollups": rows(HourlyRollup.objects.for_project(project)),
    }


def test_the_writers_statements_are_prepared_and_reused_on_its_connection(project):
    _write(project, _batch("a"))
    prepared = _prepared(project)
    text = "\n".join(prepared)
    # The rollups' opening statement, both INSERTs, the scores' and the rollups' statements.
    assert "pg_advisory_xact_lock_shared" in text
    assert 'INSERT INTO "traces_trace"' in text
    assert 'INSERT INTO "traces_observation"' in text
    assert 'INSERT INTO "feedback_score"' in text
    assert "jsonb_populate_recordset" in text
    runs = _runs(project)

    _write(project, _batch("a"))  # the same records again: the update path
    _write(project, _batch("b"))  # new ones: the insert path again
    again = _prepared(project)
    # The insert path's statements were run again as prepared, not prepared anew.
    assert set(prepared) <= set(again)
    assert len(again) == len(set(again))
    assert _runs(project) > runs + len(prepared)


def test_nothing_else_on_the_connection_is_prepared(project):
    _write(project, _batch("a"))
    connection = _connection(project)
    assert connection.connection.prepare_threshold is None  # Django's setting, restored
    # A server-bound statement (which psycopg would prepare) and the ORM's, run more often than
    # psycopg's default threshold of five.
    with connection.cursor() as plain, _server_bound(plain) as cursor:
        for _ in range(7):
            cursor.execute("SELECT %s::text AS not_the_writer", ["x"])
    for _ in range(7):
        list(Trace.objects.for_project(project).filter(name="not the writer either"))
    text = "\n".join(_prepared(project))
    assert "not_the_writer" not in text
    assert "not the writer either" not in text and "traces_trace\".\"name\" =" not in text
    assert 'INSERT INTO "traces_observation"' in text


def test_the_setting_off_prepares_nothing(project, settings):
    settings.INGEST_PREPARED_STATEMENTS = False
    _write(project, _batch("a"))
    _write(project, _batch("a"))
    assert _prepared(project) == []
    assert Observation.objects.for_project(project).count() == 18


def test_prepared_or_not_the_same_rows(project, other_project, settings):
    for prefix in ("a", "b", "a"):  # inserts, more inserts, then updates of the first ones
        _write(project, _batch(prefix))
    assert _prepared(project)
    settings.INGEST_PREPARED_STATEMENTS = False
    _forget(other_project)  # the same region connection
    for prefix in ("a", "b", "a"):
        _write(other_project, _batch(prefix))
    assert _prepared(other_project) == []
    on, off = _stored(project), _stored(other_project)
    assert len(on["observations"]) == 36 and len(on["scores"]) == 12 and on["rollups"]
    assert on == off


def _same_session(project, before: int) -> None:
    with _connection(project).cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == before


def _pid(project) -> int:
    with _connection(project).cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_column_added_during_a_rolling_deploy(project, caplog):
    """A migration adds a column while this node's connection holds the writer's prepared
    statements: the next write on that connection stores its rows."""
    _write(project, _batch("a"))
    assert _prepared(project)
    pid = _pid(project)
    with _connection(project).cursor() as cursor:
        cursor.execute("ALTER TABLE traces_observation ADD COLUMN rolling_deploy_probe text")
    try:
        with caplog.at_level(logging.INFO, logger="ingest.writer"):
            _write(project, _batch("a"))  # updates
            _write(project, _batch("b"))  # inserts
    finally:
        with _connection(project).cursor() as cursor:
            cursor.execute("ALTER TABLE traces_observation DROP COLUMN rolling_deploy_probe")
    _same_session(project, pid)
    assert 'INSERT INTO "traces_observation"' in "\n".join(_prepared(project))  # replanned, still prepared
    assert Observation.objects.for_project(project).count() == 36
    assert Observation.objects.for_project(project).get(id="b-5-2").output_tokens == 20
    assert Score.objects.for_project(project).count() == 12


def test_a_changed_result_type_is_retried_unprepared_once(project, caplog):
    """A migration widens a column the writer's INSERT … RETURNING returns: PostgreSQL refuses the
    prepared statement ("cached plan must not change result type"). The writer drops the
    connection's prepared statements, runs the transaction again unprepared, and the next write
    prepares afresh."""
    _write(project, _batch("a"))
    pid = _pid(project)
    with _connection(project).cursor() as cursor:
        cursor.execute("ALTER TABLE traces_observation ALTER COLUMN model TYPE varchar(600)")
    try:
        with caplog.at_level(logging.INFO, logger="ingest.writer"):
            _write(project, _batch("b"))
        assert [r for r in caplog.records if DROPPED in r.getMessage()]  # it did fail prepared
        assert _prepared(project) == []  # dropped, and the retry ran unprepared
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ingest.writer"):
            _write(project, _batch("c"))
        assert not [r for r in caplog.records if DROPPED in r.getMessage()]
        assert 'INSERT INTO "traces_observation"' in "\n".join(_prepared(project))
    finally:
        with _connection(project).cursor() as cursor:
            cursor.execute("ALTER TABLE traces_observation ALTER COLUMN model TYPE varchar(500)")
    _same_session(project, pid)
    assert Observation.objects.for_project(project).count() == 54
    assert Observation.objects.for_project(project).get(id="b-5-2").model == "gpt-4o-mini"
    assert Trace.objects.for_project(project).count() == 18


def test_prepared_statements_the_session_lost(project, caplog):
    """The server session no longer holds what psycopg prepared (a pooler handed over another
    session, a DEALLOCATE behind its back): the write runs again unprepared and is stored."""
    _write(project, _batch("a"))
    assert _prepared(project)
    with _connection(project).cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # unseen by psycopg: its cache still names them
    with caplog.at_level(logging.INFO, logger="ingest.writer"):
        _write(project, _batch("b"))
    assert [r for r in caplog.records if DROPPED in r.getMessage()]
    assert Observation.objects.for_project(project).count() == 36
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ingest.writer"):
        _write(project, _batch("c"))
    assert not [r for r in caplog.records if DROPPED in r.getMessage()]
    assert Observation.objects.for_project(project).count() == 54
