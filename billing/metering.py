"""The exact meter: billable units and the other meters per project and hour, from each region.

Langfuse bills traces + observations + scores by creation time. A row's `created_at` is set once,
by the writer, when the row is first stored, and never changes on a merge; so counting the rows
created in an hour counts every event that created something exactly once, whatever replays and
updates followed. The job runs in the region (on its queue, reading its database) and writes only
numbers into the control plane, so an EU project's content never leaves the EU.

An hour is metered once it is `METERING_GRACE_MINUTES` old (a write stamped at 10:59:59 may commit
a little later), in one control-plane transaction that also records the `MeteredHour`: a rerun of
that hour finds the mark and changes nothing, and a crash before the commit leaves nothing behind.
Rows erased later stay billed (they were stored).

Judge calls (the generations eval jobs record under the reserved judge environment) are metered as
`judge_calls` / `judge_tokens`, and neither they nor their traces count as billable units: the
customer pays for judging once, by the judge meter.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from billing.models import Meter, MeteredHour, UsageRecord
from tenancy.models import Project
from tenancy.regions import region_database, region_names

logger = logging.getLogger(__name__)

# The environment eval jobs trace their judge calls under (evals; Langfuse reserves `langfuse-*`
# the same way).
JUDGE_ENVIRONMENT = "lookglass-evaluation"
# How far back a region is caught up when it has never been metered (or after a long outage).
BACKFILL_HOURS = 24 * 35


def _table(app_label: str, model: str) -> str:
    # Looked up at run time: billing sits below the telemetry apps (import-linter layers).
    return apps.get_model(app_label, model)._meta.db_table


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _count_sql() -> list[tuple[str, str]]:
    traces, observations, scores = (_table("traces", "Trace"), _table("traces", "Observation"),
                                    _table("scores", "Score"))
    judge = "environment = %(judge)s"
    rows = "pg_column_size(x.*)"
    return [
        ("traces", f"""
            SELECT project_id, count(*) FILTER (WHERE NOT ({judge})), 0, 0, coalesce(sum({rows}), 0)
            FROM "{traces}" AS x
            WHERE project_id = ANY(%(projects)s) AND created_at >= %(start)s AND created_at < %(end)s
            GROUP BY project_id"""),
        ("observations", f"""
            SELECT project_id, count(*) FILTER (WHERE NOT ({judge})),
                   count(*) FILTER (WHERE {judge} AND type = 'GENERATION'),
                   coalesce(sum(coalesce(total_tokens, 0)) FILTER (WHERE {judge}), 0),
                   coalesce(sum({rows}), 0)
            FROM "{observations}" AS x
            WHERE project_id = ANY(%(projects)s) AND created_at >= %(start)s AND created_at < %(end)s
            GROUP BY project_id"""),
        ("scores", f"""
            SELECT project_id, count(*) FILTER (WHERE NOT ({judge})), 0, 0, coalesce(sum({rows}), 0)
            FROM "{scores}" AS x
            WHERE project_id = ANY(%(projects)s) AND created_at >= %(start)s AND created_at < %(end)s
            GROUP BY project_id"""),
    ]


def measure_hour(*, region: str, hour: datetime) -> tuple[dict[tuple, int], dict[str, object]]:
    """({(project_id, meter): quantity}, {project_id: organization_id}) for the rows created in
    [hour, hour + 1h) in `region`."""
    projects = {str(pid): org for pid, org in
                Project.objects.filter(region=region).values_list("id", "organization_id")}
    if not projects:
        return {}, {}
    params = {"projects": list(projects), "start": hour, "end": hour + timedelta(hours=1),
              "judge": JUDGE_ENVIRONMENT}
    totals: dict[tuple, int] = {}
    with connections[region_database(region)].cursor() as cursor:
        for meter, sql in _count_sql():
            cursor.execute(sql, params)
            for project_id, units, judge_calls, judge_tokens, size in cursor.fetchall():
                key = str(project_id)
                for name, value in ((meter, units), (Meter.JUDGE_CALLS, judge_calls),
                                    (Meter.JUDGE_TOKENS, judge_tokens), (Meter.BYTES, size)):
                    if value:
                        totals[(key, str(name))] = totals.get((key, str(name)), 0) + int(value)
    return {(pid, meter): qty for (pid, meter), qty in totals.items() if pid in projects}, projects


def meter_hour(*, region: str, hour: datetime) -> int | None:
    """Meter one closed hour of one region. Returns the records written, or None when the hour was
    already metered (a rerun changes nothing)."""
    hour = _floor_hour(hour)
    if MeteredHour.objects.filter(region=region, hour=hour).exists():
        return None
    quantities, projects = measure_hour(region=region, hour=hour)
    records = [
        UsageRecord(organization_id=projects[pid], project_id=pid, hour=hour, meter=meter, quantity=qty)
        for (pid, meter), qty in sorted(quantities.items())
    ]
    try:
        with transaction.atomic():
            MeteredHour.objects.create(region=region, hour=hour, records=len(records))
            UsageRecord.objects.bulk_create(records)
    except IntegrityError:
        # Another run of the same hour committed first: its numbers stand.
        return None
    return len(records)


def hours_due(*, region: str, now: datetime | None = None) -> list[datetime]:
    """The closed hours of `region` not metered yet, oldest first."""
    now = now or timezone.now()
    last_closed = _floor_hour(now - timedelta(minutes=settings.METERING_GRACE_MINUTES)) - timedelta(hours=1)
    first = last_closed - timedelta(hours=BACKFILL_HOURS - 1)
    done = set(MeteredHour.objects.filter(region=region, hour__gte=first, hour__lte=last_closed)
               .values_list("hour", flat=True))
    hours, hour = [], first
    while hour <= last_closed:
        if hour not in done:
            hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def meter_region(*, region: str, now: datetime | None = None, limit: int | None = None) -> int:
    """Meter every due hour of `region` (at most `limit`); returns how many hours were metered."""
    if region not in region_names():
        raise ValueError(f"unknown region {region!r}")
    count = 0
    for hour in hours_due(region=region, now=now)[:limit]:
        if meter_hour(region=region, hour=hour) is not None:
            count += 1
    return count
