"""The writer's lookup of a call's stored children, for duplicate-call marking (issue 13): bounded
by the trace, so a batch's cost does not grow with the project's observations. Built concurrently:
the table takes writes all the time."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('traces', '0008_metering'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='observation',
            index=models.Index(
                condition=models.Q(('parent_observation_id', ''), _negated=True),
                fields=['project_id', 'trace_id', 'parent_observation_id'],
                name='obs_project_children',
            ),
        ),
    ]
