"""Billing writes: subscriptions and the flush of rejected-event counters."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date

from django.db import transaction
from django.db.models import F
from redis.exceptions import LockError

from billing.enforcement import REJECTED_KEY, _client
from billing.models import RejectedEvents, Subscription
from tenancy.models import Organization
from tenancy.services import audit_record

logger = logging.getLogger(__name__)

FLUSHING_KEY = REJECTED_KEY + ":flushing"
FLUSH_LOCK_KEY = REJECTED_KEY + ":flush-lock"
# Longer than a task may run (CELERY_TASK_TIME_LIMIT): a killed flush blocks the next ones this long.
FLUSH_LOCK_SECONDS = 600
AUDIT_SUBSCRIPTION = "billing.subscription_changed"


def subscription_set(*, organization, plan, actor, period_start=None, overrides=None) -> Subscription:
    """Put `organization` on `plan` (validated, audited); takes effect on ingest within a second."""
    subscription = Subscription.objects.filter(organization=organization).first() or Subscription(
        organization=organization
    )
    subscription.plan = plan
    if period_start is not None:
        subscription.period_start = period_start
    if overrides is not None:
        subscription.overrides = overrides
    subscription.full_clean(exclude=["organization"])
    with transaction.atomic():
        subscription.save()
        audit_record(
            organization=organization, actor=actor, action=AUDIT_SUBSCRIPTION, target_type="subscription",
            target_id=str(organization.id),
            data={"plan": plan.name, "overrides": subscription.overrides,
                  "period_start": subscription.period_start.isoformat()},
        )
    return subscription


def parse_counters(raw: dict) -> dict[tuple, dict[str, int]]:
    """{(org, project, day, reason): {"requests": n, "events": n}} from the Redis hash's fields."""
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: {"requests": 0, "events": 0})
    for field, value in raw.items():
        field = field.decode() if isinstance(field, bytes) else field
        try:
            org, project, day, reason, kind = field.split("|")
            totals[(org, project, day, reason)][kind] += int(value)
        except (ValueError, KeyError):
            logger.warning("ignoring malformed rejected-events counter %r", field)
    return totals


def rejections_flush() -> int:
    """Move the rejected-event counters from Redis into `RejectedEvents` (adds); returns rows touched.

    The hash is renamed before it is read, so counts added meanwhile go to a fresh hash; a flush
    that fails leaves the renamed hash, and the next one takes it first. One flush at a time: beat
    sends one a minute, and after a backlog several run at once; each would add the same renamed
    hash. At least once only if a worker dies between the commit and the hash's delete."""
    client = _client()
    lock = client.lock(FLUSH_LOCK_KEY, timeout=FLUSH_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return 0  # another flush is moving the counters now; what it leaves, the next one takes
    try:
        return _flush_rejections(client)
    finally:
        try:
            lock.release()
        except LockError:  # held longer than FLUSH_LOCK_SECONDS: already expired
            logger.warning("the rejected-events flush outlived its lock")


def _flush_rejections(client) -> int:
    if not client.exists(FLUSHING_KEY):
        try:
            client.rename(REJECTED_KEY, FLUSHING_KEY)
        except Exception as exc:  # noqa: BLE001 - "no such key": nothing was rejected
            if "no such key" in str(exc).lower():
                return 0
            raise
    totals = parse_counters(client.hgetall(FLUSHING_KEY))
    # An organization deleted since its refusals were counted has nothing left to show them to.
    existing = {str(pk) for pk in Organization.objects.filter(pk__in={key[0] for key in totals}).values_list("pk", flat=True)}
    totals = {key: counts for key, counts in totals.items() if key[0] in existing}
    with transaction.atomic():
        for (org, project, day, reason), counts in totals.items():
            row, created = RejectedEvents.objects.get_or_create(
                organization_id=org, project_id=project, day=date.fromisoformat(day), reason=reason,
                defaults=counts,
            )
            if not created:
                RejectedEvents.objects.filter(pk=row.pk).update(
                    requests=F("requests") + counts["requests"], events=F("events") + counts["events"]
                )
    client.delete(FLUSHING_KEY)
    return len(totals)


# --- Soft-limit notices --------------------------------------------------------------------------

def soft_limit_state(*, organization_id, now=None) -> dict | None:
    """{usage, included, soft, period_end, plan} when the organization is at or past its soft limit
    this period, else None. Reads the quota counter (Redis) and the cached limits: no query once warm."""
    from django.utils import timezone

    from billing.enforcement import usage_in_period
    from billing.limits import limits_for

    limits = limits_for(organization_id)
    if limits is None or limits.unlimited or limits.soft_units is None:
        return None
    now = now or timezone.now()
    return soft_limit_from_usage(limits, usage_in_period(limits, now=now), now=now)


def soft_limit_from_usage(limits, usage: int | None, *, now) -> dict | None:
    """`soft_limit_state` of limits whose usage this period is already read."""
    if usage is None or limits.soft_units is None or usage < limits.soft_units:
        return None
    start, end = limits.period(now)
    return {"usage": usage, "included": limits.included_units, "soft": limits.soft_units, "plan": limits.plan,
            "period_start": start, "period_end": end, "hard": limits.hard_units is not None}


def quota_notices_send(*, now=None) -> int:
    """E-mail the owners and admins of every organization at or past its soft limit, once per period
    (a `QuotaNotice` row is the mark, taken before the mail goes out so two runs never both send).
    Returns the number of organizations notified."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.db import IntegrityError

    from billing.models import QuotaNotice
    from tenancy.models import Membership, Role

    sent = 0
    for subscription in Subscription.objects.select_related("organization").exclude(plan__included_units=None):
        state = soft_limit_state(organization_id=subscription.organization_id, now=now)
        if state is None:
            continue
        emails = sorted(set(Membership.objects.filter(
            organization_id=subscription.organization_id, role__in=[Role.OWNER, Role.ADMIN]
        ).values_list("user__email", flat=True)))
        try:
            with transaction.atomic():
                QuotaNotice.objects.create(organization_id=subscription.organization_id,
                                           period_start=state["period_start"], usage_units=state["usage"],
                                           recipients=len(emails))
        except IntegrityError:
            continue  # already told this period
        org = subscription.organization
        what = ("ingestion will be refused (HTTP 429) past the included units" if state["hard"]
                else "units past the included ones are billed at the plan's price")
        send_mail(
            subject=f"Lookglass: {org.name.splitlines()[0][:80]} has used {state['usage']:,} of "
                    f"{state['included']:,} units",
            message=(f"Your organization {org.name!r} on plan {state['plan']!r} has used {state['usage']:,} of its "
                     f"{state['included']:,} included billable units (traces + observations + scores) this period, "
                     f"which ends {state['period_end']:%Y-%m-%d %H:%M} UTC. After that, {what}.\n\n"
                     f"Usage by day and project: {settings.PUBLIC_URL}/admin/billing/usage/\n"),
            from_email=None, recipient_list=emails, fail_silently=False,
        )
        logger.info("soft-limit notice sent to %d people of organization %s", len(emails), org.id)
        sent += 1
    return sent
