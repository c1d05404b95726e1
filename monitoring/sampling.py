"""Server-side tail sampling: the keep/drop decision for settled traces (`SamplingPolicy`).

Run every minute per region (`monitoring.tasks.decide_sampling`). For each project with sampling on,
it takes the traces first written after sampling was switched on that nothing was written to for
`settle_minutes` (neither the trace nor any observation) and that have no decision yet, in batches,
and decides each one as a whole:

1. kept, reason `error`: an observation with status error or level ERROR;
2. kept, `refusal`: an observation with status refused;
3. kept, `cost_outlier`: the trace's total cost at or above `cost_threshold`;
4. kept, `latency_outlier`: an observation slower than `latency_threshold_ms`;
5. kept, `latency_pnn`: an LLM call slower than the recent (7 days) pNN latency of the same feature
   and model, read from the rollup histograms (when they hold `percentile_min_calls` calls);
6. kept, `share`: the trace id's hash is in the kept share (`sampling_rules.kept_by_share`);
7. otherwise `dropped`: its payloads are emptied through the writer (`ingest.writer.empty_payloads`).

The decision row and the emptying commit together. The rollups are not touched: they counted every
call at ingest and no number of a call changes. Spans of a dropped trace that arrive after the
decision are emptied by the next run (the sweep below), except error and refusal spans.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import orjson
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from ingest.pipeline import empty_payloads
from monitoring.models import DIMENSION_CHARS, HourlyRollup, RollupRule
from monitoring.rules import FeatureRule, bucket_bounds, feature_of
from monitoring.sampling_models import SamplingDecision, SamplingPolicy, SamplingReason
from monitoring.sampling_rules import kept_by_share, rate_from_tracestate, valid_rate
from tenancy.dataplane import data_connection
from tenancy.regions import region_database
from traces.models import Observation, Trace

logger = logging.getLogger(__name__)

BATCH = 2000
PERCENTILE_DAYS = 7
RUN_BUDGET_SECONDS = 40
# Late spans of dropped traces are looked for among the drops of the last hours (a span arriving
# later than that keeps its payload; it is counted in the rollups either way).
SWEEP_HOURS = timedelta(hours=2)  # a run leaves the rest for the next minute
LLM_TYPES = ("GENERATION", "EMBEDDING")
TRACES = Trace._meta.db_table
OBSERVATIONS = Observation._meta.db_table
DECISIONS = SamplingDecision._meta.db_table


@dataclass
class _TraceFacts:
    feature: str
    client_rate: float | None
    error: bool = False
    refusal: bool = False
    cost: Decimal = Decimal(0)
    max_latency_ms: float = 0.0
    calls: list = field(default_factory=list)  # (model, latency ms) of LLM calls with an end time


def _json(value):
    # jsonb arrives as JSON text through Django's psycopg adapter (see `ingest.rollups`).
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _metadata_text(value) -> str | None:
    """A metadata value as feature text, exactly as the rollups read it (`ingest.rollups`)."""
    value = _json(value)
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _rule(project) -> FeatureRule:
    row = RollupRule.objects.for_project(project).values_list("feature_source", "feature_key").first()
    return FeatureRule(*row) if row else FeatureRule()


def latency_percentiles(project, *, q: float, min_calls: int, now: datetime) -> dict[tuple[str, str], float]:
    """{(feature, model): the q-quantile latency in ms} over the last days, from the rollups."""
    since = now - timedelta(days=PERCENTILE_DAYS)
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f'SELECT feature, model, sum(latency_count), lookglass_int8_array_sum(latency_hist) '
            f'FROM "{HourlyRollup._meta.db_table}" WHERE project_id = %s::uuid AND hour >= %s '
            f"GROUP BY feature, model",
            [str(project.id), since],
        )
        rows = cursor.fetchall()
    out = {}
    for feature, model, count, hist in rows:
        if int(count or 0) >= min_calls:
            value = _bucket_ceiling(list(hist or ()), q)
            if value is not None:
                out[(feature, model)] = value
    return out


def _bucket_ceiling(hist: list[int], q: float) -> float | None:
    """The upper bound of the histogram bucket holding the q-quantile: a call is "above the pNN" only
    when it is slower than every value that bucket can hold (the bucket's middle, as the dashboards
    show it, would call half of a steady feature's own calls outliers)."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            upper = bucket_bounds(index)[1]
            return float("inf") if upper is None else upper
    return None


def _candidates(project, policy: SamplingPolicy, *, now: datetime, rule: FeatureRule) -> dict[str, _TraceFacts]:
    cutoff = now - timedelta(minutes=policy.settle_minutes)
    since = policy.enabled_at
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f'SELECT t."id", t."name", t."metadata" -> %s, t."tags", t."metadata" -> \'sample_rate\' '
            f'FROM "{TRACES}" AS t WHERE t."project_id" = %s::uuid AND t."timestamp" >= %s AND t."created_at" >= %s '
            f'AND t."updated_at" < %s '
            f'AND NOT EXISTS (SELECT 1 FROM "{DECISIONS}" AS d WHERE d."project_id" = t."project_id" '
            f'AND d."trace_id" = t."id") '
            f'AND NOT EXISTS (SELECT 1 FROM "{OBSERVATIONS}" AS o WHERE o."project_id" = t."project_id" '
            f'AND o."trace_id" = t."id" AND o."updated_at" >= %s) '
            f'ORDER BY t."id" LIMIT %s',
            [rule.metadata_key, str(project.id), since - timedelta(days=1), since, cutoff, cutoff, BATCH],
        )
        facts = {}
        for trace_id, name, meta_value, tags, rate in cursor.fetchall():
            facts[trace_id] = _TraceFacts(
                feature=feature_of(rule, name=name, metadata_value=_metadata_text(meta_value), tags=tags)[
                    :DIMENSION_CHARS],
                client_rate=valid_rate(_json(rate)),
            )
        if not facts:
            return facts
        cursor.execute(
            f'SELECT o."trace_id", o."type", o."status", o."level", o."total_cost", '
            f'EXTRACT(EPOCH FROM (o."end_time" - o."start_time")) * 1000, '
            f'COALESCE(NULLIF(o."response_model", \'\'), o."model"), o."metadata" -> \'otel\' ->> \'trace_state\' '
            f'FROM "{OBSERVATIONS}" AS o WHERE o."project_id" = %s::uuid AND o."trace_id" = ANY(%s)',
            [str(project.id), sorted(facts)],
        )
        for trace_id, kind, status, level, cost, latency_ms, model, trace_state in cursor.fetchall():
            f = facts[trace_id]
            f.error |= status == "error" or level == "ERROR"
            f.refusal |= status == "refused"
            f.cost += cost or 0
            if latency_ms is not None:
                f.max_latency_ms = max(f.max_latency_ms, float(latency_ms))
                if kind in LLM_TYPES:
                    f.calls.append(((model or "")[:DIMENSION_CHARS], float(latency_ms)))
            if f.client_rate is None and trace_state:
                f.client_rate = rate_from_tracestate(trace_state)
    return facts


