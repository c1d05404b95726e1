"""Evaluating regression-alert rules (`alerts_models.AlertRule`) from the rollups.

Numbers: every LLM-call metric is read from `HourlyRollup` (exact, 100% of traffic, written at
ingest), one query per rule for all the windows it needs (the current one and its baselines). The
thumbs-down rate and a score's average come from the score rollups (`HourlyScoreRollup`: every
score by the hour of its timestamp, name, source, data type and environment).

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

import orjson
from django.db import InterfaceError, OperationalError, connection, transaction
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
from monitoring.models import HourlyRollup, HourlyScoreRollup
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


_DIMS = ("feature", "model", "environment", "prompt_name")
_HIST = {"latency_hist": 1, "ttft_hist": 2}


def measure(rule: AlertRule, windows: list[Window]) -> list[Measure]:
    """The rule's metric in each window."""
    return measure_many(rule.project, [(rule, windows)])[0]


def measure_many(project, wanted: list[tuple[AlertRule, list[Window]]]) -> list[list[Measure]]:
    """Each rule's metric in each of its windows, for rules of one project: one query for the rules
    read from the rollups and one each for thumbs and score rules, whatever their number (windows and
    filters travel as arrays joined to the table; each window is an index range scan on (project,
    hour) or (project, name, time))."""
    found: dict[tuple[int, int], Measure] = {}
    rollup = [(i, r, ws) for i, (r, ws) in enumerate(wanted) if r.metric not in SCORE_METRICS]
    thumbs = [(i, r, ws) for i, (r, ws) in enumerate(wanted) if r.metric == AlertMetric.THUMBS_DOWN_RATE]
    score = [(i, r, ws) for i, (r, ws) in enumerate(wanted) if r.metric == AlertMetric.SCORE_AVG]
    with data_connection(project).cursor() as cursor:
        if rollup:
            _rollup_measures(cursor, project, rollup, found)
        if thumbs:
            _score_measures(cursor, project, thumbs, found, thumbs=True)
        if score:
            _score_measures(cursor, project, score, found, thumbs=False)
    return [[found.get((i, j), Measure(0, _empty_value(rule))) for j in range(len(windows))]
            for i, (rule, windows) in enumerate(wanted)]


def _empty_value(rule: AlertRule) -> float | None:
    # A window without a single row: zero calls and zero cost are values; a rate of nothing is not.
    return 0.0 if rule.metric in SUM_METRICS else None


def _window_columns(items) -> tuple[list, list, list, list]:
    ri, wi, since, until = [], [], [], []
    for i, _rule, windows in items:
        for j, window in enumerate(windows):
            ri.append(i)
            wi.append(j)
            since.append(window.since)
            until.append(window.until)
    return ri, wi, since, until


def _rollup_measures(cursor, project, items, found) -> None:
    ri, wi, since, until = _window_columns(items)
    by_rule = {i: rule for i, rule, _ in items}
    dims = [[getattr(by_rule[i], name) or None for i in ri] for name in _DIMS]
    versions = [by_rule[i].prompt_version for i in ri]
    hists = [_HIST.get(PERCENTILES.get(by_rule[i].metric, ("",))[0], 0) for i in ri]
    # LATERAL: each window is its own index range scan on (project, hour); a plain join would read
    # every row of the project once per window. Histograms (percentile rules only) are summed bucket
    # by bucket with unnest, in C: the SQL aggregate `lookglass_int8_array_sum` costs a function
    # call per row, ten times more here.
    table = f'"{HourlyRollup._meta.db_table}" AS r'
    where = (
        "WHERE r.project_id = %(project)s::uuid AND r.hour >= w.since AND r.hour < w.until "
        "AND (w.feature IS NULL OR r.feature = w.feature) "
        "AND (w.model IS NULL OR r.model = w.model) AND (w.environment IS NULL OR r.environment = w.environment) "
        "AND (w.prompt_name IS NULL OR r.prompt_name = w.prompt_name) "
        "AND (w.prompt_version IS NULL OR r.prompt_version = w.prompt_version)"
    )
    cursor.execute(
        "SELECT w.ri, w.wi, a.*, h.hist FROM unnest(%(ri)s::int[], %(wi)s::int[], %(since)s::timestamptz[], "
        "%(until)s::timestamptz[], %(feature)s::text[], %(model)s::text[], %(environment)s::text[], "
        "%(prompt_name)s::text[], %(prompt_version)s::int[], %(hist)s::int[]) "
        "AS w(ri, wi, since, until, feature, model, environment, prompt_name, prompt_version, hist) "
        "CROSS JOIN LATERAL (SELECT sum(r.calls), sum(r.errors), sum(r.refusals), sum(r.cost), "
        f"sum(r.latency_count), sum(r.latency_us_sum), sum(r.ttft_count), sum(r.ttft_us_sum) FROM {table} {where}) "
        "AS a CROSS JOIN LATERAL (SELECT array_agg(b.total ORDER BY b.i) AS hist FROM (SELECT u.i, sum(u.c)::bigint AS total "
        f"FROM {table} CROSS JOIN LATERAL unnest(CASE WHEN w.hist = 1 THEN r.latency_hist ELSE r.ttft_hist END) "
        f"WITH ORDINALITY AS u(c, i) {where} AND w.hist > 0 GROUP BY u.i) AS b) AS h",
        {"ri": ri, "wi": wi, "since": since, "until": until, **dict(zip(_DIMS, dims)), "prompt_version": versions,
         "hist": hists, "project": str(project.id)},
    )
    for i, j, calls, errors, refusals, cost, lat_n, lat_sum, ttft_n, ttft_sum, hist in cursor.fetchall():
        rule = by_rule[i]
        calls = int(calls or 0)
        found[(i, j)] = Measure(calls, _rollup_value(rule.metric, calls, errors, refusals, cost, lat_n, lat_sum,
                                                     ttft_n, ttft_sum, hist))


