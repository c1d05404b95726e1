"""The evaluation API's logic, once, for both doors: the Langfuse-compatible public routes (key auth,
`/api/public/v2/evaluators…`, `/api/public/v2/evaluation-rules…`, their `unstable` aliases,
`/api/public/llm-connections`, the judge endpoint) and the management API under /api/v1.
Each handler takes the project, the actor and the parsed body/params and returns (status, payload),
or raises `judging.DefinitionError` (400, or its `status`) / `NotFoundHere` (404)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from evals import eval_selectors as sel
from evals import eval_services as svc
from evals import judging, library, runner, tasks
from evals.evaluation_models import EvaluationRule, Evaluator, EvaluatorVersion, LlmConnection
from evals.models import MAX_RUN_ID_LENGTH, DatasetRun
from tenancy.regions import region_queue
from tenancy.tasks import publish

MAX_LIMIT = 100
MAX_BACKFILL = timedelta(days=31)


class NotFoundHere(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _limit(params) -> int:
    raw = params.get("limit")
    if raw in (None, ""):
        return 50
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise judging.DefinitionError(f"`limit` must be an integer between 1 and {MAX_LIMIT}.") from None
    if not 1 <= value <= MAX_LIMIT:
        raise judging.DefinitionError(f"`limit` must be an integer between 1 and {MAX_LIMIT}.")
    return value


def _page(queryset, params):
    try:
        return sel.cursor_page(queryset, cursor=params.get("cursor"), limit=_limit(params))
    except sel.BadCursor as exc:
        raise judging.DefinitionError(str(exc)) from None


def _has_nul(value, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 100:
        return False
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    return False


def check_params(params) -> None:
    """Query parameters (and path parts) must not hold NUL: PostgreSQL text cannot, so such a value
    would turn into a 500 instead of a clear 400."""
    if any("\x00" in key or any("\x00" in v for v in params.getlist(key)) for key in params):
        raise judging.DefinitionError("query parameters must not contain NUL characters.")


def _body(body) -> dict:
    if not isinstance(body, dict):
        raise judging.DefinitionError("the request body must be a JSON object.")
    if _has_nul(body):
        raise judging.DefinitionError("the request body must not contain NUL characters (\\u0000).")
    return body


# --- connections ---------------------------------------------------------------------------------------


def connections_list(project, params):
    rows, meta = _page(LlmConnection.objects.filter(project=project).order_by("provider", "id"), params)
    return 200, {"data": [sel.connection_payload(c) for c in rows], "meta": meta}


def connection_upsert(project, body):
    body = _body(body)
    for key in ("secretKey", "baseURL", "defaultModel"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise judging.DefinitionError(f"`{key}` must be a string.")
    connection, created = svc.connection_upsert(
        project=project, provider=body.get("provider"), adapter=body.get("adapter") or "openai",
        secret_key=body.get("secretKey"), base_url=body.get("baseURL") or "", default_model=body.get("defaultModel") or "",
        custom_models=body.get("customModels"), timeout_seconds=body.get("timeoutSeconds"), max_retries=body.get("maxRetries"),
    )
    return (201 if created else 200), sel.connection_payload(connection)


def connection_delete(project, connection_id):
    from tenancy.api.base import is_uuid

    if not is_uuid(connection_id) or not svc.connection_delete(project=project, connection_id=connection_id):
        raise NotFoundHere("LLM connection not found")
    return 200, {"message": "LLM connection deleted"}


# --- evaluators ------------------------------------------------------------------------------------------


def evaluators_list(project, params):
    rows, meta = _page(Evaluator.objects.filter(project=project).select_related("created_by").order_by("-created_at", "id"), params)
    return 200, {"data": sel.evaluators_payload(project, rows), "meta": meta}


def _evaluator(project, evaluator_id) -> Evaluator:
    evaluator = sel.evaluator_get(project=project, evaluator_id=evaluator_id)
    if evaluator is None:
        raise NotFoundHere("Evaluator not found")
    return evaluator


def evaluator_create(project, body, actor):
    evaluator = svc.evaluator_create(project=project, data=_body(body), actor=actor)
    return 200, sel.evaluators_payload(project, [evaluator])[0]


def evaluator_get(project, evaluator_id):
    return 200, sel.evaluators_payload(project, [_evaluator(project, evaluator_id)])[0]


def evaluator_update(project, evaluator_id, body, actor):
    evaluator = svc.evaluator_update(evaluator=_evaluator(project, evaluator_id), data=_body(body), actor=actor)
    return 200, sel.evaluators_payload(project, [evaluator])[0]


def evaluator_delete(project, evaluator_id):
    evaluator = _evaluator(project, evaluator_id)
    svc.evaluator_delete(project=project, evaluator_id=evaluator.pk)
    return 200, {"id": str(evaluator.pk)}


def evaluator_versions(project, evaluator_id, params):
    evaluator = _evaluator(project, evaluator_id)
    rows, meta = _page(EvaluatorVersion.objects.filter(evaluator=evaluator).select_related("created_by").order_by("-version"), params)
    return 200, {"data": [sel.evaluator_version_payload(evaluator, v) for v in rows], "meta": meta}


def evaluator_resume(project, evaluator_id):
    evaluator = _evaluator(project, evaluator_id)
    svc.resume_evaluator(evaluator=evaluator)
    return evaluator_get(project, evaluator_id)


def templates_list():
    return 200, {"data": library.catalog()}


# --- rules ---------------------------------------------------------------------------------------------------


def rules_list(project, params):
    rows, meta = _page(EvaluationRule.objects.filter(project=project).select_related("created_by").order_by("-created_at", "id"), params)
    return 200, {"data": [sel.rule_payload(r) for r in rows], "meta": meta}


def _rule(project, rule_id) -> EvaluationRule:
    rule = sel.rule_get(project=project, rule_id=rule_id)
    if rule is None:
        raise NotFoundHere("Evaluation rule not found")
    return rule


def rule_create(project, body, actor):
    return 200, sel.rule_payload(svc.rule_save(project=project, data=_body(body), actor=actor))


def rule_get(project, rule_id):
    return 200, sel.rule_payload(_rule(project, rule_id))


def rule_update(project, rule_id, body):
    return 200, sel.rule_payload(svc.rule_save(project=project, data=_body(body), rule=_rule(project, rule_id)))


def rule_delete(project, rule_id):
    rule = _rule(project, rule_id)
    svc.rule_delete(project=project, rule_id=rule.pk)
    return 200, {"id": str(rule.pk), "message": "Evaluation rule deleted"}


def rule_backfill(project, rule_id, body):
    """Evaluate the rule's targets that started in [from, to) (at most 31 days), in the background."""
    rule = _rule(project, rule_id)
    body = _body(body)
    try:
        since, until = parse_datetime(str(body.get("from") or "")), parse_datetime(str(body.get("to") or ""))
    except ValueError:  # well formed but impossible (month 13)
        since = until = None
    if since is None or until is None or since.tzinfo is None or until.tzinfo is None:
        raise judging.DefinitionError("`from` and `to` are required ISO 8601 datetimes with a time zone.")
    if not since < until or until - since > MAX_BACKFILL:
        raise judging.DefinitionError("`from` must be before `to`, at most 31 days apart.")
    sent = publish(tasks.scan, kwargs={"project_id": str(project.pk), "mode": "backfill", "rule_id": str(rule.pk),
                                       "since": since.isoformat(), "until": until.isoformat()},
                   queue=region_queue(project.region))
    if not sent:
        return 503, {"message": "the job queue is unavailable; retry the backfill"}
    return 202, {"ruleId": str(rule.pk), "from": sel.iso(since), "to": sel.iso(until), "status": "queued"}