def decide(trace_id: str, f: _TraceFacts, policy: SamplingPolicy, pnn: dict) -> str:
    if f.error:
        return SamplingReason.ERROR
    if f.refusal:
        return SamplingReason.REFUSAL
    if policy.cost_threshold is not None and f.cost >= policy.cost_threshold:
        return SamplingReason.COST
    if policy.latency_threshold_ms is not None and f.max_latency_ms > policy.latency_threshold_ms:
        return SamplingReason.LATENCY
    if pnn and any(latency > pnn.get((f.feature, model), float("inf")) for model, latency in f.calls):
        return SamplingReason.LATENCY_PNN
    if kept_by_share(trace_id, policy.keep_share):
        return SamplingReason.SHARE
    return SamplingReason.DROPPED


def _sweep_late_spans(project, *, now: datetime) -> int:
    """Spans written to a dropped trace after its decision lose their payloads too."""
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f'SELECT DISTINCT d."trace_id" FROM "{DECISIONS}" AS d JOIN "{OBSERVATIONS}" AS o '
            f'ON o."project_id" = d."project_id" AND o."trace_id" = d."trace_id" '
            f'WHERE d."project_id" = %s::uuid AND NOT d."kept" AND d."decided_at" >= %s '
            f'AND o."updated_at" >= d."decided_at" AND NOT o."metadata" @> \'{{"sampled_out": true}}\'::jsonb '
            f"AND o.\"status\" NOT IN ('error', 'refused') LIMIT %s",
            [str(project.id), now - SWEEP_HOURS, BATCH],
        )
        late = [row[0] for row in cursor.fetchall()]
    return empty_payloads(project=project, trace_ids=late, keep_metadata_keys=("sample_rate",)) if late else 0