def _score_measures(cursor, project, items, found, *, thumbs: bool) -> None:
    """Thumbs-down rate or a score's average per window, from the score rollups (exact sums of every
    score by hour; windows are whole hours, so they equal the raw rows' answer)."""
    ri, wi, since, until = _window_columns(items)
    by_rule = {i: rule for i, rule, _ in items}
    names = [by_rule[i].score_name or None for i in ri]
    environments = [by_rule[i].environment or None for i in ri]
    if thumbs:
        # End-user thumbs: source USER, BOOLEAN (1 = up, 0 = down), as `feedback.selectors` reads them.
        kind = "AND r.source = 'USER' AND r.data_type = 'BOOLEAN' AND (w.name IS NULL OR r.name = w.name)"
        select = "sum(r.value_count), sum(r.thumbs_down)"
    else:
        kind = "AND r.name = w.name AND r.data_type IN ('NUMERIC', 'BOOLEAN')"
        select = "sum(r.value_count), sum(r.value_sum)"
    cursor.execute(
        f"SELECT w.ri, w.wi, a.* FROM unnest(%s::int[], %s::int[], %s::timestamptz[], %s::timestamptz[], "
        "%s::text[], %s::text[]) AS w(ri, wi, since, until, name, environment) "
        f'CROSS JOIN LATERAL (SELECT {select} FROM "{HourlyScoreRollup._meta.db_table}" AS r '
        f"WHERE r.project_id = %s::uuid AND r.hour >= w.since AND r.hour < w.until {kind} "
        "AND (w.environment IS NULL OR r.environment = w.environment)) AS a",
        [ri, wi, since, until, names, environments, str(project.id)],
    )
    for i, j, count, second in cursor.fetchall():
        count = int(count or 0)
        if not count:
            value = None
        elif thumbs:
            value = int(second) / count
        else:
            value = float(second / count)
        found[(i, j)] = Measure(count, value)


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


def _enough(rule: AlertRule, m: Measure) -> bool:
    if m.value is None:
        return False
    return rule.metric == AlertMetric.VOLUME or m.calls >= rule.min_calls


def windows_of(rule: AlertRule, now: datetime) -> list[Window]:
    """The current window, then the baselines."""
    window = current_window(rule, now)
    return [window, *baseline_windows(rule, window)]


def outcome(rule: AlertRule, *, now: datetime, measures: list[Measure] | None = None) -> Outcome:
    """The rule's state now (before the resolved/ok bookkeeping of `evaluate_project`), from the
    measures of `windows_of(rule, now)` (read here when not given)."""
    windows = windows_of(rule, now)
    window = windows[0]
    current, *past = measures if measures is not None else measure(rule, windows)

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


