"""ModelPrice moved here from billing/ (issue 9). Its table keeps its name, `billing_modelprice`."""

import uuid

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import pricing.models

OLD_APP, NEW_APP = 'billing', 'pricing'
MODELS = ('modelprice',)


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
        ('billing', '0002_readable_effective_from'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('tenancy', '0004_verbose_names'),
    ]

    operations = [
        # The tables exist already (created by the old app's migrations): state only, nothing in the database.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ModelPrice',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('provider', models.CharField(max_length=64)),
                        ('model_name', models.CharField(help_text='Canonical model name.', max_length=200)),
                        ('match_pattern', models.CharField(blank=True, help_text='Regular expression matched case-insensitively (search) against the model name as sent; empty = exactly the model name.', max_length=500)),
                        ('effective_from', pricing.models.StoredDateTimeField(default=pricing.models.start_of_today)),
                        ('input_price', models.DecimalField(decimal_places=6, help_text='USD per million fresh input tokens.', max_digits=14, validators=[django.core.validators.MinValueValidator(0)])),
                        ('cached_input_price', models.DecimalField(blank=True, decimal_places=6, help_text='USD per million cache-read input tokens; empty = the input price.', max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(0)])),
                        ('cache_write_price', models.DecimalField(blank=True, decimal_places=6, help_text='USD per million cache-write input tokens; empty = the input price.', max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(0)])),
                        ('output_price', models.DecimalField(decimal_places=6, help_text='USD per million output tokens.', max_digits=14, validators=[django.core.validators.MinValueValidator(0)])),
                        ('reasoning_price', models.DecimalField(blank=True, decimal_places=6, help_text='USD per million reasoning tokens; empty = the output price.', max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(0)])),
                        ('source', models.CharField(choices=[('catalog', 'Catalog'), ('custom', 'Custom')], default='custom', max_length=16)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('project', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='model_prices', to='tenancy.project')),
                    ],
                    options={
                        'db_table': 'billing_modelprice',
                        'ordering': ['provider', 'model_name', '-effective_from'],
                        'indexes': [models.Index(fields=['project', 'model_name'], name='model_price_project_model')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('project__isnull', True)), fields=('model_name', 'effective_from'), name='model_price_catalog_unique', violation_error_message='the catalog already has a price for this model from this date'), models.UniqueConstraint(condition=models.Q(('project__isnull', False)), fields=('project', 'model_name', 'effective_from'), name='model_price_override_unique', violation_error_message='this project already has a price for this model from this date'), models.CheckConstraint(condition=models.Q(('input_price__gte', 0), ('output_price__gte', 0), models.Q(('cached_input_price__isnull', True), ('cached_input_price__gte', 0), _connector='OR'), models.Q(('cache_write_price__isnull', True), ('cache_write_price__gte', 0), _connector='OR'), models.Q(('reasoning_price__isnull', True), ('reasoning_price__gte', 0), _connector='OR')), name='model_price_non_negative')],
                    },
                ),
    
            ],
        ),
        migrations.RunPython(forwards, backwards, hints={"plane": "control"}),
    ]
