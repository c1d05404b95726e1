"""The rules every project starts with, disabled, ready to switch on (shared by the project hook in
`alerts_models` and the data migration that gives them to projects created before it). Plain data:
migrations import it."""

from __future__ import annotations

SEED_RULES = (
    {
        "seed_key": "error_rate_vs_yesterday",
        "name": "Error rate above 1.5× yesterday's",
        "metric": "error_rate", "mode": "ratio", "baseline": "yesterday", "operator": "gt", "threshold": 1.5,
        "window_minutes": 60, "min_calls": 20,
    },
    {
        "seed_key": "latency_vs_yesterday",
        "name": "Average latency above 1.5× yesterday's",
        "metric": "latency_avg", "mode": "ratio", "baseline": "yesterday", "operator": "gt", "threshold": 1.5,
        "window_minutes": 60, "min_calls": 20,
    },
    {
        "seed_key": "refusal_rate_5pct",
        "name": "Refusal rate above 5%",
        "metric": "refusal_rate", "mode": "threshold", "baseline": "previous_window", "operator": "gt",
        "threshold": 0.05, "window_minutes": 60, "min_calls": 20,
    },
)


def seed_rules(rule_model, project_id) -> int:
    """Create the seed rules the project lacks (disabled). Returns how many were created."""
    have = set(
        rule_model.objects.filter(project_id=project_id).exclude(seed_key="").values_list("seed_key", flat=True)
    )
    missing = [rule_model(project_id=project_id, enabled=False, **spec) for spec in SEED_RULES
               if spec["seed_key"] not in have]
    rule_model.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)
