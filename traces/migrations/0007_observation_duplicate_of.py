"""Observation.duplicate_of: a nested generation describing the same call as its parent (issue 10)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('traces', '0006_redactionpolicy_moved_to_privacy'),
    ]

    operations = [
        migrations.AddField(
            model_name='observation',
            name='duplicate_of',
            field=models.CharField(blank=True, default='', max_length=200),
        ),
    ]
