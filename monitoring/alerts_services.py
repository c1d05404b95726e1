"""Writes of alert rules and channels: validated (every outbound URL against SSRF), audited."""

from __future__ import annotations

import math

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from monitoring.alerts_models import (
    SCORE_METRICS,
    AlertChannel,
    AlertMetric,
    AlertMode,
    AlertRule,
    ChannelKind,
    new_webhook_secret,
)
from tenancy import outbound
from tenancy.models import Project, User
from tenancy.services import audit_record

MAX_WINDOW_MINUTES = 7 * 24 * 60
RULE_FIELDS = (
    "name", "enabled", "metric", "score_name", "feature", "model", "environment", "prompt_name", "prompt_version",
    "window_minutes", "mode", "baseline", "anomaly_weeks", "operator", "threshold", "warning_threshold",
    "min_calls", "renotify_minutes", "cooldown_minutes",
)
CHANNEL_FIELDS = ("name", "kind", "url", "emails", "enabled")
_ROLLUP_FILTERS = ("feature", "model", "prompt_name", "prompt_version")


def _check_rule(rule: AlertRule) -> None:
    errors: dict[str, list[str]] = {}
    if rule.window_minutes % 60 or not 60 <= rule.window_minutes <= MAX_WINDOW_MINUTES:
        errors["window_minutes"] = [f"a whole number of hours (60 … {MAX_WINDOW_MINUTES}): the rollups are hourly"]
    if rule.metric == AlertMetric.SCORE_AVG and not rule.score_name:
        errors["score_name"] = ["the score whose average is watched is required"]
    if rule.metric in SCORE_METRICS:
        for name in _ROLLUP_FILTERS:
            if getattr(rule, name) not in ("", None):
                errors[name] = ["score metrics filter by score name and environment only"]
    elif rule.score_name:
        errors["score_name"] = ["only for the thumbs_down_rate and score_avg metrics"]
    for name in ("threshold", "warning_threshold"):
        value = getattr(rule, name)
        if value is not None and not math.isfinite(value):
            errors[name] = ["must be a finite number"]
    if rule.mode in (AlertMode.RATIO, AlertMode.ANOMALY) and rule.threshold is not None and rule.threshold <= 0:
        errors["threshold"] = ["a positive factor (ratio) or number of standard deviations (anomaly)"]
    if rule.mode == AlertMode.ANOMALY and not 2 <= rule.anomaly_weeks <= 12:
        errors["anomaly_weeks"] = ["2 … 12 past weeks"]
    if rule.warning_threshold is not None and rule.threshold is not None and "threshold" not in errors:
        upward = rule.operator in ("gt", "gte")
        if rule.mode == AlertMode.ANOMALY or rule.mode == AlertMode.RATIO:
            # A factor or a number of standard deviations: the warning is always the smaller one.
            wrong = rule.warning_threshold >= rule.threshold
        else:
            wrong = rule.warning_threshold >= rule.threshold if upward else rule.warning_threshold <= rule.threshold
        if wrong:
            errors["warning_threshold"] = ["must be reached before the alert threshold"]
    if errors:
        raise ValidationError(errors)


def _apply(obj, fields: tuple, changes: dict) -> dict:
    unknown = sorted(set(changes) - set(fields) - {"channels"})
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in unknown})
    before = {}
    for name, value in changes.items():
        if name == "channels":
            continue
        before[name] = getattr(obj, name)
        setattr(obj, name, value)
    return before


def _set_channels(rule: AlertRule, channels) -> None:
    channels = list(channels)
    if any(channel.project_id != rule.project_id for channel in channels):
        raise ValidationError({"channels": ["a channel of this project"]})
    rule.channels.set(channels)


@transaction.atomic
def alert_rule_create(*, project: Project, actor: User | None, **fields) -> AlertRule:
    rule = AlertRule(project=project)
    _apply(rule, RULE_FIELDS, fields)
    rule.full_clean(exclude=["project", "channels"])
    _check_rule(rule)
    rule.save()
    if "channels" in fields:
        _set_channels(rule, fields["channels"])
    audit_record(organization=project.organization, actor=actor, action="alert_rule.created",
                 target_type="alert_rule", target_id=rule.id, data={"project_id": str(project.id), "name": rule.name})
    return rule


