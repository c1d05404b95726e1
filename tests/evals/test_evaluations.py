"""Evaluations end to end against a fake OpenAI-compatible judge on loopback: connections (encrypted,
masked, SSRF-checked), LLM-as-judge jobs (scores with source EVAL through the ingest pipeline, judge
traces in the reserved environment with tokens), error states, pausing, idempotency when a worker
dies, the loop guard, sampling, and tenant isolation of every endpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evals import judging, runner, secrets, tasks
from evals.evaluation_models import EvalJob, EvaluationRule, Evaluator, LlmConnection
from evals.fakejudge import FakeJudge
from scores.models import Score
from tests.evals.evalkit import call, connect, generation_event, ingest, judge_evaluator, trace_event
from tests.tenancy.test_http_kit import DEEP_TOKEN
from traces.models import Observation, Trace

V2 = "/api/public/v2"


@pytest.fixture
def allow_loopback(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True


@pytest.fixture
def judge_server(allow_loopback):
    with FakeJudge() as judge:
        yield judge


def _rule(project, evaluator, **data):
    from evals import eval_services

    body = {"name": "prod", "enabled": True, "target": "trace", "evaluatorAssignments": [{"evaluatorId": str(evaluator.pk)}],
            "delaySeconds": 0, **data}
    return eval_services.rule_save(project=project, data=body)


def _backfill(project, rule):
    now = timezone.now()
    return tasks.scan_rule(project=project, rule=rule, mode="backfill", since=now - timedelta(hours=1),
                           until=now + timedelta(minutes=1), enqueue=False)


# --- connections ---------------------------------------------------------------------------------


def test_connection_secret_is_encrypted_masked_and_rotates(project, settings):
    from evals import eval_services

    settings.LLM_SECRET_KEYS = ["old-key"]
    connection, created = eval_services.connection_upsert(
        project=project, provider="openai", adapter="openai", secret_key="sk-live-abcdefghijklmnop", base_url=""
    )
    assert created
    assert "abcdefghijklmnop" not in connection.secret_key_encrypted
    assert connection.display_secret_key == "sk-…mnop"
    settings.LLM_SECRET_KEYS = ["new-key", "old-key"]
    assert eval_services.rotate_connection_secrets() == 1
    settings.LLM_SECRET_KEYS = ["new-key"]  # the old key is gone: the rotated token still opens
    connection.refresh_from_db()
    assert secrets.decrypt(connection.secret_key_encrypted) == "sk-live-abcdefghijklmnop"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1", "http://169.254.169.254/latest", "http://10.0.0.5/v1", "http://[::1]/v1",
    "http://metadata.google.internal/", "file:///etc/passwd", "http://user:pw@example.com/v1",
])
def test_connection_ssrf_refused_at_save(client, api_key, url):
    response = call(client, api_key, "PUT", "/api/public/llm-connections",
                    {"provider": "openai", "adapter": "openai", "secretKey": "sk-x-123456789", "baseURL": url})
    assert response.status_code == 400, response.content
    assert "refused" in response.json()["message"]
    assert not LlmConnection.objects.exists()


def test_connection_list_masks_the_key(client, api_key, allow_loopback):
    response = call(client, api_key, "PUT", "/api/public/llm-connections",
                    {"provider": "vllm", "adapter": "openai", "secretKey": "sk-secret-value-987654",
                     "baseURL": "http://127.0.0.1:9/v1", "defaultModel": "llama"})
    assert response.status_code == 201, response.content
    listed = call(client, api_key, "GET", "/api/public/llm-connections").json()["data"]
    assert listed[0]["displaySecretKey"] == "sk-…7654"
    assert "sk-secret-value-987654" not in str(listed)


def test_ssrf_rechecked_before_each_call(project, settings):
    """A URL saved while private addresses were allowed is refused at call time once they are not:
    the job errors and the evaluator pauses with the reason."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge() as judge:
        connect(project, judge)
        evaluator = judge_evaluator(project)
        ingest(project, trace_event("t-1", output="4"))
        rule = _rule(project, evaluator, evaluatorAssignments=[{"evaluatorId": str(evaluator.pk), "variableMapping": [
            {"variable": "input", "source": "input"}, {"variable": "output", "source": "output"},
            {"variable": "expected_output", "source": "output"}]}])
        settings.OUTBOUND_ALLOW_PRIVATE = False
        ids = _backfill(project, rule)
        runner.run_jobs(project=project, job_ids=ids)
        assert judge.requests == []
    job = EvalJob.objects.for_project(project).get()
    assert job.status == "error" and "refused" in job.error
    evaluator.refresh_from_db()
    assert evaluator.status == "paused" and evaluator.paused_reason == "LLM_CONNECTION_ENDPOINT_UNREACHABLE"


# --- the judge -----------------------------------------------------------------------------------------


def _correctness_rule(project, evaluator, **data):
    mapping = [{"variable": "input", "source": "input"}, {"variable": "output", "source": "output"},
               {"variable": "expected_output", "source": "metadata", "jsonPath": "$.expected"}]
    return _rule(project, evaluator, evaluatorAssignments=[{"evaluatorId": str(evaluator.pk), "variableMapping": mapping}], **data)


