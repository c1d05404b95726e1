"""What the ORM cannot declare for composite keys, in SQL:

- versions belong to an existing prompt, labels point at an existing version of that prompt
  (composite foreign keys that include project_id, so no row can reference another project's);
- a version's content is immutable: once written, only `updated_at` (label bookkeeping) may change.
"""

from django.db import migrations

FORWARD = """
ALTER TABLE prompts_promptversion
    ADD CONSTRAINT promptversion_prompt_fk FOREIGN KEY (project_id, prompt_id)
    REFERENCES prompts_prompt (project_id, id) ON DELETE CASCADE;
ALTER TABLE prompts_promptlabel
    ADD CONSTRAINT promptlabel_version_fk FOREIGN KEY (project_id, prompt_id, version)
    REFERENCES prompts_promptversion (project_id, prompt_id, version) ON DELETE CASCADE;

CREATE OR REPLACE FUNCTION prompts_promptversion_immutable() RETURNS trigger AS $$
BEGIN
    IF (NEW.project_id, NEW.id, NEW.prompt_id, NEW.version, NEW.type, NEW.text, NEW.messages, NEW.config,
        NEW.commit_message, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.project_id, OLD.id, OLD.prompt_id, OLD.version, OLD.type, OLD.text, OLD.messages, OLD.config,
        OLD.commit_message, OLD.created_by, OLD.created_at) THEN
        RAISE EXCEPTION 'prompt versions are immutable: create a new version instead'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER prompts_promptversion_no_edit
    BEFORE UPDATE ON prompts_promptversion
    FOR EACH ROW EXECUTE FUNCTION prompts_promptversion_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS prompts_promptversion_no_edit ON prompts_promptversion;
DROP FUNCTION IF EXISTS prompts_promptversion_immutable();
ALTER TABLE prompts_promptlabel DROP CONSTRAINT IF EXISTS promptlabel_version_fk;
ALTER TABLE prompts_promptversion DROP CONSTRAINT IF EXISTS promptversion_prompt_fk;
"""


class Migration(migrations.Migration):
    dependencies = [("prompts", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD, hints={"plane": "data"})]
