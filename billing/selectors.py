"""Billing reads: an organization's subscription, usage this period and rejected events."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.utils import timezone

from billing.enforcement import REJECTED_KEY, _client, usage_in_period
from billing.limits import effective_limits
from billing.models import RejectedEvents, Subscription
from billing.services import FLUSHING_KEY, parse_counters


def subscription_summary(*, organization) -> dict:
    subscription = Subscription.objects.select_related("plan").filter(organization=organization).first()
    limits = effective_limits(subscription, organization_id=organization.id)
    now = timezone.now()
    start, end = limits.period(now)
    usage = None if limits.unlimited else usage_in_period(limits, now=now)
    return {
        "organization_id": organization.id,
        "plan": limits.plan,
        "subscribed": subscription is not None,
        "overrides": subscription.overrides if subscription else {},
        "period_start": start if subscription else None,
        "period_end": end if subscription else None,
        "limits": {
            "included_units": limits.included_units,
            "extra_unit_price": str(limits.extra_unit_price) if limits.extra_unit_price is not None else None,
            "hard_limit_units": limits.hard_units,
            "soft_limit_units": limits.soft_units,
            "max_projects": limits.max_projects,
            "max_members": limits.max_members,
            "retention_days": limits.retention_days,
            "eval_judge_calls": limits.eval_judge_calls,
            "ingest_rate_per_second": limits.org_rate,
            "key_rate_per_second": limits.key_rate,
        },
        "usage_units": usage,
    }


def rejected_events(*, organization, since: date, until: date) -> list[dict]:
    """Rejected requests and events per day, project and reason in [since, until]: the flushed rows
    plus what is still counted in Redis (so a refusal shows up at once)."""
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: {"requests": 0, "events": 0})
    rows = RejectedEvents.objects.filter(organization=organization, day__gte=since, day__lte=until)
    for row in rows:
        key = (row.day.isoformat(), str(row.project_id), row.reason)
        totals[key]["requests"] += row.requests
        totals[key]["events"] += row.events
    try:
        client = _client()
        pending = client.hgetall(FLUSHING_KEY)
        pending_live = client.hgetall(REJECTED_KEY)
    except Exception:  # noqa: BLE001 - Redis down: the flushed rows are all there is
        pending, pending_live = {}, {}
    for raw in (pending, pending_live):
        for (org, project, day, reason), counts in parse_counters(raw).items():
            if org != str(organization.id) or not since.isoformat() <= day <= until.isoformat():
                continue
            totals[(day, project, reason)]["requests"] += counts["requests"]
            totals[(day, project, reason)]["events"] += counts["events"]
    return [
        {"day": day, "project_id": project, "reason": reason, **counts}
        for (day, project, reason), counts in sorted(totals.items())
    ]
