"""Evaluation jobs: create them (idempotently), run them, record what they produced.

A job is one (rule, target, evaluator version); its id is a hash of the three, so creating it again
(an overlapping scan, a redelivered message, a backfill over a range already done) is a no-op, and a
job already `completed` is skipped. Running a batch of jobs:

1. load the jobs due, their evaluator versions, rules and targets (a few queries for the batch);
2. rule evaluators run inline; LLM judges run concurrently in a thread pool (EVAL_JUDGE_CONCURRENCY
   calls in flight: the wait is the provider's, not ours);
3. every score, plus each judge call as a trace in the reserved `lookglass-evaluation` environment
   (with its tokens, priced by the catalog), goes through the ONE ingest pipeline in one batch;
4. the job rows are marked completed / delayed / error.

If the worker dies between 3 and 4, the job is still pending; it runs again and writes the SAME
score ids (`judging.score_id`), so the project holds one result per (rule, target, evaluator
version) whatever happened. Celery delivers the task again (acks late) or the next scan picks it up.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.enforcement import judge_calls_take
from evals import eval_services, judging
from evals.evaluation_models import (
    EvalJob,
    EvalJobStatus,
    EvaluationRule,
    Evaluator,
    EvaluatorStatus,
    EvaluatorType,
    EvaluatorVersion,
    LlmConnection,
    PauseReason,
    RuleStatus,
)
from evals.llm import Judge, LlmError
from evals.models import DatasetItem
from evals.targets import Target
from ingest import pipeline
from ingest.contract import Batch, RecordError, check_record
from tenancy.dataplane import data_connection
from traces.models import Observation, Trace

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_DELAY_SECONDS = 3600


# --- creating jobs --------------------------------------------------------------------------------


def latest_versions(evaluator_ids) -> dict[str, EvaluatorVersion]:
    out = {}
    for version in EvaluatorVersion.objects.filter(evaluator_id__in=list(evaluator_ids)).select_related("evaluator").order_by("evaluator_id", "-version"):
        out.setdefault(str(version.evaluator_id), version)
    return out


def create_jobs(*, project, rule: EvaluationRule, targets: list[Target], trigger: str) -> list[str]:
    """One job per (target, assigned evaluator's latest version); existing ones are left as they are.
    Returns every job id (new or not), for the caller to run."""
    versions = latest_versions(a["evaluatorId"] for a in rule.assignments)
    rows = []
    for target in targets:
        for assignment in rule.assignments:
            version = versions.get(assignment["evaluatorId"])
            if version is None:
                continue
            rows.append(EvalJob(
                id=judging.job_id(rule_id=rule.pk, target=rule.target, target_id=target.target_id, version_id=version.pk),
                rule_id=rule.pk, evaluator_id=version.evaluator_id, evaluator_version_id=version.pk, target=rule.target,
                trace_id=target.trace_id, observation_id=target.observation_id, dataset_item_id=target.dataset_item_id,
                dataset_run_id=target.dataset_run_id, trigger=trigger,
            ))
    if rows:
        EvalJob.objects.for_project(project).bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return [row.id for row in rows]


# --- what an evaluator sees -------------------------------------------------------------------------


def _cost(value) -> float | None:
    return float(value) if value is not None else None


def _probe(project, table: str, columns: tuple[str, ...], ids, *, where: str = "", params=()) -> list[tuple]:
    """`columns` of the rows of `table` (a data-plane table keyed by (project_id, id)) whose id is in
    `ids`, one primary-key probe per id.

    The ids are bound as ONE JSON parameter (a thousand bound values cost more to bind than the query
    to run). The project is an InitPlan parameter and each probe a LATERAL … OFFSET 0 subquery, as in
    `ingest.writer` (see `_ROWS_BY_ID_SQL` there for why): on a table filling faster than its
    statistics — a new project's first backfill — the planner believes the project holds a row or
    two, and `id IN (subquery)` read the whole project into a hash for every batch (20,000 rows per
    batch of 1,000 in a 20,000-job backfill, more the more the project holds), while
    `id = ANY(…)` could even be checked as a filter against every row of it."""
    select = ", ".join(f't."{c}"' for c in columns)
    sql = (
        f"SELECT {select} FROM jsonb_array_elements_text(%s::jsonb) AS k(id) CROSS JOIN LATERAL ("
        f'SELECT * FROM "{table}" AS t WHERE t."project_id" = (SELECT %s::uuid) AND t."id" = k.id{where} OFFSET 0) AS t'
    )
    with data_connection(project).cursor() as cursor:
        cursor.execute(sql, [orjson.dumps(list(dict.fromkeys(ids))).decode(), str(project.id), *params])
        return cursor.fetchall()


# Target columns an evaluator may read; a batch of rule evaluators only leaves out those no rule
# evaluator reads (they see the output, the expected output, latency, cost and status): the input
# and metadata were two thirds of the JSON decoded for a batch's targets.
_TRACE_COLUMNS = ("id", "input", "output", "metadata", "environment")
_OBSERVATION_COLUMNS = (
    "id", "trace_id", "input", "output", "metadata", "tool_calls", "environment", "start_time", "end_time",
    "total_cost", "status",
)
_JSON_COLUMNS = frozenset({"input", "output", "metadata", "tool_calls"})
_NOT_READ_BY_RULES = frozenset({"input", "metadata", "tool_calls"})


def _targets(project, model, columns: tuple[str, ...], ids, *, full: bool) -> dict[str, dict]:
    wanted = columns if full else tuple(c for c in columns if c not in _NOT_READ_BY_RULES)
    decode = [i for i, c in enumerate(wanted) if c in _JSON_COLUMNS]
    out = {}
    for values in _probe(project, model._meta.db_table, wanted, ids):
        row = dict(zip(wanted, values))
        for i in decode:
            # jsonb arrives as text (Django's loader); parsed as the JSONField would (json, not a
            # faster parser that turns big integers into floats).
            if values[i] is not None:
                row[wanted[i]] = json.loads(values[i])
        out[row["id"]] = row
    return out


def _judges_in(versions) -> bool:
    """Whether any of these evaluator versions is an LLM judge (which may read every field)."""
    return any(version.evaluator.type != EvaluatorType.RULE for version in versions)


def load_inputs(project, jobs: list[EvalJob], *, full: bool = True) -> dict[str, judging.EvalInput]:
    """The EvalInput of every job's target, in a few queries. A job whose target is gone is absent.
    `full=False` (a batch of rule evaluators only): without what no rule evaluator reads."""
    obs_ids = {j.observation_id for j in jobs if j.observation_id}
    trace_ids = {j.trace_id for j in jobs if j.trace_id}
    item_ids = {j.dataset_item_id for j in jobs if j.dataset_item_id}
    observations = _targets(project, Observation, _OBSERVATION_COLUMNS, obs_ids, full=full) if obs_ids else {}
    traces = _targets(project, Trace, _TRACE_COLUMNS, trace_ids, full=full) if trace_ids else {}
    items = {
        row[0]: row for row in DatasetItem.objects.for_project(project).filter(id__in=item_ids).values_list(
            "id", "expected_output", "metadata"
        )
    } if item_ids else {}
    out = {}
    for job in jobs:
        item = items.get(job.dataset_item_id)
        expected, item_metadata = (item[1], item[2]) if item else (None, None)
        if job.observation_id:
            o = observations.get(job.observation_id)
            if o is None:
                continue
            start, end, cost = o["start_time"], o["end_time"], o["total_cost"]
            out[job.id] = judging.EvalInput(
                input=o.get("input"), output=o["output"], expected_output=expected, metadata=o.get("metadata"),
                tool_calls=o.get("tool_calls"), experiment_item_metadata=item_metadata,
                latency_ms=(end - start).total_seconds() * 1000 if end and start else None,
                cost=_cost(cost), status=o["status"], environment=o["environment"], trace_id=o["trace_id"],
                observation_id=o["id"],
            )
        else:
            t = traces.get(job.trace_id)
            if t is None:
                continue
            out[job.id] = judging.EvalInput(
                input=t.get("input"), output=t["output"], expected_output=expected, metadata=t.get("metadata"),
                experiment_item_metadata=item_metadata, environment=t["environment"], trace_id=t["id"],
            )
    return out


# --- outcomes ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str
    error: str = ""
    reasoning: str = ""
    verdicts: list = field(default_factory=list)
    scores: list = field(default_factory=list)  # score records
    judge_trace: dict | None = None
    judge_observation: dict | None = None
    retry_after: float | None = None
    pause: str = ""


def _now():
    return timezone.now()


@lru_cache(maxsize=4096)
def _text(value) -> str:
    # Ids of rules, evaluators and versions recur in every record of a batch: made text once.
    return str(value) if value is not None else ""


def _version_metadata(version: EvaluatorVersion) -> dict:
    """The part of a score's metadata every score of this version shares (built once per version
    object, i.e. once per batch)."""
    shared = getattr(version, "_score_metadata", None)
    if shared is None:
        shared = version._score_metadata = {
            "evaluator_id": _text(version.evaluator_id), "evaluator_version_id": _text(version.pk),
            "evaluator_version": version.version, "higher_is_better": version.higher_is_better,
        }
    return shared


def _score_records(job: EvalJob, version: EvaluatorVersion, data: judging.EvalInput, reasoning: str,
                   verdicts: list[judging.Verdict], *, execution_trace_id: str = "", now=None) -> list[dict]:
    name = version.evaluator.name
    timestamp = now or _now()
    shared = _version_metadata(version)
    records = []
    for verdict in verdicts:
        record = {
            "id": judging.score_id(job=job.id, name=name, category=verdict.category),
            "trace_id": data.trace_id,
            "name": name,
            "data_type": verdict.data_type,
            "source": "EVAL",
            "comment": reasoning,
            "environment": data.environment or "default",
            "timestamp": timestamp,
            "metadata": {
                "job_execution_id": job.id, "evaluation_rule_id": _text(job.rule_id), **shared,
                "target_trace_id": data.trace_id, "target_observation_id": data.observation_id,
                "target_dataset_item_id": job.dataset_item_id, "execution_trace_id": execution_trace_id,
            },
        }
        if data.observation_id:
            record["observation_id"] = data.observation_id
        if verdict.value is not None:
            record["value"] = verdict.value
        if verdict.string_value:
            record["string_value"] = verdict.string_value
        records.append(record)
    return records


_compiled: dict = {}


def _rule_evaluator(version):
    """The version's compiled rule evaluator (patterns and schemas compiled once per process)."""
    compiled = _compiled.get(version.pk)
    if compiled is None:
        from lookglass.evaluators import compile_evaluator

        if len(_compiled) > 1000:
            _compiled.clear()
        compiled = _compiled[version.pk] = compile_evaluator(version.rule_kind, version.rule_params)
    return compiled


