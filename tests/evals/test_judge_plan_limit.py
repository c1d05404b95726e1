"""A plan's `eval_judge_calls` caps the LLM-judge calls an organization makes per period: calls past
it are not made, each such job ends in an error that says which limit and when it resets, and an
organization on the self-hosting default is never limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import enforcement, limits
from evals import eval_services, runner, tasks
from evals.evaluation_models import EvalJob
from evals.fakejudge import FakeJudge
from tests.billing.support import make_plan, subscribe
from tests.evals.evalkit import connect, ingest, judge_evaluator, trace_event


@pytest.fixture(autouse=True)
def _fresh_limits():
    limits.invalidate()
    client = enforcement._client()
    for key in client.scan_iter(f"{enforcement.PREFIX}:judge:*"):
        client.delete(key)
    yield
    limits.invalidate()


def _jobs(project, evaluator, traces: int) -> list[str]:
    for i in range(traces):
        ingest(project, trace_event(f"t-{i}", metadata={"expected": "4"}))
    mapping = [{"variable": "input", "source": "input"}, {"variable": "output", "source": "output"},
               {"variable": "expected_output", "source": "metadata", "jsonPath": "$.expected"}]
    rule = eval_services.rule_save(project=project, data={
        "name": "prod", "enabled": True, "target": "trace", "delaySeconds": 0,
        "evaluatorAssignments": [{"evaluatorId": str(evaluator.pk), "variableMapping": mapping}]})
    now = timezone.now()
    return tasks.scan_rule(project=project, rule=rule, mode="backfill", since=now - timedelta(hours=1),
                           until=now + timedelta(minutes=1), enqueue=False)


def test_judge_calls_past_the_plan_are_not_made_and_say_why(project, organization, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    subscribe(organization, make_plan(eval_judge_calls=2))
    with FakeJudge() as judge:
        connect(project, judge)
        ids = _jobs(project, judge_evaluator(project), traces=3)
        runner.run_jobs(project=project, job_ids=ids)
        assert len(judge.requests) == 2
    jobs = list(EvalJob.objects.for_project(project))
    assert sorted(j.status for j in jobs) == ["completed", "completed", "error"]
    [refused] = [j for j in jobs if j.status == "error"]
    assert "includes 2 LLM-judge calls per period" in refused.error and "resets at" in refused.error


def test_the_self_hosting_default_is_never_limited(project, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge() as judge:
        connect(project, judge)
        runner.run_jobs(project=project, job_ids=_jobs(project, judge_evaluator(project), traces=3))
        assert len(judge.requests) == 3
    assert {j.status for j in EvalJob.objects.for_project(project)} == {"completed"}
