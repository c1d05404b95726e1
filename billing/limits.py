"""An organization's effective limits (plan + subscription overrides), cached per process.

The ingest path asks for them on every request, so they must cost no query once warm: entries live
BILLING_CACHE_SECONDS, and any change to a plan or a subscription bumps a generation stamp in Redis
that every process compares at most once a second (the scheme of `tenancy.keycache`), so a raised
limit takes effect everywhere within about a second. An organization without a subscription is
cached too (as unlimited), so self-hosters pay one dictionary lookup.

When Redis does not answer, `limits_for` returns None: the quota check cannot count anyway, so it
lets the request through (fails open) without touching the database.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billing.models import UNLIMITED, Plan, Subscription

logger = logging.getLogger(__name__)

GENERATION_KEY = "billing:limits:generation"
STAMP_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Limits:
    organization_id: object
    plan: str
    included_units: int | None
    extra_unit_price: object  # Decimal | None
    soft_limit_share: float
    org_rate: int | None  # ingest requests per second, organization-wide
    key_rate: int | None  # per API key
    anchor: datetime | None  # the subscription's period start (None: no subscription)
    max_projects: int | None = None
    max_members: int | None = None
    retention_days: int | None = None
    eval_judge_calls: int | None = None

    @property
    def hard_units(self) -> int | None:
        """Units per period past which ingestion is refused: the included units of a plan without
        overage; None when usage past them is billed (or nothing is included: unlimited)."""
        if self.included_units is None or self.extra_unit_price is not None:
            return None
        return self.included_units

    @property
    def soft_units(self) -> int | None:
        if self.included_units is None:
            return None
        return int(self.included_units * self.soft_limit_share)

    @property
    def unlimited(self) -> bool:
        return self.included_units is None and self.org_rate is None and self.key_rate is None

    def period(self, now: datetime) -> tuple[datetime, datetime]:
        """The monthly period holding `now`: [start, end), anchored on the subscription's start."""
        anchor = self.anchor or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        months = (now.year - anchor.year) * 12 + now.month - anchor.month
        start = _add_months(anchor, months)
        if start > now:
            start = _add_months(anchor, months - 1)
            months -= 1
        return start, _add_months(anchor, months + 1)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])  # the 31st anchors on the last day
    return moment.replace(year=year, month=month, day=day)


def effective_limits(subscription: Subscription | None, *, organization_id) -> Limits:
    """Plan values with the subscription's overrides applied; no subscription is `unlimited`."""
    if subscription is None:
        return Limits(organization_id, UNLIMITED, None, None, 1.0, None, None, None)
    plan: Plan = subscription.plan
    values = {
        name: getattr(plan, name)
        for name in ("included_units", "extra_unit_price", "max_projects", "max_members", "retention_days",
                     "eval_judge_calls", "ingest_rate_per_second", "key_rate_per_second", "soft_limit_share")
    }
    values.update(subscription.overrides or {})
    return Limits(
        organization_id=organization_id,
        plan=plan.name,
        included_units=values["included_units"],
        extra_unit_price=values["extra_unit_price"],
        soft_limit_share=float(values["soft_limit_share"]),
        org_rate=values["ingest_rate_per_second"],
        key_rate=values["key_rate_per_second"],
        anchor=subscription.period_start,
        max_projects=values["max_projects"],
        max_members=values["max_members"],
        retention_days=values["retention_days"],
        eval_judge_calls=values["eval_judge_calls"],
    )


_lock = threading.Lock()
_entries: dict[object, tuple[float, Limits]] = {}
_state = {"generation": None, "checked_at": 0.0, "redis_ok": True}


def _check_generation(now: float) -> None:
    with _lock:
        if now - _state["checked_at"] < STAMP_CHECK_SECONDS:
            return
        _state["checked_at"] = now  # claimed before asking: one thread per second pays for a slow Redis
    try:
        generation = cache.get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - stalled or down (bounded by REDIS_SOCKET_TIMEOUT)
        logger.warning("billing limits stamp unavailable; quota checks fail open", exc_info=True)
        with _lock:
            _entries.clear()
            _state["redis_ok"] = False
        return
    with _lock:
        if generation != _state["generation"] or not _state["redis_ok"]:
            _entries.clear()
            _state["generation"] = generation
        _state["redis_ok"] = True


def limits_for(organization_id) -> Limits | None:
    """The organization's limits (one query when cold), or None while Redis is unreachable."""
    found = limits_for_many([organization_id])
    return None if found is None else found[organization_id]


def limits_for_many(organization_ids) -> dict[object, Limits] | None:
    """The limits of several organizations, cached per process: the cold ones in one query (not one
    each), or None while Redis is unreachable."""
    organization_ids = list(dict.fromkeys(organization_ids))
    now = time.monotonic()
    _check_generation(now)
    if not _state["redis_ok"]:
        return None
    found: dict[object, Limits] = {}
    cold = []
    for organization_id in organization_ids:
        entry = _entries.get(organization_id)
        if entry is not None and now - entry[0] <= settings.BILLING_CACHE_SECONDS:
            found[organization_id] = entry[1]
        else:
            cold.append(organization_id)
    if cold:
        subscriptions = {
            s.organization_id: s
            for s in Subscription.objects.select_related("plan").filter(organization_id__in=cold)
        }
        loaded = {o: effective_limits(subscriptions.get(o), organization_id=o) for o in cold}
        with _lock:
            if len(_entries) + len(loaded) > 10_000:
                _entries.clear()
            _entries.update((o, (now, limits)) for o, limits in loaded.items())
        found.update(loaded)
    return {organization_id: found[organization_id] for organization_id in organization_ids}


def invalidate() -> None:
    """Forget every cached entry here and tell the other processes to do the same."""
    with _lock:
        _entries.clear()
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        cache.add(GENERATION_KEY, 1, timeout=None)
    except Exception:  # noqa: BLE001 - Redis down: quota checks fail open until it is back
        logger.warning("could not bump the billing limits stamp", exc_info=True)


@receiver(post_save, sender=Plan)
@receiver(post_delete, sender=Plan)
@receiver(post_save, sender=Subscription)
@receiver(post_delete, sender=Subscription)
def _on_change(sender, instance, **kwargs):
    # At once and again after commit: a request racing the transaction could re-cache the old row.
    invalidate()
    transaction.on_commit(invalidate)


def enforce_plan_limits(kind: str, organization) -> None:
    """Registered with `tenancy.plan_limits`: refuse a project or a member past the plan's number.

    The organization row is locked first, so two concurrent creations cannot both take the last
    place (the creating service runs in a transaction)."""
    from django.core.exceptions import ValidationError

    from tenancy import plan_limits
    from tenancy.models import Membership, Organization, Project

    subscription = Subscription.objects.select_related("plan").filter(organization_id=organization.id).first()
    limits = effective_limits(subscription, organization_id=organization.id)
    cap = limits.max_projects if kind == plan_limits.PROJECTS else limits.max_members
    if cap is None:
        return
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    model = Project if kind == plan_limits.PROJECTS else Membership
    count = model.objects.filter(organization_id=organization.id).count()
    if count >= cap:
        raise ValidationError(
            f"Plan {limits.plan!r} allows {cap} {kind}; this organization has {count}. "
            "An operator can raise the limit by changing the plan."
        )