def _rule_outcome(job, version, data, *, now=None) -> Outcome:
    try:
        evaluator = _rule_evaluator(version)
        result = evaluator(
            output=data.output, expected=data.expected_output, input=data.input,
            latency_ms=data.latency_ms, cost=data.cost, status=data.status,
        )
    except ImportError:
        return Outcome(EvalJobStatus.ERROR, error="rule evaluators (the lookglass client package) are not installed on this worker")
    except Exception as exc:  # noqa: BLE001 - bad params or missing data (MissingData) fail this job only
        return Outcome(EvalJobStatus.ERROR, error=f"rule evaluator {version.rule_kind}: {exc}")
    data_type = str(result.data_type)
    verdict = judging.Verdict(float(result.value), ("True" if result.passed else "False") if data_type == "BOOLEAN" else "", data_type)
    return Outcome(EvalJobStatus.COMPLETED, reasoning=result.reason, verdicts=[verdict],
                   scores=_score_records(job, version, data, result.reason, [verdict], now=now))


def _judge_records(job, version, data, messages, answer, *, error: str = "") -> tuple[dict, dict]:
    trace_id = judging.judge_trace_id(job.id)
    name = f"Execute evaluator: {version.evaluator.name}"
    metadata = {"job_execution_id": job.id, "evaluation_rule_id": str(job.rule_id or ""),
                "evaluator_id": str(version.evaluator_id), "evaluator_version_id": str(version.pk),
                "target_trace_id": data.trace_id, "target_observation_id": data.observation_id}
    trace = {"id": trace_id, "name": name, "timestamp": answer.started, "environment": judging.EVAL_ENVIRONMENT,
             "input": messages, "output": answer.text, "metadata": metadata}
    generation = {
        "id": judging.judge_observation_id(job.id), "trace_id": trace_id, "type": "GENERATION", "name": "judge",
        "start_time": answer.started, "end_time": answer.ended, "environment": judging.EVAL_ENVIRONMENT,
        "model": answer.model, "input": messages, "output": answer.text, "metadata": metadata,
    }
    if answer.input_tokens is not None:
        generation["input_tokens"] = answer.input_tokens
    if answer.output_tokens is not None:
        generation["output_tokens"] = answer.output_tokens
    if error:
        generation["level"] = "ERROR"
        generation["status_message"] = error[:2000]
    return trace, generation


