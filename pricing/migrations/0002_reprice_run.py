"""The background re-pricing run of the admin's "Re-price stored calls" (`RepriceRun`, control plane)."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pricing', '0001_initial'),
        ('tenancy', '0004_verbose_names'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RepriceRun',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('since', models.DateTimeField()),
                ('until', models.DateTimeField()),
                ('models_requested', models.JSONField(blank=True, default=list)),
                ('price_ids', models.JSONField(blank=True, default=list)),
                ('model_names', models.JSONField(blank=True, null=True)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=8)),
                ('examined', models.BigIntegerField(default=0)),
                ('repriced', models.BigIntegerField(default=0)),
                ('newly_priced', models.BigIntegerField(default=0)),
                ('still_unpriced', models.BigIntegerField(default=0)),
                ('position_time', models.DateTimeField(blank=True, editable=False, null=True)),
                ('position_id', models.TextField(blank=True, default='', editable=False)),
                ('error', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reprice_runs', to='tenancy.project')),
                ('requested_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(fields=['project', '-created_at'], name='repricerun_project_created')],
            },
        ),
    ]
