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


def soft_limit_states(*, organization_ids, now=None) -> list[dict]:
    """The organizations of `organization_ids` at or past their soft limit this period, in that order:
    `soft_limit_state` of each plus its `organization_id` and `name`. Bulk: cached limits (the cold
    ones in one query), one Redis round trip for the usage, one query for the names of those warned."""
    from billing.enforcement import usages_in_period
    from billing.limits import limits_for_many
    from billing.services import soft_limit_from_usage
    from tenancy.models import Organization

    by_organization = limits_for_many(organization_ids) if organization_ids else None
    if not by_organization:
        return []
    limited = [limits for limits in by_organization.values() if not limits.unlimited and limits.soft_units is not None]
    now = now or timezone.now()
    states = {}
    for limits, usage in zip(limited, usages_in_period(limited, now=now), strict=True):
        state = soft_limit_from_usage(limits, usage, now=now)
        if state is not None:
            states[limits.organization_id] = state
    if not states:
        return []
    names = dict(Organization.objects.filter(pk__in=list(states)).values_list("pk", "name"))
    return [{"organization_id": organization_id, "name": names.get(organization_id) or "", **state}
            for organization_id, state in states.items()]


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


# --- Metered usage (billing/metering.py) -------------------------------------------------------

def usage_by_day(*, organization, since: date, until: date) -> list[dict]:
    """Per day and project in [since, until] (UTC days): billable units and each meter, from the
    metered hours, plus the events refused for billing that day."""
    from datetime import UTC, datetime, time, timedelta

    from django.db.models import Sum
    from django.db.models.functions import TruncDate

    from billing.models import UNIT_METERS, Meter, UsageRecord

    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    grouped = (
        UsageRecord.objects.filter(organization=organization, hour__gte=start, hour__lt=end)
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("day", "project_id", "meter")
        .annotate(quantity=Sum("quantity"))
    )
    empty = {str(m): 0 for m in Meter}
    rows: dict[tuple, dict] = {}
    for row in grouped:
        key = (row["day"].isoformat(), str(row["project_id"]))
        rows.setdefault(key, dict(empty))[row["meter"]] = row["quantity"]
    for rejected in rejected_events(organization=organization, since=since, until=until):
        key = (rejected["day"], rejected["project_id"])
        entry = rows.setdefault(key, dict(empty))
        entry["rejected_events"] = entry.get("rejected_events", 0) + rejected["events"]
    return [
        {"day": day, "project_id": project, "units": sum(values.get(str(m), 0) for m in UNIT_METERS),
         "rejected_events": values.pop("rejected_events", 0), **values}
        for (day, project), values in sorted(rows.items())
    ]


def metered_through(*, organization=None):
    """The end of the newest metered hour (any region): usage before it is final."""
    from datetime import timedelta

    from billing.models import MeteredHour

    newest = MeteredHour.objects.order_by("-hour").values_list("hour", flat=True).first()
    return newest + timedelta(hours=1) if newest else None


def _period_units(*, organization, start, end) -> dict[str, int]:
    from django.db.models import Sum

    from billing.models import UsageRecord

    rows = (UsageRecord.objects.filter(organization=organization, hour__gte=start, hour__lt=end)
            .values("meter").annotate(quantity=Sum("quantity")))
    return {row["meter"]: int(row["quantity"]) for row in rows}


def invoice_preview(*, organization, at=None) -> dict:
    """What the organization owes for the period holding `at` (default: now) from metered usage:
    included units, units past them × the plan's price, and the total. Only what the plan prices is
    charged (Lookglass has no base fee in plans; an operator adds it in their billing system)."""
    from decimal import ROUND_HALF_UP, Decimal

    from billing.models import UNIT_METERS

    subscription = Subscription.objects.select_related("plan").filter(organization=organization).first()
    limits = effective_limits(subscription, organization_id=organization.id)
    start, end = limits.period(at or timezone.now())
    meters = _period_units(organization=organization, start=start, end=end)
    units = sum(meters.get(str(m), 0) for m in UNIT_METERS)
    included = limits.included_units
    overage = max(0, units - included) if included is not None else 0
    price = limits.extra_unit_price
    amount = (Decimal(overage) * Decimal(price)).quantize(Decimal("0.01"), ROUND_HALF_UP) if price is not None \
        else Decimal("0.00")
    return {
        "organization_id": organization.id,
        "plan": limits.plan,
        "period_start": start,
        "period_end": end,
        "metered_through": metered_through(),
        "units": units,
        "included_units": included,
        "overage_units": overage,
        "extra_unit_price": str(price) if price is not None else None,
        "overage_amount": str(amount),
        "total": str(amount),
        "currency": "USD",
        "meters": meters,
    }


def usage_export_rows(*, since: date, until: date, organization=None) -> list[dict]:
    """Usage records for an external billing system: one line per organization, UTC month and
    meter (plus `units`, the billable sum), with an idempotency key that stays the same for the same
    line, so importing an export twice, or an overlapping one, charges once. Months are calendar
    months in UTC; `final` says whether every hour of the month has been metered."""
    import hashlib
    from datetime import UTC, datetime, time, timedelta

    from django.db.models import Sum
    from django.db.models.functions import TruncMonth

    from billing.models import UNIT_METERS, UsageRecord

    start = datetime.combine(since.replace(day=1), time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    records = UsageRecord.objects.filter(hour__gte=start, hour__lt=end)
    if organization is not None:
        records = records.filter(organization=organization)
    grouped = (records.annotate(month=TruncMonth("hour", tzinfo=UTC))
               .values("organization_id", "month", "meter").annotate(quantity=Sum("quantity"))
               .order_by("organization_id", "month", "meter"))
    through = metered_through()
    lines: dict[tuple, int] = {}
    for row in grouped:
        lines[(str(row["organization_id"]), row["month"], row["meter"])] = int(row["quantity"])
        unit_key = (str(row["organization_id"]), row["month"], "units")
        if row["meter"] in {str(m) for m in UNIT_METERS}:
            lines[unit_key] = lines.get(unit_key, 0) + int(row["quantity"])
    out = []
    for (org, month, meter), quantity in sorted(lines.items()):
        month_end = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        out.append({
            "idempotency_key": hashlib.sha256(f"lookglass|{org}|{month.date().isoformat()}|{meter}".encode())
            .hexdigest()[:32],
            "organization_id": org,
            "period_start": month.date().isoformat(),
            "period_end": month_end.date().isoformat(),
            "meter": meter,
            "quantity": quantity,
            "final": bool(through and through >= month_end),
        })
    return out
