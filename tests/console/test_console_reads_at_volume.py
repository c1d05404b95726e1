"""The console's lists at volume (issue 16, `make bench-console ARGS="--observations 10000000"`): each
page reads what it shows, not the project.

The project gets the shape the lists are built for with one SQL statement (copies of a stored trace:
many sessions and users of a few traces each), and each list is checked two ways: the same keys as
its grouped definition, and the rows its statements read (EXPLAIN ANALYZE of what it ran)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tenancy.regions import region_database
from tests.console.support import llm_call
from traces import selectors

# Transactional: the 20,000 copied traces are deleted by TRUNCATE when each test ends. Rolled back
# instead, they stayed in the tables as 1,766 pages of dead rows until a vacuum, and the update-path
# tests that ran next (tests/ingest/test_update_path_cost.py: a project's statistics taken over those
# pages) saw plans read 37,000 rows to update 20.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

END = datetime(2026, 1, 10, tzinfo=UTC)
TRACES, SESSIONS, USERS = 20_000, 2_000, 500


def rows_read(database: str, captured) -> int:
    """Rows the captured statements read from tables and indexes (EXPLAIN ANALYZE of each: scans'
    actual rows times loops)."""

    def walk(node) -> int:
        own = node["Actual Rows"] * node["Actual Loops"] if "Scan" in node["Node Type"] else 0
        return own + sum(walk(child) for child in node.get("Plans", ()))

    total = 0
    with connections[database].cursor() as cursor:
        for query in captured:
            if not query["sql"].lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query["sql"])
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            total += walk(plan[0]["Plan"])
    return total


@pytest.fixture
def crowded(project):
    """TRACES traces one minute apart in SESSIONS sessions and USERS users (trace g in session
    g % SESSIONS, user g % USERS), copies of one stored trace."""
    llm_call(project, "seed", question="q", answer="a", at=END - timedelta(days=30), user_id="u", session_id="s")
    database = region_database(project.region)
    with connections[database].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO traces_trace
            SELECT p.*
            FROM (SELECT * FROM traces_trace WHERE project_id = %s AND id = 'seed') t, generate_series(1, %s) g,
            LATERAL jsonb_populate_record(NULL::traces_trace, to_jsonb(t) || jsonb_build_object(
                'id', 'bulk-' || g,
                'session_id', 'session-' || (g %% %s),
                'user_id', 'user-' || (g %% %s),
                'timestamp', %s::timestamptz - make_interval(mins => g)
            )) AS p
            """,
            [project.id, TRACES, SESSIONS, USERS, END],
        )
        cursor.execute("ANALYZE traces_trace")
    return database


def grouped(database: str, project, column: str, offset: int, limit: int) -> list[str]:
    with connections[database].cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM traces_trace WHERE project_id = %s AND {column} <> '' GROUP BY {column} "
            f"ORDER BY max(timestamp) DESC, {column} DESC OFFSET %s LIMIT %s",
            [project.id, offset, limit],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("column, page_of", [
    ("session_id", selectors.session_ids_page), ("user_id", selectors.user_ids_page),
])
def test_session_and_user_lists_read_their_page_not_the_project(crowded, project, column, page_of):
    """At 340k traces the console's sessions list took 732 ms and users 1,055 ms: both grouped every
    trace of the project to sort its keys by their latest trace. They walk the newest traces now."""
    database = crowded
    with CaptureQueriesContext(connections[database]) as captured:
        first, more = page_of(project=project, page=1, limit=50)
    assert more
    assert first == grouped(database, project, column, 0, 50)
    # A page of 50 keys among the newest traces: a few hundred rows (the walk's chunk), not 20,000.
    assert rows_read(database, captured) <= 2 * selectors.RECENT_WALK_CHUNK
    second, more = page_of(project=project, page=2, limit=50)
    assert second == grouped(database, project, column, 50, 50) and more
    prefixed, _ = page_of(project=project, contains=column.split("_")[0] + "-19", page=1, limit=5)
    with connections[database].cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM traces_trace WHERE project_id = %s AND {column} ILIKE %s GROUP BY {column} "
            f"ORDER BY max(timestamp) DESC, {column} DESC LIMIT 5",
            [project.id, column.split("_")[0] + "-19%"],
        )
        assert prefixed == [row[0] for row in cursor.fetchall()]


def test_a_walk_that_does_not_fill_its_page_answers_by_grouping(crowded, project, monkeypatch):
    # A key with a long run of traces (or a rare prefix) would make the walk read the project: past
    # RECENT_WALK_ROWS rows it groups instead, with the same answer.
    monkeypatch.setattr(selectors, "RECENT_WALK_ROWS", 1_000)
    keys, more = selectors.session_ids_page(project=project, page=30, limit=50)
    assert keys == grouped(crowded, project, "session_id", 29 * 50, 50) and more
    last, more = selectors.session_ids_page(project=project, page=41, limit=50)
    assert last == grouped(crowded, project, "session_id", 40 * 50, 50) and not more


