"""Each trace's cost, kept by the writer (issue 16): `cost` (the sum of its counted observations'
`total_cost`, NULL while none has one) and `cost_calls` (how many have one). Both are added without
rewriting the table (a NULL column, and a constant default). Traces stored before hold no cost until
`manage.py rebuild_trace_costs` has run (README, "Server time at 10M observations")."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("traces", "0012_session_list_covering_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="trace",
            name="cost",
            field=models.DecimalField(blank=True, decimal_places=10, max_digits=30, null=True),
        ),
        migrations.AddField(
            model_name="trace",
            name="cost_calls",
            field=models.IntegerField(db_default=0, default=0),
        ),
    ]
