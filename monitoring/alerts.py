"""Evaluating regression-alert rules (`alerts_models.AlertRule`) from the rollups.

Numbers: every LLM-call metric is read from `HourlyRollup` (exact, 100% of traffic, written at
ingest), one query per rule for all the windows it needs (the current one and its baselines). The
thumbs-down rate and a score's average come from the scores table (the rollups hold calls, not
scores), through its (project, name, time) and user-thumbs indexes.

Windows are whole hours because the rollups are hourly: a rule of `window_minutes = 60·n` reads the
current (partial) hour and the n − 1 hours before it, so a call stored now counts at the next
evaluation (every minute: a condition that becomes true fires within two minutes). Baselines:
- ratio: the same window `window_minutes` earlier (`previous_window`) or 24 hours earlier
  (`yesterday`); sums (cost, volume) of a baseline are scaled to the elapsed part of the current
  window, so a half-done hour is not compared with a whole one;
- anomaly: the same window 1…`anomaly_weeks` weeks earlier; the limit is mean ± threshold × stddev
  (the stddev floored at 5% of the mean, so a perfectly flat history does not fire on noise), and at
  least two weeks with data are needed.

States: `no_data` when the window has fewer than `min_calls` calls (thumbs, scores) — except volume,
whose drop to zero is the signal — or the baseline has none; otherwise `firing` / `warning` / `ok`,
and `resolved` for one evaluation when a warning or firing rule recovers. Notifications follow the
*notified* state, not each evaluation: a change of notifiable state (ok/resolved, warning, firing)
is sent unless a notification went out less than `cooldown_minutes` ago (then it is sent by the
first evaluation after the cooldown, if still true: flapping sends one message, and a recovery is
never lost); a rule still warning or firing is sent again every `renotify_minutes` (0 = never).
"""

from __future__ import annotations

import logging
import math
import operator
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from monitoring.alerts_models import (
    SCORE_METRICS,
    AlertBaseline,
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertMetric,
    AlertMode,
    AlertRule,
    AlertState,
)
from monitoring.models import HourlyRollup
from monitoring.rules import percentile_of
from tenancy.dataplane import data_connection

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
OPERATORS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
SUM_METRICS = frozenset({AlertMetric.COST, AlertMetric.VOLUME})
PERCENTILES = {
    AlertMetric.LATENCY_P50: ("latency_hist", 0.50),
    AlertMetric.LATENCY_P95: ("latency_hist", 0.95),
    AlertMetric.LATENCY_P99: ("latency_hist", 0.99),
    AlertMetric.TTFT_P95: ("ttft_hist", 0.95),
}
# A run that overlaps the previous one (a slow minute) skips rules evaluated this recently.
MIN_INTERVAL = timedelta(seconds=30)
NOTIFIED_AS = {
    AlertState.OK: AlertState.OK, AlertState.RESOLVED: AlertState.OK,
    AlertState.WARNING: AlertState.WARNING, AlertState.FIRING: AlertState.FIRING,
}
SCORE_TABLE = "feedback_score"


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime  # exclusive, on an hour boundary (the current hour is included, partially filled)


@dataclass(frozen=True)
class Measure:
    calls: int
    value: float | None


@dataclass(frozen=True)
class Outcome:
    state: str
    value: float | None
    baseline: float | None
    limit: float | None
    calls: int
    window: Window
    message: str