def _judge_outcome(judge: Judge, model: str, job, version, data, mapping) -> Outcome:
    try:
        messages = judging.render(version.prompt, version.variables, mapping, data)
    except judging.MissingVariable as exc:
        return Outcome(EvalJobStatus.ERROR, error=str(exc))
    try:
        answer = judge.call(model=model, messages=messages, schema=judging.answer_schema(version.output_definition))
    except LlmError as exc:
        if exc.kind in ("rate_limited", "transient"):
            return Outcome(EvalJobStatus.DELAYED, error=exc.message, retry_after=exc.retry_after)
        return Outcome(EvalJobStatus.ERROR, error=exc.message, pause=exc.pause)
    except Exception as exc:  # noqa: BLE001 - an SDK or network failure of one call fails that job only
        logger.warning("judge call failed for job %s: %s", job.id, type(exc).__name__)
        return Outcome(EvalJobStatus.DELAYED, error=f"the judge call failed: {type(exc).__name__}: {exc}"[:500])
    try:
        reasoning, verdicts = judging.parse_answer(answer.text, version.output_definition)
    except judging.MalformedAnswer as exc:
        trace, generation = _judge_records(job, version, data, messages, answer, error=str(exc))
        return Outcome(EvalJobStatus.ERROR, error=str(exc), judge_trace=trace, judge_observation=generation)
    trace, generation = _judge_records(job, version, data, messages, answer)
    return Outcome(
        EvalJobStatus.COMPLETED, reasoning=reasoning, verdicts=verdicts, judge_trace=trace, judge_observation=generation,
        scores=_score_records(job, version, data, reasoning, verdicts, execution_trace_id=trace["id"]),
    )


