"""The write entry points of the wire endpoints: decode with the source's adapter, run the one
pipeline (`ingest.pipeline`), answer in the source's terms. Ingestion is synchronous: a 207/200 means
the rows are committed in the region database."""

from __future__ import annotations

from dataclasses import dataclass

from ingest import pipeline
from ingest.adapters import scores as scores_adapter
from ingest.adapters.langfuse import parse_batch
from ingest.contract import Batch


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
_REFUSAL_MESSAGES = {400: "Invalid request data", 422: "Unprocessable Entity"}


def ingest_langfuse_batch(*, project, payload) -> BatchResult:
    """Store a Langfuse ingestion envelope; each event succeeds or fails on its own.

    Raises BatchError for an unusable envelope and lets the pipeline's StorageUnavailable through
    (also raised when the redaction policy or the score configs cannot be read): then nothing was
    stored and the client should retry the whole batch.
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
    work = Batch(project=project, source="langfuse")
    # Each record's ref is the position in `successes` of the event it came from, so a record the
    # pipeline refuses turns exactly that event into an error.
    for record, position in zip(parsed.traces, parsed.trace_events):
        work.add("trace", record, ref=position)
    for record, position in zip(parsed.observations, parsed.observation_events):
        work.add("observation", record, ref=position)
    for record, position, typed in zip(parsed.scores, parsed.score_events, parsed.score_typed):
        work.add("score", record, ref=position, typed=typed)
    pipeline.run(work)
    errors = parsed.errors
    refused: set[int] = set()
    for refusal in work.refused:
        if refusal.ref in refused:
            continue
        refused.add(refusal.ref)
        errors.append(
            {
                "id": parsed.successes[refusal.ref],
                "status": refusal.status,
                "message": _REFUSAL_MESSAGES.get(refusal.status, "Invalid request data"),
                "error": refusal.message,
            }
        )
    return BatchResult(
        successes=[
            {"id": env_id, "status": 201} for i, env_id in enumerate(parsed.successes) if i not in refused
        ],
        errors=errors,
    )


def create_scores(
    *, project, bodies: list, public_only: bool = False, comment_limit: int | None = None
) -> scores_adapter.ScoresResult:
    """`POST /api/public/scores`: validate each body on its own and store the valid ones in one write.
    Comments of browser feedback (public key only) are held to `comment_limit`."""
    work = Batch(project=project, source="scores")
    result = scores_adapter.decode(work, bodies, public_only=public_only, comment_limit=comment_limit)
    if work:
        pipeline.run(work)
    return scores_adapter.answer(work, result)
