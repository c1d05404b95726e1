"""The explorer's full-text search for a word in most documents (issue 16: `refund` at 10M observations
took 8 s): newest first, the page is found by walking the newest traces and testing each one's
document and its generations' (traces.selectors._walk_text_page), with an estimated count, instead of
reading, sorting and counting every match from the GIN indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tenancy.regions import region_database
from tests.console.support import llm_call, url
from tests.console.test_console_reads_at_volume import rows_read
from traces import selectors
from traces.selectors import TraceSearch, trace_search, trace_search_page

NOW = datetime.now(UTC)


def index_path(project, search: TraceSearch, *, order: str = "-time", offset: int = 0, limit: int = 50) -> list[str]:
    """The same page through the GIN indexes (every match, sorted): what the walk must agree with."""
    return [t.id for t in trace_search(project=project, search=search, order=order)[offset : offset + limit]]


@pytest.fixture
def walk_always(monkeypatch):
    """Small chunks, and the walk tried whatever the planner estimates (a test project is tiny)."""
    monkeypatch.setattr(selectors, "SEARCH_WALK_ABOVE", -1)
    monkeypatch.setattr(selectors, "SEARCH_WALK_FIRST", 7)
    monkeypatch.setattr(selectors, "SEARCH_WALK_CHUNK_MAX", 9)


@pytest.fixture
def mixed(project):
    """40 traces, newest first t-00 … t-39, several sharing a timestamp (the walk's cursor breaks ties
    by id): `common` in two of three on the trace; in every fifth only in its generation."""
    for i in range(40):
        answer = "a common answer" if i % 3 else "something else"
        on_trace = i % 5 != 0
        if i % 5 == 0:
            answer = "a common reply"
        llm_call(project, f"t-{i:02d}", question="q", answer=answer, at=NOW - timedelta(minutes=i // 4),
                 answer_on_trace=on_trace, user_id=f"user-{i % 2}")


def test_the_walk_pages_agree_with_the_index_path(project, mixed, walk_always):
    search = TraceSearch(text="common")
    expected = [t.id for t in trace_search(project=project, search=search)]
    assert len(expected) == 29  # 40 minus the 11 without the word (i % 3 == 0 and i % 5 != 0)
    pages = []
    for page in (1, 2, 3, 4):
        found = trace_search_page(project=project, search=search, page=page, limit=8)
        assert found.walked and found.window is None
        assert [t.id for t in found.traces] == expected[(page - 1) * 8 : page * 8]
        # The previews the explorer shows come with the page.
        assert all(t.output_preview == "a common answer" for t in found.traces if int(t.id[2:]) % 5)
        pages.append(found)
    # Pages 1-3 stop before the end: about N. The last one walked every trace: counted.
    assert [p.count_kind for p in pages] == ["estimated", "estimated", "estimated", "exact"]
    assert pages[3].total == 29
    assert all(p.total >= (i + 1) * 8 + 1 for i, p in enumerate(pages[:3]))


def test_a_word_only_in_the_generations_is_found_by_the_walk(project, mixed, walk_always):
    search = TraceSearch(text="reply")
    found = trace_search_page(project=project, search=search, limit=50)
    assert found.walked and [t.id for t in found.traces] == [f"t-{i:02d}" for i in range(0, 40, 5)]
    assert found.count_kind == "exact" and found.total == 8


def test_the_walk_keeps_the_other_filters_and_other_tenants_out(project, other_project, mixed, walk_always):
    # Another organization: newer traces with the word, and a trace with one of our ids whose
    # generation has a word our t-03 lacks.
    for i in range(5):
        llm_call(other_project, f"o-{i}", question="q", answer="a common answer", at=NOW + timedelta(minutes=1))
    llm_call(other_project, "t-03", question="q", answer="common", at=NOW)
    search = TraceSearch(text="common", user_id='"user-1"')
    found = trace_search_page(project=project, search=search, limit=6)
    assert found.walked and [t.id for t in found.traces] == index_path(project, search, limit=6)
    assert all(int(t.id[2:]) % 2 == 1 for t in found.traces) and "t-03" not in [t.id for t in found.traces]
    assert not any(t.id.startswith("o-") for t in trace_search_page(project=project, search=TraceSearch(text="common")).traces)


def test_old_matches_and_other_orders_still_answer(project, walk_always):
    llm_call(project, "old-1", question="q", answer="vintage words", at=NOW - timedelta(days=90))
    llm_call(project, "old-2", question="q", answer="vintage wine", at=NOW - timedelta(days=95), name="aaa")
    llm_call(project, "new", question="q", answer="fresh", at=NOW)
    found = trace_search_page(project=project, search=TraceSearch(text="vintage"))
    assert [t.id for t in found.traces] == ["old-1", "old-2"] and (found.total, found.count_kind) == (2, "exact")
    # Another order than newest first: the index path, counted.
    by_name = trace_search_page(project=project, search=TraceSearch(text="vintage"), order="name")
    assert not by_name.walked and [t.id for t in by_name.traces] == ["old-2", "old-1"]


def test_a_sparse_word_gives_the_walk_up_for_the_index_path(project, walk_always, monkeypatch):
    """`needle-1000000` at 10M observations: the planner expects ~10,000 matches of the phrase, the
    walk sees none among the newest traces, and every match comes from the indexes at once (not
    window by window: a window of the time-led GIN index costs its rows, 3.4 s there)."""
    monkeypatch.setattr(selectors, "SEARCH_WALK_ROWS", 20)
    monkeypatch.setattr(selectors, "SEARCH_WINDOWED_ABOVE", -1)
    for i in range(30):
        llm_call(project, f"t-{i:02d}", question="q", answer="rare" if i == 25 else "plain", at=NOW - timedelta(minutes=i))
    found = trace_search_page(project=project, search=TraceSearch(text="rare"))
    assert not found.walked and [t.id for t in found.traces] == ["t-25"] and found.window is None
    assert (found.total, found.count_kind) == (1, "exact")


def test_the_explorer_says_when_its_count_is_an_estimate(client, member, project, mixed, walk_always):
    response = client.get(url("traces", project), {"q": "common"})
    assert response.status_code == 200
    assert [row.trace.id for row in response.context["rows"]] == index_path(project, TraceSearch(text="common"))
    # 29 matches fit a page of 50: the walk reached the end and counted them.
    assert response.context["total"] == 29 and not response.context["estimated"]
    assert b"29 traces" in response.content


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_common_word_reads_a_page_of_traces_not_every_match(client, member, project):
    """At 10M observations `refund` (in ~75% of the documents) took 8 s: the GIN indexes handed over
    every match to be sorted for the newest 50, and the capped count read 10,001 of them again. At
    20,000 matching traces the page now reads a few hundred rows, and its count says "about"."""
    end = NOW - timedelta(days=40)
    llm_call(project, "seed", question="ask about a refund", answer="your refund is on its way", at=end)
    database = region_database(project.region)
    with connections[database].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO traces_trace
            SELECT p.*
            FROM (SELECT * FROM traces_trace WHERE project_id = %s AND id = 'seed') t, generate_series(1, %s) g,
            LATERAL jsonb_populate_record(NULL::traces_trace, to_jsonb(t) || jsonb_build_object(
                'id', 'bulk-' || g,
                'user_id', 'user-' || (g %% 500),
                'timestamp', %s::timestamptz - make_interval(mins => g)
            )) AS p
            """,
            [project.id, 20_000, end],
        )
        cursor.execute("ANALYZE traces_trace")
        cursor.execute("ANALYZE traces_observation")
    with CaptureQueriesContext(connections[database]) as captured:
        response = client.get(url("traces", project), {"q": "refund"})
    assert response.status_code == 200
    shown = [row.trace.id for row in response.context["rows"]]
    assert shown == ["seed"] + [f"bulk-{g}" for g in range(1, 50)]
    assert response.context["estimated"] and response.context["total"] > 10_000
    assert b"About " in response.content
    # A page of 50 among the newest traces (and the page's own reads): not 20,000 matches twice.
    assert rows_read(database, captured) <= 1_000
    # With a narrow filter (one user's 40 traces) the walk follows that filter's index; the search's
    # own estimate is small there, and the index path read all 20,001 matches of the word.
    with CaptureQueriesContext(connections[database]) as captured:
        response = client.get(url("traces", project), {"q": "refund", "user": '"user-7"'})
    shown = [row.trace.id for row in response.context["rows"]]
    assert shown == [f"bulk-{g}" for g in range(7, 20_001, 500)]
    assert response.context["total"] == 40 and not response.context["estimated"]
    assert rows_read(database, captured) <= 1_000
