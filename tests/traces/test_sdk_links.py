"""The addresses Langfuse clients use outside our API: trace links the SDKs print, and Langfuse
routes we do not implement (JSON in Langfuse's error shape, never Django's HTML 404)."""

import pytest

from tests.factories import MembershipFactory, ProjectFactory
from traces.models import Trace


@pytest.fixture
def stored_trace(project):
    return Trace.objects.for_project(project).create(id="t-link/1", name="chat")


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unimplemented_langfuse_routes_answer_json_404(client, method):
    response = getattr(client, method)("/api/public/annotation-queues/q1/items")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "LangfuseNotFoundError"
    assert "annotation-queues" in body["message"]


def test_implemented_routes_are_not_shadowed_by_the_catch_all(client, api_key):
    response = client.get("/api/public/traces", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200


def test_sdk_project_trace_link_opens_the_console_trace_page(client, owner, project, stored_trace):
    link = f"/project/{project.id}/traces/t-link%2F1"
    anonymous = client.get(link, follow=True)
    assert anonymous.redirect_chain and "/login/" in anonymous.redirect_chain[-1][0]
    client.force_login(owner)
    response = client.get(link, follow=True)
    assert response.status_code == 200
    assert b"t-link/1" in response.content


def test_sdk_v2_trace_link_finds_the_project_after_login(client, owner, project, stored_trace):
    response = client.get("/trace/t-link%2F1")
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(owner)
    response = client.get("/trace/t-link%2F1", follow=True)
    assert response.status_code == 200
    assert str(project.id) in response.redirect_chain[-1][0]
    assert b"t-link/1" in response.content


def test_sdk_links_never_open_another_organizations_trace(client, other_owner, project, stored_trace):
    # Same region as the trace: a missing project filter would be visible here.
    neighbour = ProjectFactory(region=project.region)
    MembershipFactory(organization=neighbour.organization, user=other_owner, role="owner")
    client.force_login(other_owner)
    assert client.get("/trace/t-link%2F1").status_code == 404
    assert client.get(f"/project/{project.id}/traces/t-link%2F1", follow=True).status_code == 404