def test_llm_judge_scores_a_trace_and_traces_itself(project, judge_server):
    connect(project, judge_server)
    evaluator = judge_evaluator(project)
    ingest(project, trace_event("t-1", output="4", metadata={"expected": "4"}))
    rule = _correctness_rule(project, evaluator)
    ids = _backfill(project, rule)
    outcomes = runner.run_jobs(project=project, job_ids=ids)
    assert [(o.status, o.error) for o in outcomes.values()] == [("completed", "")]
    sent = judge_server.requests[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert "What is 2+2?" in sent["messages"][0]["content"] and "4" in sent["messages"][0]["content"]
    assert judge_server.headers[0]["authorization"] == "Bearer sk-test-1234567890abcdef"
    score = Score.objects.for_project(project).get(trace_id="t-1")
    assert (score.name, score.value, score.source, score.data_type) == ("correctness", 0.75, "EVAL", "NUMERIC")
    assert score.comment.startswith("The answer matches")
    assert score.environment == "production"
    job = EvalJob.objects.for_project(project).get()
    assert job.status == "completed" and job.score_ids == [score.id]
    assert score.id == judging.score_id(job=job.id, name="correctness")
    judge_trace = Trace.objects.for_project(project).get(id=job.execution_trace_id)
    assert judge_trace.environment == judging.EVAL_ENVIRONMENT
    assert judge_trace.name == "Execute evaluator: correctness"
    generation = Observation.objects.for_project(project).get(trace_id=judge_trace.id)
    assert (generation.type, generation.input_tokens, generation.output_tokens) == ("GENERATION", 120, 30)


def test_judge_trace_is_never_evaluated(project, judge_server):
    """Loop guard: a rule with no filter over a range that holds the judge's own trace never
    creates a job for it, and a job pointed at it by hand is refused."""
    connect(project, judge_server)
    evaluator = judge_evaluator(project)
    ingest(project, trace_event("t-1", metadata={"expected": "4"}))
    rule = _correctness_rule(project, evaluator)
    runner.run_jobs(project=project, job_ids=_backfill(project, rule))
    assert Trace.objects.for_project(project).filter(environment=judging.EVAL_ENVIRONMENT).count() == 1
    again = _backfill(project, rule)
    assert len(again) == 1  # the original trace only, not the judge trace
    judge_trace = Trace.objects.for_project(project).get(environment=judging.EVAL_ENVIRONMENT)
    job = EvalJob.objects.for_project(project).create(
        id="manual", rule_id=rule.pk, evaluator_id=evaluator.pk,
        evaluator_version_id=evaluator.versions.get().pk, target="trace", trace_id=judge_trace.id)
    outcome = runner.run_jobs(project=project, job_ids=[job.id])["manual"]
    assert outcome.status == "error" and "loop guard" in outcome.error
    assert len(judge_server.requests) == 1


def test_malformed_judge_json_is_an_error_state(project, allow_loopback):
    with FakeJudge(mode="malformed") as judge:
        connect(project, judge)
        evaluator = judge_evaluator(project)
        ingest(project, trace_event("t-1", metadata={"expected": "4"}))
        runner.run_jobs(project=project, job_ids=_backfill(project, _correctness_rule(project, evaluator)))
    job = EvalJob.objects.for_project(project).get()
    assert job.status == "error" and "not JSON" in job.error
    assert not Score.objects.for_project(project).exists()
    # The failed call is still traced (its tokens cost money), marked as an error.
    generation = Observation.objects.for_project(project).get(environment=judging.EVAL_ENVIRONMENT)
    assert generation.level == "ERROR"


@pytest.mark.parametrize("mode,reason", [("auth", "LLM_CONNECTION_AUTH_INVALID"), ("billing", "LLM_CONNECTION_BILLING_EXHAUSTED")])
def test_auth_and_billing_errors_pause_with_a_reason(project, allow_loopback, mode, reason):
    with FakeJudge(mode=mode) as judge:
        connect(project, judge)
        evaluator = judge_evaluator(project)
        ingest(project, trace_event("t-1", metadata={"expected": "4"}), trace_event("t-2", metadata={"expected": "4"}))
        rule = _correctness_rule(project, evaluator)
        runner.run_jobs(project=project, job_ids=_backfill(project, rule))
    evaluator.refresh_from_db()
    rule.refresh_from_db()
    assert (evaluator.status, evaluator.paused_reason) == ("paused", reason)
    assert (rule.status, rule.paused_reason) == ("paused", reason)
    assert "sk-test" not in evaluator.paused_message
    assert set(EvalJob.objects.for_project(project).values_list("status", flat=True)) == {"error"}


def test_rate_limited_job_is_delayed_then_runs(project, allow_loopback):
    with FakeJudge(mode="rate_limited") as judge:
        connect(project, judge)
        evaluator = judge_evaluator(project)
        ingest(project, trace_event("t-1", metadata={"expected": "4"}))
        ids = _backfill(project, _correctness_rule(project, evaluator))
        runner.run_jobs(project=project, job_ids=ids)
        job = EvalJob.objects.for_project(project).get()
        assert job.status == "delayed" and job.run_after > timezone.now()
        judge.mode = "ok"
        runner.run_jobs(project=project, job_ids=ids, now=job.run_after + timedelta(seconds=1))
    job.refresh_from_db()
    assert job.status == "completed" and job.attempts == 2


def test_killed_worker_leaves_one_score_per_target(project, judge_server, monkeypatch):
    """The worker dies after the scores are written but before the jobs are marked done; the batch
    runs again (redelivery) and the project still holds exactly one score per target."""
    connect(project, judge_server)
    evaluator = judge_evaluator(project)
    ingest(project, *[trace_event(f"t-{i}", metadata={"expected": "4"}) for i in range(5)])
    ids = _backfill(project, _correctness_rule(project, evaluator))

    def die(*args, **kwargs):
        raise SystemExit("worker killed")

    real_finish = runner._finish
    monkeypatch.setattr(runner, "_finish", die)
    with pytest.raises(SystemExit):
        runner.run_jobs(project=project, job_ids=ids)
    assert Score.objects.for_project(project).filter(source="EVAL").count() == 5
    assert set(EvalJob.objects.for_project(project).values_list("status", flat=True)) == {"pending"}
    monkeypatch.setattr(runner, "_finish", real_finish)
    runner.run_jobs(project=project, job_ids=ids)
    runner.run_jobs(project=project, job_ids=ids)  # and a duplicate delivery after completion: nothing
    assert Score.objects.for_project(project).filter(source="EVAL").count() == 5
    assert sorted(Score.objects.for_project(project).filter(source="EVAL").values_list("trace_id", flat=True)) == [f"t-{i}" for i in range(5)]
    assert set(EvalJob.objects.for_project(project).values_list("status", flat=True)) == {"completed"}
    assert len(judge_server.requests) == 10  # 5 before the crash, 5 on the rerun, none after completion
    # Re-scanning the same range makes no new jobs.
    assert sorted(_backfill(project, EvaluationRule.objects.get())) == sorted(ids)
    assert EvalJob.objects.for_project(project).count() == 5


def test_anthropic_connection_uses_tool_use(project, judge_server):
    connect(project, judge_server, provider="anthropic", adapter="anthropic", model="claude-x")
    evaluator = judge_evaluator(project, modelConfig={"provider": "anthropic", "model": "claude-x"})
    ingest(project, trace_event("t-1", metadata={"expected": "4"}))
    runner.run_jobs(project=project, job_ids=_backfill(project, _correctness_rule(project, evaluator)))
    assert judge_server.requests[0]["tool_choice"] == {"type": "tool", "name": "submit_evaluation"}
    assert Score.objects.for_project(project).get(source="EVAL").value == 0.75


def test_boolean_and_categorical_outputs(project, judge_server):
    connect(project, judge_server)
    refusal = judge_evaluator(project, name="refusal", template="refusal")
    sentiment = judge_evaluator(project, name="sentiment", template="sentiment")
    ingest(project, trace_event("t-1"))
    rule = _rule(project, refusal, evaluatorAssignments=[{"evaluatorId": str(refusal.pk)}, {"evaluatorId": str(sentiment.pk)}])
    runner.run_jobs(project=project, job_ids=_backfill(project, rule))
    scores = {s.name: s for s in Score.objects.for_project(project).filter(source="EVAL")}
    assert (scores["refusal"].data_type, scores["refusal"].value) == ("BOOLEAN", 1.0)
    assert (scores["sentiment"].data_type, scores["sentiment"].string_value) == ("CATEGORICAL", "positive")


def test_missing_variable_is_an_error_with_a_hint(project, judge_server):
    connect(project, judge_server)
    evaluator = judge_evaluator(project)  # correctness needs expected_output: a plain trace has none
    ingest(project, trace_event("t-1"))
    runner.run_jobs(project=project, job_ids=_backfill(project, _rule(project, evaluator)))
    job = EvalJob.objects.for_project(project).get()
    assert job.status == "error" and "expected_output" in job.error and "delay" in job.error
    assert judge_server.requests == []


# --- rules: filter, sampling, new data, nightly -------------------------------------------------------------


def test_filter_and_deterministic_sampling(project, judge_server):
    connect(project, judge_server)
    evaluator = judge_evaluator(project, name="helpful", template="helpfulness")
    ingest(project, *[trace_event(f"t-{i}", tags=["prod"] if i % 2 else ["dev"]) for i in range(40)])
    rule = _rule(project, evaluator, filter=[{"type": "arrayOptions", "column": "tags", "operator": "any of", "value": ["prod"]}],
                 sampling=0.5)
    ids = _backfill(project, rule)
    picked = {j.trace_id for j in EvalJob.objects.for_project(project).filter(id__in=ids)}
    expected = {f"t-{i}" for i in range(1, 40, 2) if judging.sampled(f"t-{i}", 0.5)}
    assert picked == expected and 0 < len(picked) < 20  # SQL and Python agree on every target


def test_observation_target_with_metadata_and_model_filter(project, judge_server):
    connect(project, judge_server)
    evaluator = judge_evaluator(project, name="helpful", template="helpfulness")
    ingest(project, trace_event("t-1"), generation_event("g-1", "t-1", model="gpt-4o", metadata={"feature": "faq"}),
           generation_event("g-2", "t-1", model="gpt-4o", metadata={"feature": "chat"}),
           generation_event("g-3", "t-1", model="other", metadata={"feature": "faq"}))
    rule = _rule(project, evaluator, target="observation", filter=[
        {"type": "stringOptions", "column": "model", "operator": "any of", "value": ["gpt-4o"]},
        {"type": "stringObject", "column": "metadata", "key": "feature", "operator": "=", "value": "faq"}])
    runner.run_jobs(project=project, job_ids=_backfill(project, rule))
    score = Score.objects.for_project(project).get(source="EVAL")
    assert (score.trace_id, score.observation_id) == ("t-1", "g-1")


def test_new_data_waits_for_the_delay_and_nightly_samples_yesterday(project, judge_server, monkeypatch):
    connect(project, judge_server)
    evaluator = judge_evaluator(project, name="helpful", template="helpfulness")
    rule = _rule(project, evaluator, delaySeconds=600, nightly=True, nightlySampling=1.0, nightlyMaxTargets=3)
    sent = []
    monkeypatch.setattr(tasks, "publish", lambda task, kwargs, queue: sent.append((task.name, kwargs, queue)) or True)
    ingest(project, trace_event("fresh"))
    assert tasks.scan(project_id=str(project.pk), mode="new") == 0  # younger than the delay
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12, minute=0)
    ingest(project, *[trace_event(f"old-{i}", timestamp=yesterday + timedelta(minutes=i)) for i in range(5)])
    total = tasks.scan(project_id=str(project.pk), mode="nightly", day=yesterday.date().isoformat())
    assert total == 3  # nightlyMaxTargets
    assert sent[-1][0] == "evals.run_jobs" and sent[-1][2] == f"region.{project.region}"
    rule.refresh_from_db()
    EvaluationRule.objects.filter(pk=rule.pk).update(delay_seconds=0)
    assert tasks.scan(project_id=str(project.pk), mode="new") >= 1  # now the fresh trace is due


