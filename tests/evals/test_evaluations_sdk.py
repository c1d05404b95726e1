"""The real Langfuse SDK (5.2, installed here) manages evaluators and evaluation rules against a live
server through the v2 routes, and its typed models parse every answer."""

from __future__ import annotations

import httpx
import pytest

from evals.evaluation_models import EvaluationRule, Evaluator

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def langfuse(live_server, api_key):
    from langfuse import Langfuse

    http = httpx.Client(timeout=60)  # the live server's first request imports the URLconf (seconds)
    client = Langfuse(public_key=api_key.public, secret_key=api_key.secret, base_url=live_server.url,
                      tracing_enabled=False, httpx_client=http, timeout=60)
    yield client
    client.shutdown()
    http.close()


def test_sdk_creates_lists_updates_and_deletes_evaluators_and_rules(langfuse, project):
    from langfuse.api.evaluation_commons import EvaluatorOutputDefinition_Numeric, PromptVariableMappingInput
    from langfuse.api.evaluation_rules import EvaluationRuleEvaluatorAssignmentInput
    from langfuse.api.evaluators import CreateEvaluatorRequest_LlmAsJudge

    api = langfuse.api
    created = api.evaluators.create(request=CreateEvaluatorRequest_LlmAsJudge(
        name="answer-correctness",
        prompt="Question: {{input}}\nAnswer: {{output}}\nIs the answer correct?",
        output_definition=EvaluatorOutputDefinition_Numeric(min_value=0.0, max_value=1.0),
    ))
    assert created.name == "answer-correctness" and created.version == 1
    assert created.variables == ["input", "output"] and created.status == "active"
    assert Evaluator.objects.filter(project=project, pk=created.id).exists()

    page = api.evaluators.list(limit=10)
    assert [e.id for e in page.data] == [created.id]

    rule = api.evaluation_rules.create(
        name="production answers", enabled=True, sampling=0.5,
        filter=[{"type": "string", "column": "environment", "operator": "=", "value": "production"}],
        evaluator_assignments=[EvaluationRuleEvaluatorAssignmentInput(
            evaluator_id=created.id,
            variable_mapping=[PromptVariableMappingInput(variable="input", source="input"),
                              PromptVariableMappingInput(variable="output", source="output")],
        )],
    )
    assert rule.enabled and rule.sampling == 0.5 and rule.evaluator_assignments[0].evaluator_id == created.id
    assert EvaluationRule.objects.get(pk=rule.id).filter[0]["column"] == "environment"

    fetched = api.evaluators.get(created.id)
    assert fetched.evaluation_rule_assignments[0].evaluation_rule_id == rule.id
    versions = api.evaluators.list_versions(created.id)
    assert [v.version for v in versions.data] == [1]

    updated = api.evaluation_rules.update(rule.id, enabled=False)
    assert updated.enabled is False
    assert [r.id for r in api.evaluation_rules.list().data] == [rule.id]
    api.evaluation_rules.delete(rule.id)
    api.evaluators.delete(created.id)
    assert not Evaluator.objects.filter(pk=created.id).exists()
