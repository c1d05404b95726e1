"""The shipped plans (billing/plans.py). Operators edit them (or add their own) in the admin; an
organization without a subscription is on `unlimited` without needing a row, but the row exists so it
can be chosen."""

from django.db import migrations

from billing.plans import DEFAULT_PLANS, ensure_default_plans


def add_plans(apps, schema_editor):
    ensure_default_plans(apps.get_model("billing", "Plan"))


def remove_plans(apps, schema_editor):
    apps.get_model("billing", "Plan").objects.filter(
        name__in=[p[0] for p in DEFAULT_PLANS], subscriptions=None
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_plans_subscriptions")]
    operations = [migrations.RunPython(add_plans, remove_plans)]