def test_dispatch_fans_out_to_region_queues(project, far_project, judge_server, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks, "publish", lambda task, kwargs, queue: sent.append((kwargs["project_id"], queue)) or True)
    for p in (project, far_project):
        connect(p, judge_server)
        _rule(p, judge_evaluator(p))
    assert tasks.dispatch() == 2
    assert sorted(sent) == sorted([(str(project.pk), f"region.{project.region}"), (str(far_project.pk), f"region.{far_project.region}")])


# --- the Langfuse v2 API and the judge endpoint ----------------------------------------------------------------


def test_v2_evaluator_and_rule_lifecycle(client, api_key, project):
    created = call(client, api_key, "POST", f"{V2}/evaluators", {
        "name": "answer-quality", "type": "llm_as_judge",
        "prompt": [{"role": "system", "content": "You grade."}, {"role": "user", "content": "Q: {{input}} A: {{output}}"}],
        "outputDefinition": {"dataType": "NUMERIC", "minValue": 0, "maxValue": 1},
        "modelConfig": {"provider": "openai", "model": "gpt-4.1-mini"},
    })
    assert created.status_code == 200, created.content
    evaluator = created.json()
    assert evaluator["variables"] == ["input", "output"] and evaluator["version"] == 1 and evaluator["status"] == "active"
    updated = call(client, api_key, "PATCH", f"{V2}/evaluators/{evaluator['id']}", {"prompt": "Rate {{output}}"}).json()
    assert (updated["id"], updated["version"], updated["variables"]) == (evaluator["id"], 2, ["output"])
    versions = call(client, api_key, "GET", f"{V2}/evaluators/{evaluator['id']}/versions").json()["data"]
    assert [v["version"] for v in versions] == [2, 1]
    rule = call(client, api_key, "POST", f"{V2}/evaluation-rules", {
        "name": "prod", "enabled": True, "sampling": 0.25,
        "filter": [{"type": "string", "column": "environment", "operator": "=", "value": "production"}],
        "evaluatorAssignments": [{"evaluatorId": evaluator["id"], "variableMapping": [{"variable": "output", "source": "output"}]}],
    })
    assert rule.status_code == 200, rule.content
    rule = rule.json()
    assert rule["sampling"] == 0.25 and rule["evaluatorAssignments"][0]["evaluatorId"] == evaluator["id"]
    listed = call(client, api_key, "GET", f"{V2}/evaluators").json()
    assert listed["data"][0]["evaluationRuleAssignments"][0]["evaluationRuleId"] == rule["id"]
    patched = call(client, api_key, "PATCH", f"/api/public/unstable/evaluation-rules/{rule['id']}", {"enabled": False}).json()
    assert patched["enabled"] is False and patched["status"] == "inactive"
    bad = call(client, api_key, "POST", f"{V2}/evaluation-rules", {
        "name": "x", "enabled": True, "evaluatorAssignments": [{"evaluatorId": evaluator["id"], "variableMapping": [
            {"variable": "nope", "source": "output"}]}]})
    assert bad.status_code == 400 and "not in the prompt" in bad.json()["message"]
    assert call(client, api_key, "DELETE", f"{V2}/evaluation-rules/{rule['id']}").status_code == 200
    assert call(client, api_key, "DELETE", f"{V2}/evaluators/{evaluator['id']}").json() == {"id": evaluator["id"]}
    assert call(client, api_key, "GET", f"{V2}/evaluators/{evaluator['id']}").status_code == 404