def connection_for(project, version: EvaluatorVersion) -> tuple[LlmConnection | None, str]:
    """(connection, model) the version judges with: its `modelConfig`, else the project's default."""
    config = version.model_config
    if config:
        connection = LlmConnection.objects.filter(project=project, provider=config["provider"]).first()
        return connection, config["model"]
    connection = LlmConnection.objects.filter(project=project).exclude(default_model="").order_by("provider").first()
    return connection, connection.default_model if connection else ""


@dataclass(slots=True)
class JobRow:
    """What running a job needs of its row."""

    id: str
    rule_id: object
    evaluator_id: object
    evaluator_version_id: object
    trace_id: str
    observation_id: str
    dataset_item_id: str
    attempts: int


# --- running a batch ----------------------------------------------------------------------------------


def run_jobs(*, project, job_ids: list[str], now=None) -> dict[str, Outcome]:
    """Run the given jobs that are due (pending, or delayed past their run_after). Returns the outcome
    of each job run. Safe to call twice for the same ids: completed jobs are skipped."""
    now = now or timezone.now()
    # Plain rows, not model instances: a batch of a thousand jobs spent more time building objects and
    # parsing their timestamps than evaluating them.
    jobs = [
        JobRow(*row) for row in _probe(
            project, EvalJob._meta.db_table, JobRow.__slots__, job_ids,
            where=' AND t."status" IN (%s, %s) AND t."run_after" <= %s', params=[EvalJobStatus.PENDING, EvalJobStatus.DELAYED, now],
        )
    ]
    if not jobs:
        return {}
    # Keyed by the ids' own values (UUIDs), as the job rows hold them: no text made per job.
    versions = {v.pk: v for v in EvaluatorVersion.objects.filter(
        pk__in={j.evaluator_version_id for j in jobs}, evaluator__project=project).select_related("evaluator")}
    rules = {r.pk: r for r in EvaluationRule.objects.filter(project=project, pk__in={j.rule_id for j in jobs if j.rule_id})}
    inputs = load_inputs(project, jobs, full=_judges_in(versions.values()))
    stamp = timezone.now()  # the batch's scores' timestamp (`now` may be a caller's clock for run_after)
    outcomes: dict[str, Outcome] = {}
    judged: list[tuple] = []
    judges: dict = {}
    try:
        for job in jobs:
            version = versions.get(job.evaluator_version_id)
            rule = rules.get(job.rule_id) if job.rule_id else None
            data = inputs.get(job.id)
            if version is None or (job.rule_id and rule is None):
                outcomes[job.id] = Outcome(EvalJobStatus.ERROR, error="the evaluator or rule was deleted")
            elif data is None:
                outcomes[job.id] = Outcome(EvalJobStatus.ERROR, error="the target no longer exists")
            elif not judging.environment_evaluable(data.environment):
                outcomes[job.id] = Outcome(EvalJobStatus.ERROR, error=f"not evaluated: environment {data.environment!r} is reserved for evaluation traces (loop guard)")
            elif version.evaluator.status == EvaluatorStatus.PAUSED:
                outcomes[job.id] = Outcome(EvalJobStatus.ERROR, error=f"evaluator paused ({version.evaluator.paused_reason}): {version.evaluator.paused_message}")
            elif rule is not None and rule.status == RuleStatus.PAUSED:
                outcomes[job.id] = Outcome(EvalJobStatus.ERROR, error=f"rule paused ({rule.paused_reason}): {rule.paused_message}")
            elif version.evaluator.type == EvaluatorType.RULE:
                outcomes[job.id] = _rule_outcome(job, version, data, now=stamp)
            else:
                key = str(version.pk)
                if key not in judges:
                    judges[key] = _judge_for(project, version)
                judge = judges[key]
                if isinstance(judge, Outcome):
                    outcomes[job.id] = judge
                    continue
                mapping = _mapping(rule, version)
                judged.append((job, version, data, judge, mapping))
        if judged:
            # The plan's LLM-judge calls (billing): calls past them are not made, and each job says why.
            allowance = judge_calls_take(organization_id=project.organization_id, wanted=len(judged))
            for job, *_ in judged[allowance.granted:]:
                outcomes[job.id] = Outcome(EvalJobStatus.ERROR, error=allowance.message)
            judged = judged[:allowance.granted]
        if judged:
            workers = max(1, min(settings.EVAL_JUDGE_CONCURRENCY, len(judged)))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool:
                results = pool.map(lambda a: _judge_outcome(a[3][0], a[3][1], a[0], a[1], a[2], a[4]), judged)
                for (job, *_), outcome in zip(judged, results):
                    outcomes[job.id] = outcome
    finally:
        for judge in judges.values():
            if isinstance(judge, tuple):
                judge[0].close()
    _write(project, jobs, outcomes)
    _finish(project, jobs, versions, outcomes, now=now)
    return outcomes


