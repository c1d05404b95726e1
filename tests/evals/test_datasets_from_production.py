"""Items from production: "add to dataset" from a trace or an observation, through the management API
(session auth, project-scoped) and the console's trace page (a POST form with CSRF)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from evals.models import Dataset, DatasetItem
from evals.services import dataset_upsert
from tenancy.models import Role
from traces.models import Observation, Trace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def from_trace_url(project) -> str:
    return f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/dataset-items/from-trace"


def seed(project, trace_id="prod-1"):
    Trace.objects.for_project(project).create(
        id=trace_id, timestamp=T0, input={"question": "refund?"}, output={"answer": "yes"}
    )
    Observation.objects.for_project(project).create(
        id=f"{trace_id}-llm", trace_id=trace_id, type="GENERATION", name="llm", start_time=T0,
        input=[{"role": "user", "content": "refund?"}], output={"role": "assistant", "content": "yes"},
    )


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_login(owner)
    return client


@pytest.fixture
def dataset(project):
    return dataset_upsert(project=project, fields={"name": "review"}, actor=None)


def test_a_trace_is_added_with_its_input_and_output(api, project, dataset):
    seed(project)
    response = api.post(from_trace_url(project), {"dataset_name": "review", "trace_id": "prod-1"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["input"], body["expected_output"]) == ({"question": "refund?"}, {"answer": "yes"})
    assert (body["source_trace_id"], body["source_observation_id"], body["dataset_name"]) == ("prod-1", None, "review")
    item = DatasetItem.objects.for_project(project).get(id=body["id"])
    assert (item.dataset_id, item.status) == (dataset.id, "ACTIVE")


def test_an_observation_is_added_with_its_own_input_and_output(api, project, dataset):
    seed(project)
    response = api.post(
        from_trace_url(project),
        {"dataset_name": "review", "trace_id": "prod-1", "observation_id": "prod-1-llm"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["input"] == [{"role": "user", "content": "refund?"}]
    assert body["expected_output"] == {"role": "assistant", "content": "yes"}
    assert (body["source_trace_id"], body["source_observation_id"]) == ("prod-1", "prod-1-llm")


def test_the_same_source_twice_in_one_dataset_is_refused(api, project, dataset):
    seed(project)
    url = from_trace_url(project)
    assert api.post(url, {"dataset_name": "review", "trace_id": "prod-1"}, format="json").status_code == 201
    again = api.post(url, {"dataset_name": "review", "trace_id": "prod-1"}, format="json")
    assert again.status_code == 409
    assert "already in dataset 'review'" in again.json()["detail"]
    # The observation is another source; another dataset may hold the same trace.
    observation = {"dataset_name": "review", "trace_id": "prod-1", "observation_id": "prod-1-llm"}
    assert api.post(url, observation, format="json").status_code == 201
    assert api.post(url, observation, format="json").status_code == 409
    dataset_upsert(project=project, fields={"name": "golden"}, actor=None)
    assert api.post(url, {"dataset_name": "golden", "trace_id": "prod-1"}, format="json").status_code == 201
    assert DatasetItem.objects.for_project(project).count() == 3


def test_missing_sources_and_datasets_are_404_and_schema_misfits_400(api, project, dataset, other_project):
    seed(project)
    seed(other_project, "theirs")
    url = from_trace_url(project)
    assert api.post(url, {"dataset_name": "review", "trace_id": "nope"}, format="json").status_code == 404
    # Another tenant's trace in the same region is as absent as a missing one.
    assert api.post(url, {"dataset_name": "review", "trace_id": "theirs"}, format="json").status_code == 404
    wrong_obs = {"dataset_name": "review", "trace_id": "prod-1", "observation_id": "theirs-llm"}
    assert api.post(url, wrong_obs, format="json").status_code == 404
    assert api.post(url, {"dataset_name": "nope", "trace_id": "prod-1"}, format="json").status_code == 404
    assert api.post(url, {"trace_id": "prod-1"}, format="json").status_code == 400
    dataset_upsert(project=project, fields={"name": "strict", "input_schema": {"type": "string"}}, actor=None)
    misfit = api.post(url, {"dataset_name": "strict", "trace_id": "prod-1"}, format="json")
    assert misfit.status_code == 400
    assert misfit.json()["detail"].startswith("Dataset item validation failed")
    assert DatasetItem.objects.for_project(project).count() == 0


def test_viewers_cannot_add_and_other_organizations_get_404(project, dataset, member_of, other_owner):
    seed(project)
    viewer = APIClient()
    viewer.force_login(member_of(project.organization, Role.VIEWER))
    body = {"dataset_name": "review", "trace_id": "prod-1"}
    assert viewer.post(from_trace_url(project), body, format="json").status_code == 403
    stranger = APIClient()
    stranger.force_login(other_owner)
    assert stranger.post(from_trace_url(project), body, format="json").status_code == 404
    assert DatasetItem.objects.for_project(project).count() == 0


# --- console --------------------------------------------------------------------------------------


def trace_page(project, trace_id="prod-1"):
    return reverse("admin:traces_trace_detail", args=[project.id, trace_id])


def add_url(project):
    return reverse("admin:evals_add_to_dataset", kwargs={"project_id": project.id})


def test_the_trace_page_offers_the_datasets_and_adds_with_csrf(project, dataset, member_of):
    seed(project)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member_of(project.organization, Role.MEMBER))
    page = client.get(trace_page(project))
    content = page.content.decode()
    assert 'id="lg-add-to-dataset-form"' in content
    assert '<option value="review">review</option>' in content
    assert 'value="prod-1-llm"' in content
    token = page.cookies["csrftoken"].value

    # Without the CSRF token the post is refused and nothing is stored.
    refused = client.post(add_url(project), {"dataset": "review", "trace_id": "prod-1"})
    assert refused.status_code == 403
    assert DatasetItem.objects.for_project(project).count() == 0

    added = client.post(
        add_url(project),
        {"dataset": "review", "trace_id": "prod-1", "observation_id": "prod-1-llm", "csrfmiddlewaretoken": token},
        follow=True,
    )
    assert added.redirect_chain[-1][0] == trace_page(project)
    assert "was added to dataset" in added.content.decode()
    item = DatasetItem.objects.for_project(project).get()
    assert (item.source_trace_id, item.source_observation_id) == ("prod-1", "prod-1-llm")
    assert 'id="lg-dataset-memberships"' in added.content.decode()

    twice = client.post(
        add_url(project),
        {"dataset": "review", "trace_id": "prod-1", "observation_id": "prod-1-llm", "csrfmiddlewaretoken": token},
        follow=True,
    )
    assert "already in dataset" in twice.content.decode()
    assert DatasetItem.objects.for_project(project).count() == 1


def test_viewers_see_no_form_and_cannot_post(client, project, dataset, member_of):
    seed(project)
    client.force_login(member_of(project.organization, Role.VIEWER))
    assert 'id="lg-add-to-dataset-form"' not in client.get(trace_page(project)).content.decode()
    assert client.post(add_url(project), {"dataset": "review", "trace_id": "prod-1"}).status_code == 403
    assert client.get(add_url(project)).status_code == 405
    assert DatasetItem.objects.for_project(project).count() == 0


def test_another_organizations_trace_cannot_be_added_from_the_console(client, project, other_project, other_owner):
    seed(project)
    dataset_upsert(project=other_project, fields={"name": "review"}, actor=None)
    client.force_login(other_owner)
    response = client.post(add_url(project), {"dataset": "review", "trace_id": "prod-1"})
    assert response.status_code == 404
    assert not DatasetItem.objects.for_project(project).exists()
    assert not DatasetItem.objects.for_project(other_project).exists()
    assert Dataset.objects.for_project(project).count() == 0
