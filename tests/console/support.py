"""Traces for the console's tests, stored through the real write path (ingest), so the monitoring
rollups the home page reads are filled as in production."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from ingest.services import create_scores, ingest_langfuse_batch


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event(kind: str, body: dict) -> dict:
    return {"id": uuid.uuid4().hex, "type": kind, "timestamp": iso(datetime.now(UTC)), "body": body}


def llm_call(
    project, trace_id: str, *, question: str, answer: str, at: datetime | None = None, name: str = "chat",
    user_id: str = "", session_id: str = "", model: str = "gpt-4o-mini", status: str = "", tags=(),
    metadata=None, cost: float = 0.001, seconds: float = 1.0, answer_on_trace: bool = True,
) -> None:
    """One trace holding one generation (question → answer)."""
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    trace = {"id": trace_id, "name": name, "timestamp": iso(at), "input": [{"role": "user", "content": question}],
             "tags": list(tags), "metadata": metadata or {}}
    if answer_on_trace:
        trace["output"] = {"role": "assistant", "content": answer}
    if user_id:
        trace["userId"] = user_id
    if session_id:
        trace["sessionId"] = session_id
    generation = {
        "id": f"{trace_id}-gen", "traceId": trace_id, "name": "llm", "startTime": iso(at),
        "endTime": iso(at + timedelta(seconds=seconds)), "model": model,
        "input": [{"role": "user", "content": question}], "output": {"role": "assistant", "content": answer},
        "usage": {"input": 10, "output": 20, "total": 30}, "costDetails": {"total": cost},
    }
    if status == "error":
        generation.update(level="ERROR", statusMessage="upstream timed out")
    result = ingest_langfuse_batch(
        project=project, payload={"batch": [_event("trace-create", trace), _event("generation-create", generation)]}
    )
    assert not result.errors, result.errors


def thumbs(project, trace_id: str, *, up: bool) -> None:
    result = create_scores(
        project=project, bodies=[{"traceId": trace_id, "name": "thumbs", "value": 1 if up else 0,
                                  "dataType": "BOOLEAN"}], public_only=True,
    )
    assert not result.errors, result.errors


def url(name, project, *args):
    """A console page's address for a project."""
    from django.urls import reverse

    return reverse(f"console:{name}", args=[project.id, *args])
