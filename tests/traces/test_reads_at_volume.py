"""Reads at volume (issue 13): page totals that never count a big list, a clear limit on deep pages,
trace filters answered from indexes with the same rows as their definition, sessions without grouping
every trace, prompt metrics from the rollups, and the indexes the plans rely on.

The data is a small slice of `make seed-volume` (bench/seed_volume.py), sent through the ingest API
(Langfuse batch and OTLP, as the generator sends it), so the filters are checked on the rows the
generator describes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from bench import seed_volume
from prompts.payloads import parse_create
from prompts.selectors import compare_versions, prompt_by_name
from prompts.services import prompt_create_version
from tenancy.regions import region_database
from traces import selectors
from traces.models import Trace

END = datetime(2026, 1, 10, tzinfo=UTC)
TRACES = 120


def volume(seed: int = 5) -> seed_volume.Volume:
    v = seed_volume.Volume(seed=seed, scale=TRACES / seed_volume.TRACES_PER_SCALE, end=END)
    v.users, v.sessions = 9, 17
    return v


def _send(client, key, v: seed_volume.Volume) -> list[dict]:
    for start in range(0, v.traces, seed_volume.TRACES_PER_REQUEST):
        for protocol, body in seed_volume.requests_for(v, range(start, min(start + 20, v.traces))):
            path, content_type = (
                ("/v1/traces", "application/x-protobuf") if protocol == "otlp"
                else ("/api/public/ingestion", "application/json")
            )
            response = client.post(path, data=body, content_type=content_type, HTTP_AUTHORIZATION=key.basic)
            assert response.status_code in (200, 207), response.content
            if protocol == "langfuse":
                assert not response.json()["errors"]
    return [v.trace(i) for i in range(v.traces)]


@pytest.fixture
def seeded(client, project, api_key):
    traces = _send(client, api_key, volume())
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("ANALYZE traces_trace; ANALYZE traces_observation; ANALYZE feedback_score")
    return traces


def get(client, key, path, params=None) -> dict:
    response = client.get(path, params or {}, HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 200, response.content
    return response.json()


def all_ids(client, key, params) -> set[str]:
    ids, page = [], 1
    while True:
        body = get(client, key, "/api/public/traces", {**params, "limit": 100, "page": page})
        ids += [t["id"] for t in body["data"]]
        if page >= body["meta"]["totalPages"]:
            break
        page += 1
    assert body["meta"]["totalItems"] == len(ids) == len(set(ids))  # small lists: exact totals
    return set(ids)


def trace_time(trace) -> datetime:
    # OTLP traces take their time from the root span; Langfuse traces send theirs.
    return trace["timestamp"] if trace["protocol"] == "langfuse" else trace["observations"][0]["start"]


def trace_status(trace) -> str:
    statuses = {o.get("status") for o in trace["observations"]}
    return "error" if "error" in statuses else "refused" if "refused" in statuses else "success"


def has_model(trace, model) -> bool:
    return any(
        o.get("model") == model or (trace["protocol"] == "otlp" and o.get("response_model") == model)
        for o in trace["observations"]
    )


# --- the generator ---------------------------------------------------------------------------------


def test_the_volume_is_reproducible_and_varies_with_the_seed():
    a, b = volume(5), volume(5)
    assert [a.trace(i) for i in range(30)] == [b.trace(i) for i in range(30)]
    assert seed_volume.requests_for(a, range(0, 20)) == seed_volume.requests_for(b, range(0, 20))
    assert a.trace(3)["id"] != volume(6).trace(3)["id"]
    assert {a.trace(i)["protocol"] for i in range(4)} == {"langfuse", "otlp"}


def test_the_volume_arrives_through_the_api_as_described(seeded, project):
    stored = Trace.objects.for_project(project)
    assert stored.count() == TRACES
    assert stored.filter(id=seeded[7]["id"]).get().user_id == seeded[7]["user_id"]
    # Every kind of row the read benchmark filters on is present in the slice.
    assert {trace_status(t) for t in seeded} == {"error", "refused", "success"}


# --- filters: same rows as their definition, from indexes --------------------------------------------


def test_trace_filters_return_the_rows_they_define(client, api_key, seeded, monkeypatch):
    by_status = {s: {t["id"] for t in seeded if trace_status(t) == s} for s in ("error", "refused", "success")}
    for status, expected in by_status.items():
        assert all_ids(client, api_key, {"status": status}) == expected, status
    otlp_response_model = next(
        o["response_model"] for t in seeded if t["protocol"] == "otlp"
        for o in t["observations"] if o["type"] == "GENERATION" and o["response_model"] != o["model"]
    )
    models = ("gpt-4o", otlp_response_model, "no-such-model")
    # Both plans: the rare-model lookup by trace id and the EXISTS walk give the same rows.
    for rare in (10**9, -1):
        monkeypatch.setattr(selectors, "RARE_MODEL_CALLS", rare)
        for model in models:
            expected = {t["id"] for t in seeded if has_model(t, model)}
            assert all_ids(client, api_key, {"model": model}) == expected, (model, rare)
    assert {t["id"] for t in seeded if has_model(t, otlp_response_model)}  # not vacuous
    assert all_ids(client, api_key, {"tags": "vip"}) == {t["id"] for t in seeded if "vip" in t["tags"]}
    name = seeded[0]["name"]
    assert all_ids(client, api_key, {"name": name}) == {t["id"] for t in seeded if t["name"] == name}


def test_console_list_filters_return_the_rows_they_define_and_stay_in_the_project(
    client, project, other_project, other_api_key, seeded, monkeypatch
):
    # The other tenant (same region) holds the same trace ids with the same calls.
    _send(client, other_api_key, volume())
    for rare in (10**9, -1):
        monkeypatch.setattr(selectors, "RARE_MODEL_CALLS", rare)
        for filters, wanted in (
            ({"status": "error"}, lambda t: trace_status(t) == "error"),
            ({"status": "success"}, lambda t: trace_status(t) == "success"),
            ({"model": "gpt-4o"}, lambda t: has_model(t, "gpt-4o")),
        ):
            rows, _, _ = selectors.traces_across_projects(projects=[project], filters=filters, page_size=200)
            assert {r.trace.id for r in rows} == {t["id"] for t in seeded if wanted(t)}
            assert {r.project.id for r in rows} == {project.id}
            both, _, _ = selectors.traces_across_projects(
                projects=[project, other_project], filters=filters, page_size=400
            )
            assert sorted((r.project.id, r.trace.id) for r in both) == sorted(
                (p.id, t["id"]) for p in (project, other_project) for t in seeded if wanted(t)
            )


def test_sessions_list_is_the_grouped_list_page_by_page(client, api_key, seeded):
    def reference(traces):
        first: dict[str, datetime] = {}
        for t in traces:
            first[t["session_id"]] = min(first.get(t["session_id"], trace_time(t)), trace_time(t))
        return sorted(first.items(), key=lambda item: (item[1], item[0]), reverse=True)

    def listed(params):
        out, page = [], 1
        while True:
            body = get(client, api_key, "/api/public/sessions", {**params, "limit": 4, "page": page})
            out += [(s["id"], datetime.fromisoformat(s["createdAt"].replace("Z", "+00:00"))) for s in body["data"]]
            if page >= body["meta"]["totalPages"]:
                return out, body["meta"]["totalItems"]
            page += 1

    def same_ms(a, b):
        return [(sid, t.replace(microsecond=t.microsecond // 1000 * 1000)) for sid, t in a] == [
            (sid, t.replace(microsecond=t.microsecond // 1000 * 1000)) for sid, t in b
        ]

    expected = reference(seeded)
    got, total = listed({})
    assert same_ms(got, expected) and total == len(expected) > 4
    middle = sorted(t for _, t in expected)[len(expected) // 2]
    window = {"fromTimestamp": (middle - timedelta(days=3)).isoformat(), "toTimestamp": middle.isoformat()}
    got, total = listed(window)
    inside = [(s, t) for s, t in expected if middle - timedelta(days=3) <= t < middle]
    assert same_ms(got, inside) and total == len(inside) > 0
    staging = [t for t in seeded if t["environment"] == "staging"]
    got, _ = listed({"environment": "staging"})
    assert same_ms(got, reference(staging)) and staging


# --- page totals and deep pages ---------------------------------------------------------------------


def test_a_small_list_has_an_exact_total_and_a_big_one_is_never_counted_in_full(
    client, api_key, seeded, project, monkeypatch, queries_everywhere
):
    monkeypatch.setattr(selectors, "COUNT_EXACT_UP_TO", 10)
    name = seeded[0]["name"]
    small = [t for t in seeded if t["name"] == name and t["environment"] == "production"]
    body = get(client, api_key, "/api/public/traces", {"name": name, "environment": "production", "limit": 2})
    if len(small) <= 10:
        assert body["meta"]["totalItems"] == len(small)
    for path in ("/api/public/traces", "/api/public/observations", "/api/public/sessions", "/api/public/v2/scores"):
        with queries_everywhere() as captured:
            body = get(client, api_key, path, {"limit": 3, "page": 2})
        meta = body["meta"]
        # Langfuse's shape, an estimate that never hides a page that exists.
        assert meta["totalItems"] >= 3 * 2 + 1 and meta["totalItems"] > 10, path
        assert meta["totalPages"] == math.ceil(meta["totalItems"] / 3)
        counts = [q["sql"] for q in captured if 'COUNT(*) AS "__count"' in q["sql"]]
        assert all("LIMIT" in sql.upper() for sql in counts), (path, counts)
    # A page that is not full ends the list: its total is exact without counting.
    body = get(client, api_key, "/api/public/traces", {"limit": 100, "page": 2})
    assert body["meta"]["totalItems"] == TRACES


def test_a_page_too_deep_in_a_long_list_is_a_clear_400(client, api_key, seeded, monkeypatch):
    monkeypatch.setattr(selectors, "MAX_PAGE_OFFSET", 20)
    monkeypatch.setattr(selectors, "COUNT_EXACT_UP_TO", 10)
    for path in ("/api/public/traces", "/api/public/observations", "/api/public/sessions"):
        response = client.get(path, {"limit": 1, "page": 30}, HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 400, (path, response.content)
        assert "fromTimestamp" in response.json()["message"]
    response = client.get("/api/public/v2/scores", {"limit": 1, "page": 30}, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 400 and "skips more than 20 rows" in response.json()["error"]
    # The score list filtered through traces (a subquery on the region database) is planned there too.
    for params in ({"userId": seeded[0]["user_id"]}, {"traceTags": "vip"}):
        response = client.get("/api/public/v2/scores", {**params, "limit": 1, "page": 30},
                              HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code in (200, 400), response.content
    # Deep but past the end of a short list: an empty page with the exact total, as before.
    short = get(client, api_key, "/api/public/traces", {"userId": "nobody", "limit": 1, "page": 30})
    assert short == {"data": [], "meta": {"page": 30, "limit": 1, "totalItems": 0, "totalPages": 0}}


# --- plans ------------------------------------------------------------------------------------------


def _plan(queryset, off=("seqscan",)) -> str:
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        # Tiny tables are scanned sequentially (or sorted) whatever the indexes: ask what the plan
        # would be at volume, where reading the whole project is what the index avoids.
        for method in off:
            cursor.execute(f"SET LOCAL enable_{method} = off")
        try:
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            # SET LOCAL lasts until the test's transaction ends: without this, the next plan asked
            # for would be made under this call's settings too, stricter than it asks for.
            for method in off:
                cursor.execute(f"RESET enable_{method}")


def test_the_slow_reads_of_the_issue_have_an_index(seeded, project):
    # Statistics as autovacuum keeps them at volume: without them the planner guesses every
    # selectivity at 120 rows and the chosen index varies from run to run.
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("ANALYZE traces_trace, traces_observation, feedback_score")

    def traces(**filters):
        return selectors.traces_filtered(project=project, filters=selectors.TraceFilters(**filters))

    # Bitmap scans and sorts off: at 120 rows any (project_id, …) index plus a sort is as cheap; at
    # volume only the (project, name, time) index serves both the filter and the order.
    assert "trace_project_name_time" in _plan(
        traces(name="rag-answer").order_by("-timestamp"), off=("seqscan", "bitmapscan", "sort")
    )
    # `tags=`: at 120 traces the planner rightly prefers any (project_id, …) btree and filters, so the
    # plan cannot show the GIN index here; what must hold is that the index exists in the form the
    # `tags @> …` filter of the selector can use (btree_gin: project first, then the array).
    assert '"tags" @>' in str(traces(tags=("no-such-tag",)).query)
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'trace_project_tags'")
        [(definition,)] = cursor.fetchall()
    assert "USING gin (project_id, tags)" in definition
    for status in ("error", "refused", "success"):
        assert "obs_project_trace_failed" in _plan(traces(status=status).order_by("-timestamp")[:50])
    observations = selectors.observations_filtered(
        project=project, filters=selectors.ObservationFilters(model="o3-mini-2025-01-31")
    )
    # `model=` matches either side; at a few hundred rows the planner rightly scans the project, so
    # what must hold is that the answered side has its (project, response_model, time) index and the
    # filter is written so it can use it (the issue: no index on response_model).
    assert '"response_model" = ' in str(observations.query)
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'obs_project_resp_model_time'")
        [(definition,)] = cursor.fetchall()
    assert "(project_id, response_model, start_time DESC)" in definition
    from scores.models import Score

    newest_scores = Score.objects.for_project(project).order_by("-timestamp", "id")[:50]
    assert "score_project_time" in _plan(newest_scores, off=("seqscan", "bitmapscan", "sort"))


def test_prompt_version_metrics_read_the_rollups_and_the_calls_once_for_their_scores(
    seeded, project, queries_everywhere
):
    """The call figures come from the monitoring rollups (whole days from the daily one), the raw
    calls are read only for the partial edge hours of a window and, once, from the covering prompt
    index, to join them to their scores."""
    from prompts.selectors import _CALLS_CTE, _raw_calls_sql

    prompt_create_version(project=project, data=parse_create({"name": "support-system", "prompt": "hi"}), actor=None)
    prompt = prompt_by_name(project=project, name="support-system")
    linked = [o for t in seeded for o in t["observations"] if o.get("prompt_name") == "support-system"]

    def read(since, until):
        with queries_everywhere() as captured:
            rows = compare_versions(project=project, prompt=prompt, since=since, until=until)
        assert sum(row.calls for row in rows) == sum(1 for o in linked if since <= o["start"] < until) > 0
        raw = [q["sql"] for q in captured if "traces_observation" in q["sql"]]
        rollups = [q["sql"] for q in captured if "monitoring_" in q["sql"]]
        # One read of the rollups (daily and hourly tables in one statement), never of the raw calls.
        assert len(rollups) == 1 and "monitoring_dailyrollup" in rollups[0] and "traces_observation" not in rollups[0]
        # One read of the raw calls for the scores, and no grouping of calls there any more.
        scores = [sql for sql in raw if "feedback_score" in sql]
        assert len(scores) == 1 and "percentile_cont" not in scores[0]
        return [sql for sql in raw if "feedback_score" not in sql]

    # 30 whole days: the rollups alone for the calls.
    assert read(END - timedelta(days=30), END) == []
    # Edges mid-hour: one more statement, reading the calls of the two partial hours only.
    since, until = END - timedelta(days=7, minutes=25), END - timedelta(minutes=35)
    (edges,) = read(since, until)
    hour = timedelta(hours=1)
    ranges = [(since, END - timedelta(days=7)), (END - hour, until)]
    expected_sql, params = _raw_calls_sql(project=project, name="support-system", ranges=ranges)
    assert edges.count("UNION ALL") == expected_sql.count("UNION ALL") == 3

    with connections[region_database(project.region)].cursor() as cursor:
        # Give the project the calls it has at volume, so the plan is the one taken there: 60,000
        # generations spread evenly over the 30 days before END, one in ten a call of the prompt (three
        # versions), copies of a stored one in this test's transaction. With the seeded rows alone the
        # project/type/time index and the covering prompt index cost the planner the same for an edge
        # hour, and its pick flipped (a CI failure). Two earlier fixes (the copies packed into the edge
        # hours, the prompt's calls packed twenty days back) made the planner believe hundreds of the
        # prompt's calls fell in each 25-minute edge, because it takes time and prompt as independent;
        # that left the covering index barely cheaper than reading all the prompt's calls through its
        # (name, version) index, and the pick flipped again (a full-suite failure, then a CI failure).
        # Spread evenly, the estimates are true and the margins wide (covering plan ~29 against
        # ~155-180 for the best plan without it, on a fresh and on a bloated table).
        # Without text (no search document to index) and with time to spare: under a loaded machine the
        # copies once ran past the connection's 30 s statement timeout.
        cursor.execute("SET LOCAL statement_timeout = '300s'")
        cursor.execute(
            """
            INSERT INTO traces_observation
            SELECT p.*
            FROM (SELECT * FROM traces_observation WHERE project_id = %s AND type = 'GENERATION' LIMIT 1) o,
                 generate_series(1, 60000) g,
            LATERAL jsonb_populate_record(NULL::traces_observation, to_jsonb(o) || jsonb_build_object(
                'id', 'bulk-' || g, 'duplicate_of', '', 'input', NULL, 'output', NULL,
                'prompt_name', CASE WHEN g %% 10 = 0 THEN 'support-system' ELSE '' END,
                'prompt_version', CASE WHEN g %% 10 = 0 THEN 1 + g / 10 %% 3 END,
                'start_time', %s::timestamptz - make_interval(secs => g * 43)
            )) AS p
            """,
            [project.id, END],
        )
        cursor.execute("ANALYZE traces_observation")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + expected_sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        # Each partial hour's generations from the covering prompt index, bounded by start_time.
        assert plan.count("obs_project_prompt_cover") == 2, plan
        assert plan.count("start_time >=") >= 4, plan
        cursor.execute(
            "EXPLAIN WITH" + _CALLS_CTE + "SELECT * FROM calls",
            {"project": project.id, "name": "support-system", "since": END - timedelta(days=7), "until": END,
             "generation": "GENERATION"},
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # From the covering partial index alone: no heap page per call (the visibility map permitting).
    assert "Index Only Scan using obs_project_prompt_cover" in plan, plan


def _many_short_sessions(project) -> str:
    """The project's data-plane alias, after giving it the shape the sessions list is built for."""
    database = region_database(project.region)
    with connections[database].cursor() as cursor:
        # At 120 traces, probing a session through the time index or the session index costs the
        # planner the same, and its pick flipped between runs (a CI failure). Give the project the
        # shape the list is built for (many sessions of a few traces each: 24,000 traces, 2,000
        # sessions, copies of the seeded rows) so the plan is the one it takes at volume. The copies
        # carry no text (no search document to index) and get time to spare: on a loaded machine they
        # once ran past the connection's 30 s statement timeout.
        cursor.execute("SET LOCAL statement_timeout = '300s'")
        cursor.execute(
            """
            INSERT INTO traces_trace
            SELECT p.*
            FROM (SELECT * FROM traces_trace WHERE project_id = %s LIMIT 1) t, generate_series(1, 24000) g,
            LATERAL jsonb_populate_record(NULL::traces_trace, to_jsonb(t) || jsonb_build_object(
                'id', 'bulk-' || g, 'input', NULL, 'output', NULL,
                'session_id', 'bulk-session-' || (g %% 2000),
                'timestamp', %s::timestamptz - make_interval(mins => g)
            )) AS p
            """,
            [project.id, END],
        )
        cursor.execute("ANALYZE traces_trace")
    return database