def test_v2_pagination_cursor(client, api_key, project):
    for i in range(3):
        judge_evaluator(project, name=f"e{i}")
    first = call(client, api_key, "GET", f"{V2}/evaluators", limit=2).json()
    assert len(first["data"]) == 2 and first["meta"]["cursor"]
    second = call(client, api_key, "GET", f"{V2}/evaluators", limit=2, cursor=first["meta"]["cursor"]).json()
    assert len(second["data"]) == 1 and "cursor" not in second["meta"]
    assert call(client, api_key, "GET", f"{V2}/evaluators", cursor="garbage!").status_code == 400
    assert call(client, api_key, "GET", f"{V2}/evaluators", cursor=DEEP_TOKEN).status_code == 400


def test_judge_endpoint_scores_one_item(client, api_key, project, judge_server):
    connect(project, judge_server)
    judge_evaluator(project)
    ingest(project, trace_event("t-ci"))
    ready = call(client, api_key, "POST", "/api/public/lookglass/judge", {"evaluator": "correctness", "preflight": True})
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert len(judge_server.requests) == 0  # a preflight calls no model
    unknown = call(client, api_key, "POST", "/api/public/lookglass/judge", {"evaluator": "nope", "preflight": True})
    assert unknown.status_code == 400 and "no evaluator named" in unknown.json()["message"]
    body = {"evaluator": "correctness", "input": "2+2?", "output": "4", "expectedOutput": "4", "traceId": "t-ci",
            "recordScore": True}
    response = call(client, api_key, "POST", "/api/public/lookglass/judge", body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["status"], data["value"], data["dataType"], data["higherIsBetter"], data["passed"]) == (
        "completed", 0.75, "NUMERIC", True, True)
    assert data["reasoning"]
    again = call(client, api_key, "POST", "/api/public/lookglass/judge", body).json()
    assert again["scoreIds"] == data["scoreIds"]
    assert Score.objects.for_project(project).filter(trace_id="t-ci", source="EVAL").count() == 1
    # Without recordScore (the CLI records its own scores) nothing is written, even with a trace id.
    verdict_only = call(client, api_key, "POST", "/api/public/lookglass/judge", {**body, "recordScore": False, "traceId": "t-x"}).json()
    assert verdict_only["status"] == "completed" and verdict_only["scoreIds"] == []
    assert not Score.objects.for_project(project).filter(trace_id="t-x").exists()
    missing = call(client, api_key, "POST", "/api/public/lookglass/judge", {**body, "evaluator": "nope"})
    assert missing.status_code == 404


