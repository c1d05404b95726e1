"""Reads of alerts for the console: a project's rules with their state, their history (state
changes) and their notifications. Keyword-only; always scoped to the project."""

from __future__ import annotations

from monitoring.alerts_models import AlertDelivery, AlertEvent, AlertRule, AlertState
from tenancy.api.base import is_uuid


def alert_rules(*, project) -> list[AlertRule]:
    """Firing first, then warning, then the rest; by name within a state."""
    order = {"firing": 0, "warning": 1}
    rules = list(AlertRule.objects.filter(project=project).order_by("name", "id"))
    return sorted(rules, key=lambda r: order.get(r.state, 2))


def active_alerts(*, project) -> list[AlertRule]:
    """The project's enabled rules that fire or warn now, firing first, then longest in that state:
    what the project home lists. One query on the (enabled, project) index; a switched-off rule keeps
    its last state but is not evaluated any more, so it is left out rather than shown as stale."""
    order = {AlertState.FIRING: 0, AlertState.WARNING: 1}
    rules = list(
        AlertRule.objects.filter(project=project, enabled=True, state__in=list(order)).order_by("state_since", "name")
    )
    return sorted(rules, key=lambda r: order[r.state])


def alert_rule_get(*, project, rule_id) -> AlertRule | None:
    if not is_uuid(str(rule_id)):
        return None
    return AlertRule.objects.filter(project=project, pk=rule_id).first()


def alert_events(*, project, rule_id=None, limit: int = 100) -> list[AlertEvent]:
    queryset = AlertEvent.objects.filter(project=project).select_related("rule")
    if rule_id is not None:
        queryset = queryset.filter(rule_id=rule_id)
    return list(queryset.order_by("-created_at", "-id")[:limit])


def alert_deliveries(*, project, rule_id=None, limit: int = 50) -> list[AlertDelivery]:
    queryset = AlertDelivery.objects.filter(project=project).select_related("channel")
    if rule_id is not None:
        queryset = queryset.filter(rule_id=rule_id)
    return list(queryset.order_by("-created_at")[:limit])