def current_window(rule: AlertRule, now: datetime) -> Window:
    hours = max(1, rule.window_minutes // 60)
    until = now.replace(minute=0, second=0, microsecond=0) + HOUR
    return Window(since=until - hours * HOUR, until=until)


def _shift(window: Window, delta: timedelta) -> Window:
    return Window(window.since - delta, window.until - delta)


def baseline_windows(rule: AlertRule, window: Window) -> list[Window]:
    if rule.mode == AlertMode.RATIO:
        delta = timedelta(hours=24) if rule.baseline == AlertBaseline.YESTERDAY else window.until - window.since
        return [_shift(window, delta)]
    if rule.mode == AlertMode.ANOMALY:
        return [_shift(window, timedelta(weeks=k)) for k in range(1, max(1, rule.anomaly_weeks) + 1)]
    return []


def _rollup_filters(rule: AlertRule) -> tuple[str, list]:
    sql, params = [], []
    for column in ("feature", "model", "environment", "prompt_name"):
        value = getattr(rule, column)
        if value:
            sql.append(f'AND r."{column}" = %s')
            params.append(value)
    if rule.prompt_version is not None:
        sql.append('AND r."prompt_version" = %s')
        params.append(rule.prompt_version)
    return " ".join(sql), params


def _unnest(windows: list[Window]) -> tuple[str, list]:
    return (
        "unnest(%s::int[], %s::timestamptz[], %s::timestamptz[]) AS w(idx, since, until)",
        [list(range(len(windows))), [w.since for w in windows], [w.until for w in windows]],
    )


def measure(rule: AlertRule, windows: list[Window], *, now: datetime) -> list[Measure]:
    """The rule's metric in each window (one query)."""
    windows_sql, window_params = _unnest(windows)
    if rule.metric in SCORE_METRICS:
        rows = _score_rows(rule, windows_sql, window_params)
    else:
        rows = _rollup_rows(rule, windows_sql, window_params)
    out = []
    for index in range(len(windows)):
        calls, value = rows.get(index, (0, None))
        out.append(Measure(calls=int(calls or 0), value=value))
    return out


def _rollup_rows(rule, windows_sql, window_params) -> dict:
    hist_column = PERCENTILES.get(rule.metric, (None, None))[0]
    hist_sql = f', lookglass_int8_array_sum(r."{hist_column}")' if hist_column else ", NULL"
    filters, filter_params = _rollup_filters(rule)
    sql = (
        f"SELECT w.idx, sum(r.calls), sum(r.errors), sum(r.refusals), sum(r.cost), sum(r.latency_count), "
        f"sum(r.latency_us_sum), sum(r.ttft_count), sum(r.ttft_us_sum){hist_sql} "
        f'FROM {windows_sql} JOIN "{HourlyRollup._meta.db_table}" AS r ON r.project_id = %s::uuid '
        f"AND r.hour >= w.since AND r.hour < w.until {filters} GROUP BY w.idx"
    )
    with data_connection(rule.project).cursor() as cursor:
        cursor.execute(sql, [*window_params, str(rule.project_id), *filter_params])
        rows = cursor.fetchall()
    out = {}
    for idx, calls, errors, refusals, cost, lat_n, lat_sum, ttft_n, ttft_sum, hist in rows:
        calls = int(calls or 0)
        out[idx] = (calls, _rollup_value(rule.metric, calls, errors, refusals, cost, lat_n, lat_sum, ttft_n,
                                         ttft_sum, hist))
    return out


def _rollup_value(metric, calls, errors, refusals, cost, lat_n, lat_sum, ttft_n, ttft_sum, hist):
    if metric == AlertMetric.VOLUME:
        return float(calls)
    if metric == AlertMetric.COST:
        return float(cost or 0)
    if not calls:
        return None
    if metric == AlertMetric.ERROR_RATE:
        return int(errors) / calls
    if metric == AlertMetric.REFUSAL_RATE:
        return int(refusals) / calls
    if metric == AlertMetric.LATENCY_AVG:
        return float(lat_sum) / int(lat_n) / 1000 if lat_n else None
    if metric == AlertMetric.TTFT_AVG:
        return float(ttft_sum) / int(ttft_n) / 1000 if ttft_n else None
    if metric in PERCENTILES:
        return percentile_of(list(hist or ()), PERCENTILES[metric][1])
    raise ValueError(f"unknown metric {metric}")


def _score_rows(rule, windows_sql, window_params) -> dict:
    conditions, params = [], []
    if rule.metric == AlertMetric.THUMBS_DOWN_RATE:
        # End-user thumbs: source USER, BOOLEAN (1 = up, 0 = down), as `feedback.selectors` reads them.
        conditions.append("AND s.source = 'USER' AND s.data_type = 'BOOLEAN'")
        select = "count(s.value), count(*) FILTER (WHERE s.value = 0)"
    else:
        conditions.append("AND s.data_type IN ('NUMERIC', 'BOOLEAN')")
        select = "count(s.value), avg(s.value)"
    if rule.score_name:
        conditions.append("AND s.name = %s")
        params.append(rule.score_name)
    if rule.environment:
        conditions.append("AND s.environment = %s")
        params.append(rule.environment)
    sql = (
        f'SELECT w.idx, {select} FROM {windows_sql} JOIN "{SCORE_TABLE}" AS s ON s.project_id = %s::uuid '
        f"AND s.timestamp >= w.since AND s.timestamp < w.until {' '.join(conditions)} GROUP BY w.idx"
    )
    with data_connection(rule.project).cursor() as cursor:
        cursor.execute(sql, [*window_params, str(rule.project_id), *params])
        rows = cursor.fetchall()
    out = {}
    for idx, count, second in rows:
        count = int(count or 0)
        if rule.metric == AlertMetric.THUMBS_DOWN_RATE:
            out[idx] = (count, (int(second) / count) if count else None)
        else:
            out[idx] = (count, float(second) if second is not None else None)
    return out


def _enough(rule: AlertRule, m: Measure) -> bool:
    if m.value is None:
        return False
    return rule.metric == AlertMetric.VOLUME or m.calls >= rule.min_calls


def outcome(rule: AlertRule, *, now: datetime) -> Outcome:
    """The rule's state now (before the resolved/ok bookkeeping of `evaluate_rule`)."""
    window = current_window(rule, now)
    baselines = baseline_windows(rule, window)
    current, *past = measure(rule, [window, *baselines], now=now)

    def result(state, baseline=None, limit=None, message=""):
        return Outcome(state, current.value, baseline, limit, current.calls, window, message)

    if not _enough(rule, current):
        return result(AlertState.NO_DATA, message=f"{current.calls} calls in the window (minimum {rule.min_calls})")
    # A sum over the partial current window is compared with the same share of a whole baseline window.
    elapsed = min(1.0, (now - window.since) / (window.until - window.since))
    scale = elapsed if rule.metric in SUM_METRICS else 1.0
    if rule.mode == AlertMode.THRESHOLD:
        baseline, limit = None, rule.threshold
        warn = rule.warning_threshold
    elif rule.mode == AlertMode.RATIO:
        [base] = past
        if not _enough(rule, base):
            return result(AlertState.NO_DATA, message="no data in the baseline window")
        baseline = base.value * scale
        limit = baseline * rule.threshold
        warn = baseline * rule.warning_threshold if rule.warning_threshold is not None else None
    else:
        values = [m.value * scale for m in past if _enough(rule, m)]
        if len(values) < 2:
            return result(AlertState.NO_DATA, message="fewer than two past weeks with data")
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        std = max(std, abs(mean) * 0.05, 1e-9)
        sign = 1 if rule.operator in ("gt", "gte") else -1
        baseline = mean
        limit = mean + sign * rule.threshold * std
        warn = mean + sign * rule.warning_threshold * std if rule.warning_threshold is not None else None
    compare = OPERATORS[rule.operator]
    if compare(current.value, limit):
        state = AlertState.FIRING
    elif warn is not None and compare(current.value, warn):
        state = AlertState.WARNING
    else:
        state = AlertState.OK
    label = AlertMetric(rule.metric).label
    message = f"{label}: {current.value:.6g} ({rule.get_operator_display()} {limit:.6g} to fire; {current.calls} calls)"
    return result(state, baseline, limit, message)


def next_state(previous: str, raw: str) -> str:
    if raw == AlertState.OK and previous in (AlertState.FIRING, AlertState.WARNING):
        return AlertState.RESOLVED
    return raw


def _notification(rule: AlertRule, state: str, now: datetime) -> str | None:
    """What to send now, if anything: firing, warning, resolved, renotify (or None)."""
    target = NOTIFIED_AS.get(state)
    if target is None:  # no data: keep what was notified last
        return None
    notified = rule.last_notified_state or AlertState.OK
    since_last = (now - rule.last_notified_at) if rule.last_notified_at else None
    if target != notified:
        if since_last is not None and since_last < timedelta(minutes=rule.cooldown_minutes):
            return None  # sent by the first evaluation after the cooldown, if still true
        return "resolved" if target == AlertState.OK else str(target)
    if target in (AlertState.FIRING, AlertState.WARNING) and rule.renotify_minutes and (
        since_last is None or since_last >= timedelta(minutes=rule.renotify_minutes)
    ):
        return "renotify"
    return None


def payload(rule: AlertRule, *, kind: str, result: Outcome | None, now: datetime, event_id=None) -> dict:
    """The notification body (webhook JSON; Slack and email render `message`)."""
    state = result.state if result else rule.state
    title = f"[{kind.upper()}] {rule.name}" if kind != "test" else f"[TEST] {rule.name if rule else ''}"
    return {
        "id": str(event_id) if event_id else None,
        "type": "alert",
        "apiVersion": "v1",
        "timestamp": now.isoformat(),
        "payload": {
            "kind": kind,
            "ruleId": str(rule.id),
            "ruleName": rule.name,
            "projectId": str(rule.project_id),
            "state": state,
            "metric": rule.metric,
            "mode": rule.mode,
            "value": result.value if result else rule.last_value,
            "baseline": result.baseline if result else rule.last_baseline,
            "limit": result.limit if result else None,
            "calls": result.calls if result else None,
            "fromTimestamp": result.window.since.isoformat() if result else None,
            "toTimestamp": result.window.until.isoformat() if result else None,
            "windowMinutes": rule.window_minutes,
            "filters": {k: getattr(rule, k) for k in ("feature", "model", "environment", "prompt_name",
                                                      "prompt_version", "score_name") if getattr(rule, k) not in ("", None)},
            "message": {"title": title, "body": result.message if result else ""},
        },
    }


def evaluate_rule(rule_id, *, now: datetime | None = None, force: bool = False) -> str | None:
    """Evaluate one rule (locked, so two overlapping runs never both notify). Returns its state, or
    None when skipped (disabled, locked by another run, evaluated moments ago)."""
    from monitoring.tasks import enqueue_delivery

    now = now or timezone.now()
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("project")
            .filter(pk=rule_id, enabled=True)
            .first()
        )
        if rule is None:
            return None
        if not force and rule.last_evaluated_at and now - rule.last_evaluated_at < MIN_INTERVAL:
            return None
        result = outcome(rule, now=now)
        previous = rule.state
        state = next_state(previous, result.state)
        event = None
        if state != previous:
            event = AlertEvent.objects.create(
                rule=rule, project_id=rule.project_id, from_state=previous, to_state=state, value=result.value,
                baseline=result.baseline, limit=result.limit, calls=result.calls, window_start=result.window.since,
                window_end=result.window.until, message=result.message, created_at=now,
            )
            rule.state, rule.state_since = state, now
        rule.last_value, rule.last_baseline, rule.last_evaluated_at = result.value, result.baseline, now
        kind = _notification(rule, state, now)
        fields = ["state", "state_since", "last_value", "last_baseline", "last_evaluated_at"]
        if kind is not None:
            rule.last_notified_at = now
            rule.last_notified_state = NOTIFIED_AS[state]
            fields += ["last_notified_at", "last_notified_state"]
            body = payload(rule, kind=kind, result=result, now=now, event_id=event.id if event else None)
            for channel in rule.channels.filter(enabled=True):
                delivery = AlertDelivery.objects.create(
                    project_id=rule.project_id, channel=channel, rule=rule, event=event, kind=kind, payload=body,
                    created_at=now,
                )
                transaction.on_commit(lambda d=delivery.id: enqueue_delivery(d))
        rule.save(update_fields=fields)
    return state


