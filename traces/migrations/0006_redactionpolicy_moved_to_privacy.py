"""RedactionPolicy moved to privacy/ (issue 9); its table, `traces_redactionpolicy`, stays."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('traces', '0005_trace_timestamp_is_placeholder'),
        ('privacy', '0001_initial'),
    ]

    operations = [
        # State only: the table stays, now owned by privacy/.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='RedactionPolicy'),
            ],
        ),
    ]
