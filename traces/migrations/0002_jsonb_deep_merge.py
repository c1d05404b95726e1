"""`lookglass_jsonb_deep_merge(a, b)`: the ingest writer's metadata merge, done in SQL so that
concurrent updates of one row merge against its current value instead of a stale copy."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION lookglass_jsonb_deep_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result jsonb;
    key text;
    value jsonb;
BEGIN
    IF b IS NULL THEN
        RETURN a;
    END IF;
    IF a IS NULL OR jsonb_typeof(a) <> 'object' OR jsonb_typeof(b) <> 'object' THEN
        RETURN b;
    END IF;
    result := a;
    FOR key, value IN SELECT * FROM jsonb_each(b) LOOP
        IF result ? key THEN
            result := jsonb_set(result, ARRAY[key], lookglass_jsonb_deep_merge(result -> key, value));
        ELSE
            result := result || jsonb_build_object(key, value);
        END IF;
    END LOOP;
    RETURN result;
END;
$$;
"""

DROP = "DROP FUNCTION IF EXISTS lookglass_jsonb_deep_merge(jsonb, jsonb);"


class Migration(migrations.Migration):
    dependencies = [("traces", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP, hints={"plane": "data"})]
