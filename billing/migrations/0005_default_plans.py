"""The shipped plans. Operators edit them (or add their own) in the admin; an organization without a
subscription is on `unlimited` without needing a row, but the row exists so it can be chosen."""

from decimal import Decimal

from django.db import migrations

PLANS = [
    # name, included units/month, USD per extra unit, projects, members, retention days, judge calls,
    # org requests/s, key requests/s, soft-limit share
    ("free", 50_000, None, 2, 2, 30, 1_000, 20, 10, 0.8),
    ("team", 1_000_000, Decimal("0.00008"), 20, 50, 90, 50_000, 100, 50, 0.8),
    ("enterprise", 10_000_000, Decimal("0.00005"), None, None, 1095, None, 500, 250, 0.9),
    ("unlimited", None, None, None, None, None, None, None, None, 1.0),
]
FIELDS = ("name", "included_units", "extra_unit_price", "max_projects", "max_members", "retention_days",
          "eval_judge_calls", "ingest_rate_per_second", "key_rate_per_second", "soft_limit_share")


def add_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for values in PLANS:
        row = dict(zip(FIELDS, values))
        Plan.objects.get_or_create(name=row.pop("name"), defaults=row)


def remove_plans(apps, schema_editor):
    apps.get_model("billing", "Plan").objects.filter(name__in=[p[0] for p in PLANS], subscriptions=None).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_plans_subscriptions")]
    operations = [migrations.RunPython(add_plans, remove_plans)]
