"""ModelPrice moved to pricing/ (issue 9); its table, `billing_modelprice`, stays."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_readable_effective_from'),
        ('pricing', '0001_initial'),
    ]

    operations = [
        # State only: the table stays, now owned by pricing/.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='ModelPrice'),
            ],
        ),
    ]