def _mapping(rule, version):
    if rule is not None:
        for assignment in rule.assignments:
            if assignment.get("evaluatorId") == str(version.evaluator_id) and assignment.get("variableMapping") is not None:
                return assignment["variableMapping"]
    return version.variable_mapping


def _judge_for(project, version):
    connection, model = connection_for(project, version)
    if connection is None or not model:
        return Outcome(EvalJobStatus.ERROR, pause=PauseReason.CONNECTION_MISSING,
                       error="no LLM connection for this evaluator: add one (with a default model) or set modelConfig")
    try:
        return (Judge(connection), model)
    except LlmError as exc:
        return Outcome(EvalJobStatus.ERROR, error=exc.message, pause=exc.pause)
    except Exception as exc:  # noqa: BLE001 - e.g. a secret no configured key decrypts
        return Outcome(EvalJobStatus.ERROR, error=str(exc)[:500])


def _write(project, jobs, outcomes: dict[str, Outcome]) -> None:
    """Scores and judge traces of the batch through the ingest pipeline, in one write. A record the
    pipeline refuses (e.g. a score config the score breaks) fails its job with the pipeline's reason."""
    batch = Batch(project=project, source="eval")
    for job in jobs:
        outcome = outcomes.get(job.id)
        if outcome is None:
            continue
        for kind, record in (("trace", outcome.judge_trace), ("observation", outcome.judge_observation)):
            if record is not None:
                try:
                    batch.add(kind, check_record(record), ref=job.id)
                except RecordError as exc:
                    logger.warning("judge %s record of job %s not stored: %s", kind, job.id, exc.message)
        if outcome.status == EvalJobStatus.COMPLETED:
            for record in outcome.scores:
                batch.add("score", record, ref=job.id)
    if not batch:
        return
    try:
        pipeline.run(batch)
    except pipeline.QuotaExceeded as exc:
        for outcome in outcomes.values():
            if outcome.status == EvalJobStatus.COMPLETED:
                outcome.status, outcome.error = EvalJobStatus.DELAYED, f"over the organization's quota: {exc}"
                outcome.retry_after = float(getattr(exc, "retry_after", 60) or 60)
        return
    for refusal in batch.refused:
        outcome = outcomes.get(refusal.ref)
        if outcome is not None and refusal.kind == "score":
            outcome.status, outcome.error = EvalJobStatus.ERROR, f"score refused: {refusal.message}"


