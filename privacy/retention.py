"""A project's effective retention: its own setting, else its organization's plan.

The one place the privacy layer reads billing (an explicit exception in `[tool.importlinter]`): a
plan's `retention_days` is the default of every project of an organization on that plan, so a team
that never opens the retention setting still keeps data no longer than it pays for."""

from __future__ import annotations

from dataclasses import dataclass

from billing.limits import effective_limits
from billing.models import Subscription


@dataclass(frozen=True)
class EffectiveRetention:
    days: int | None  # traces older than this are deleted (None: kept)
    payload_days: int | None  # payloads older than this are emptied (None: kept as long as the rows)
    source: str  # "project", "plan" or "none"


def plan_retention_days(organization_id) -> int | None:
    subscription = Subscription.objects.select_related("plan").filter(organization_id=organization_id).first()
    return effective_limits(subscription, organization_id=organization_id).retention_days


def effective_retention(project, policy=None) -> EffectiveRetention:
    """`policy`: the project's RetentionPolicy or None. A project's own days win over the plan's; its
    payload days apply under either."""
    own = policy.days if policy is not None else None
    payload = policy.payload_days if policy is not None else None
    if own is not None:
        return EffectiveRetention(own, payload, "project")
    plan = plan_retention_days(project.organization_id)
    if plan is not None:
        return EffectiveRetention(plan, payload if payload is None or payload < plan else None, "plan")
    return EffectiveRetention(None, payload, "project" if payload is not None else "none")