def evaluate_region(region: str, *, now: datetime | None = None) -> dict:
    """Every enabled rule of the region's projects. A rule whose region database cannot be read now
    keeps its state (logged) and is tried again next minute."""
    started = time.monotonic()
    ids = list(AlertRule.objects.filter(enabled=True, project__region=region).values_list("id", flat=True))
    counts: dict[str, int] = {}
    for rule_id in ids:
        try:
            state = evaluate_rule(rule_id, now=now)
        except (OperationalError, InterfaceError):
            logger.warning("could not evaluate alert rule %s now", rule_id, exc_info=True)
            state = "unavailable"
        counts[state or "skipped"] = counts.get(state or "skipped", 0) + 1
    counts["seconds"] = round(time.monotonic() - started, 3)
    return counts


def test_delivery(channel: AlertChannel, *, rule: AlertRule | None = None, now: datetime | None = None) -> AlertDelivery:
    """'Send a test': one delivery to the channel, now, without retries; the answer says how it went."""
    from monitoring import alerts_delivery

    now = now or timezone.now()
    body = {
        "id": None, "type": "alert", "apiVersion": "v1", "timestamp": now.isoformat(),
        "payload": {
            "kind": "test", "projectId": str(channel.project_id), "channelId": str(channel.id),
            "ruleId": str(rule.id) if rule else None, "ruleName": rule.name if rule else None, "state": "test",
            "message": {"title": "[TEST] Lookglass alert channel", "body": f"A test of the channel {channel.name}."},
        },
    }
    delivery = AlertDelivery.objects.create(
        project_id=channel.project_id, channel=channel, rule=rule, kind="test", payload=body, created_at=now
    )
    alerts_delivery.attempt(delivery)
    return delivery
