"""Reads of monitoring: the project's feature rule and the cost/quality breakdowns answered from
the rollups (never from the raw rows)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from monitoring.models import (
    HISTOGRAM_BUCKETS,
    DailyRollup,
    DailyUserRollup,
    DailyUserScoreRollup,
    HourlyRollup,
    HourlyScoreRollup,
    MonitoringSettings,
    RollupRule,
)
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
# The dashboards' by-user table: the top users by spend, the rest summed in one "others" row (a
# project has thousands of end users; the breakdown API still lists every one).
DASHBOARD_USERS = 100


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


# Windows of whole days read their middle from the daily rollup (the same rows summed by UTC day,
# written in the same statement as the hourly ones) and only the hours at either edge from the hourly
# rollup: a 30-day window adds up ~30 rows per dimension combination instead of ~720, each with two
# 80-bucket histograms. The answer is the same sum (tests/monitoring/test_dashboard_day_rollups.py
# compares it with the hourly-only read, which `USE_DAILY = False` restores).
USE_DAILY = True


def _rollup_source(*, pid: str, window: Window, columns: str, granularity: str | None = None) -> tuple[str, list]:
    """SQL (and parameters) of the rollup rows covering exactly [since, until) with `columns`; with a
    `granularity`, a first column `b` holds each row's bucket (daily rows only serve day buckets)."""
    hourly_table, daily_table = HourlyRollup._meta.db_table, DailyRollup._meta.db_table
    bucket = "date_trunc(%s, hour, 'UTC') AS b, " if granularity else ""
    bucket_params = [granularity] if granularity else []
    since, until = window.since.astimezone(UTC), window.until.astimezone(UTC)
    first = since.date() if since.time() == datetime.min.time() else since.date() + timedelta(days=1)
    last = until.date()  # today's hours (up to now) come from the hourly rollup
    if not USE_DAILY or granularity == "hour" or first >= last:
        return (f"SELECT {bucket}{columns} FROM {hourly_table} WHERE project_id = %s::uuid AND hour >= %s "
                f"AND hour < %s", [*bucket_params, pid, since, until])
    head_end = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    tail_start = datetime.combine(last, datetime.min.time(), tzinfo=UTC)
    day_bucket = "(day::timestamp AT TIME ZONE 'UTC') AS b, " if granularity else ""
    return (
        f"SELECT {bucket}{columns} FROM {hourly_table} WHERE project_id = %s::uuid AND ((hour >= %s AND hour < %s) "
        f"OR (hour >= %s AND hour < %s)) UNION ALL SELECT {day_bucket}{columns} FROM {daily_table} "
        f"WHERE project_id = %s::uuid AND day >= %s AND day < %s",
        [*bucket_params, pid, since, head_end, tail_start, until, pid, first, last],
    )


def rollup_source(*, pid: str, window: Window, columns: str) -> tuple[str, list]:
    """`_rollup_source` for reads of other apps (prompts.selectors' version metrics): SQL and
    parameters of the call rollup rows covering [since, until), whole days from the daily rollup.
    The bounds must be whole hours (a partial hour would be counted whole)."""
    return _rollup_source(pid=pid, window=window, columns=columns)


