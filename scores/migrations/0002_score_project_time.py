"""The score list newest first and its time windows without a scan of the project's scores (issue 13).
Built CONCURRENTLY (non-atomic migration) so a live deployment keeps ingesting."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("scores", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="score",
            index=models.Index(fields=["project_id", "-timestamp"], name="score_project_time"),
        ),
    ]