def test_deep_session_pages_walk_and_probe_indexes_only(seeded, project):
    """Page 100 of the sessions list walked 61,000 traces and probed each one's session, a heap read
    for each of both (issue 13: 484 ms at 1M); both sides now come from covering indexes."""
    from django.test.utils import CaptureQueriesContext

    database = _many_short_sessions(project)
    with CaptureQueriesContext(connections[database]) as captured:
        rows, _ = selectors.session_page(
            project=project, from_timestamp=None, to_timestamp=None, environments=(), page=2, limit=3
        )
    assert len(rows) == 3
    [walk] = [q["sql"] for q in captured if "LATERAL" in q["sql"]]
    with connections[database].cursor() as cursor:
        # The walk still ends after a page; without these a scan and a sort look as cheap here.
        for method in ("seqscan", "bitmapscan", "sort", "incremental_sort"):
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute("EXPLAIN " + walk)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # Both sides (the walk and each earlier-trace probe) are index-only scans of one of the two
    # covering indexes; which one serves the probe flips with the planner's estimates at this size.
    only = [line for line in plan.splitlines() if "Index Only Scan" in line]  # forward or backward
    assert len(only) == 2, plan
    assert all("trace_project_sessions_time" in line or "trace_project_session_cover" in line for line in only), plan
    assert "Index Scan using" not in plan.replace("Index Only Scan using", ""), plan
    assert "Seq Scan" not in plan and "Heap" not in plan, plan
    # The same list as the grouped definition, page by page (test_sessions_list_is_the_grouped_list_…).
    with connections[database].cursor() as cursor:
        cursor.execute(
            "SELECT session_id FROM traces_trace WHERE project_id = %s AND session_id <> '' GROUP BY session_id "
            "ORDER BY min(timestamp) DESC, session_id DESC OFFSET 3 LIMIT 3",
            [project.id],
        )
        assert [r.id for r in rows] == [row[0] for row in cursor.fetchall()]