@transaction.atomic
def alert_rule_update(*, rule: AlertRule, actor: User | None, **fields) -> AlertRule:
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    before = _apply(rule, RULE_FIELDS, fields)
    rule.full_clean(exclude=["project", "channels"])
    _check_rule(rule)
    rule.updated_at = timezone.now()
    if before.get("enabled") is False and rule.enabled:
        rule.last_evaluated_at = None  # evaluated by the next run, not skipped as "just evaluated"
    rule.save()
    if "channels" in fields:
        _set_channels(rule, fields["channels"])
    changed = {k: [str(v), str(getattr(rule, k))] for k, v in before.items() if v != getattr(rule, k)}
    audit_record(organization=rule.project.organization, actor=actor, action="alert_rule.updated",
                 target_type="alert_rule", target_id=rule.id, data={"changes": changed})
    return rule


@transaction.atomic
def alert_rule_delete(*, rule: AlertRule, actor: User | None) -> None:
    audit_record(organization=rule.project.organization, actor=actor, action="alert_rule.deleted",
                 target_type="alert_rule", target_id=rule.id, data={"name": rule.name})
    rule.delete()


def _check_channel(channel: AlertChannel) -> None:
    if channel.kind in (ChannelKind.WEBHOOK, ChannelKind.SLACK):
        if not channel.url:
            raise ValidationError({"url": ["required for webhook and Slack channels"]})
        try:
            channel.url = outbound.check_url(channel.url)
        except outbound.UnsafeURL as exc:
            raise ValidationError({"url": [str(exc)]}) from None
        if channel.emails:
            raise ValidationError({"emails": ["only for email channels"]})
    else:
        if not channel.emails:
            raise ValidationError({"emails": ["at least one address"]})
        if channel.url:
            raise ValidationError({"url": ["not used by email channels"]})
    if channel.kind == ChannelKind.WEBHOOK and not channel.secret:
        channel.secret = new_webhook_secret()
    if channel.kind != ChannelKind.WEBHOOK:
        channel.secret = ""


@transaction.atomic
def alert_channel_create(*, project: Project, actor: User | None, **fields) -> AlertChannel:
    channel = AlertChannel(project=project)
    _apply(channel, CHANNEL_FIELDS, fields)
    channel.full_clean(exclude=["project", "secret"])
    _check_channel(channel)
    channel.save()
    audit_record(organization=project.organization, actor=actor, action="alert_channel.created",
                 target_type="alert_channel", target_id=channel.id,
                 data={"project_id": str(project.id), "kind": channel.kind, "name": channel.name})
    return channel


@transaction.atomic
def alert_channel_update(*, channel: AlertChannel, actor: User | None, rotate_secret: bool = False,
                         **fields) -> AlertChannel:
    channel = AlertChannel.objects.select_for_update().get(pk=channel.pk)
    before = _apply(channel, CHANNEL_FIELDS, fields)
    if rotate_secret:
        channel.secret = ""
    channel.full_clean(exclude=["project", "secret"])
    _check_channel(channel)
    channel.updated_at = timezone.now()
    channel.save()
    changed = {k: [str(v), str(getattr(channel, k))] for k, v in before.items() if v != getattr(channel, k)}
    audit_record(organization=channel.project.organization, actor=actor, action="alert_channel.updated",
                 target_type="alert_channel", target_id=channel.id,
                 data={"changes": changed, **({"secret_rotated": True} if rotate_secret else {})})
    return channel


@transaction.atomic
def alert_channel_delete(*, channel: AlertChannel, actor: User | None) -> None:
    audit_record(organization=channel.project.organization, actor=actor, action="alert_channel.deleted",
                 target_type="alert_channel", target_id=channel.id, data={"name": channel.name})
    channel.delete()
