"""Reads of evaluation configuration, jobs and results, and their API shapes (Langfuse v2 for
evaluators and rules; the same shapes under /api/v1)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

from django.db.models import Avg, Count, Q
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone

from evals import judging
from evals.evaluation_models import (
    EvalJob,
    EvaluationRule,
    Evaluator,
    EvaluatorVersion,
    LlmConnection,
    RuleStatus,
)
from evals.models import DatasetRun, DatasetRunItem
from scores.models import Score
from tenancy.http.params import decode_token, encode_token


def iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- cursors ----------------------------------------------------------------------------------------


class BadCursor(ValueError):
    pass


def encode_cursor(offset: int) -> str:
    return encode_token({"v": 1, "o": offset})


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        data = decode_token(cursor)
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise BadCursor("`cursor` is not a cursor this API returned") from None
    if offset < 0:
        raise BadCursor("`cursor` is not a cursor this API returned")
    return offset


def cursor_page(queryset, *, cursor: str | None, limit: int):
    offset = decode_cursor(cursor)
    rows = list(queryset[offset:offset + limit + 1])
    more = len(rows) > limit
    return rows[:limit], ({"cursor": encode_cursor(offset + limit)} if more else {})


# --- connections --------------------------------------------------------------------------------------


def connection_payload(c: LlmConnection) -> dict:
    return {
        "id": str(c.pk), "provider": c.provider, "adapter": c.adapter, "baseURL": c.base_url or None,
        "displaySecretKey": c.display_secret_key, "defaultModel": c.default_model or None,
        "customModels": c.custom_models, "timeoutSeconds": c.timeout_seconds, "maxRetries": c.max_retries,
        "createdAt": iso(c.created_at), "updatedAt": iso(c.updated_at),
    }


# --- evaluators ---------------------------------------------------------------------------------------


def _creator(user):
    return {"id": str(user.pk), "name": getattr(user, "name", None) or user.email} if user else None


def _version_payload(v: EvaluatorVersion, evaluator_type: str) -> dict:
    if evaluator_type == "rule":
        return {"ruleKind": v.rule_kind, "ruleParams": v.rule_params, "higherIsBetter": v.higher_is_better}
    return {
        "prompt": v.prompt,
        "variables": v.variables,
        "variableMapping": v.variable_mapping,
        "modelConfig": v.model_config,
        "outputDefinition": v.output_definition,
        "higherIsBetter": v.higher_is_better,
    }


def rule_assignments_of(project, evaluator_ids) -> dict[str, list]:
    out = defaultdict(list)
    wanted = {str(e) for e in evaluator_ids}
    for rule in EvaluationRule.objects.filter(project=project).order_by("-created_at"):
        for a in rule.assignments:
            if a.get("evaluatorId") in wanted:
                entry = {"evaluationRuleId": str(rule.pk)}
                if a.get("variableMapping") is not None:
                    entry["variableMappingOverride"] = a["variableMapping"]
                out[a["evaluatorId"]].append(entry)
    return out


def evaluator_payload(e: Evaluator, latest: EvaluatorVersion, assignments: list) -> dict:
    return {
        "id": str(e.pk), "name": e.name, "description": e.description, "type": e.type,
        "createdBy": _creator(e.created_by), "status": e.status, "pausedAt": iso(e.paused_at),
        "pausedReason": e.paused_reason or None, "pausedMessage": e.paused_message or None,
        "evaluationRuleAssignments": assignments, "createdAt": iso(e.created_at), "updatedAt": iso(e.updated_at),
        "versionId": str(latest.pk), "version": latest.version, "versionCreatedAt": iso(latest.created_at),
        "versionCreatedBy": _creator(latest.created_by),
        **_version_payload(latest, e.type),
    }


def evaluator_version_payload(e: Evaluator, v: EvaluatorVersion) -> dict:
    return {"id": str(v.pk), "version": v.version, "type": e.type, "createdAt": iso(v.created_at),
            "createdBy": _creator(v.created_by), **_version_payload(v, e.type)}


def evaluators_payload(project, evaluators: list[Evaluator]) -> list[dict]:
    latest = {}
    for v in EvaluatorVersion.objects.filter(evaluator__in=evaluators).select_related("created_by").order_by("evaluator_id", "-version"):
        latest.setdefault(v.evaluator_id, v)
    assignments = rule_assignments_of(project, [e.pk for e in evaluators])
    return [evaluator_payload(e, latest[e.pk], assignments.get(str(e.pk), [])) for e in evaluators if e.pk in latest]


def evaluator_get(*, project, evaluator_id) -> Evaluator | None:
    from tenancy.api.base import is_uuid

    if not is_uuid(evaluator_id):
        return None
    return Evaluator.objects.filter(project=project, pk=evaluator_id).select_related("created_by").first()


def evaluator_by_name_or_id(*, project, ref: str) -> Evaluator | None:
    return evaluator_get(project=project, evaluator_id=ref) or (
        Evaluator.objects.filter(project=project, name=ref).order_by("-created_at").first()
    )


# --- rules ----------------------------------------------------------------------------------------------


def rule_payload(r: EvaluationRule) -> dict:
    status = r.status if r.status == RuleStatus.PAUSED else (RuleStatus.ACTIVE if r.enabled else RuleStatus.INACTIVE)
    return {
        "id": str(r.pk), "name": r.name, "createdBy": _creator(r.created_by), "enabled": r.enabled,
        "status": status, "pausedReason": r.paused_reason or None, "pausedMessage": r.paused_message or None,
        "sampling": r.sampling, "filter": r.filter, "evaluatorAssignments": r.assignments,
        "target": r.target, "delaySeconds": r.delay_seconds, "runOnNew": r.run_on_new, "nightly": r.nightly,
        "nightlySampling": r.nightly_sampling, "nightlyMaxTargets": r.nightly_max_targets,
        "createdAt": iso(r.created_at), "updatedAt": iso(r.updated_at),
    }


def rule_get(*, project, rule_id) -> EvaluationRule | None:
    from tenancy.api.base import is_uuid

    if not is_uuid(rule_id):
        return None
    return EvaluationRule.objects.filter(project=project, pk=rule_id).select_related("created_by").first()


# --- jobs -------------------------------------------------------------------------------------------------


def job_payload(j: EvalJob) -> dict:
    return {
        "id": j.id, "ruleId": str(j.rule_id) if j.rule_id else None, "evaluatorId": str(j.evaluator_id),
        "evaluatorVersionId": str(j.evaluator_version_id), "target": j.target, "traceId": j.trace_id or None,
        "observationId": j.observation_id or None, "datasetItemId": j.dataset_item_id or None,
        "datasetRunId": j.dataset_run_id or None, "trigger": j.trigger, "status": j.status,
        "error": j.error or None, "attempts": j.attempts, "runAfter": iso(j.run_after), "scoreIds": j.score_ids,
        "executionTraceId": j.execution_trace_id or None, "createdAt": iso(j.created_at), "updatedAt": iso(j.updated_at),
    }


def jobs_query(*, project, rule_id=None, status=None):
    queryset = EvalJob.objects.for_project(project).order_by("-created_at", "id")
    if rule_id:
        queryset = queryset.filter(rule_id=rule_id)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def job_counts(*, project, rule_id=None) -> dict:
    queryset = EvalJob.objects.for_project(project)
    if rule_id:
        queryset = queryset.filter(rule_id=rule_id)
    counts = dict(queryset.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {s: counts.get(s, 0) for s in ("pending", "delayed", "completed", "error")}


# --- results: run summary, two runs side by side, daily trend ----------------------------------------------


def _run_scores(project, run: DatasetRun) -> tuple[dict[str, str], list]:
    """(trace id → dataset item id, the run's scores on those traces)."""
    items = dict(
        DatasetRunItem.objects.for_project(project).filter(run_id=run.id)
        .annotate(item=Coalesce("dataset_item_id", "local_item_id")).values_list("trace_id", "item")
    )
    scores = list(
        Score.objects.for_project(project).filter(trace_id__in=list(items)).values(
            "trace_id", "name", "value", "string_value", "data_type", "source", "metadata"
        )
    ) if items else []
    return items, scores


def _passed(score: dict, threshold: float) -> bool | None:
    if score["value"] is None:
        return None
    higher = (score.get("metadata") or {}).get("higher_is_better", True)
    if score["data_type"] == "BOOLEAN" and higher:
        return score["value"] >= 0.5
    return score["value"] >= threshold if higher is not False else score["value"] <= 1 - threshold


def run_summary(*, project, run: DatasetRun, threshold: float = 0.5) -> dict:
    items, scores = _run_scores(project, run)
    by_name: dict[str, list] = defaultdict(list)
    for s in scores:
        by_name[s["name"]].append(s)
    evaluators = []
    for name, rows in sorted(by_name.items()):
        numeric = [r["value"] for r in rows if r["value"] is not None]
        verdicts = [p for p in (_passed(r, threshold) for r in rows) if p is not None]
        categories = defaultdict(int)
        for r in rows:
            if r["data_type"] == "CATEGORICAL":
                categories[r["string_value"]] += 1
        evaluators.append({
            "name": name, "count": len(rows), "average": sum(numeric) / len(numeric) if numeric else None,
            "min": min(numeric) if numeric else None, "max": max(numeric) if numeric else None,
            "passRate": sum(verdicts) / len(verdicts) if verdicts else None, "categories": dict(categories) or None,
        })
    errors = EvalJob.objects.for_project(project).filter(dataset_run_id=str(run.id), status="error").count()
    # Run-level evaluations (the SDKs' run evaluators) are scores with `datasetRunId` and no trace.
    run_scores = [
        {"name": s.name, "value": s.value, "stringValue": s.string_value, "dataType": s.data_type, "comment": s.comment}
        for s in Score.objects.for_project(project).filter(trace_id="", metadata__datasetRunId=str(run.id))
        .order_by("name", "timestamp", "id")
    ]
    return {"runId": str(run.id), "runName": run.name, "datasetId": str(run.dataset_id) if run.dataset_id else None, "itemCount": len(items),
            "threshold": threshold, "evaluators": evaluators, "evaluationErrors": errors, "runScores": run_scores}


def run_compare(*, project, baseline: DatasetRun, candidate: DatasetRun, threshold: float = 0.5) -> dict:
    """Per-evaluator averages of both runs, per-item values, and regressions: items (by dataset item)
    that passed an evaluator in the baseline and fail it in the candidate."""
    def per_item(run):
        items, scores = _run_scores(project, run)
        out = defaultdict(dict)
        for s in scores:
            out[items[s["trace_id"]]][s["name"]] = s
        return out
    base, cand = per_item(baseline), per_item(candidate)
    names = sorted({n for d in (base, cand) for item in d.values() for n in item})
    evaluators = []
    for name in names:
        b, c = _average(base, name), _average(cand, name)
        evaluators.append({"name": name, "baselineAverage": b, "candidateAverage": c,
                           "delta": (c - b) if b is not None and c is not None else None})
    items, regressions = [], []
    for item_id in sorted(set(base) | set(cand)):
        row = {"datasetItemId": item_id, "scores": {}}
        for name in names:
            bs, cs = base.get(item_id, {}).get(name), cand.get(item_id, {}).get(name)
            bv, cv = (bs or {}).get("value"), (cs or {}).get("value")
            row["scores"][name] = {"baseline": bv, "candidate": cv,
                                   "delta": (cv - bv) if bv is not None and cv is not None else None}
            if bs and cs and _passed(bs, threshold) is True and _passed(cs, threshold) is False:
                regressions.append({"datasetItemId": item_id, "name": name, "baseline": bv, "candidate": cv})
        items.append(row)
    return {"baselineRunId": str(baseline.id), "candidateRunId": str(candidate.id), "threshold": threshold,
            "evaluators": evaluators, "items": items, "regressions": regressions}


def _average(per_item: dict, name: str) -> float | None:
    values = [i[name]["value"] for i in per_item.values() if name in i and i[name]["value"] is not None]
    return sum(values) / len(values) if values else None


def daily_trend(*, project, days: int = 30, name: str | None = None) -> list[dict]:
    """Daily average and count of each EVAL score on production data (judge traces excluded)."""
    since = timezone.now() - timedelta(days=days)
    queryset = Score.objects.for_project(project).filter(source="EVAL", timestamp__gte=since).exclude(
        Q(environment__istartswith="lookglass") | Q(environment__istartswith="sdk-experiment")
    )
    if name:
        queryset = queryset.filter(name=name)
    rows = (
        queryset.annotate(day=TruncDay("timestamp")).values("day", "name")
        .annotate(average=Avg("value"), count=Count("id")).order_by("name", "day")
    )
    return [{"day": r["day"].date().isoformat(), "name": r["name"], "average": r["average"], "count": r["count"]} for r in rows]


def environment_reserved(environment: str) -> bool:
    return not judging.environment_evaluable(environment)


def llm_connections(*, project) -> list[LlmConnection]:
    return list(LlmConnection.objects.filter(project=project).order_by("provider"))


def llm_connection_get(*, project, connection_id) -> LlmConnection | None:
    """The project's connection with this id; None for another project's, or a malformed id."""
    try:
        key = uuid.UUID(str(connection_id))
    except ValueError:
        return None
    return LlmConnection.objects.filter(project=project, pk=key).first()
# --- lists for the console ----------------------------------------------------------------------------------


def evaluator_list(*, project) -> list[Evaluator]:
    return list(Evaluator.objects.filter(project=project).order_by("name", "id"))


def rule_list(*, project) -> list[EvaluationRule]:
    return list(EvaluationRule.objects.filter(project=project).order_by("name", "id"))


def job_counts_by_rule(*, project) -> dict[str, dict]:
    """{rule id: {pending, delayed, completed, error}} for every rule with jobs, in one grouped read."""
    out: dict[str, dict] = defaultdict(lambda: dict.fromkeys(("pending", "delayed", "completed", "error"), 0))
    rows = (EvalJob.objects.for_project(project).exclude(rule_id=None).values_list("rule_id", "status")
            .annotate(n=Count("id")).values_list("rule_id", "status", "n"))
    for rule_id, status, n in rows:
        out[str(rule_id)][status] = n
    return dict(out)
