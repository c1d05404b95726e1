from django.db import migrations

# The application never updates or deletes audit rows; the database refuses it too, so neither a
# bug nor a compromised web node can rewrite history.
FORBID = """
CREATE OR REPLACE FUNCTION tenancy_auditlogentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tenancy_auditlogentry is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tenancy_auditlogentry_no_update_delete
    BEFORE UPDATE OR DELETE ON tenancy_auditlogentry
    FOR EACH ROW EXECUTE FUNCTION tenancy_auditlogentry_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS tenancy_auditlogentry_no_update_delete ON tenancy_auditlogentry;
DROP FUNCTION IF EXISTS tenancy_auditlogentry_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]
    operations = [migrations.RunSQL(FORBID, ALLOW, hints={"plane": "control"})]
