"""The explorer's full-text search runs on its GIN indexes, and they never make an ingest fail."""

from __future__ import annotations

import importlib
import uuid

from django.db import connections

from tenancy.regions import region_database
from tests.console.support import llm_call
from traces import selectors
from traces.models import Observation, Trace
from traces.selectors import TraceSearch, trace_search

migration = importlib.import_module("console.migrations.0002_search_indexes")


def test_the_migration_indexed_the_expression_the_search_uses():
    assert migration.DOCUMENT == selectors.search_document()
    assert migration.SEARCHED_OBSERVATION_TYPES == selectors.SEARCHED_OBSERVATION_TYPES


def _plan(project, queryset) -> str:
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_search_uses_the_indexes_led_by_the_project(project):
    llm_call(project, "t1", question="capital of France?", answer="Paris")
    # Enough rows that walking the project's traces costs more than the index.
    Trace.objects.for_project(project).bulk_create(
        [Trace(id=f"bulk-{i}", input=f"question number {i}", output=f"answer {i}") for i in range(3000)]
    )
    Observation.objects.for_project(project).bulk_create(
        [Observation(id=f"bulk-o{i}", trace_id=f"bulk-{i}", type="GENERATION", output=f"answer {i}")
         for i in range(3000)]
    )
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("ANALYZE traces_trace; ANALYZE traces_observation")
    plan = _plan(project, trace_search(project=project, search=TraceSearch(text="paris")))
    assert migration.TRACE_INDEX in plan and migration.OBSERVATION_INDEX in plan, plan
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [migration.TRACE_INDEX])
        (definition,) = cursor.fetchone()
    assert "gin (project_id, \"timestamp\", " in definition


def test_a_huge_input_of_distinct_words_is_stored_and_searchable(project):
    # ~3 MB of distinct tokens: a tsvector over all of it passes PostgreSQL's 1 MB ceiling and would
    # fail the insert; the document is cut first.
    words = " ".join(uuid.uuid4().hex for _ in range(90_000))
    llm_call(project, "huge", question=words, answer="needle")
    assert Trace.objects.for_project(project).filter(id="huge").exists()
    assert Observation.objects.for_project(project).filter(trace_id="huge").exists()
    found = trace_search(project=project, search=TraceSearch(text="needle"))
    assert [t.id for t in found] == ["huge"]


def test_escaped_line_breaks_do_not_glue_words(project):
    llm_call(project, "t-lines", question="hello", answer="first line\nsecond\tcolumn")
    assert [t.id for t in trace_search(project=project, search=TraceSearch(text="second column"))] == ["t-lines"]
