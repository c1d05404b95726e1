"""Helpers for the playground and replay tests (Django client and browser)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from evals import eval_services
from ingest.services import ingest_langfuse_batch
from prompts import services as prompt_services
from prompts.payloads import parse_create

RECORDED = "The Eiffel tower stands in Paris, France."
NEW = "The Eiffel Tower is in Paris, on the Champ de Mars."


def iso(moment):
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_generation(project, trace_id="t-1", *, prompt=None, model="replay-model"):
    """One trace with one generation, as the langfuse SDK's OpenAI integration records it."""
    at = datetime.now(UTC) - timedelta(minutes=5)
    messages = [{"role": "system", "content": "You answer in one sentence."},
                {"role": "user", "content": "Where is the Eiffel tower?"}]
    generation = {
        "id": f"{trace_id}-gen", "traceId": trace_id, "name": "llm", "startTime": iso(at),
        "endTime": iso(at + timedelta(seconds=1)), "model": model,
        "modelParameters": {"temperature": 0.2, "max_tokens": 300, "stream": True, "seed": 7},
        "input": messages, "output": {"role": "assistant", "content": RECORDED},
        "usage": {"input": 10, "output": 20, "total": 30},
    }
    if prompt:
        generation.update(promptName=prompt[0], promptVersion=prompt[1])
    batch = [{"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": iso(at),
              "body": {"id": trace_id, "name": "chat", "timestamp": iso(at), "input": messages}},
             {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": iso(at), "body": generation}]
    result = ingest_langfuse_batch(project=project, payload={"batch": batch})
    assert not result.errors, result.errors
    return generation["id"]


def make_prompt(project, name, prompt, labels=(), config=None):
    return prompt_services.prompt_create_version(
        project=project, data=parse_create({"name": name, "prompt": prompt, "labels": list(labels), "config": config or {}}),
        actor=None,
    )


def connect(project, server, *, timeout=5.0):
    connection, _ = eval_services.connection_upsert(
        project=project, provider="openai", adapter="openai", secret_key="sk-test-1234567890abcdef",
        base_url=server.url, default_model="default-model", max_retries=0, timeout_seconds=timeout,
    )
    return connection
