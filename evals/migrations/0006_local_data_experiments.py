"""Experiments on local data (SDK v5 `langfuse.run_experiment(data=[…])`) are runs in no dataset: the
run's dataset and the run item's dataset item may be null (the composite foreign keys of migration
0002 do not apply to a row with a null column), and the SDK's item id (a hash of the input) is kept
in `local_item_id`."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("evals", "0005_experiment_run_ids")]

    operations = [
        migrations.AlterField(
            model_name="datasetrun", name="dataset_id", field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="datasetrunitem", name="dataset_item_id",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddField(
            model_name="datasetrunitem", name="local_item_id",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddConstraint(
            model_name="datasetrunitem",
            constraint=models.CheckConstraint(
                condition=models.Q(dataset_item_id__isnull=False) | models.Q(local_item_id__isnull=False),
                name="datasetrunitem_has_item",
            ),
        ),
    ]