# --- jobs and results ---------------------------------------------------------------------------------------------


def jobs_list(project, params):
    status = params.get("status")
    if status and status not in ("pending", "delayed", "completed", "error"):
        raise judging.DefinitionError("`status` must be pending, delayed, completed or error.")
    rule_id = params.get("ruleId")
    if rule_id:
        _rule(project, rule_id)
    rows, meta = _page(sel.jobs_query(project=project, rule_id=rule_id, status=status), params)
    return 200, {"data": [sel.job_payload(j) for j in rows], "meta": meta,
                 "counts": sel.job_counts(project=project, rule_id=rule_id)}


def job_get(project, job_id):
    valid = isinstance(job_id, str) and len(job_id) <= 64 and "\x00" not in job_id
    job = sel.jobs_query(project=project).filter(id=job_id).first() if valid else None
    if job is None:
        raise NotFoundHere("Evaluation job not found")
    return 200, sel.job_payload(job)


def _threshold(params) -> float:
    raw = params.get("threshold")
    if raw in (None, ""):
        return 0.5
    try:
        return float(raw)
    except ValueError:
        raise judging.DefinitionError("`threshold` must be a number.") from None


def _run(project, run_id) -> DatasetRun:
    # Run ids are experiment ids: the SDKs' 16-hex stable hash, or a UUID for older runs.
    valid = isinstance(run_id, str) and 0 < len(run_id) <= MAX_RUN_ID_LENGTH and "\x00" not in run_id
    run = DatasetRun.objects.for_project(project).filter(id=run_id).first() if valid else None
    if run is None:
        raise NotFoundHere("Dataset run not found")
    return run


def run_summary(project, run_id, params):
    return 200, sel.run_summary(project=project, run=_run(project, run_id), threshold=_threshold(params))


def run_compare(project, params):
    if not params.get("baseline") or not params.get("candidate"):
        raise judging.DefinitionError("`baseline` and `candidate` run ids are required.")
    return 200, sel.run_compare(project=project, baseline=_run(project, params["baseline"]),
                                candidate=_run(project, params["candidate"]), threshold=_threshold(params))


