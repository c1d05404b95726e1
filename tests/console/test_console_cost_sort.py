"""The explorer sorted and filtered by cost (issue 16): it reads the trace's own `cost` (kept by the
writer, tests/ingest/test_trace_cost.py), not the observations of every trace in the window — at 10M
observations "sort by cost over a day" summed the observations of 66,000 traces (5.5 s)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connections

from ingest.services import ingest_langfuse_batch
from tenancy.regions import region_database
from tests.console.support import _event, iso, llm_call, url
from traces import selectors
from traces.models import Trace


def found(response) -> list[str]:
    assert response.status_code == 200, response.content[:2000]
    return [row.trace.id for row in response.context["rows"]]


def two_calls(project, trace_id: str, *costs: float) -> None:
    at = datetime.now(UTC) - timedelta(minutes=5)
    events = [_event("trace-create", {"id": trace_id, "name": "chat", "timestamp": iso(at)})]
    for i, cost in enumerate(costs):
        events.append(_event("generation-create", {
            "id": f"{trace_id}-{i}", "traceId": trace_id, "startTime": iso(at), "model": "house",
            "costDetails": {"total": cost}}))
    assert not ingest_langfuse_batch(project=project, payload={"batch": events}).errors


@pytest.fixture
def priced(project, other_project, far_project):
    llm_call(project, "t-a", question="q", answer="a", cost=0.5)
    two_calls(project, "t-two", 0.15, 0.15)  # the sum counts, not the dearest call
    llm_call(project, "t-c", question="q", answer="a", cost=0.2)
    llm_call(project, "t-b", question="q", answer="a", cost=0.01)
    # No call with a cost: no cost (NULL), last whichever way the list is sorted.
    assert not ingest_langfuse_batch(project=project, payload={"batch": [_event("trace-create", {
        "id": "t-none", "timestamp": iso(datetime.now(UTC) - timedelta(minutes=5))})]}).errors
    for other in (other_project, far_project):
        llm_call(other, "t-dear", question="q", answer="a", cost=99)


def test_the_explorer_sorts_by_each_traces_summed_cost(client, member, project, priced):
    assert found(client.get(url("traces", project), {"order": "-cost"})) == ["t-a", "t-two", "t-c", "t-b", "t-none"]
    assert found(client.get(url("traces", project), {"order": "cost"})) == ["t-b", "t-c", "t-two", "t-a", "t-none"]
    costs = {t.id: t.cost for t in Trace.objects.for_project(project)}
    assert costs["t-two"] == Decimal("0.3") and costs["t-none"] is None


def test_cost_filters_keep_their_meaning(client, member, project, priced):
    get = lambda **q: sorted(found(client.get(url("traces", project), q)))  # noqa: E731
    assert get(cost_min="0.25") == ["t-a", "t-two"]
    # A trace without a known cost is not above a ceiling: it stays in, as before.
    assert get(cost_max="0.25") == ["t-b", "t-c", "t-none"]
    assert get(cost_min="0.1", cost_max="0.25") == ["t-c"]


def test_another_organizations_project_answers_404_sorted_by_cost(client, member, other_project, far_project, priced):
    for other in (other_project, far_project):
        assert client.get(url("traces", other), {"order": "-cost"}).status_code == 404


# --- at volume ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_sort_by_cost_over_a_day_reads_the_days_traces_and_no_observation(project):
    """15,000 traces over 30 days (500 a day): sorted by cost over one day, the statement reads what
    the window holds (the day's traces through the time index, or a walk of the cost index from the
    top: either way a bound set by the window, not the project) and no observation at all. Before, each
    trace's cost was summed from its observations by a correlated subquery per trace of the window
    (at 10M observations, 66,000 of them: 5.5 s)."""
    end = datetime(2026, 1, 31, tzinfo=UTC)
    llm_call(project, "seed", question="q", answer="a", at=end - timedelta(days=40), cost=0.01)
    database = region_database(project.region)
    with connections[database].cursor() as cursor:
        # Copies of the stored trace and its call, one every 172.8 s over the 30 days, cost (g % 997) / 1e6
        # (without their text: the search indexes' parsing is not this test's subject). The calls only for
        # the day's traces: what summing them per trace would read (the statement timeout bounds a test's
        # inserts).
        cursor.execute(
            """
            INSERT INTO traces_trace SELECT p.*
            FROM (SELECT * FROM traces_trace WHERE project_id = %s AND id = 'seed') t, generate_series(1, 15000) g,
            LATERAL jsonb_populate_record(NULL::traces_trace, to_jsonb(t) || jsonb_build_object(
                'id', 'bulk-' || g, 'timestamp', %s::timestamptz - make_interval(secs => g * 172.8),
                'cost', (g %% 997) / 1000000.0, 'cost_calls', 1, 'input', NULL, 'output', NULL)) AS p
            """,
            [project.id, end],
        )
        cursor.execute(
            """
            INSERT INTO traces_observation SELECT p.*
            FROM (SELECT * FROM traces_observation WHERE project_id = %s AND trace_id = 'seed') o,
                 generate_series(1, 500) g,
            LATERAL jsonb_populate_record(NULL::traces_observation, to_jsonb(o) ||
                jsonb_build_object('id', 'bulk-gen-' || g, 'trace_id', 'bulk-' || g,
                                   'start_time', %s::timestamptz - make_interval(secs => g * 172.8),
                                   'total_cost', (g %% 997) / 1000000.0, 'input', NULL, 'output', NULL)) AS p
            """,
            [project.id, end],
        )
        cursor.execute("ANALYZE traces_trace")
        cursor.execute("ANALYZE traces_observation")
    search = selectors.TraceSearch(since=end - timedelta(days=1), until=end)
    queryset = selectors.trace_search(project=project, search=search, order="-cost")
    page = list(queryset[:50])
    # The day is traces 1…500; trace g costs (g % 997) / 1e6, so the dearest 50 are 500 down to 451.
    assert [t.id for t in page] == [f"bulk-{g}" for g in range(500, 450, -1)]
    assert page[0].cost == Decimal("0.000500")

    sql, params = queryset[:50].query.get_compiler(using=queryset.db).as_sql()
    with connections[database].cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    read: dict[str, int] = {}

    def walk(node) -> None:
        if "Relation Name" in node:
            read[node["Relation Name"]] = read.get(node["Relation Name"], 0) + node["Actual Rows"] * node["Actual Loops"]
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    assert "traces_observation" not in read, read
    # The day holds 500 of the 15,000 traces; a walk of the cost index from the top finds its 50
    # dearest within ~1,500 (each cost is shared by a trace in each of the 30 days).
    assert read.get("traces_trace", 0) <= 2_000, read


# --- the review bar --------------------------------------------------------------------------------


def test_the_review_bar_counts_what_is_left_up_to_a_cap(client, member, project, other_project, monkeypatch):
    """At 10M observations counting a thumbs-down queue to the explorer's 10,000 took ~1 s of "a trace
    in the review queue"; the bar counts to REVIEW_LEFT_CAP (1,000) and says "more than" beyond it."""
    from console import views
    from tests.console.support import thumbs

    assert views.REVIEW_LEFT_CAP == 1_000
    monkeypatch.setattr(views, "REVIEW_LEFT_CAP", 2)
    for name in ("t-1", "t-2", "t-3"):
        llm_call(project, name, question="q", answer="a")
        thumbs(project, name, up=False)
    llm_call(other_project, "t-4", question="q", answer="a")
    thumbs(other_project, "t-4", up=False)
    page = client.get(f"{url('traces', project)}t-1/", {"review": "thumbs_down=on"})
    assert (page.context["review"]["left"], page.context["review"]["capped"]) == (2, True)
    assert "more than 2 left" in page.content.decode()
    monkeypatch.setattr(views, "REVIEW_LEFT_CAP", 3)
    page = client.get(f"{url('traces', project)}t-1/", {"review": "thumbs_down=on"})
    assert (page.context["review"]["left"], page.context["review"]["capped"]) == (3, False)
