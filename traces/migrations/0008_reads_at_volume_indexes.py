"""Indexes for reads at volume (issue 13): trace `name=` and `tags=`, observation `model=` on the
response model, trace status filters (failed calls only) and prompt version metrics by time.

Built CONCURRENTLY (a non-atomic migration), so a live deployment keeps ingesting while they build.
`btree_gin` gives GIN an operator class for the uuid `project_id`, so the tags index can start with
the project like every other data-plane index (it ships with PostgreSQL's contrib modules; creating it
needs a role allowed to CREATE EXTENSION on the region database)."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import AddIndexConcurrently, BtreeGinExtension
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("traces", "0007_observation_duplicate_of"),
    ]

    operations = [
        BtreeGinExtension(),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["project_id", "name", "-timestamp"], name="trace_project_name_time"),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=GinIndex(fields=["project_id", "tags"], name="trace_project_tags"),
        ),
        AddIndexConcurrently(
            model_name="observation",
            index=models.Index(
                fields=["project_id", "response_model", "-start_time"], name="obs_project_resp_model_time"
            ),
        ),
        AddIndexConcurrently(
            model_name="observation",
            index=models.Index(
                condition=models.Q(status__in=["error", "refused"]),
                fields=["project_id", "trace_id"],
                name="obs_project_trace_failed",
            ),
        ),
        AddIndexConcurrently(
            model_name="observation",
            index=models.Index(
                condition=models.Q(type="GENERATION", prompt_version__isnull=False, duplicate_of="")
                & ~models.Q(prompt_name=""),
                fields=["project_id", "prompt_name", "start_time"],
                name="obs_project_prompt_time",
            ),
        ),
    ]