def _finish(project, jobs, versions, outcomes: dict[str, Outcome], *, now) -> None:
    """Job rows to their outcome; evaluators whose connection cannot work are paused."""
    by_status: dict[str, list] = defaultdict(list)
    for job in jobs:
        outcome = outcomes.get(job.id)
        if outcome is None:
            continue
        if outcome.status == EvalJobStatus.DELAYED and job.attempts + 1 >= MAX_ATTEMPTS:
            outcome.status = EvalJobStatus.ERROR
            outcome.error = f"gave up after {MAX_ATTEMPTS} attempts: {outcome.error}"
        by_status[outcome.status].append((job, outcome))
        if outcome.pause:
            eval_services.pause_evaluator(evaluator_id=job.evaluator_id, reason=outcome.pause, message=outcome.error, rule_id=job.rule_id)
    rows = []
    for status, pairs in by_status.items():
        for job, outcome in pairs:
            delay = min(MAX_DELAY_SECONDS, max(5.0, outcome.retry_after or 30.0) * (2 ** job.attempts))
            rows.append({
                "id": job.id, "status": status, "error": outcome.error[:4000],
                "score_ids": [r["id"] for r in outcome.scores] if status == EvalJobStatus.COMPLETED else [],
                "trace_id": (outcome.judge_trace or {}).get("id", ""),
                "run_after": now + timedelta(seconds=delay) if status == EvalJobStatus.DELAYED else now,
            })
    if not rows:
        return
    # One statement for the batch, its rows as one JSON document: binding thousands of array
    # elements cost more than the update itself.
    # Each row by its primary key, one probe per job, as in `_probe`. An UPDATE … FROM cannot take
    # `_probe`'s LATERAL form, so the join is held to a nested loop for this transaction only
    # (set_config(…, is_local) for this statement, then put back: inside a caller's transaction a
    # local setting would outlive the block), and the project is an InitPlan parameter, which makes
    # the primary key the cheapest inner path. Left to itself, the planner read every job of a
    # project its statistics did not know yet (a hash join over the project, per batch), or the
    # whole table when that looked cheaper (tests/evals/test_runner_batches.py).
    table = EvalJob._meta.db_table
    connection = data_connection(project)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(_PLAN_SETTINGS_SQL, [_PROBES_ONLY] * len(_PLAN_SETTINGS))
        saved = cursor.fetchone()[0::2]  # each setting's value before (the list runs left to right)
        cursor.execute(
            f'UPDATE "{table}" AS j SET status = v.status, error = v.error, score_ids = v.score_ids, '
            "execution_trace_id = v.trace_id, run_after = v.run_after, attempts = j.attempts + 1, updated_at = now() "
            "FROM jsonb_to_recordset(%s::jsonb) AS v(id text, status text, error text, score_ids jsonb, trace_id text, "
            "run_after timestamptz) WHERE j.project_id = (SELECT %s::uuid) AND j.id = v.id",
            [orjson.dumps(rows).decode(), str(project.id)],
        )
        cursor.execute(_PLAN_SETTINGS_SQL, list(saved))