def cost_breakdown(*, project, by: str = "feature", days: int = 7, now: datetime | None = None,
                   limit: int | None = None) -> dict:
    """Spend, calls and cost per call by `by` over the last `days` days, ordered by spend (largest
    first), with each group's share of the spend, the cumulative share and whether the group is
    within the "80%" (the smallest set of top groups that together make at least 80% of the spend);
    error and refusal rates; latency and time-to-first-token p50/p95/p99 (not for `by=user`, whose
    daily table holds no distributions). Answered from the rollups alone.

    `limit` (by=user only) keeps the top `limit` groups in `rows`; the totals, `groups_within_80`,
    `groups` (how many there are) and `others` (the sums of the groups left out, None when none
    are) still count every group. Ranked in SQL: a month of a project's 5,000 users is 150,000
    daily rows, which the unranked read returned to Python to sort."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWNS)}")
    if limit is not None and by == "user":
        return _user_breakdown_top(project=project, days=days, now=now, limit=limit)
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
            group = ", ".join(f'"{c}"' for c in columns)
            source, params = _rollup_source(
                pid=pid, window=window,
                columns=f"{group}, calls, cost, errors, refusals, unpriced_calls, total_tokens, latency_count, "
                        "latency_us_sum, latency_hist, ttft_hist",
            )
            cursor.execute(
                f"SELECT {group}, sum(calls), sum(cost), sum(errors), sum(refusals), sum(unpriced_calls), "
                f"sum(total_tokens), sum(latency_count), sum(latency_us_sum), {hist_sum_sql('latency_hist')}, "
                f"{hist_sum_sql('ttft_hist')} FROM ({source}) AS r GROUP BY {group} HAVING sum(calls) <> 0",
                params,
            )
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
        "total": _breakdown_total(spend=total_spend, calls=total_calls, errors=total_errors,
                                  refusals=total_refusals, unpriced=sum(r["unpriced_calls"] for r in rows)),
        "groups_within_80": within,
        "groups": len(rows),
        "others": None,
        "rows": rows,
    }


def _breakdown_total(*, spend, calls: int, errors: int, refusals: int, unpriced: int) -> dict:
    """A breakdown's `total` (every group, the ranked ones and the others alike)."""
    return {
        "spend": spend,
        "calls": calls,
        "cost_per_call": (spend / calls) if calls else None,
        "errors": errors,
        "refusals": refusals,
        "error_rate": _rate(errors, calls),
        "refusal_rate": _rate(refusals, calls),
        "unpriced_calls": unpriced,
    }


def _user_window(*, days: int, now: datetime | None) -> tuple[Window, object]:
    """by=user reads whole calendar days (the daily table): the window and its first day."""
    window = window_of(days=days, now=now)
    since_day = (window.until - timedelta(days=days - 1)).date()
    since = datetime.combine(since_day, datetime.min.time(), tzinfo=window.until.tzinfo)
    return Window(since=since, until=window.until), since_day


def _user_breakdown_top(*, project, days: int, now: datetime | None, limit: int) -> dict:
    """`cost_breakdown(by="user", limit=...)`: the same figures, with the ranking, the running
    share, the 80% line and the totals computed in SQL (one statement) and only the top `limit`
    users (and one totals row) returned. The order is the unranked read's: spend, then calls
    descending, then the user id by code point (`COLLATE "C"`, as Python compares strings)."""
    window, since_day = _user_window(days=days, now=now)
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f"""
            WITH g AS (
                SELECT user_id, sum(calls) AS calls, COALESCE(sum(cost), 0) AS cost, sum(errors) AS errors,
                       sum(refusals) AS refusals, sum(unpriced_calls) AS unpriced, sum(total_tokens) AS tokens
                FROM {DailyUserRollup._meta.db_table} WHERE project_id = %s::uuid AND day >= %s AND day <= %s
                GROUP BY user_id HAVING sum(calls) <> 0
            ), r AS (
                SELECT g.*, row_number() OVER w AS rank, sum(cost) OVER w AS cumulative, sum(cost) OVER () AS total
                FROM g WINDOW w AS (ORDER BY cost DESC, calls DESC, user_id COLLATE "C" ROWS UNBOUNDED PRECEDING)
            )
            SELECT rank, user_id, calls, cost, errors, refusals, unpriced, tokens, cumulative, NULL::bigint
            FROM r WHERE rank <= %s
            UNION ALL
            SELECT 0, NULL, sum(calls) FILTER (WHERE rank > %s), sum(cost) FILTER (WHERE rank > %s),
                   sum(errors) FILTER (WHERE rank > %s), sum(refusals) FILTER (WHERE rank > %s),
                   sum(unpriced) FILTER (WHERE rank > %s), count(*),
                   NULL, count(*) FILTER (WHERE total > 0 AND cumulative - cost < %s * total)
            FROM r
            ORDER BY 1
            """,
            [str(project.id), since_day, window.until.date(), limit, limit, limit, limit, limit, limit, PARETO_SHARE],
        )
        records = cursor.fetchall()
    summary, ranked = records[0], records[1:]
    _, _, o_calls, o_cost, o_errors, o_refusals, o_unpriced, groups, _, within = summary
    rows, cumulatives = [], []
    for _, user_id, calls, cost, errors, refusals, unpriced, tokens, cumulative, _ in ranked:
        rows.append(_row({"user_id": user_id}, calls, cost, errors, refusals, unpriced, tokens))
        cumulatives.append(Decimal(cumulative))
    others = None
    if groups > len(rows):
        o_calls, o_spend = int(o_calls), Decimal(o_cost)
        others = {"groups": groups - len(rows), "spend": o_spend, "calls": o_calls, "errors": int(o_errors),
                  "refusals": int(o_refusals), "unpriced_calls": int(o_unpriced),
                  "cost_per_call": (o_spend / o_calls) if o_calls else None}
    total_spend = sum((r["spend"] for r in rows), Decimal(0)) + (others["spend"] if others else 0)
    total_calls = sum(r["calls"] for r in rows) + (others["calls"] if others else 0)
    total_errors = sum(r["errors"] for r in rows) + (others["errors"] if others else 0)
    total_refusals = sum(r["refusals"] for r in rows) + (others["refusals"] if others else 0)
    for row, cumulative in zip(rows, cumulatives, strict=True):
        row["share"] = float(row["spend"] / total_spend) if total_spend else None
        row["cumulative_share"] = float(cumulative / total_spend) if total_spend else None
        row["within_80"] = bool(total_spend) and cumulative - row["spend"] < PARETO_SHARE * total_spend
    return {
        "by": "user",
        "days": days,
        "from": window.since,
        "to": window.until,
        "total": _breakdown_total(
            spend=total_spend, calls=total_calls, errors=total_errors, refusals=total_refusals,
            unpriced=sum(r["unpriced_calls"] for r in rows) + (others["unpriced_calls"] if others else 0),
        ),
        "groups_within_80": int(within),
        "groups": int(groups),
        "others": others,
        "rows": rows,
    }


