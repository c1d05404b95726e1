"""Reserved and blank prompt identifiers (issue 8): the `latest` label is moved by the system only,
and a prompt name must not be blank. Refused with a 400 on the API and by the services every other
path (the console included) goes through."""

from __future__ import annotations

import json

import pytest

from prompts import cache
from prompts.errors import InvalidRequest
from prompts.models import Prompt, PromptLabel
from prompts.payloads import PromptInput
from prompts.services import prompt_create_version, prompt_version_add_labels

BASE = "/api/public/v2/prompts"


@pytest.fixture(autouse=True)
def _fresh_local_cache():
    cache.local.clear()
    yield
    cache.local.clear()


def post(client, key, body):
    return client.post(BASE, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=key.basic)


@pytest.mark.parametrize("labels", [["latest"], ["production", "latest"]])
def test_creating_a_prompt_with_the_latest_label_is_refused(client, api_key, project, labels):
    response = post(client, api_key, {"name": "greeting", "prompt": "Hi", "labels": labels})

    assert response.status_code == 400
    assert response.json() == {
        "message": "the `latest` label is managed by the server: it always points at the newest version.",
        "error": "InvalidRequestError",
    }
    assert not Prompt.objects.for_project(project).exists()


@pytest.mark.parametrize("name", [" ", "   ", "\t", "\n ", "\u00a0"])
def test_a_blank_prompt_name_is_refused(client, api_key, project, name):
    response = post(client, api_key, {"name": name, "prompt": "Hi"})

    assert response.status_code == 400
    assert "cannot be blank" in response.json()["message"]
    assert not Prompt.objects.for_project(project).exists()


def test_names_with_inner_spaces_are_still_fine(client, api_key, project):
    assert post(client, api_key, {"name": "my prompt", "prompt": "Hi"}).status_code == 201


def _input(**overrides) -> PromptInput:
    values = {
        "name": "greeting", "type": "text", "text": "Hi", "messages": None, "config": {}, "labels": [],
        "tags": None, "commit_message": None, **overrides,
    }
    return PromptInput(**values)


@pytest.mark.parametrize("overrides", [{"name": " "}, {"labels": ["latest"]}])
def test_the_service_refuses_them_whatever_the_caller_parsed(project, owner, overrides):
    with pytest.raises(InvalidRequest):
        prompt_create_version(project=project, data=_input(**overrides), actor=owner)
    assert not Prompt.objects.for_project(project).exists()


def test_labels_cannot_move_latest_through_the_service(project, owner):
    prompt_create_version(project=project, data=_input(), actor=owner)
    prompt_create_version(project=project, data=_input(text="Hello"), actor=owner)

    with pytest.raises(InvalidRequest):
        prompt_version_add_labels(project=project, name="greeting", version=1, labels=["latest"], actor=owner)

    assert PromptLabel.objects.for_project(project).get(label="latest").version == 2