def test_judge_endpoint_malformed_answer_is_422(client, api_key, project, allow_loopback):
    with FakeJudge(mode="malformed") as judge:
        connect(project, judge)
        judge_evaluator(project)
        response = call(client, api_key, "POST", "/api/public/lookglass/judge",
                        {"evaluator": "correctness", "input": "q", "output": "a", "expectedOutput": "a"})
    assert response.status_code == 422
    assert response.json()["status"] == "error" and "not JSON" in response.json()["error"]


# --- isolation: every endpoint answers 404 for another tenant's objects --------------------------------------


def _v1(org, project, rest):
    return f"/api/v1/organizations/{org.pk}/projects/{project.pk}/evals/{rest}"


@pytest.mark.parametrize("tenant", ["other", "far"])
def test_isolation_every_endpoint(client, request, project, organization, owner, api_key, tenant, judge_server):
    other_key = request.getfixturevalue(f"{tenant}_api_key")
    other_owner = request.getfixturevalue(f"{tenant}_owner")
    connection = connect(project, judge_server)
    evaluator = judge_evaluator(project)
    rule = _rule(project, evaluator)
    ingest(project, trace_event("t-1", metadata={"expected": "4"}))
    ids = _backfill(project, rule)
    public = [
        ("GET", f"{V2}/evaluators/{evaluator.pk}"), ("PATCH", f"{V2}/evaluators/{evaluator.pk}"),
        ("DELETE", f"{V2}/evaluators/{evaluator.pk}"), ("GET", f"{V2}/evaluators/{evaluator.pk}/versions"),
        ("GET", f"{V2}/evaluation-rules/{rule.pk}"), ("PATCH", f"{V2}/evaluation-rules/{rule.pk}"),
        ("DELETE", f"{V2}/evaluation-rules/{rule.pk}"), ("GET", f"/api/public/unstable/evaluators/{evaluator.pk}"),
    ]
    for method, path in public:
        response = call(client, other_key, method, path, {} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.content)
    assert call(client, other_key, "GET", f"{V2}/evaluators").json()["data"] == []
    assert call(client, other_key, "GET", f"{V2}/evaluation-rules").json()["data"] == []
    assert call(client, other_key, "GET", "/api/public/llm-connections").json()["data"] == []
    judged = call(client, other_key, "POST", "/api/public/lookglass/judge", {"evaluator": str(evaluator.pk), "output": "a"})
    assert judged.status_code == 404
    judged = call(client, other_key, "POST", "/api/public/lookglass/judge", {"evaluator": "correctness", "output": "a"})
    assert judged.status_code == 404
    # Management: the other tenant's owner cannot reach this project at all; with their own project in
    # the URL, this project's object ids are 404 too.
    client.force_login(other_owner)
    for rest in ("evaluators", "evaluation-rules", "llm-connections", "eval-jobs", f"evaluators/{evaluator.pk}",
                 f"eval-jobs/{ids[0]}", "eval-results/trend"):
        assert client.get(_v1(organization, project, rest)).status_code == 404, rest
    other_project = request.getfixturevalue(f"{tenant}_project")
    other_org = request.getfixturevalue(f"{tenant}_organization")
    for method, rest in (("get", f"evaluators/{evaluator.pk}"), ("get", f"evaluation-rules/{rule.pk}"),
                         ("get", f"eval-jobs/{ids[0]}"), ("delete", f"llm-connections/{connection.pk}"),
                         ("post", f"evaluation-rules/{rule.pk}/backfill"), ("post", f"evaluators/{evaluator.pk}/resume")):
        response = getattr(client, method)(_v1(other_org, other_project, rest), content_type="application/json")
        assert response.status_code == 404, (rest, response.content)
    assert Evaluator.objects.filter(pk=evaluator.pk).exists() and LlmConnection.objects.filter(pk=connection.pk).exists()