# Planner methods switched off for the job-state UPDATE (see `_finish`); the statement sets each to
# the given value and answers the values they had.
_PLAN_SETTINGS = ("enable_hashjoin", "enable_mergejoin", "enable_seqscan")
_PROBES_ONLY = "off"
_PLAN_SETTINGS_SQL = "SELECT " + ", ".join(
    f"current_setting('{name}') AS was_{name}, set_config('{name}', %s, true)" for name in _PLAN_SETTINGS
)


# --- one item, now (the judge endpoint the CLI calls) ------------------------------------------------


def judge_now(*, project, evaluator: Evaluator, data: judging.EvalInput, record_score: bool) -> tuple[EvalJob, Outcome]:
    """Score one item with `evaluator` synchronously. With a trace (and `record_score`) the score is
    written to it; otherwise the verdict is only returned. The job row makes the call visible and
    idempotent like any other: the same item, trace and evaluator version give the same job."""
    version = evaluator.versions.order_by("-version").first()
    if record_score and data.trace_id:
        target, target_id = ("observation", data.observation_id) if data.observation_id else ("trace", data.trace_id)
    else:
        target = "trace"
        target_id = "adhoc:" + judging._digest(json.dumps([data.input, data.output, data.expected_output], default=str, sort_keys=True))
    job_id = judging.job_id(rule_id=None, target=target, target_id=target_id, version_id=version.pk)
    EvalJob.objects.for_project(project).filter(id=job_id).exclude(status=EvalJobStatus.PENDING).update(
        status=EvalJobStatus.PENDING, run_after=timezone.now(), attempts=0
    )
    EvalJob.objects.for_project(project).bulk_create([EvalJob(
        id=job_id, evaluator_id=evaluator.pk, evaluator_version_id=version.pk, target=target,
        trace_id=data.trace_id if record_score else "", observation_id=data.observation_id if record_score else "",
        trigger="judge",
    )], ignore_conflicts=True)
    job = EvalJob.objects.for_project(project).get(id=job_id)
    outcome = _run_one(project, job, version, data, record_score=record_score)
    job.refresh_from_db()
    return job, outcome


def _run_one(project, job, version, data, *, record_score: bool) -> Outcome:
    if not judging.environment_evaluable(data.environment):
        outcome = Outcome(EvalJobStatus.ERROR, error="not evaluated: the environment is reserved for evaluation traces (loop guard)")
    elif version.evaluator.status == EvaluatorStatus.PAUSED:
        outcome = Outcome(EvalJobStatus.ERROR, error=f"evaluator paused ({version.evaluator.paused_reason}): {version.evaluator.paused_message}")
    elif version.evaluator.type == EvaluatorType.RULE:
        outcome = _rule_outcome(job, version, data)
    else:
        judge = _judge_for(project, version)
        if isinstance(judge, Outcome):
            outcome = judge
        else:
            try:
                outcome = _judge_outcome(judge[0], judge[1], job, version, data, version.variable_mapping)
            finally:
                judge[0].close()
    if not record_score:
        outcome.scores_preview, outcome.scores = outcome.scores, []
    _write(project, [job], {job.id: outcome})
    _finish(project, [job], {str(version.pk): version}, {job.id: outcome}, now=timezone.now())
    if not record_score:
        outcome.scores = outcome.scores_preview
    return outcome
