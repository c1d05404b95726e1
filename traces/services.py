"""Trace writes. Ingestion is synchronous: a 207 means the rows are committed in the region database."""

from __future__ import annotations

from dataclasses import dataclass

from traces.ingest.langfuse import parse_batch
from traces.ingest.writer import write_records


class BatchError(ValueError):
    """The request as a whole is unusable (not a `{batch: [...]}` object); answered with 400."""

    def __init__(self, message: str, errors: list | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


@dataclass
class BatchResult:
    successes: list[dict]
    errors: list[dict]

    def as_response(self) -> dict:
        return {"successes": self.successes, "errors": self.errors}


MAX_EVENTS_PER_BATCH = 10_000


def ingest_langfuse_batch(*, project, payload) -> BatchResult:
    """Store a Langfuse ingestion envelope; each event succeeds or fails on its own.

    Raises BatchError for an unusable envelope and lets the writer's StorageUnavailable through:
    then nothing was stored and the client should retry the whole batch.
    """
    if not isinstance(payload, dict):
        raise BatchError(
            "Invalid request data", [{"path": [], "message": "expected an object {batch: [...]}"}]
        )
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise BatchError("Invalid request data", [{"path": ["batch"], "message": "`batch` must be an array"}])
    if len(batch) > MAX_EVENTS_PER_BATCH:
        raise BatchError(
            "Invalid request data",
            [{"path": ["batch"], "message": f"at most {MAX_EVENTS_PER_BATCH} events per request"}],
        )
    parsed = parse_batch(batch)
    if parsed.traces or parsed.observations or parsed.scores:
        write_records(
            project=project, traces=parsed.traces, observations=parsed.observations, scores=parsed.scores
        )
    return BatchResult(
        successes=[{"id": env_id, "status": 201} for env_id in parsed.successes],
        errors=parsed.errors,
    )
