"""The real Langfuse SDKs manage prompts against a live server: the latest (installed here) and v2
(in its own cached virtualenv, through tests/clients.py)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from prompts import cache
from tests.clients import SdkUnavailable, run_sdk_script, sdk_python
from traces.models import Observation

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
def _fresh_local_cache():
    cache.local.clear()
    yield
    cache.local.clear()


def _sdk(live_server, key):
    from langfuse import Langfuse

    # Our own HTTP client, closed after the test: a kept-alive socket would pin a live-server thread
    # and its database connections past the end of the run.
    http = httpx.Client()
    client = Langfuse(
        public_key=key.public,
        secret_key=key.secret,
        base_url=live_server.url,
        tracing_enabled=False,
        httpx_client=http,
    )
    return client, http


@pytest.fixture
def langfuse(live_server, api_key):
    client, http = _sdk(live_server, api_key)
    yield client
    client.shutdown()
    http.close()


def test_the_latest_sdk_creates_and_fetches_text_prompts(langfuse):
    created = langfuse.create_prompt(
        name="sdk/greeting",
        prompt="Hello {{name}}, welcome to {{place}}!",
        labels=["production"],
        tags=["demo"],
        config={"model": "gpt-4o", "temperature": 0.2},
        commit_message="first",
    )
    assert (created.name, created.version, created.commit_message) == ("sdk/greeting", 1, "first")
    langfuse.create_prompt(name="sdk/greeting", prompt="Hi {{name}} (v2)", labels=["staging"])

    production = langfuse.get_prompt("sdk/greeting", cache_ttl_seconds=0)
    assert production.version == 1
    assert production.config == {"model": "gpt-4o", "temperature": 0.2}
    assert production.tags == ["demo"]
    assert sorted(production.labels) == ["production"]
    assert production.compile(name="Ada", place="Paris") == "Hello Ada, welcome to Paris!"
    assert production.is_fallback is False

    staging = langfuse.get_prompt("sdk/greeting", label="staging", cache_ttl_seconds=0)
    assert (staging.version, staging.prompt) == (2, "Hi {{name}} (v2)")
    assert sorted(staging.labels) == ["latest", "staging"]
    assert langfuse.get_prompt("sdk/greeting", version=1, cache_ttl_seconds=0).prompt.startswith("Hello")


def test_the_latest_sdk_creates_chat_prompts_with_placeholders(langfuse):
    langfuse.create_prompt(
        name="chatty",
        type="chat",
        labels=["production"],
        prompt=[
            {"role": "system", "content": "You are {{persona}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"},
        ],
    )
    prompt = langfuse.get_prompt("chatty", type="chat", cache_ttl_seconds=0)
    assert prompt.variables == ["persona", "question"]
    compiled = prompt.compile(
        persona="a pirate", question="Where?", history=[{"role": "user", "content": "hi"}]
    )
    assert compiled == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "Where?"},
    ]


def test_the_latest_sdk_moves_labels_and_the_next_fetch_sees_it(langfuse):
    langfuse.create_prompt(name="moving", prompt="one", labels=["production"])
    langfuse.create_prompt(name="moving", prompt="two")
    assert langfuse.get_prompt("moving", cache_ttl_seconds=0).prompt == "one"
    updated = langfuse.update_prompt(name="moving", version=2, new_labels=["production"])
    assert sorted(updated.labels) == ["latest", "production"]
    assert langfuse.get_prompt("moving", cache_ttl_seconds=0).prompt == "two"
    assert langfuse.get_prompt("moving", version=1, cache_ttl_seconds=0).labels == []


def test_the_latest_sdk_gets_a_not_found_error_and_falls_back(langfuse):
    from langfuse.api import NotFoundError

    with pytest.raises(NotFoundError):
        langfuse.get_prompt("nowhere", cache_ttl_seconds=0, max_retries=0)
    fallback = langfuse.get_prompt("nowhere", cache_ttl_seconds=0, max_retries=0, fallback="Hi {{x}}")
    assert fallback.is_fallback and fallback.compile(x="there") == "Hi there"


def test_the_compile_preview_matches_what_the_sdk_compiles(langfuse, live_server, api_key):
    langfuse.create_prompt(name="preview", prompt="Dear {{ who }}, {{what}} {{who}}", labels=["production"])
    variables = {"who": "Ada", "unused": 1}
    preview = httpx.post(
        f"{live_server.url}/api/public/v2/prompts/preview/compile",
        json={"variables": variables},
        auth=(api_key.public, api_key.secret),
    ).json()
    assert preview["prompt"] == langfuse.get_prompt("preview", cache_ttl_seconds=0).compile(**variables)
    assert (preview["missing"], preview["unused"]) == (["what"], ["unused"])


def test_another_projects_sdk_cannot_see_the_prompt(langfuse, live_server, other_api_key):
    from langfuse.api import NotFoundError

    langfuse.create_prompt(name="private", prompt="ours", labels=["production"])
    other, http = _sdk(live_server, other_api_key)
    try:
        with pytest.raises(NotFoundError):
            other.get_prompt("private", cache_ttl_seconds=0, max_retries=0)
    finally:
        other.shutdown()
        http.close()


V2_SCRIPT = """
import json, os
from langfuse import Langfuse