def test_v1_management_and_jobs(client, organization, project, owner, judge_server):
    client.force_login(owner)
    base = f"/api/v1/organizations/{organization.pk}/projects/{project.pk}/evals/"
    put = client.put(base + "llm-connections", {"provider": "openai", "adapter": "openai", "secretKey": "sk-abcdef123456",
                                                "baseURL": judge_server.url, "defaultModel": "m", "maxRetries": 0},
                     content_type="application/json")
    assert put.status_code == 201, put.content
    templates = client.get(base + "evaluator-templates").json()["data"]
    assert {t["name"]: t["higherIsBetter"] for t in templates}["hallucination"] is False
    evaluator = client.post(base + "evaluators", {"name": "helpful", "template": "helpfulness"}, content_type="application/json").json()
    rule = client.post(base + "evaluation-rules", {"name": "all", "enabled": True, "target": "trace",
                                                   "evaluatorAssignments": [{"evaluatorId": evaluator["id"]}]},
                       content_type="application/json").json()
    ingest(project, trace_event("t-1"))
    bad = client.post(base + f"evaluation-rules/{rule['id']}/backfill", {"from": "yesterday"}, content_type="application/json")
    assert bad.status_code == 400
    ids = _backfill(project, EvaluationRule.objects.get(pk=rule["id"]))
    runner.run_jobs(project=project, job_ids=ids)
    jobs = client.get(base + "eval-jobs", {"status": "completed"}).json()
    assert jobs["counts"]["completed"] == 1 and jobs["data"][0]["status"] == "completed"
    trend = client.get(base + "eval-results/trend").json()["data"]
    assert trend[0]["name"] == "helpful" and trend[0]["count"] == 1
    schema = client.get("/api/schema/").content.decode()
    assert "/evals/evaluation-rules" in schema and "/evals/eval-results/compare" in schema


# --- rule evaluators on the server (lookglass.evaluators, the client package's code) ------------------------


def test_rule_evaluator_jobs_score_without_a_judge(client, api_key, project):
    created = call(client, api_key, "POST", f"{V2}/evaluators",
                   {"name": "says-four", "type": "rule", "ruleKind": "contains", "ruleParams": {"value": "4"}})
    assert created.status_code == 200, created.content
    bad = call(client, api_key, "POST", f"{V2}/evaluators",
               {"name": "bad", "type": "rule", "ruleKind": "regex", "ruleParams": {"pattern": "(a"}})
    assert bad.status_code == 400
    unknown = call(client, api_key, "POST", f"{V2}/evaluators", {"name": "x", "type": "rule", "ruleKind": "telepathy"})
    assert unknown.status_code == 400 and "unknown evaluator" in unknown.json()["message"]
    evaluator = Evaluator.objects.get(pk=created.json()["id"])
    ingest(project, trace_event("t-yes", output="it is 4"), trace_event("t-no", output="five"))
    runner.run_jobs(project=project, job_ids=_backfill(project, _rule(project, evaluator)))
    scores = {s.trace_id: s for s in Score.objects.for_project(project).filter(source="EVAL")}
    assert (scores["t-yes"].value, scores["t-yes"].data_type) == (1.0, "BOOLEAN")
    assert scores["t-no"].value == 0.0 and "does not contain" in scores["t-no"].comment
    # No judge trace for rule evaluators: nothing was called.
    assert not Trace.objects.for_project(project).filter(environment=judging.EVAL_ENVIRONMENT).exists()


# --- experiments: rules over dataset runs, run summary and comparison ----------------------------------------


