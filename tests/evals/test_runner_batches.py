"""How a batch of evaluation jobs reaches the database (evals/runner.py): every job, target and job
state by its primary key, even when the planner's statistics do not know the project yet; a batch
of rule evaluators reads only what rule evaluators read. And the worker's start-up heap is frozen
(config/celery.py), which the evaluation throughput depends on (README, Benchmarks)."""

from __future__ import annotations

import gc
import json
from datetime import timedelta
from unittest import mock

from celery.signals import worker_init, worker_process_init
from django.db import transaction
from django.utils import timezone

from evals import eval_services, runner, tasks
from evals.evaluation_models import EvalJob
from scores.models import Score
from tenancy.dataplane import data_connection
from tests.evals.evalkit import generation_event, ingest, trace_event

BATCH = 20
KEYED_TABLES = {"evals_evaljob", "traces_trace", "traces_observation"}


def _rule_jobs(project, *, kind="contains", params=None, target="trace"):
    evaluator = eval_services.evaluator_create(
        project=project, data={"name": f"rule-{kind}", "type": "rule", "ruleKind": kind, "ruleParams": params or {"value": "4"}}
    )
    rule = eval_services.rule_save(project=project, data={
        "name": f"r-{kind}-{target}", "enabled": True, "target": target, "delaySeconds": 0,
        "evaluatorAssignments": [{"evaluatorId": str(evaluator.pk)}],
    })
    now = timezone.now()
    return tasks.scan_rule(project=project, rule=rule, mode="backfill", since=now - timedelta(hours=1),
                           until=now + timedelta(minutes=1), enqueue=False)


def _statements(project, job_ids) -> list[tuple[str, list]]:
    """(sql, params) of every statement `run_jobs` sends to the project's region database.

    The statements of the ingest pipeline the scores go through are left out: they are the pipeline's
    (written, rolled up and bounded by its own tests), not the runner's."""
    seen = []
    in_pipeline = []
    real_run = runner.pipeline.run

    def pipeline_run(*args, **kwargs):
        in_pipeline.append(True)
        try:
            return real_run(*args, **kwargs)
        finally:
            in_pipeline.pop()

    def capture(execute, sql, params, many, context):
        if not in_pipeline:
            seen.append((sql, list(params or ())))
        return execute(sql, params, many, context)

    with mock.patch.object(runner.pipeline, "run", pipeline_run), data_connection(project).execute_wrapper(capture):
        runner.run_jobs(project=project, job_ids=job_ids)
    return seen


def _rows_read(node) -> dict[str, float]:
    """Rows each keyed table's scans produced or threw away, over all their loops."""
    out: dict[str, float] = {}
    relation = node.get("Relation Name")
    if relation in KEYED_TABLES and "Scan" in node["Node Type"]:
        read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
        out[relation] = read * node["Actual Loops"]
    for child in node.get("Plans", []):
        for name, rows in _rows_read(child).items():
            out[name] = out.get(name, 0) + rows
    return out


def _replayed(project, statements) -> list[tuple[str, dict[str, float]]]:
    """The statements again, in order, in a transaction rolled back afterwards; those on the keyed
    tables under EXPLAIN ANALYZE (which runs them), the others (the planner settings) as they were.
    Returns (sql, rows read per table) of each explained statement."""
    connection = data_connection(project)
    out = []
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            for sql, params in statements:
                if not any(table in sql for table in KEYED_TABLES):
                    cursor.execute(sql, params)
                    continue
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                out.append((sql, _rows_read(plan[0]["Plan"])))
        transaction.set_rollback(True, using=connection.alias)
    return out


def test_a_batch_probes_its_rows_by_key_when_statistics_do_not_know_the_project(project, other_project):
    # The statistics are taken while only another project has rows (a new project's first backfill):
    # the planner then believes this project holds a row or two. Before, the batch's job read, target
    # read and job-state update each read every row of the project (hash joins over it) per batch.
    ingest(other_project, *[trace_event(f"o-{i}") for i in range(50)])
    _rule_jobs(other_project)
    with data_connection(project).cursor() as cursor:
        cursor.execute("ANALYZE traces_trace")
        cursor.execute("ANALYZE evals_evaljob")
    ingest(project, *[trace_event(f"t-{i}", output=f"it is {i}") for i in range(300)])
    ids = _rule_jobs(project)
    assert len(ids) == 300

    batch = ids[:BATCH]
    # The score write is the ingest writer's (it probes nothing: an INSERT); the rest replayed.
    statements = [(sql, params) for sql, params in _statements(project, batch) if "feedback_score" not in sql]
    # The planner settings held for the job-state UPDATE are put back: this test's transaction (like
    # any caller's) goes on after it.
    with data_connection(project).cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_hashjoin'), current_setting('enable_seqscan')")
        assert cursor.fetchone() == ("on", "on")
    explained = _replayed(project, statements)
    assert len(explained) == 3, [sql[:80] for sql, _ in explained]  # jobs, targets, job states
    for sql, read in explained:
        assert read and all(rows <= 2 * BATCH for rows in read.values()), (read, sql[:200])
    done = EvalJob.objects.for_project(project).filter(id__in=batch, status="completed").count()
    assert done == BATCH
    assert Score.objects.for_project(project).filter(source="EVAL").count() == BATCH


def test_rule_only_batches_read_no_input_or_metadata_and_still_score(project):
    ingest(project, trace_event("t-yes", output="it is 4", input="x" * 5000, metadata={"big": "y" * 5000}),
           trace_event("t-no", output="five"))
    sql = " ".join(s for s, _ in _statements(project, _rule_jobs(project)) if "traces_trace" in s)
    assert '"output"' in sql and '"input"' not in sql and '"metadata"' not in sql
    scores = {s.trace_id: s for s in Score.objects.for_project(project).filter(source="EVAL")}
    assert (scores["t-yes"].value, scores["t-no"].value) == (1.0, 0.0)
    assert scores["t-yes"].metadata["evaluator_version"] == 1 and scores["t-yes"].metadata["evaluation_rule_id"]

    # Observation targets keep what rule evaluators do read: latency, cost and status.
    start = timezone.now()
    ingest(project, generation_event("g-1", "t-yes", start=start))
    ids = _rule_jobs(project, kind="max_latency", params={"max_ms": 1000}, target="observation")
    runner.run_jobs(project=project, job_ids=ids)
    score = Score.objects.for_project(project).get(source="EVAL", observation_id="g-1")
    assert score.value == 1.0, score.comment


def test_worker_processes_freeze_their_start_up_heap():
    from config.celery import freeze_startup_heap

    for signal in (worker_init, worker_process_init):
        assert freeze_startup_heap in [ref() for _, ref in signal.receivers], signal
    gc.unfreeze()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
