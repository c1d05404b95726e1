"""The console's Judge pages, server-side: datasets with items and runs, a run's summary, two runs
side by side with the regressions, evaluators and rules with their job states, switching a rule on
and off (POST, CSRF, members). Another organization's dataset, run or rule answers 404."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from evals.evaluation_models import EvalJob, EvaluationRule
from tenancy.models import Role
from tests.console.judge_support import seed_runs
from tests.console.support import url
from tests.evals.evalkit import judge_evaluator


@pytest.fixture
def runs(project):
    return seed_runs(project)


@pytest.fixture
def rule(project):
    evaluator = judge_evaluator(project, name="correctness")
    rule = EvaluationRule.objects.create(project=project, name="prod answers", enabled=True, target="trace",
                                         assignments=[{"evaluatorId": str(evaluator.pk), "variableMapping": None}])
    version = evaluator.versions.get()
    for index, (status, error) in enumerate([("pending", ""), ("delayed", ""), ("completed", ""),
                                             ("error", "judge answered 500: upstream overloaded")]):
        EvalJob.objects.for_project(project).create(
            id=f"job-{index}", rule_id=rule.id, evaluator_id=evaluator.id, evaluator_version_id=version.id,
            target="trace", trace_id=f"t-{index}", status=status, error=error)
    return rule


@pytest.mark.parametrize("page", ["datasets", "evaluators"])
def test_judge_lists_of_another_organization_answer_404(client, member, other_project, far_project, page):
    assert client.get(url(page, other_project)).status_code == 404
    assert client.get(url(page, far_project)).status_code == 404


def test_another_organizations_dataset_run_and_rule_answer_404(client, member, project, other_project, far_project):
    for stranger in (other_project, far_project):
        dataset, runs = seed_runs(stranger)
        theirs = EvaluationRule.objects.create(project=stranger, name="theirs", enabled=False)
        base, cand = runs["baseline"].id, runs["candidate"].id
        for path in (url("dataset", stranger, dataset.id), url("run", stranger, dataset.id, base),
                     url("run_compare", stranger, dataset.id) + f"?baseline={base}&candidate={cand}",
                     url("eval_rule", stranger, theirs.id),
                     # Their objects under our project's address: not found either.
                     url("dataset", project, dataset.id), url("run", project, dataset.id, base),
                     url("run_compare", project, dataset.id) + f"?baseline={base}&candidate={cand}",
                     url("eval_rule", project, theirs.id)):
            assert client.get(path).status_code == 404, path
        for target in (stranger, project):
            response = client.post(url("eval_rule_enabled", target, theirs.id), {"enabled": "1"})
            assert response.status_code == 404
        theirs.refresh_from_db()
        assert theirs.enabled is False


def test_a_dataset_lists_its_items_and_runs(client, member, project, runs):
    dataset, made = runs
    response = client.get(url("datasets", project))
    assert url("dataset", project, dataset.id).encode() in response.content
    response = client.get(url("dataset", project, dataset.id))
    assert response.status_code == 200
    assert {item.id for item, _ in response.context["items"]} == {"i0", "i1", "i2"}
    assert [r.name for r in response.context["runs"]] == ["candidate", "baseline"]
    assert b"question i1" in response.content
    assert client.get(url("dataset", project, uuid.uuid4())).status_code == 404


def test_a_run_shows_its_summary_and_items(client, member, project, runs):
    dataset, made = runs
    response = client.get(url("run", project, dataset.id, made["baseline"].id))
    assert response.status_code == 200
    (accuracy,) = response.context["summary"]["evaluators"]
    assert accuracy["name"] == "accuracy" and accuracy["count"] == 3
    assert round(accuracy["average"], 4) == round((1.0 + 0.9 + 0.2) / 3, 4)
    assert b"/traces/baseline-i1/" in response.content


def test_two_runs_side_by_side_show_the_regression(client, member, project, runs):
    dataset, made = runs
    response = client.get(url("run_compare", project, dataset.id),
                          {"baseline": made["baseline"].id, "candidate": made["candidate"].id})
    assert response.status_code == 200
    assert response.context["compare"]["regressions"] == [
        {"datasetItemId": "i1", "name": "accuracy", "baseline": 0.9, "candidate": 0.1}]
    regressed = [row["item"] for row in response.context["rows"] if row["regressed"]]
    assert regressed == ["i1"]
    assert b'id="lg-regression-count">1<' in response.content
    # Without a choice: the previous run against the latest.
    default = client.get(url("run_compare", project, dataset.id))
    assert (default.context["baseline"], default.context["candidate"]) == (made["baseline"], made["candidate"])
    assert client.get(url("run_compare", project, dataset.id), {"baseline": "nope", "candidate": "x"}).status_code == 404


def test_rules_show_their_job_states_and_errors(client, member, project, rule):
    response = client.get(url("evaluators", project))
    assert response.status_code == 200
    (row,) = response.context["rules"]
    assert row["counts"] == {"pending": 1, "delayed": 1, "completed": 1, "error": 1}
    assert row["evaluators"] == ["correctness"]
    detail = client.get(url("eval_rule", project, rule.id), {"status": "error"})
    assert [j.id for j, _ in detail.context["jobs"]] == ["job-3"]
    assert b"judge answered 500: upstream overloaded" in detail.content
    assert client.get(url("eval_rule", project, rule.id), {"status": "bogus"}).status_code == 404


def test_switching_a_rule_off_and_on_is_a_post_with_csrf_for_members(
    client, organization, member_of, member, project, rule
):
    response = client.post(url("eval_rule_enabled", project, rule.id), {"enabled": "0"})
    assert response.status_code == 302 and response["Location"] == url("evaluators", project)
    rule.refresh_from_db()
    assert (rule.enabled, rule.status) == (False, "inactive")
    response = client.post(url("eval_rule_enabled", project, rule.id), {"enabled": "1", "back": "rule"})
    assert response["Location"] == url("eval_rule", project, rule.id)
    rule.refresh_from_db()
    assert rule.enabled is True
    assert client.get(url("eval_rule_enabled", project, rule.id)).status_code == 405
    # Without the CSRF token: refused.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post(url("eval_rule_enabled", project, rule.id), {"enabled": "0"}).status_code == 403
    # Viewers read but do not switch.
    viewer = Client()
    viewer.force_login(member_of(organization, Role.VIEWER))
    assert viewer.post(url("eval_rule_enabled", project, rule.id), {"enabled": "0"}).status_code == 403
    assert b"Switch off" not in viewer.get(url("evaluators", project)).content
    rule.refresh_from_db()
    assert rule.enabled is True


def test_a_dataset_without_a_description_shows_none_of_it(client, member, project):
    from evals.models import Dataset

    Dataset.objects.for_project(project).create(name="bare-set", description=None)
    response = client.get(url("datasets", project))
    assert b"bare-set" in response.content
    assert b"<td>None</td>" not in response.content