def test_experiment_target_summary_and_comparison(client, organization, owner, project, api_key):
    from evals import eval_services
    from evals.models import DatasetRun

    for name, body in (("exact", {"ruleKind": "exact_match"}), ):
        evaluator = eval_services.evaluator_create(project=project, data={"name": name, "type": "rule", **body})
    call(client, api_key, "POST", "/api/public/v2/datasets", {"name": "qa"})
    for i in range(3):
        call(client, api_key, "POST", "/api/public/dataset-items", {"datasetName": "qa", "id": f"item-{i}", "input": f"q{i}", "expectedOutput": f"a{i}"})
    # Baseline answers all three right; the candidate gets item-1 wrong.
    for run, wrong in (("base", set()), ("cand", {1})):
        ingest(project, *[trace_event(f"{run}-{i}", input=f"q{i}", output="wrong" if i in wrong else f"a{i}") for i in range(3)])
        for i in range(3):
            response = call(client, api_key, "POST", "/api/public/dataset-run-items", {"runName": run, "datasetItemId": f"item-{i}", "traceId": f"{run}-{i}"})
            assert response.status_code == 200, response.content
    rule = eval_services.rule_save(project=project, data={"name": "ci", "enabled": True, "target": "experiment",
                                                          "evaluatorAssignments": [{"evaluatorId": str(evaluator.pk)}]})
    ids = _backfill(project, rule)
    assert len(ids) == 6
    runner.run_jobs(project=project, job_ids=ids)
    base, cand = (DatasetRun.objects.for_project(project).get(name=n) for n in ("base", "cand"))
    client.force_login(owner)
    prefix = f"/api/v1/organizations/{organization.pk}/projects/{project.pk}/evals/eval-results/"
    summary = client.get(prefix + f"runs/{cand.id}").json()
    assert summary["itemCount"] == 3
    [exact] = summary["evaluators"]
    assert exact["name"] == "exact" and exact["count"] == 3 and abs(exact["passRate"] - 2 / 3) < 1e-9
    compared = client.get(prefix + "compare", {"baseline": str(base.id), "candidate": str(cand.id)}).json()
    assert compared["evaluators"][0]["baselineAverage"] == 1.0
    assert compared["regressions"] == [{"datasetItemId": "item-1", "name": "exact", "baseline": 1.0, "candidate": 0.0}]
    assert client.get(prefix + f"runs/{cand.id}", HTTP_X="1").status_code == 200
    assert client.get(prefix + "compare", {"baseline": str(base.id)}).status_code == 400


# --- the console ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["other", "far"])
def test_console_evaluations_page_and_isolation(client, request, project, owner, tenant, judge_server):
    connect(project, judge_server)
    evaluator = judge_evaluator(project, name="helpful", template="helpfulness")
    ingest(project, trace_event("t-1"))
    runner.run_jobs(project=project, job_ids=_backfill(project, _rule(project, evaluator)))
    client.force_login(owner)
    page = client.get("/admin/evals/evaluations/", {"project": str(project.pk)})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="lg-evals-counts"' in html and "completed <strong>1</strong>" in html and "helpful" in html
    for path in ("/admin/evals/llmconnection/", "/admin/evals/evaluator/", "/admin/evals/evaluationrule/"):
        listing = client.get(path)
        assert listing.status_code == 200, path
    assert "sk-test-1234567890abcdef" not in client.get("/admin/evals/llmconnection/").content.decode()
    client.force_login(request.getfixturevalue(f"{tenant}_owner"))
    assert client.get("/admin/evals/evaluations/", {"project": str(project.pk)}).status_code == 404
    assert "helpful" not in client.get("/admin/evals/evaluator/").content.decode()
    assert client.get(f"/admin/evals/evaluator/{evaluator.pk}/change/").status_code in (302, 404)


def test_backfill_endpoint_queues_a_scan_that_evaluates_the_range(client, organization, owner, project, judge_server, monkeypatch):
    connect(project, judge_server)
    evaluator = judge_evaluator(project, name="helpful", template="helpfulness")
    rule = _rule(project, evaluator, enabled=False)
    ingest(project, trace_event("old-1"), trace_event("old-2"))
    queued = []
    monkeypatch.setattr("evals.eval_handlers.publish", lambda task, kwargs, queue: queued.append((task.name, kwargs, queue)) or True)
    monkeypatch.setattr(tasks, "publish", lambda task, kwargs, queue: queued.append((task.name, kwargs, queue)) or True)
    client.force_login(owner)
    now = timezone.now()
    response = client.post(f"/api/v1/organizations/{organization.pk}/projects/{project.pk}/evals/evaluation-rules/{rule.pk}/backfill",
                           {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(minutes=1)).isoformat()},
                           content_type="application/json")
    assert response.status_code == 202, response.content
    name, kwargs, queue = queued[0]
    assert (name, queue, kwargs["mode"]) == ("evals.scan", f"region.{project.region}", "backfill")
    assert tasks.scan(**kwargs) == 2  # a disabled rule still backfills when asked
    runner.run_jobs(project=project, job_ids=queued[-1][1]["job_ids"])
    assert Score.objects.for_project(project).filter(source="EVAL").count() == 2
    too_long = client.post(f"/api/v1/organizations/{organization.pk}/projects/{project.pk}/evals/evaluation-rules/{rule.pk}/backfill",
                           {"from": (now - timedelta(days=40)).isoformat(), "to": now.isoformat()}, content_type="application/json")
    assert too_long.status_code == 400


def test_filters_that_cannot_apply_are_refused_at_save_and_odd_metadata_keys_are_plain_keys(client, api_key, project, judge_server):
    evaluator = judge_evaluator(project, name="helpful", template="helpfulness")
    assignment = [{"evaluatorId": str(evaluator.pk)}]
    bad = call(client, api_key, "POST", f"{V2}/evaluation-rules", {
        "name": "x", "enabled": True, "evaluatorAssignments": assignment,
        "filter": [{"type": "arrayOptions", "column": "tags", "operator": ">", "value": ["a"]}]})
    assert bad.status_code == 400 and "tags" in bad.json()["message"]
    # A metadata key named like an ORM lookup is just a key.
    connect(project, judge_server)
    ingest(project, trace_event("t-1"), generation_event("g-1", "t-1", metadata={"contains": "yes", "a__b": "1"}),
           generation_event("g-2", "t-1", metadata={"contains": "no"}))
    rule = _rule(project, evaluator, target="observation", filter=[
        {"type": "stringObject", "column": "metadata", "key": "contains", "operator": "=", "value": "yes"},
        {"type": "stringObject", "column": "metadata", "key": "a__b", "operator": "=", "value": "1"}])
    picked = [j.observation_id for j in EvalJob.objects.for_project(project).filter(id__in=_backfill(project, rule))]
    assert picked == ["g-1"]