def trend(project, params):
    try:
        days = int(params.get("days") or 30)
    except ValueError:
        raise judging.DefinitionError("`days` must be an integer.") from None
    if not 1 <= days <= 366:
        raise judging.DefinitionError("`days` must be between 1 and 366.")
    return 200, {"data": sel.daily_trend(project=project, days=days, name=params.get("name") or None)}


# --- judge one item now -------------------------------------------------------------------------------------------


def _passed(version, value) -> bool | None:
    """Whether a verdict passes: BOOLEAN true (false when lower is better); NUMERIC in the better half
    of its bounds (0..1 when it has none)."""
    if value is None:
        return None
    definition = version.output_definition or {}
    low = definition.get("minValue") if definition.get("minValue") is not None else 0.0
    high = definition.get("maxValue") if definition.get("maxValue") is not None else 1.0
    share = (value - low) / (high - low) if high > low else value
    return share >= 0.5 if version.higher_is_better else share < 0.5


def judge(project, body):
    """`{evaluator: name or id, input?, output, expectedOutput?, metadata?, toolCalls?, traceId?,
    observationId?, recordScore?, preflight?}` → the verdict.

    The score is written (on `traceId`) only with `recordScore: true`: the CLI records its run's scores
    itself, so writing them here too would duplicate them. `preflight: true` only checks that the
    evaluator exists and can run (a connection for a judge), without calling a model."""
    body = _body(body)
    ref = body.get("evaluator")
    if not isinstance(ref, str) or not ref:
        raise judging.DefinitionError("`evaluator` (a name or an id) is required.")
    evaluator = sel.evaluator_by_name_or_id(project=project, ref=ref)
    preflight = body.get("preflight") is True
    if evaluator is None:
        if preflight:  # a 404 would read as "no judge endpoint" to a client probing for one
            raise judging.DefinitionError(f"no evaluator named {ref!r} in this project.", "evaluator_not_found")
        raise NotFoundHere(f"Evaluator {ref!r} not found")
    version = evaluator.versions.order_by("-version").first()
    if preflight:
        if evaluator.status == "paused":
            raise judging.DefinitionError(f"evaluator {evaluator.name!r} is paused ({evaluator.paused_reason}): {evaluator.paused_message}")
        if evaluator.type == "llm_as_judge":
            connection, model = runner.connection_for(project, version)
            if connection is None or not model:
                raise judging.DefinitionError(
                    f"evaluator {evaluator.name!r} has no LLM connection: add one with a default model, or set its modelConfig.",
                    "evaluator_preflight_failed")
        return 200, {"evaluator": evaluator.name, "evaluatorId": str(evaluator.pk), "evaluatorVersion": version.version,
                     "status": "ready", "higherIsBetter": version.higher_is_better}
    trace_id, observation_id = body.get("traceId") or "", body.get("observationId") or ""
    if not isinstance(trace_id, str) or not isinstance(observation_id, str):
        raise judging.DefinitionError("`traceId` and `observationId` must be strings.")
    record = body.get("recordScore") is True
    if record and not trace_id:
        raise judging.DefinitionError("`recordScore` needs a `traceId`.")
    environment = "default"
    if trace_id:
        from traces.models import Trace

        stored = Trace.objects.for_project(project).filter(id=trace_id).values_list("environment", flat=True).first()
        environment = stored or "default"
    data = judging.EvalInput(
        input=body.get("input"), output=body.get("output"), expected_output=body.get("expectedOutput"),
        metadata=body.get("metadata"), tool_calls=body.get("toolCalls"), trace_id=trace_id,
        observation_id=observation_id, environment=environment,
        latency_ms=body.get("latencyMs"), cost=body.get("cost"),
    )
    job, outcome = runner.judge_now(project=project, evaluator=evaluator, data=data, record_score=record)
    verdicts = [{"value": v.value, "stringValue": v.string_value or None, "dataType": v.data_type} for v in outcome.verdicts]
    first = verdicts[0] if verdicts else {}
    payload = {
        "evaluator": evaluator.name, "evaluatorId": str(evaluator.pk), "evaluatorVersion": version.version,
        "status": job.status, "error": job.error or None, "value": first.get("value"),
        "stringValue": first.get("stringValue"), "dataType": first.get("dataType"),
        "passed": _passed(version, first.get("value")) if job.status == "completed" else None, "verdicts": verdicts,
        "reasoning": outcome.reasoning or None, "higherIsBetter": version.higher_is_better,
        "jobId": job.id, "scoreIds": job.score_ids, "executionTraceId": job.execution_trace_id or None,
    }
    status = 200 if job.status == "completed" else (429 if job.status == "delayed" else 422)
    return status, payload


def now():
    return timezone.now()
