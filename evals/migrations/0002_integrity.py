"""What the ORM cannot declare for composite keys, in SQL: items and runs belong to an existing
dataset of the same project, run items to an existing run and item of the same project (composite
foreign keys that include project_id, so no row can reference another project's). Deleting an item
deletes its run items, as Langfuse does; deleting a run deletes its run items."""

from django.db import migrations

FORWARD = """
ALTER TABLE evals_datasetitem
    ADD CONSTRAINT datasetitem_dataset_fk FOREIGN KEY (project_id, dataset_id)
    REFERENCES evals_dataset (project_id, id) ON DELETE CASCADE;
ALTER TABLE evals_datasetrun
    ADD CONSTRAINT datasetrun_dataset_fk FOREIGN KEY (project_id, dataset_id)
    REFERENCES evals_dataset (project_id, id) ON DELETE CASCADE;
ALTER TABLE evals_datasetrunitem
    ADD CONSTRAINT datasetrunitem_run_fk FOREIGN KEY (project_id, run_id)
    REFERENCES evals_datasetrun (project_id, id) ON DELETE CASCADE;
ALTER TABLE evals_datasetrunitem
    ADD CONSTRAINT datasetrunitem_item_fk FOREIGN KEY (project_id, dataset_item_id)
    REFERENCES evals_datasetitem (project_id, id) ON DELETE CASCADE;
"""

BACKWARD = """
ALTER TABLE evals_datasetrunitem DROP CONSTRAINT IF EXISTS datasetrunitem_item_fk;
ALTER TABLE evals_datasetrunitem DROP CONSTRAINT IF EXISTS datasetrunitem_run_fk;
ALTER TABLE evals_datasetrun DROP CONSTRAINT IF EXISTS datasetrun_dataset_fk;
ALTER TABLE evals_datasetitem DROP CONSTRAINT IF EXISTS datasetitem_dataset_fk;
"""


class Migration(migrations.Migration):
    dependencies = [("evals", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD, hints={"plane": "data"})]