lf = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
name = os.environ["NAME"]
lf.create_prompt(name=name, prompt="Hello {{name}}", labels=["production"], config={"model": "m"})
lf.create_prompt(name=name, prompt="Hi {{name}}", labels=["staging"])
lf.create_prompt(name=name + "-chat", type="chat", labels=["production"],
                 prompt=[{"role": "system", "content": "Be {{tone}}"}])
out = {
    "default": lf.get_prompt(name, cache_ttl_seconds=0).compile(name="Ada"),
    "staging": lf.get_prompt(name, label="staging", cache_ttl_seconds=0).version,
    "v1_config": lf.get_prompt(name, version=1, cache_ttl_seconds=0).config,
    "chat": lf.get_prompt(name + "-chat", type="chat", cache_ttl_seconds=0).compile(tone="brief"),
}
lf.update_prompt(name=name, version=2, new_labels=["production"])
out["after_move"] = lf.get_prompt(name, cache_ttl_seconds=0).version
print(json.dumps(out))
"""


def test_the_v2_sdk_manages_prompts(live_server, api_key):
    try:
        python = sdk_python("langfuse-v2", "langfuse==2.60.*")
    except SdkUnavailable as exc:
        pytest.skip(f"langfuse v2 could not be installed: {exc}")
    name = f"v2/folder/{uuid.uuid4().hex[:8]}"
    out = run_sdk_script(
        python,
        V2_SCRIPT,
        env={
            "PK": api_key.public,
            "SK": api_key.secret,
            "HOST": live_server.url,
            "NAME": name,
        },
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {
        "default": "Hello Ada",
        "staging": 2,
        "v1_config": {"model": "m"},
        "chat": [{"role": "system", "content": "Be brief"}],
        "after_move": 2,
    }


LINKED_GENERATION_SCRIPT = """
import os
from langfuse import Langfuse

lf = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], base_url=os.environ["HOST"])
prompt = lf.get_prompt("linked/answer", cache_ttl_seconds=0)
with lf.start_as_current_observation(as_type="generation", name="answer", model="gpt-4o-mini",
                                     prompt=prompt, input=prompt.compile(topic="refunds")) as generation:
    generation.update(output="ok")
lf.flush()
lf.shutdown()
print(prompt.version)
"""


def test_a_generation_made_with_a_fetched_prompt_is_linked_and_compared(
    langfuse, live_server, api_key, project
):
    langfuse.create_prompt(name="linked/answer", prompt="Explain {{topic}}", labels=["production"])
    langfuse.create_prompt(name="linked/answer", prompt="Explain {{topic}} briefly", labels=["production"])
    stdout = run_sdk_script(
        Path(sys.executable),
        LINKED_GENERATION_SCRIPT,
        timeout=60,
        env={
            "PK": api_key.public,
            "SK": api_key.secret,
            "HOST": live_server.url,
        },
    )
    assert stdout.strip().splitlines()[-1] == "2"
    generation = Observation.objects.for_project(project).get(name="answer")
    assert (generation.prompt_name, generation.prompt_version) == ("linked/answer", 2)

    metrics = httpx.get(
        f"{live_server.url}/api/public/v2/prompts/linked%2Fanswer/metrics",
        auth=(api_key.public, api_key.secret),
    ).json()
    assert [(v["version"], v["calls"]) for v in metrics["versions"]] == [(2, 1), (1, 0)]