def decide_project(project, policy: SamplingPolicy, *, now: datetime | None = None) -> dict[str, int]:
    """Decide every settled trace of the project (in batches, within the run's budget)."""
    now = now or timezone.now()
    started = time.monotonic()
    counts: dict[str, int] = {}
    if not policy.enabled or policy.enabled_at is None:
        return counts
    rule = _rule(project)
    pnn = {}
    if policy.latency_percentile:
        pnn = latency_percentiles(project, q=policy.latency_percentile / 100, min_calls=policy.percentile_min_calls,
                                  now=now)
    counts["late_spans_emptied"] = _sweep_late_spans(project, now=now)
    while time.monotonic() - started < RUN_BUDGET_SECONDS:
        facts = _candidates(project, policy, now=now, rule=rule)
        if not facts:
            break
        decisions = []
        dropped = []
        for trace_id, f in facts.items():
            reason = decide(trace_id, f, policy, pnn)
            kept = reason != SamplingReason.DROPPED
            # decided_at is when the decision is recorded (the sweep compares write times with it).
            decisions.append(SamplingDecision(project_id=project.id, trace_id=trace_id, kept=kept, reason=reason,
                                              client_sample_rate=f.client_rate, decided_at=timezone.now()))
            counts[reason] = counts.get(reason, 0) + 1
            if not kept:
                dropped.append(trace_id)
        with transaction.atomic(using=region_database(project.region)):
            SamplingDecision.objects.for_project(project).bulk_create(decisions, ignore_conflicts=True)
            empty_payloads(project=project, trace_ids=dropped, keep_metadata_keys=("sample_rate",))
        if len(facts) < BATCH:
            break
    return counts


def decide_region(region: str, *, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    out = {}
    policies = SamplingPolicy.objects.filter(enabled=True, project__region=region).select_related("project")
    for policy in policies:
        try:
            out[str(policy.project_id)] = decide_project(policy.project, policy, now=now)
        except (OperationalError, InterfaceError):
            logger.warning("could not decide the sampling of project %s now", policy.project_id, exc_info=True)
    return out


def counts(*, project, since: datetime) -> dict:
    """Kept and dropped traces by reason since `since`, and the traffic they stand for when client
    SDKs sampled first (each trace weighs 1 / its client sample rate)."""
    with data_connection(project).cursor() as cursor:
        cursor.execute(
            f'SELECT "kept", "reason", count(*), count("client_sample_rate"), sum(1 / COALESCE("client_sample_rate", 1)) '
            f'FROM "{DECISIONS}" WHERE "project_id" = %s::uuid AND "decided_at" >= %s GROUP BY "kept", "reason"',
            [str(project.id), since],
        )
        rows = cursor.fetchall()
    by_reason = {reason.value: 0 for reason in SamplingReason}
    kept = dropped = client_sampled = 0
    estimated = 0.0
    for is_kept, reason, count, with_rate, weight in rows:
        by_reason[reason] = int(count)
        kept += int(count) if is_kept else 0
        dropped += 0 if is_kept else int(count)
        client_sampled += int(with_rate)
        estimated += float(weight or 0)
    return {
        "since": since, "decided": kept + dropped, "kept": kept, "dropped": dropped, "by_reason": by_reason,
        "client_sampled_traces": client_sampled, "estimated_client_traces": round(estimated, 3),
    }


def policy_update(*, project, actor, **fields) -> SamplingPolicy:
    """Create or change the project's policy (validated, audited). Switching it on starts deciding
    the traces first written from now on."""
    from django.core.exceptions import ValidationError

    from tenancy.services import audit_record

    allowed = {"enabled", "keep_share", "settle_minutes", "cost_threshold", "latency_threshold_ms",
               "latency_percentile", "percentile_min_calls"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in unknown})
    with transaction.atomic():
        policy = SamplingPolicy.objects.select_for_update().filter(project=project).first() or SamplingPolicy(
            project=project
        )
        was_enabled = policy.enabled
        before = {name: getattr(policy, name) for name in fields}
        for name, value in fields.items():
            setattr(policy, name, value)
        errors = {}
        if not 0 <= policy.keep_share <= 1:
            errors["keep_share"] = ["a share between 0 and 1"]
        if policy.latency_percentile is not None and not 50 <= policy.latency_percentile <= 99:
            errors["latency_percentile"] = ["50 … 99 (or null: off)"]
        if not 1 <= policy.settle_minutes <= 24 * 60:
            errors["settle_minutes"] = ["1 … 1440 minutes"]
        if errors:
            raise ValidationError(errors)
        policy.full_clean(exclude=["project"])
        if policy.enabled and not was_enabled:
            policy.enabled_at = timezone.now()
        policy.updated_at = timezone.now()
        policy.save()
        audit_record(organization=project.organization, actor=actor, action="sampling_policy.updated",
                     target_type="project", target_id=project.id,
                     data={"changes": {k: [str(v), str(getattr(policy, k))] for k, v in before.items()
                                       if v != getattr(policy, k)}})
    return policy
