"""RedactionPolicy moved here from traces/ (issue 9). Its table keeps its name, `traces_redactionpolicy`."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import privacy.policy

OLD_APP, NEW_APP = 'traces', 'privacy'
MODELS = ('redactionpolicy',)


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
        ('traces', '0003_redaction_policy'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('tenancy', '0004_verbose_names'),
    ]

    operations = [
        # The tables exist already (created by the old app's migrations): state only, nothing in the database.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='RedactionPolicy',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('enabled', models.BooleanField(default=True)),
                        ('default_mode', models.CharField(choices=[('mask', 'mask: [EMAIL]'), ('pseudonymize', 'pseudonymize: [EMAIL:3f9a1c0d], stable within the project'), ('off', 'off')], default='mask', max_length=16)),
                        ('detector_modes', models.JSONField(blank=True, default=dict)),
                        ('phone_default_region', models.CharField(blank=True, default='US', max_length=2)),
                        ('custom_patterns', models.JSONField(blank=True, default=list)),
                        ('pseudonym_salt', models.CharField(default=privacy.policy.new_pseudonym_salt, editable=False, max_length=64)),
                        ('version', models.PositiveIntegerField(default=1, editable=False)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('project', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='redaction_policy', to='tenancy.project')),
                    ],
                    options={
                        'verbose_name_plural': 'redaction policies',
                        'db_table': 'traces_redactionpolicy',
                    },
                ),
    
            ],
        ),
        migrations.RunPython(forwards, backwards, hints={"plane": "control"}),
    ]