def _row(key: dict, calls, cost, errors, refusals, unpriced, tokens) -> dict:
    """One group of a breakdown: the same figures as its total, plus its key and tokens."""
    figures = _breakdown_total(
        spend=Decimal(cost or 0), calls=int(calls), errors=int(errors), refusals=int(refusals), unpriced=int(unpriced)
    )
    return {"key": key, **figures, "total_tokens": int(tokens)}


def rollup_totals(*, project, days: int = 1, now: datetime | None = None) -> dict:
    """`cost_breakdown(...)["total"]` without the groups and their distributions: one sum over the
    window's hourly rollup rows (the console's home). Reading no histogram keeps it a scan of a few
    narrow columns by the `(project_id, hour)` index — at 10M calls a day is ~1,000 rollup rows."""
    window = window_of(days=days, now=now)
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(sum(calls), 0), COALESCE(sum(cost), 0), COALESCE(sum(errors), 0), "
            f"COALESCE(sum(refusals), 0), COALESCE(sum(unpriced_calls), 0) FROM {HourlyRollup._meta.db_table} "
            f"WHERE project_id = %s::uuid AND hour >= %s AND hour < %s",
            [str(project.id), window.since, window.until],
        )
        calls, cost, errors, refusals, unpriced = cursor.fetchone()
    calls, errors, refusals = int(calls), int(errors), int(refusals)
    spend = Decimal(cost)
    return {
        "spend": spend, "calls": calls, "cost_per_call": (spend / calls) if calls else None,
        "errors": errors, "refusals": refusals,
        "error_rate": _rate(errors, calls), "refusal_rate": _rate(refusals, calls),
        "unpriced_calls": int(unpriced),
    }


