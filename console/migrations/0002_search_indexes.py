"""Full-text search indexes of the trace explorer (traces.selectors.SEARCH_DOCUMENT).

GIN indexes on the region databases, led by `project_id` and the time through btree_gin when the
server has it (every data-plane index leads with the project; the time lets a search look at the
newest window first, traces.selectors.SEARCH_WINDOWS), built CONCURRENTLY so a live database keeps
ingesting while they build. Traces are indexed whole; of the observations only the generations
(the model calls, whose input and output are what a person searches for), which also keeps the
extra write cost of ingest to the rows that carry text.
"""

from django.db import migrations

from tenancy.planes import Plane

TRACE_INDEX = "console_trace_search"
OBSERVATION_INDEX = "console_obs_search"
# Frozen copy of traces.selectors.search_document() as of this migration (a test checks they agree:
# a query uses the index only when it names the same expression).
DOCUMENT = 'to_tsvector(\'simple\'::regconfig, regexp_replace(left(coalesce(output::text, \'\'), 50000) || \' \' || left(coalesce(input::text, \'\'), 50000), \'\\\\[nrtbf"\\\\/]\', \' \', \'g\'))'
SEARCHED_OBSERVATION_TYPES = ("GENERATION",)


def _has_btree_gin(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gin'")
    if cursor.fetchone():
        return True
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gin'")
    if not cursor.fetchone():
        return False
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    except Exception:  # not allowed to create it: index the text alone
        return False
    return True


def create(apps, schema_editor):
    types = ", ".join(f"'{t}'" for t in SEARCHED_OBSERVATION_TYPES)
    with schema_editor.connection.cursor() as cursor:
        btree_gin = _has_btree_gin(cursor)
        trace_lead = "project_id, timestamp, " if btree_gin else ""
        observation_lead = "project_id, start_time, " if btree_gin else ""
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TRACE_INDEX} ON traces_trace "
            f"USING gin ({trace_lead}({DOCUMENT}))"
        )
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {OBSERVATION_INDEX} ON traces_observation "
            f"USING gin ({observation_lead}({DOCUMENT})) WHERE type IN ({types})"
        )


def drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {TRACE_INDEX}")
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OBSERVATION_INDEX}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("console", "0001_initial"),
        # After the migration that creates btree_gin (traces 0008): unapplying drops these indexes
        # before the extension they use.
        ("traces", "0008_reads_at_volume_indexes"),
    ]

    operations = [
        migrations.RunPython(create, drop, hints={"plane": Plane.DATA}),
    ]
