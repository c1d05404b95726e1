from django.db import migrations

# Feedback history is evidence of what end users said and when: the database refuses to rewrite it.
# DELETE stays possible (retention, erasure requests, project deletion).
FORBID = """
CREATE OR REPLACE FUNCTION feedback_feedbackevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'feedback_feedbackevent is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER feedback_feedbackevent_no_update
    BEFORE UPDATE ON feedback_feedbackevent
    FOR EACH ROW EXECUTE FUNCTION feedback_feedbackevent_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS feedback_feedbackevent_no_update ON feedback_feedbackevent;
DROP FUNCTION IF EXISTS feedback_feedbackevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("feedback", "0003_feedback_settings_score_configs_events")]
    operations = [migrations.RunSQL(FORBID, ALLOW, hints={"plane": "data"})]