def test_roles_and_schedule(client, organization, project, member_of, judge_server):
    from config.celery import app

    base = f"/api/v1/organizations/{organization.pk}/projects/{project.pk}/evals/"
    member = member_of(organization, "member")
    client.force_login(member)
    put = client.put(base + "llm-connections", {"provider": "openai", "adapter": "openai", "secretKey": "sk-abcdef123456"},
                     content_type="application/json")
    assert put.status_code == 403  # connections hold secrets: admins and owners only
    assert client.post(base + "evaluators", {"name": "h", "template": "helpfulness"}, content_type="application/json").status_code == 200
    viewer = member_of(organization, "viewer")
    client.force_login(viewer)
    assert client.get(base + "llm-connections").status_code == 200
    assert client.post(base + "evaluators", {"name": "h", "template": "helpfulness"}, content_type="application/json").status_code == 403
    schedule = app.conf.beat_schedule
    assert schedule["evals-dispatch"]["task"] == "evals.dispatch"
    assert schedule["evals-dispatch-nightly"]["schedule"].hour == {2}
    from evals.tasks import run_jobs

    assert run_jobs.acks_late is True


@pytest.mark.parametrize("method,path,body", [
    ("POST", f"{V2}/evaluators", {"name": "x\u0000", "template": "helpfulness"}),
    ("POST", f"{V2}/evaluators", {"name": "x", "template": ["helpfulness"]}),
    ("POST", f"{V2}/evaluators", {"name": "x", "prompt": "{{input}}", "outputDefinition": {"dataType": ["NUMERIC"]}}),
    ("POST", f"{V2}/evaluators", {"name": "x", "prompt": "{{input}}", "outputDefinition": {"dataType": "CATEGORICAL", "categories": ["a"]}}),
    ("POST", f"{V2}/evaluators", {"name": "x", "prompt": "{{weird}}", "outputDefinition": {"dataType": "BOOLEAN"}}),
    ("POST", f"{V2}/evaluators", {"name": "x", "prompt": "{{input}}", "outputDefinition": {"dataType": "NUMERIC"},
                                  "variableMapping": [{"variable": "input", "source": "input", "jsonPath": "no-dollar"}]}),
    ("POST", f"{V2}/evaluation-rules", {"name": "r", "enabled": False, "filter": [{"column": ["name"], "operator": "="}]}),
    ("POST", f"{V2}/evaluation-rules", {"name": "r", "enabled": False, "filter": [{"column": "name", "operator": {"x": 1}}]}),
    ("POST", f"{V2}/evaluation-rules", {"name": "r", "enabled": False, "sampling": 2}),
    ("POST", f"{V2}/evaluation-rules", {"name": "r", "enabled": True, "evaluatorAssignments": []}),
    ("PUT", "/api/public/llm-connections", {"provider": "p", "adapter": "openai", "secretKey": "sk-123456789", "timeoutSeconds": "abc"}),
    ("PUT", "/api/public/llm-connections", {"provider": "p", "adapter": ["openai"], "secretKey": "sk-123456789"}),
    ("POST", "/api/public/lookglass/judge", {"evaluator": ["x"]}),
    ("POST", "/api/public/lookglass/judge", ["not", "an", "object"]),
])
def test_bad_input_is_a_clear_400(client, api_key, method, path, body):
    response = call(client, api_key, method, path, body)
    assert response.status_code == 400, response.content
    assert response.json()["message"]


def test_nul_in_query_parameters_is_a_400(client, api_key, organization, owner, project):
    assert call(client, api_key, "GET", f"{V2}/evaluators", cursor="a\u0000b").status_code == 400
    client.force_login(owner)
    base = f"/api/v1/organizations/{organization.pk}/projects/{project.pk}/evals/"
    assert client.get(base + "eval-results/trend", {"name": "a\u0000"}).status_code == 400
    assert client.get(base + "eval-jobs/a%00b").status_code in (400, 404)


def test_json_nested_thousands_deep_is_not_json_to_a_judge_neither_in_its_answer_nor_in_a_mapped_value():
    """A judge's answer, or a traced string a variable's jsonPath reads, nested 2,000 levels: the
    standard library's reader raised RecursionError (a 500 on the judge endpoint, a crashed job)."""
    deep = "[" * 2000 + "]" * 2000
    with pytest.raises(judging.MalformedAnswer, match="not JSON"):
        judging.parse_answer(deep, {})
    mapping = [{"variable": "input", "source": "input", "jsonPath": "$.question"}]
    messages = [{"role": "user", "content": "Q: {{input}}"}]
    with pytest.raises(judging.MissingVariable, match="jsonPath"):
        judging.render(messages, ["input"], mapping, judging.EvalInput(input=deep))
    shallow = judging.render(messages, ["input"], mapping, judging.EvalInput(input='{"question": "2+2?"}'))
    assert shallow == [{"role": "user", "content": "Q: 2+2?"}]
