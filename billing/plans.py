"""The plans Lookglass ships, created by a data migration and by `ensure_default_plans`."""

from __future__ import annotations

from decimal import Decimal

# name, included units/month, USD per extra unit, projects, members, retention days, judge calls,
# organization requests/s, key requests/s, soft-limit share
DEFAULT_PLANS = [
    ("free", 50_000, None, 2, 2, 30, 1_000, 20, 10, 0.8),
    ("team", 1_000_000, Decimal("0.00008"), 20, 50, 90, 50_000, 100, 50, 0.8),
    ("enterprise", 10_000_000, Decimal("0.00005"), None, None, 1095, None, 500, 250, 0.9),
    ("unlimited", None, None, None, None, None, None, None, None, 1.0),
]
FIELDS = ("name", "included_units", "extra_unit_price", "max_projects", "max_members", "retention_days",
          "eval_judge_calls", "ingest_rate_per_second", "key_rate_per_second", "soft_limit_share")


def ensure_default_plans(plan_model) -> None:
    """Create the shipped plans that are missing (an operator's edits to existing ones are kept).
    Takes the model class, so the migration can pass its historical one."""
    for values in DEFAULT_PLANS:
        row = dict(zip(FIELDS, values))
        plan_model.objects.get_or_create(name=row.pop("name"), defaults=row)
