"""Trace writes. Ingestion is synchronous: a 207 means the rows are committed in the region database."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.adapters.langfuse import parse_batch
from ingest.stages.redact import FAILURE_STATUS, redact_for_storage
from ingest.writer import write_records


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

    Raises BatchError for an unusable envelope and lets the writer's StorageUnavailable through
    (also raised when the redaction policy cannot be read): then nothing was stored and the client
    should retry the whole batch.
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
    errors = parsed.errors
    refused: set[int] = set()
    if parsed.traces or parsed.observations or parsed.scores:
        # PII redaction before storage (a no-op unless the project's policy is on). An event whose
        # record cannot be redacted becomes an error; nothing of it is stored.
        redacted = redact_for_storage(
            project=project, traces=parsed.traces, observations=parsed.observations, scores=parsed.scores
        )
        for failure in redacted.failures:
            position = getattr(parsed, f"{failure.kind}_events")[failure.index]
            if position not in refused:
                refused.add(position)
                errors.append(
                    {
                        "id": parsed.successes[position],
                        "status": FAILURE_STATUS,
                        "message": "Unprocessable Entity",
                        "error": failure.error,
                    }
                )
        if redacted.traces or redacted.observations or redacted.scores:
            write_records(
                project=project,
                traces=redacted.traces,
                observations=redacted.observations,
                scores=redacted.scores,
            )
    return BatchResult(
        successes=[
            {"id": env_id, "status": 201} for i, env_id in enumerate(parsed.successes) if i not in refused
        ],
        errors=errors,
    )