def evaluate_project(project, *, now: datetime | None = None, rule_ids=None, force: bool = False) -> dict:
    """Evaluate the project's enabled rules (or those of `rule_ids`) in one control-plane transaction:
    the rules are locked (SKIP LOCKED: two overlapping runs never both evaluate, or notify, a rule),
    their numbers read with `measure_many` (a query or three on the region database), and the new
    states, history and deliveries written in bulk. Returns {rule id: state} of the rules evaluated."""
    from monitoring.tasks import enqueue_delivery

    now = now or timezone.now()
    states: dict = {}
    with transaction.atomic():
        rules = AlertRule.objects.select_for_update(skip_locked=True).filter(project_id=project.id, enabled=True)
        if rule_ids is not None:
            rules = rules.filter(pk__in=list(rule_ids))
        rules = [r for r in rules.order_by("id")
                 if force or not r.last_evaluated_at or now - r.last_evaluated_at >= MIN_INTERVAL]
        if not rules:
            return states
        for rule in rules:
            rule.project = project
        measured = measure_many(project, [(rule, windows_of(rule, now)) for rule in rules])
        events, notify = [], []
        for rule, measures in zip(rules, measured):
            result = outcome(rule, now=now, measures=measures)
            previous = rule.state
            state = next_state(previous, result.state)
            event = None
            if state != previous:
                event = AlertEvent(
                    rule=rule, project_id=rule.project_id, from_state=previous, to_state=state, value=result.value,
                    baseline=result.baseline, limit=result.limit, calls=result.calls,
                    window_start=result.window.since, window_end=result.window.until, message=result.message,
                    created_at=now,
                )
                events.append(event)
                rule.state, rule.state_since = state, now
            rule.last_value, rule.last_baseline, rule.last_evaluated_at = result.value, result.baseline, now
            kind = _notification(rule, state, now)
            if kind is not None:
                rule.last_notified_at = now
                rule.last_notified_state = NOTIFIED_AS[state]
                notify.append((rule, kind, result, event))
            states[rule.id] = state
        AlertEvent.objects.bulk_create(events)
        _save_states(rules)
        for rule, kind, result, event in notify:
            body = payload(rule, kind=kind, result=result, now=now, event_id=event.id if event else None)
            for channel in rule.channels.filter(enabled=True):
                delivery = AlertDelivery.objects.create(
                    project_id=rule.project_id, channel=channel, rule=rule, event=event, kind=kind, payload=body,
                    created_at=now,
                )
                transaction.on_commit(lambda d=delivery.id: enqueue_delivery(d))
    return states


_STATE_COLUMNS = (
    ("state", "text"), ("state_since", "timestamptz"), ("last_value", "double precision"),
    ("last_baseline", "double precision"), ("last_evaluated_at", "timestamptz"), ("last_notified_at", "timestamptz"),
    ("last_notified_state", "text"),
)


def _save_states(rules: list[AlertRule]) -> None:
    """Every rule's new state in one UPDATE (the ORM's bulk_update builds a CASE per field and row in
    Python: most of an evaluation's time with a hundred rules)."""
    rows = [{"id": str(rule.id), **{name: _jsonable(getattr(rule, name)) for name, _ in _STATE_COLUMNS}}
            for rule in rules]
    sets = ", ".join(f'"{name}" = v."{name}"' for name, _ in _STATE_COLUMNS)
    types = ", ".join(f'"{name}" {kind}' for name, kind in _STATE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{AlertRule._meta.db_table}" AS r SET {sets} FROM jsonb_to_recordset(%s::jsonb) '
            f"AS v(id uuid, {types}) WHERE r.id = v.id",
            [orjson.dumps(rows).decode()],
        )


def _jsonable(value):
    return value.isoformat() if isinstance(value, datetime) else value


def evaluate_rule(rule_id, *, now: datetime | None = None, force: bool = False) -> str | None:
    """One rule (see `evaluate_project`); None when skipped (disabled, locked, evaluated moments ago)."""
    from tenancy.models import Project

    project = Project.objects.filter(alert_rules__id=rule_id).first()
    if project is None:
        return None
    return evaluate_project(project, now=now, rule_ids=[rule_id], force=force).get(rule_id)


def evaluate_region(region: str, *, now: datetime | None = None) -> dict:
    """Every enabled rule of the region's projects, project by project. A project whose region
    database cannot be read now keeps its rules' states (logged) and is tried again next minute."""
    from tenancy.models import Project

    started = time.monotonic()
    projects = Project.objects.filter(
        region=region, pk__in=AlertRule.objects.filter(enabled=True).values("project_id")
    ).select_related("organization")
    counts: dict[str, int] = {}
    for project in projects:
        try:
            states = evaluate_project(project, now=now)
        except (OperationalError, InterfaceError):
            logger.warning("could not evaluate the alert rules of project %s now", project.id, exc_info=True)
            counts["unavailable"] = counts.get("unavailable", 0) + 1
            continue
        for state in states.values():
            counts[str(state)] = counts.get(str(state), 0) + 1
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
