"""Dataset run ids become text: a run is the Langfuse experiment, and its id is the one the SDKs
compute (the stable 16-hex hash of project, dataset and run name) or choose, which is no UUID.
Existing UUIDs are kept as their text. The composite foreign key from run items to runs (migration
0002, SQL) must be dropped while both columns change type, then comes back unchanged."""

from django.db import migrations, models

import evals.models

DROP_FK = "ALTER TABLE evals_datasetrunitem DROP CONSTRAINT IF EXISTS datasetrunitem_run_fk;"
ADD_FK = """
ALTER TABLE evals_datasetrunitem
    ADD CONSTRAINT datasetrunitem_run_fk FOREIGN KEY (project_id, run_id)
    REFERENCES evals_datasetrun (project_id, id) ON DELETE CASCADE;
"""


class Migration(migrations.Migration):
    dependencies = [("evals", "0004_evaluations")]

    operations = [
        migrations.RunSQL(DROP_FK, ADD_FK, hints={"plane": "data"}),
        migrations.AlterField(
            model_name="datasetrun",
            name="id",
            field=models.CharField(default=evals.models._new_run_id, max_length=64),
        ),
        migrations.AlterField(
            model_name="datasetrunitem",
            name="run_id",
            field=models.CharField(max_length=64),
        ),
        migrations.RunSQL(ADD_FK, DROP_FK, hints={"plane": "data"}),
    ]
