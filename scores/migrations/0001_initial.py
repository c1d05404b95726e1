"""Score and ScoreConfig moved here from feedback/ (issue 9). Their tables keep their names,
`feedback_score` (region databases) and `feedback_scoreconfig` (default)."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

OLD_APP, NEW_APP = 'feedback', 'scores'
MODELS = ('score', 'scoreconfig')


def _move_content_types(apps, schema_editor, source, target):
    # Permissions and admin log entries point at the content type: renaming it keeps them valid.
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        if not types.filter(app_label=target, model=model).exists():
            types.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, OLD_APP, NEW_APP)


def backwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, NEW_APP, OLD_APP)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('feedback', '0004_feedback_event_append_only'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('tenancy', '0004_verbose_names'),
    ]

    operations = [
        # The tables exist already (created by the old app's migrations): state only, nothing in the database.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Score',
                    fields=[
                        ('project_id', models.UUIDField()),
                        ('pk', models.CompositePrimaryKey('project_id', 'id', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('id', models.CharField(max_length=200)),
                        ('trace_id', models.CharField(blank=True, default='', max_length=200)),
                        ('observation_id', models.CharField(blank=True, default='', max_length=200)),
                        ('session_id', models.CharField(blank=True, default='', max_length=1000)),
                        ('name', models.CharField(max_length=500)),
                        ('value', models.FloatField(blank=True, null=True)),
                        ('string_value', models.CharField(blank=True, default='', max_length=1000)),
                        ('data_type', models.CharField(choices=[('NUMERIC', 'Numeric'), ('CATEGORICAL', 'Categorical'), ('BOOLEAN', 'Boolean'), ('TEXT', 'Text'), ('CORRECTION', 'Correction')], default='NUMERIC', max_length=12)),
                        ('source', models.CharField(choices=[('API', 'Api'), ('EVAL', 'Eval'), ('ANNOTATION', 'Annotation'), ('USER', 'User')], default='API', max_length=12)),
                        ('comment', models.TextField(blank=True, default='')),
                        ('author_user_id', models.CharField(blank=True, default='', max_length=500)),
                        ('config_id', models.CharField(blank=True, default='', max_length=200)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('environment', models.CharField(blank=True, default='default', max_length=100)),
                        ('timestamp', models.DateTimeField(default=django.utils.timezone.now)),
                        ('redactions', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'feedback_score',
                        'indexes': [models.Index(fields=['project_id', 'trace_id'], name='score_project_trace'), models.Index(fields=['project_id', 'observation_id'], name='score_project_observation'), models.Index(fields=['project_id', 'session_id'], name='score_project_session'), models.Index(fields=['project_id', 'name', '-timestamp'], name='score_project_name_time'), models.Index(condition=models.Q(('data_type', 'BOOLEAN'), ('source', 'USER')), fields=['project_id', '-timestamp'], name='score_project_user_thumbs')],
                    },
                ),
                migrations.CreateModel(
                    name='ScoreConfig',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('name', models.CharField(max_length=35)),
                        ('data_type', models.CharField(choices=[('NUMERIC', 'Numeric'), ('CATEGORICAL', 'Categorical'), ('BOOLEAN', 'Boolean'), ('TEXT', 'Text')], max_length=12)),
                        ('min_value', models.FloatField(blank=True, null=True)),
                        ('max_value', models.FloatField(blank=True, null=True)),
                        ('categories', models.JSONField(blank=True, default=list)),
                        ('description', models.TextField(blank=True, default='', max_length=2000)),
                        ('is_archived', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='score_configs', to='tenancy.project')),
                    ],
                    options={
                        'db_table': 'feedback_scoreconfig',
                        'ordering': ['name', 'created_at'],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('is_archived', False)), fields=('project', 'name'), name='score_config_live_name_unique')],
                    },
                ),
    
            ],
        ),
        migrations.RunPython(forwards, backwards, hints={"plane": "control"}),
    ]
