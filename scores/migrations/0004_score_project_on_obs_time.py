"""The scores on an observation by time (issue 16: the console feedback page's thumbs by model and
prompt version read only these raw; the score rollups answer the rest). Partial: a trace-level score
is not in it. Built CONCURRENTLY (non-atomic migration) so a live deployment keeps ingesting."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("scores", "0003_merge_0002_metering_0002_score_project_time"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="score",
            index=models.Index(
                fields=["project_id", "-timestamp"],
                name="score_project_on_obs_time",
                condition=~models.Q(observation_id=""),
            ),
        ),
    ]
