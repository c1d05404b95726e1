"""A trace created as a placeholder (its observations arrived first) remembers that its timestamp
is a stand-in, so the trace's own timestamp wins whichever order they arrive in."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("traces", "0004_linear_jsonb_deep_merge")]

    operations = [
        migrations.AddField(
            model_name="trace",
            name="timestamp_is_placeholder",
            field=models.BooleanField(default=False),
        ),
    ]