def test_the_users_list_reads_cost_and_thumbs_from_the_rollups(client, member, project, queries_everywhere):
    """A page of 50 users at 10M observations summed 100,000 observations for their cost (5.7 s of the
    page's 7 s): cost and thumbs come from the per-user rollups now, errors from the failed calls."""
    from tests.console.support import thumbs, url

    llm_call(project, "t1", question="q", answer="a", user_id="ann", cost=0.25)
    llm_call(project, "t2", question="q", answer="a", user_id="ann", cost=0.5, status="error")
    llm_call(project, "t3", question="q", answer="a", user_id="bob", cost=1.0)
    thumbs(project, "t1", up=True)
    thumbs(project, "t2", up=False)
    with queries_everywhere() as captured:
        response = client.get(url("users", project))
    totals = {t.key: t for t, _ in response.context["rows"]}
    assert (totals["ann"].traces, totals["ann"].errors, totals["ann"].thumbs_up, totals["ann"].thumbs_down) == (2, 1, 1, 1)
    assert float(totals["ann"].cost) == 0.75 and float(totals["bob"].cost) == 1.0
    # No statement reads every observation of the users' traces: only their failed calls.
    reading_observations = [q["sql"] for q in captured if "traces_observation" in q["sql"]]
    assert reading_observations and all("o.status = " in sql for sql in reading_observations), reading_observations


def test_the_users_list_counts_errors_from_indexes_only(crowded, project):
    """The users list counts each user's traces with an error by joining a page of users' traces to the
    failed calls. `trace_project_user` held no trace id, so each trace was a heap page (20,000 for a
    page of 50 users at 10M observations; 105 → 39 ms for that statement at 1M on the bench seed): the
    covering `trace_project_user_cover` can answer from the index. Exact: the count is the user's
    traces with an observation in status error (a refused call is not one)."""
    database = crowded
    with connections[database].cursor() as cursor:
        # Every 7th copied trace gets a failed call, every 11th a refused one (failed, not an error).
        cursor.execute(
            # Among the 2,000 newest traces (those of the first pages' users; a copied observation costs
            # the observation table's indexes, and 4,400 of them hit the statement timeout under load).
            """
            INSERT INTO traces_observation
            SELECT p.*
            FROM (SELECT * FROM traces_observation WHERE project_id = %s AND id = 'seed-gen') o,
                 generate_series(1, 2000) g,
            LATERAL jsonb_populate_record(NULL::traces_observation, to_jsonb(o) || jsonb_build_object(
                'id', 'bulk-' || g || '-gen', 'trace_id', 'bulk-' || g,
                'status', CASE WHEN g %% 7 = 0 THEN 'error' ELSE 'refused' END
            )) AS p WHERE g %% 7 = 0 OR g %% 11 = 0
            """,
            [project.id],
        )
        cursor.execute("ANALYZE traces_observation")
    keys, _ = selectors.user_ids_page(project=project, page=1, limit=50)
    with CaptureQueriesContext(connections[database]) as captured:
        totals = selectors.trace_group_totals(project=project, column="user_id", keys=keys, costs=False, thumbs=False)
    with connections[database].cursor() as cursor:
        cursor.execute(
            "SELECT t.user_id, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM traces_observation o WHERE "
            "o.project_id = t.project_id AND o.trace_id = t.id AND o.status = 'error')) FROM traces_trace t "
            "WHERE t.project_id = %s AND t.user_id = ANY(%s) GROUP BY 1",
            [project.id, keys],
        )
        expected = dict(cursor.fetchall())
    assert {k: t.errors for k, t in totals.items()} == expected and sum(expected.values()) > 0
    errors_sql = [q["sql"] for q in captured if "traces_observation" in q["sql"]]
    assert len(errors_sql) == 1
    # At 10M observations the planner took a parallel bitmap scan of the page's 20,000 traces (a heap
    # page each: 200–350 ms) over the covering index (10–15 ms): the statement runs with bitmap scans
    # off, and the setting is back to what it was afterwards.
    statements = [q["sql"] for q in captured]
    at = statements.index(errors_sql[0])
    assert statements[at - 1] == "SET LOCAL enable_bitmapscan = off", statements
    with connections[database].cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_bitmapscan')")
        assert cursor.fetchone()[0] == "on"

    def trace_scans(node):
        if node.get("Relation Name") == "traces_trace" or "trace_project_user" in node.get("Index Name", ""):
            yield node
        for child in node.get("Plans", ()):
            yield from trace_scans(child)

    with connections[database].cursor() as cursor:
        # Whether the planner takes the index-only path at run time depends on the visibility map
        # (autovacuum's, at volume); what is checked here is that the statement *can* answer the
        # traces side from an index alone: with heap-reading plans priced out, the trace scan is an
        # Index Only Scan (with `trace_project_user` it could only be an Index Scan, a heap page per trace).
        cursor.execute("SET enable_bitmapscan = off")
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN (FORMAT JSON) " + errors_sql[0])
            plan = cursor.fetchone()[0]
        finally:
            cursor.execute("RESET enable_bitmapscan")
            cursor.execute("RESET enable_seqscan")
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans = list(trace_scans(plan[0]["Plan"]))
    assert scans and all(s["Node Type"] == "Index Only Scan" for s in scans), [
        (s["Node Type"], s.get("Index Name")) for s in scans]
