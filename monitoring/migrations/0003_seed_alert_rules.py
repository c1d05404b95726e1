"""The seed's three alert rules (disabled) for every project created before the project hook
(`monitoring.alerts_models._seed_new_project`) existed. Idempotent: a project keeps one of each."""

from django.db import migrations

from monitoring.alerts_seed import seed_rules
from tenancy.planes import Plane


def add_seed_rules(apps, schema_editor):
    rule_model = apps.get_model("monitoring", "AlertRule")
    for project_id in apps.get_model("tenancy", "Project").objects.values_list("id", flat=True).iterator():
        seed_rules(rule_model, project_id)


def remove_seed_rules(apps, schema_editor):
    apps.get_model("monitoring", "AlertRule").objects.exclude(seed_key="").filter(enabled=False).delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_alerts_sampling")]
    operations = [migrations.RunPython(add_seed_rules, remove_seed_rules, hints={"plane": Plane.CONTROL})]