def user_totals(*, project, user_ids: list[str]) -> dict[str, dict]:
    """Per end user, over every day the rollups hold: the cost of their LLM calls and their end users'
    thumbs up and down (the per-user daily call and score rollups). The console's users list reads
    these instead of every observation and score of each user's traces (100,000 observations for a
    page of 50 users at 10M; 5.7 s)."""
    user_ids = [u for u in dict.fromkeys(user_ids) if u]
    out = {u: {"cost": None, "thumbs_up": 0, "thumbs_down": 0} for u in user_ids}
    if not user_ids:
        return out
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f"SELECT user_id, sum(cost) FROM {DailyUserRollup._meta.db_table} WHERE project_id = %s::uuid "
            "AND user_id = ANY(%s) GROUP BY user_id",
            [str(project.id), user_ids],
        )
        for user_id, cost in cursor.fetchall():
            out[user_id]["cost"] = cost
        cursor.execute(
            f"SELECT user_id, sum(thumbs_up), sum(thumbs_down) FROM {DailyUserScoreRollup._meta.db_table} "
            "WHERE project_id = %s::uuid AND user_id = ANY(%s) GROUP BY user_id",
            [str(project.id), user_ids],
        )
        for user_id, up, down in cursor.fetchall():
            out[user_id]["thumbs_up"], out[user_id]["thumbs_down"] = int(up), int(down)
    return out


def hist_sum_sql(column: str, table: str = "") -> str:
    """SQL summing a histogram column element-wise over a GROUP BY: one native `sum` per bucket.
    About ten times faster than the `lookglass_int8_array_sum` aggregate (an SQL function called
    once per row), which made a week of rollup rows cost seconds to read."""
    prefix = f"{table}." if table else ""
    sums = ", ".join(f"COALESCE(sum({prefix}{column}[{i}]), 0)::bigint" for i in range(1, HISTOGRAM_BUCKETS + 1))
    return f"ARRAY[{sums}]"


# --- dashboards: time series (hour or day buckets, zero-filled) ---------------------------------
# Every read of the cost and quality dashboards lives here (keyword-only), so the admin pages now and
# the console later draw the same numbers.

SERIES_GRANULARITIES = ("hour", "day")


def _buckets(window: Window, granularity: str) -> list[datetime]:
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    moment = window.since.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        moment = moment.replace(hour=0)
    out = []
    while moment < window.until:
        out.append(moment)
        moment += step
    return out


def _series_window(*, days: int, granularity: str, now: datetime | None) -> Window:
    if granularity not in SERIES_GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(SERIES_GRANULARITIES)}")
    window = window_of(days=days, now=now)
    if granularity == "day":
        # Whole UTC days: the last `days` calendar days, today included.
        until_day = window.until.replace(hour=0, minute=0, second=0, microsecond=0)
        window = Window(since=until_day - timedelta(days=days - 1), until=window.until)
    return window


def quality_series(*, project, days: int = 7, granularity: str = "day", now: datetime | None = None,
                   feature: str | None = None, model: str | None = None) -> dict:
    """Per bucket: spend, calls, cost per call, errors and refusals with their rates, latency and
    time-to-first-token p50/p95/p99 (from the rollups' fixed-bucket histograms, ±9%). Zero-filled:
    a bucket without calls has zero counts and null rates and percentiles. Answered from the rollups."""
    window = _series_window(days=days, granularity=granularity, now=now)
    found = _quality_rows(project=project, window=window, granularity=granularity, feature=feature, model=model,
                          daily=granularity == "day")
    points = []
    for moment in _buckets(window, granularity):
        calls, cost, errors, refusals, cached, lat_n, lat_sum, lat_hist, ttft_n, ttft_hist = found.get(
            moment, (0, 0, 0, 0, 0, 0, 0, None, 0, None))
        calls = int(calls)
        spend = Decimal(cost or 0)
        points.append({
            "time": moment, "spend": spend, "calls": calls,
            "cost_per_call": (spend / calls) if calls else None,
            "errors": int(errors), "refusals": int(refusals), "cached_input_tokens": int(cached),
            "error_rate": _rate(int(errors), calls), "refusal_rate": _rate(int(refusals), calls),
            "latency_ms": {"avg": round(lat_sum / lat_n / 1000, 3) if lat_n else None, **_quantiles(lat_hist)},
            "ttft_ms": _quantiles(ttft_hist),
        })
    return {"granularity": granularity, "from": window.since, "to": window.until, "points": points}


