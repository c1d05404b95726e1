"""Review rules: user feedback (thumbs-down) or any score condition becomes an item of a review
dataset, with the source trace and the comment, exactly once per trace — through the real ingest
paths (browser feedback, REST scores, ingestion batches), the on-commit task on the region queue
(run eagerly here), and the management API with its isolation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from config.celery import app as celery_app
from evals.models import Dataset, DatasetItem
from evals.models_review import ReviewRule
from evals.review import review_items_from_scores
from evals.review_services import review_item_id
from feedback import ratelimit
from scores.models import Score
from tenancy.models import AuditLogEntry, Role
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
THUMBS_DOWN = {"name": "thumbs-down", "dataset_name": "review/thumbs-down", "source": "USER", "data_type": "BOOLEAN",
               "operator": "eq", "value": 0}


@pytest.fixture(autouse=True)
def _eager_tasks(monkeypatch):
    # The task is published on commit to the region queue; run it in-process so the test sees it.
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def rules_url(project) -> str:
    return f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/review-rules/"


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def seed_trace(project, trace_id="t1", question="refund?", answer="no refunds, ever"):
    Trace.objects.for_project(project).create(id=trace_id, timestamp=T0, input={"question": question},
                                              output={"answer": answer})


def feedback(client, key, **body):
    return client.post(
        "/api/v1/feedback", data=json.dumps(body), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key.public}",
    )


def items(project):
    return list(DatasetItem.objects.for_project(project).order_by("created_at"))


def test_a_thumbs_down_from_the_browser_lands_exactly_one_review_item(client, project, api_key, owner):
    response = api_for(owner).post(rules_url(project), THUMBS_DOWN, format="json")
    assert response.status_code == 201, response.content
    rule = ReviewRule.objects.get(id=response.json()["id"])
    seed_trace(project)

    assert feedback(client, api_key, trace_id="t1", rating="down", user_id="u1", comment="wrong policy").status_code == 201
    [item] = items(project)
    dataset = Dataset.objects.for_project(project).get(name="review/thumbs-down")
    assert item.id == review_item_id(rule=rule, dataset_id=dataset.id, trace_id="t1", observation_id="")
    assert (item.dataset_id, item.source_trace_id, item.source_observation_id) == (dataset.id, "t1", None)
    assert item.input == {"question": "refund?"} and item.expected_output is None
    assert item.metadata["comment"] == "wrong policy"
    assert item.metadata["output"] == {"answer": "no refunds, ever"}
    assert item.metadata["score"]["authorUserId"] == "u1" and item.metadata["review_rule"]["name"] == "thumbs-down"

    # Another user's thumbs-down on the same trace, the same user again, and the task run once more:
    # still one item.
    assert feedback(client, api_key, trace_id="t1", rating="down", user_id="u2").status_code == 201
    assert feedback(client, api_key, trace_id="t1", rating="down", user_id="u1", comment="still wrong").status_code == 200
    score_ids = list(Score.objects.for_project(project).values_list("id", flat=True))
    assert review_items_from_scores.apply(
        kwargs={"project_id": str(project.id), "score_ids": score_ids, "rule_ids": [str(rule.id)]}
    ).get() == {"exists": 2}
    assert len(items(project)) == 1

    # A thumbs-up is not a review item.
    seed_trace(project, "t2")
    assert feedback(client, api_key, trace_id="t2", rating="up", user_id="u1").status_code == 201
    assert len(items(project)) == 1


def test_any_score_condition_through_the_scores_api_and_ingestion_batches(client, project, api_key, owner):
    rule = {"name": "low quality", "dataset_name": "review/quality", "score_name": "quality", "operator": "lt",
            "value": 0.5, "require_comment": True}
    assert api_for(owner).post(rules_url(project), rule, format="json").status_code == 201
    for trace_id in ("t1", "t2", "t3", "t4"):
        seed_trace(project, trace_id)
    Observation.objects.for_project(project).create(
        id="t4-llm", trace_id="t4", type="GENERATION", name="llm", start_time=T0,
        input=[{"role": "user", "content": "refund?"}], output={"role": "assistant", "content": "never"},
    )

    def score(body):
        return client.post("/api/public/scores", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)

    assert score({"traceId": "t1", "name": "quality", "value": 0.2, "comment": "hallucinated a policy"}).status_code == 200
    assert score({"traceId": "t2", "name": "quality", "value": 0.9, "comment": "fine"}).status_code == 200
    assert score({"traceId": "t3", "name": "quality", "value": 0.1}).status_code == 200  # no comment
    batch = {"batch": [{"id": "e1", "type": "score-create", "timestamp": T0.isoformat(), "body": {
        "id": "s4", "traceId": "t4", "observationId": "t4-llm", "name": "quality", "value": 0, "comment": "bad"}}]}
    response = client.post("/api/public/ingestion", data=json.dumps(batch), content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 207 and not response.json()["errors"]

    made = {(i.source_trace_id, i.source_observation_id): i for i in items(project)}
    assert set(made) == {("t1", None), ("t4", "t4-llm")}
    assert made[("t1", None)].metadata["comment"] == "hallucinated a policy"
    # A score on an observation reviews that observation's input and output.
    assert made[("t4", "t4-llm")].input == [{"role": "user", "content": "refund?"}]
    assert made[("t4", "t4-llm")].metadata["output"] == {"role": "assistant", "content": "never"}


def test_disabled_rules_and_other_tenants_rules_do_not_fire(client, project, api_key, owner, other_project,
                                                            other_owner, far_project, far_owner, other_api_key):
    response = api_for(owner).post(rules_url(project), {**THUMBS_DOWN, "enabled": False}, format="json")
    assert response.status_code == 201
    for tenant, person in ((other_project, other_owner), (far_project, far_owner)):
        assert api_for(person).post(rules_url(tenant), THUMBS_DOWN, format="json").status_code == 201
    seed_trace(project)
    assert feedback(client, api_key, trace_id="t1", rating="down", user_id="u1").status_code == 201
    assert items(project) == []
    assert items(other_project) == [] and items(far_project) == []

    # The other tenant's own thumbs-down lands in its own region only.
    seed_trace(other_project)
    assert feedback(client, other_api_key, trace_id="t1", rating="down", user_id="u1").status_code == 201
    assert len(items(other_project)) == 1 and items(project) == [] and items(far_project) == []


def test_the_management_api_roles_validation_audit_and_isolation(project, owner, member_of, other_owner, far_owner):
    api = api_for(owner)
    response = api.post(rules_url(project), THUMBS_DOWN, format="json")
    assert response.status_code == 201
    body = response.json()
    detail = f"{rules_url(project)}{body['id']}/"
    assert body["operator"] == "eq" and body["value"] == 0 and body["project_id"] == str(project.id)
    assert AuditLogEntry.objects.filter(action="review_rule.created", target_id=body["id"]).exists()

    assert api.post(rules_url(project), THUMBS_DOWN, format="json").status_code == 400  # same name
    bad = api.post(rules_url(project), {**THUMBS_DOWN, "name": "x", "string_value": "bad"}, format="json")
    assert bad.status_code == 400 and "value" in bad.json()
    assert api.post(rules_url(project), {**THUMBS_DOWN, "name": "y", "valeu": 1}, format="json").status_code == 400
    assert api.post(rules_url(project), {**THUMBS_DOWN, "name": "z", "operator": "~"}, format="json").status_code == 400

    changed = api.patch(detail, {"enabled": False}, format="json")
    assert changed.status_code == 200 and changed.json()["enabled"] is False

    viewer = api_for(member_of(project.organization, Role.VIEWER))
    assert viewer.get(detail).status_code == 200
    assert viewer.patch(detail, {"enabled": True}, format="json").status_code == 403
    member = api_for(member_of(project.organization, Role.MEMBER))
    assert member.post(rules_url(project), {**THUMBS_DOWN, "name": "m"}, format="json").status_code == 403

    for stranger in (other_owner, far_owner):
        client = api_for(stranger)
        assert client.get(rules_url(project)).status_code == 404
        assert client.get(detail).status_code == 404
        assert client.delete(detail).status_code == 404
    assert api.delete(detail).status_code == 204
    assert not ReviewRule.objects.filter(id=body["id"]).exists()


def test_a_score_before_its_trace_is_retried_and_the_item_made_once_the_trace_is_there(client, project, api_key,
                                                                                       owner):
    response = api_for(owner).post(rules_url(project), THUMBS_DOWN, format="json")
    rule_id = response.json()["id"]
    assert feedback(client, api_key, trace_id="late", rating="down", user_id="u1").status_code == 201
    assert items(project) == []  # every retry found no trace (eager retries run at once here)
    seed_trace(project, "late")
    score_ids = list(Score.objects.for_project(project).values_list("id", flat=True))
    result = review_items_from_scores.apply(
        kwargs={"project_id": str(project.id), "score_ids": score_ids, "rule_ids": [rule_id]}
    ).get()
    assert result == {"created": 1}
    assert [i.source_trace_id for i in items(project)] == ["late"]


def test_score_batches_read_the_rules_from_the_cache_and_see_changes_at_once(client, project, api_key, owner):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    seed_trace(project, "c1")
    seed_trace(project, "c2")

    def score(trace_id, value):
        return client.post("/api/public/scores", data=json.dumps({"traceId": trace_id, "name": "quality", "value": value}),
                           content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)

    assert score("c1", 0.1).status_code == 200  # no rule yet: the (empty) list is cached
    with CaptureQueriesContext(connections["default"]) as control:
        assert score("c1", 0.1).status_code == 200
    assert not [q for q in control.captured_queries if ReviewRule._meta.db_table in q["sql"]]
    # A rule created after the cache was warmed applies to the very next score.
    rule = {"name": "low", "dataset_name": "review/low", "score_name": "quality", "operator": "lt", "value": 0.5}
    assert api_for(owner).post(rules_url(project), rule, format="json").status_code == 201
    assert score("c2", 0.2).status_code == 200
    assert {i.source_trace_id for i in items(project)} == {"c2"}
