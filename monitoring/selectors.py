"""Reads of monitoring: the project's feature rule and the cost/quality breakdowns answered from
the rollups (never from the raw rows)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from monitoring.models import DailyUserRollup, HourlyRollup, MonitoringSettings, RollupRule
from monitoring.rules import FeatureRule, percentile_of
from tenancy.dataplane import data_connection

logger = logging.getLogger(__name__)

PARETO_SHARE = Decimal("0.8")
MAX_DAYS = 90
# `by` → the rollup columns it groups on. `user` reads the daily per-user table.
BREAKDOWNS = {
    "feature": ("feature",),
    "model": ("model",),
    "prompt_version": ("prompt_name", "prompt_version"),
    "trace_name": ("trace_name",),
    "environment": ("environment",),
    "release": ("release",),
    "user": ("user_id",),
}
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def feature_rule(*, project) -> FeatureRule:
    """The project's feature setting (the default when it has none)."""
    row = MonitoringSettings.objects.filter(project_id=project.id).values_list("feature_source", "feature_key").first()
    return FeatureRule(*row) if row else FeatureRule()


def applied_feature_rule(*, project) -> FeatureRule:
    """The rule the project's rollups are built with now (lags the setting until its rebuild ran)."""
    row = RollupRule.objects.for_project(project).values_list("feature_source", "feature_key").first()
    return FeatureRule(*row) if row else FeatureRule()


def monitoring_settings(*, project) -> MonitoringSettings | None:
    return MonitoringSettings.objects.filter(project=project).first()


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


def window_of(*, days: int, now: datetime | None = None) -> Window:
    """The last `days` days, in whole hours: from the start of the hour `days` × 24 hours before
    the current one, up to now."""
    now = now or timezone.now()
    until = now
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=days) + timedelta(hours=1)
    return Window(since=since, until=until)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _quantiles(hist) -> dict:
    hist = list(hist or ())
    return {name: percentile_of(hist, q) for name, q in QUANTILES}


def _hourly_sql(columns: tuple[str, ...]) -> str:
    group = ", ".join(f'"{c}"' for c in columns)
    # lookglass_int8_array_sum: element-wise sum of the fixed-bucket histograms (migration 0001).
    return (
        f"SELECT {group}, sum(calls), sum(cost), sum(errors), sum(refusals), sum(unpriced_calls), "
        f"sum(total_tokens), sum(latency_count), sum(latency_us_sum), lookglass_int8_array_sum(latency_hist), "
        f"lookglass_int8_array_sum(ttft_hist) FROM {HourlyRollup._meta.db_table} "
        f"WHERE project_id = %s::uuid AND hour >= %s AND hour < %s GROUP BY {group} HAVING sum(calls) <> 0"
    )


def cost_breakdown(*, project, by: str = "feature", days: int = 7, now: datetime | None = None) -> dict:
    """Spend, calls and cost per call by `by` over the last `days` days, ordered by spend (largest
    first), with each group's share of the spend, the cumulative share and whether the group is
    within the "80%" (the smallest set of top groups that together make at least 80% of the spend);
    error and refusal rates; latency and time-to-first-token p50/p95/p99 (not for `by=user`, whose
    daily table holds no distributions). Answered from the rollups alone."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWNS)}")
    columns = BREAKDOWNS[by]
    window = window_of(days=days, now=now)
    pid = str(project.id)
    rows: list[dict] = []
    with data_connection(project).cursor() as cursor:
        if by == "user":
            since_day = (window.until - timedelta(days=days - 1)).date()
            cursor.execute(
                f"SELECT user_id, sum(calls), sum(cost), sum(errors), sum(refusals), sum(unpriced_calls), "
                f"sum(total_tokens) FROM {DailyUserRollup._meta.db_table} WHERE project_id = %s::uuid AND day >= %s "
                f"AND day <= %s GROUP BY user_id HAVING sum(calls) <> 0",
                [pid, since_day, window.until.date()],
            )
            window = Window(
                since=datetime.combine(since_day, datetime.min.time(), tzinfo=window.until.tzinfo), until=window.until
            )
            for user_id, calls, cost, errors, refusals, unpriced, tokens in cursor.fetchall():
                rows.append(_row({"user_id": user_id}, calls, cost, errors, refusals, unpriced, tokens))
        else:
            cursor.execute(_hourly_sql(columns), [pid, window.since, window.until])
            width = len(columns)
            for record in cursor.fetchall():
                key = dict(zip(columns, record[:width]))
                calls, cost, errors, refusals, unpriced, tokens, lat_n, lat_sum, lat_hist, ttft_hist = record[width:]
                row = _row(key, calls, cost, errors, refusals, unpriced, tokens)
                row["latency_ms"] = {"avg": round(lat_sum / lat_n / 1000, 3) if lat_n else None, **_quantiles(lat_hist)}
                row["ttft_ms"] = _quantiles(ttft_hist)
                rows.append(row)
    rows.sort(key=lambda r: (-r["spend"], -r["calls"], tuple(str(v) for v in r["key"].values())))
    total_spend = sum((r["spend"] for r in rows), Decimal(0))
    total_calls = sum(r["calls"] for r in rows)
    cumulative = Decimal(0)
    within = 0
    for row in rows:
        before = cumulative
        cumulative += row["spend"]
        row["share"] = float(row["spend"] / total_spend) if total_spend else None
        row["cumulative_share"] = float(cumulative / total_spend) if total_spend else None
        row["within_80"] = bool(total_spend) and before < PARETO_SHARE * total_spend
        within += row["within_80"]
    total_errors = sum(r["errors"] for r in rows)
    total_refusals = sum(r["refusals"] for r in rows)
    return {
        "by": by,
        "days": days,
        "from": window.since,
        "to": window.until,
        "total": {
            "spend": total_spend,
            "calls": total_calls,
            "cost_per_call": (total_spend / total_calls) if total_calls else None,
            "errors": total_errors,
            "refusals": total_refusals,
            "error_rate": _rate(total_errors, total_calls),
            "refusal_rate": _rate(total_refusals, total_calls),
            "unpriced_calls": sum(r["unpriced_calls"] for r in rows),
        },
        "groups_within_80": within,
        "rows": rows,
    }


def _row(key: dict, calls, cost, errors, refusals, unpriced, tokens) -> dict:
    calls, errors, refusals = int(calls), int(errors), int(refusals)
    spend = Decimal(cost or 0)
    return {
        "key": key,
        "spend": spend,
        "calls": calls,
        "cost_per_call": (spend / calls) if calls else None,
        "errors": errors,
        "refusals": refusals,
        "error_rate": _rate(errors, calls),
        "refusal_rate": _rate(refusals, calls),
        "unpriced_calls": int(unpriced),
        "total_tokens": int(tokens),
    }