def _quality_rows(*, project, window: Window, granularity: str, feature: str | None, model: str | None,
                  daily: bool) -> dict:
    """{bucket: sums} for `quality_series`. By day from the daily rollup (a day's dimension
    combinations once, not 24 times: a month is ~1,400 rows to add up instead of ~32,000, each with
    two 80-bucket histograms), the current day whole; by hour from the hourly one."""
    if daily:
        table, time_sql = DailyRollup._meta.db_table, "(day::timestamp AT TIME ZONE 'UTC')"
        where = "project_id = %s::uuid AND day >= %s AND day <= %s"
        params = [str(project.id), window.since.astimezone(UTC).date(), window.until.astimezone(UTC).date()]
    else:
        table, time_sql = HourlyRollup._meta.db_table, "date_trunc(%s, hour, 'UTC')"
        where = "project_id = %s::uuid AND hour >= %s AND hour < %s"
        params = [granularity, str(project.id), window.since, window.until]
    if feature is not None:
        where += " AND feature = %s"
        params.append(feature)
    if model is not None:
        where += " AND model = %s"
        params.append(model)
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f"SELECT {time_sql} AS b, sum(calls), sum(cost), sum(errors), sum(refusals), "
            f"sum(cached_input_tokens), sum(latency_count), sum(latency_us_sum), {hist_sum_sql('latency_hist')}, "
            f"sum(ttft_count), {hist_sum_sql('ttft_hist')} FROM {table} WHERE {where} GROUP BY b",
            params,
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def spend_series_by(*, project, by: str = "feature", days: int = 7, granularity: str = "day",
                    now: datetime | None = None, top: int = 5) -> dict:
    """Spend per bucket for the `top` groups of `by` by spend over the window (the rest summed as
    "(other)"), zero-filled — the stacked chart beside `cost_breakdown`. Answered from the rollups."""
    if by not in BREAKDOWNS or by == "user":
        raise ValueError("by must be one of " + ", ".join(b for b in BREAKDOWNS if b != "user"))
    window = _series_window(days=days, granularity=granularity, now=now)
    columns = BREAKDOWNS[by]
    group = " || ' v' || ".join(f'"{c}"::text' for c in columns)
    source, params = _rollup_source(pid=str(project.id), window=window, granularity=granularity,
                                    columns=", ".join(f'"{c}"' for c in columns) + ", cost, calls")
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f"SELECT b, {group} AS g, sum(cost) FROM ({source}) AS r GROUP BY b, g HAVING sum(calls) <> 0",
            params,
        )
        records = cursor.fetchall()
    totals: dict[str, Decimal] = {}
    for _, name, cost in records:
        totals[name] = totals.get(name, Decimal(0)) + Decimal(cost or 0)
    leaders = [name for name, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    others = "(other)" if len(totals) > len(leaders) else None
    series = {name: {} for name in leaders + ([others] if others else [])}
    for moment, name, cost in records:
        target = name if name in leaders else others
        series[target][moment] = series[target].get(moment, Decimal(0)) + Decimal(cost or 0)
    buckets = _buckets(window, granularity)
    return {
        "by": by, "granularity": granularity, "from": window.since, "to": window.until,
        "times": buckets,
        "series": [{"name": name, "spend": [series[name].get(m, Decimal(0)) for m in buckets]} for name in series],
    }


def cache_savings(*, project, days: int = 7, granularity: str = "day", now: datetime | None = None) -> dict:
    """What cached input saved: per bucket and model, cached input tokens × (the fresh input price −
    the cache-read price) at the price in force on that bucket (the project's override, else the
    catalog). `fresh_cost` is what those tokens would have cost uncached, `paid` what they cost.
    Models without a known price are counted in `unpriced_cached_tokens`."""
    from pricing.pricing import price_for  # the catalog's in-memory snapshot (no query per model)

    window = _series_window(days=days, granularity=granularity, now=now)
    with data_connection(project).cursor() as cursor:
        source, params = _rollup_source(pid=str(project.id), window=window, granularity=granularity,
                                        columns="model, cached_input_tokens")
        cursor.execute(
            f"SELECT b, model, sum(cached_input_tokens) FROM ({source}) AS r "
            f"GROUP BY b, model HAVING sum(cached_input_tokens) <> 0",
            params,
        )
        records = cursor.fetchall()
    million = Decimal(1_000_000)
    by_time: dict = {}
    by_model: dict = {}
    unpriced = 0
    for moment, model, tokens in records:
        tokens = int(tokens)
        price = price_for(project_id=project.id, model=model, at=moment)
        if price is None:
            unpriced += tokens
            continue
        fresh = Decimal(tokens) * price.rate("input") / million
        paid = Decimal(tokens) * price.rate("cached_input") / million
        for bucket in (by_time.setdefault(moment, [0, Decimal(0), Decimal(0)]),
                       by_model.setdefault(model, [0, Decimal(0), Decimal(0)])):
            bucket[0] += tokens
            bucket[1] += fresh
            bucket[2] += paid
    points = []
    for moment in _buckets(window, granularity):
        tokens, fresh, paid = by_time.get(moment, (0, Decimal(0), Decimal(0)))
        points.append({"time": moment, "cached_tokens": tokens, "fresh_cost": fresh, "paid": paid,
                       "savings": fresh - paid})
    models = [{"model": model, "cached_tokens": t, "fresh_cost": f, "paid": p, "savings": f - p}
              for model, (t, f, p) in sorted(by_model.items(), key=lambda kv: -(kv[1][1] - kv[1][2]))]
    total_fresh = sum((p["fresh_cost"] for p in points), Decimal(0))
    total_paid = sum((p["paid"] for p in points), Decimal(0))
    return {
        "granularity": granularity, "from": window.since, "to": window.until,
        "total": {"cached_tokens": sum(p["cached_tokens"] for p in points), "fresh_cost": total_fresh,
                  "paid": total_paid, "savings": total_fresh - total_paid, "unpriced_cached_tokens": unpriced},
        "models": models, "points": points,
    }


def thumbs_series(*, project, days: int = 7, granularity: str = "day", now: datetime | None = None) -> dict:
    """End users' thumbs per bucket (scores of source USER and type BOOLEAN: 1 up, 0 down, as the
    feedback reports count them) with the thumbs-down rate (down / thumbs; null without thumbs).
    Answered from the score rollups (by the hour of each thumb's timestamp; the current hour whole)."""
    window = _series_window(days=days, granularity=granularity, now=now)
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc(%s, hour, 'UTC') AS b, sum(scores), sum(thumbs_down) "
            f"FROM {HourlyScoreRollup._meta.db_table} WHERE project_id = %s::uuid AND source = 'USER' "
            f"AND data_type = 'BOOLEAN' AND hour >= %s AND hour < %s GROUP BY b",
            [granularity, str(project.id), window.since, window.until],
        )
        found = {row[0]: (int(row[1]), int(row[2])) for row in cursor.fetchall()}
    points = []
    for moment in _buckets(window, granularity):
        total, down = found.get(moment, (0, 0))
        points.append({"time": moment, "thumbs": total, "up": total - down, "down": down,
                       "thumbs_down_rate": _rate(down, total)})
    total = sum(p["thumbs"] for p in points)
    down = sum(p["down"] for p in points)
    return {"granularity": granularity, "from": window.since, "to": window.until,
            "total": {"thumbs": total, "down": down, "up": total - down, "thumbs_down_rate": _rate(down, total)},
            "points": points}


def dashboard(*, project, days: int = 7, granularity: str = "day", now: datetime | None = None) -> dict:
    """Everything the cost and quality dashboard shows, for one project and window."""
    now = now or timezone.now()
    return {
        "days": days,
        "granularity": granularity,
        "by_feature": cost_breakdown(project=project, by="feature", days=days, now=now),
        "by_model": cost_breakdown(project=project, by="model", days=days, now=now),
        "by_user": cost_breakdown(project=project, by="user", days=days, now=now, limit=DASHBOARD_USERS),
        "by_prompt_version": cost_breakdown(project=project, by="prompt_version", days=days, now=now),
        "quality": quality_series(project=project, days=days, granularity=granularity, now=now),
        "spend_by_feature": spend_series_by(project=project, by="feature", days=days, granularity=granularity, now=now),
        "cache": cache_savings(project=project, days=days, granularity=granularity, now=now),
        "thumbs": thumbs_series(project=project, days=days, granularity=granularity, now=now),
    }
