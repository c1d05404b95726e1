"""Helpers of the evaluation tests: stored traces through the ingest pipeline, API calls, a fake
judge connection."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from evals import eval_services
from ingest.services import ingest_langfuse_batch


def ingest(project, *events):
    result = ingest_langfuse_batch(project=project, payload={"batch": list(events)})
    assert not result.errors, result.errors
    return result


def trace_event(trace_id, *, name="chat", environment="production", input="What is 2+2?", output="4", tags=None,
                metadata=None, timestamp=None):
    body = {"id": trace_id, "name": name, "environment": environment, "input": input, "output": output,
            "tags": tags or [], "metadata": metadata or {}}
    if timestamp:
        body["timestamp"] = timestamp.isoformat()
    return {"id": f"ev-{trace_id}", "type": "trace-create", "timestamp": datetime.now(UTC).isoformat(), "body": body}


def generation_event(obs_id, trace_id, *, name="llm", environment="production", model="gpt-4o-mini", input="q",
                     output="a", start=None, metadata=None):
    start = start or datetime.now(UTC)
    body = {"id": obs_id, "traceId": trace_id, "name": name, "environment": environment, "model": model,
            "input": input, "output": output, "startTime": start.isoformat(), "endTime": start.isoformat(),
            "metadata": metadata or {}}
    return {"id": f"ev-{obs_id}", "type": "generation-create", "timestamp": datetime.now(UTC).isoformat(), "body": body}


def call(client, key, method, path, body=None, **params):
    kwargs = {"HTTP_AUTHORIZATION": key.basic}
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    if method == "GET":
        return client.get(path, params, **kwargs)
    return getattr(client, method.lower())(path, **kwargs)


def connect(project, judge, *, provider="openai", adapter="openai", model="judge-model"):
    connection, _ = eval_services.connection_upsert(
        project=project, provider=provider, adapter=adapter, secret_key="sk-test-1234567890abcdef",
        base_url=judge.url if adapter == "openai" else judge.url.removesuffix("/v1"), default_model=model,
        max_retries=0, timeout_seconds=5,
    )
    return connection


def judge_evaluator(project, *, name="correctness", template="correctness", **extra):
    return eval_services.evaluator_create(project=project, data={"name": name, "template": template, **extra})