def test_the_session_walk_probes_each_session_once_not_each_trace(seeded, project):
    """The walk probed every walked trace's session for an earlier trace (page 1 of the 10M console
    seed: 55,552 probes for 51 sessions, ~450 ms). The probe now reads the session's earliest time and
    depends on the session alone, so PostgreSQL memoizes it: one probe per session walked. A session
    whose first traces share one timestamp is still listed once, at its place in the grouped order."""
    database = _many_short_sessions(project)
    with connections[database].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO traces_trace
            SELECT (jsonb_populate_record(NULL::traces_trace, to_jsonb(t) || jsonb_build_object(
                'id', 'tied-' || g, 'input', NULL, 'output', NULL, 'session_id', 'tied-session',
                'timestamp', %s::timestamptz + interval '1 hour'
            ))).*
            FROM (SELECT * FROM traces_trace WHERE project_id = %s LIMIT 1) t, generate_series(1, 3) g
            """,
            [END, project.id],
        )
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections[database]) as captured:
        rows, _ = selectors.session_page(
            project=project, from_timestamp=None, to_timestamp=None, environments=(), page=1, limit=5
        )
    [walk] = [q["sql"] for q in captured if " DESC, " in q["sql"] and not q["sql"].startswith("EXPLAIN")]
    with connections[database].cursor() as cursor:
        cursor.execute(
            "SELECT session_id FROM traces_trace WHERE project_id = %s AND session_id <> '' GROUP BY session_id "
            "ORDER BY min(timestamp) DESC, session_id DESC LIMIT 5",
            [project.id],
        )
        assert [r.id for r in rows] == [row[0] for row in cursor.fetchall()]
        assert rows[0].id == "tied-session"
        for method in ("seqscan", "bitmapscan", "sort", "incremental_sort"):  # the plan it takes at volume (as above)
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + walk)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def scans(node, out):
        if node["Node Type"] == "Index Only Scan":
            out.append(node)
        for child in node.get("Plans", []):
            scans(child, out)
        return out

    nodes = scans(plan[0]["Plan"], [])
    [walked] = [n for n in nodes if n["Actual Loops"] == 1]
    [probe] = [n for n in nodes if n is not walked]
    # The 2,000 bulk sessions have twelve traces each, all newer than their first: the walk passes
    # several traces of each session before it reaches first traces.
    assert walked["Actual Rows"] > 5_000
    assert probe["Actual Loops"] <= 2_100, (probe["Actual Loops"], walked["Actual Rows"])

# --- make bench-reads against an existing project (BENCH_PROJECT, e.g. the 10M console seed) -------------


def test_bench_reads_times_an_existing_project_with_values_from_its_rows(
    client, seeded, project, other_project, tmp_path, monkeypatch
):
    """`BENCH_PROJECT` replaces the seed-volume state file: the filter values are read from the
    project's own rows (so no list it times is empty by construction), one API key is issued on the
    first run and reused after, and every request of the benchmark answers as the benchmark expects."""
    from bench import bench_reads
    from scores.models import Score
    from tenancy.models import ApiKey
    from tests.factories import ApiKeyPair

    monkeypatch.setattr(bench_reads, "KEYS_FILE", tmp_path / "keys.json")
    prompt_create_version(project=project, data=parse_create({"name": "support-system", "prompt": "hi"}), actor=None)
    keys_before = ApiKey.objects.filter(project=project).count()
    state = bench_reads.existing_project_state(str(project.id))
    again = bench_reads.existing_project_state(str(project.id))
    assert ApiKey.objects.filter(project=project).count() == keys_before + 1
    assert (again["public_key"], again["secret_key"]) == (state["public_key"], state["secret_key"])

    values = state["values"]
    traces = Trace.objects.for_project(project)
    assert traces.filter(name=values["trace_name"]).exists()
    assert traces.filter(tags__contains=[values["tag"]]).exists()
    assert traces.filter(user_id=values["user"]).exists()
    assert traces.filter(session_id=values["session"]).exists()
    assert Score.objects.for_project(project).filter(name=values["score_name"]).exists()
    assert values["prompt"] == "support-system"
    assert values["response_model"] != values["model"]
    end = datetime.fromisoformat(state["end"])
    assert end > max(traces.values_list("timestamp", flat=True))

    bench_reads.sample_ids(state)
    key = ApiKeyPair(key=ApiKey.objects.get(public_key=state["public_key"]), public=state["public_key"],
                     secret=state["secret_key"])
    for label, path, query in bench_reads.endpoints(state, end):
        response = client.get(path, query, HTTP_AUTHORIZATION=key.basic)
        if label.endswith("(400)"):  # too deep for a big list; past the end of this small one: empty
            assert response.status_code == 200 and not response.json()["data"], label
            continue
        assert response.status_code == 200, (label, response.content)
        body = response.json()
        if label.startswith(("traces name=", "traces tags=", "traces userId=", "traces sessionId=", "scores name=")):
            assert body["data"], label  # values from the project's rows: never an empty list
