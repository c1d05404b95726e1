"""The write entry points of the wire endpoints: decode with the source's adapter, run the one
pipeline (`ingest.pipeline`), answer in the source's terms. Ingestion is synchronous: a 207/200 means
the rows are committed in the region database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError

from ingest import pipeline, timing, writer
from ingest.adapters import scores as scores_adapter
from ingest.adapters.langfuse import parse_batch
from ingest.contract import Batch
from ingest.writer import reprice_observations
from pricing.models import ModelPrice
from pricing.patterns import compile_pattern
from tenancy.models import Project, User
from tenancy.services import audit_record
from traces.selectors import model_names_seen


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


def ingest_langfuse_batch(*, project, payload, api_key_id=None) -> BatchResult:
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
    with timing.stage("map"):
        parsed = parse_batch(batch)
    work = Batch(project=project, source="langfuse", api_key_id=api_key_id)
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
    *, project, bodies: list, public_only: bool = False, comment_limit: int | None = None, api_key_id=None
) -> scores_adapter.ScoresResult:
    """`POST /api/public/scores`: validate each body on its own and store the valid ones in one write.
    Comments of browser feedback (public key only) are held to `comment_limit`."""
    work = Batch(project=project, source="scores", api_key_id=api_key_id)
    result = scores_adapter.decode(work, bodies, public_only=public_only, comment_limit=comment_limit)
    if work:
        pipeline.run(work)
    return scores_adapter.answer(work, result)


def delete_score(*, project, score_id: str) -> bool:
    """Delete one of the project's scores (`DELETE /api/public/scores/{id}`); False when it has none
    with that id (another project's score counts as none)."""
    return writer.delete_score(project=project, score_id=score_id)


# --- re-pricing stored calls ---------------------------------------------------------------------

AUDIT_REPRICED = "model_price.repriced"
MAX_REPRICE_MODELS = 500


def observations_reprice(
    *,
    project: Project,
    actor: User | str | None,
    since: datetime,
    until: datetime,
    models: list[str] | None = None,
    prices: list[ModelPrice] | None = None,
):
    """Recompute the catalog costs of `project`'s calls that started in [since, until), e.g. after
    adding a model's price, and record it in the organization's audit log.

    `models` (names as sent) and/or `prices` (their match patterns pick the names seen in the range)
    narrow it; neither means every model. Client-sent costs are never changed. The writing is done by
    the ingest writer (`reprice_observations`), with the same pricing code path as ingestion.
    """
    if since is None or until is None or since >= until:
        raise ValidationError("the time range is empty: `since` must be before `until`")
    names: list[str] | None = None
    if models or prices:
        names = sorted({m.strip() for m in models or [] if m and m.strip()})
        if prices:
            patterns = [p.match_pattern for p in prices]
            compiled = [c for c in (compile_pattern(p) for p in patterns) if c is not None]
            seen = model_names_seen(project=project, since=since, until=until)
            names = sorted({*names, *(n for n in seen if any(c.search(n) for c in compiled))})
        if len(names) > MAX_REPRICE_MODELS:
            raise ValidationError(f"at most {MAX_REPRICE_MODELS} model names at once")
    report = reprice_observations(project=project, since=since, until=until, models=names)
    audit_record(
        organization=project.organization,
        actor=actor,
        action=AUDIT_REPRICED,
        target_type="project",
        target_id=str(project.id),
        data={
            "project": str(project.id),
            "since": since.isoformat(),
            "until": until.isoformat(),
            "models": names,
            "examined": report.examined,
            "repriced": report.repriced,
            "newly_priced": report.newly_priced,
            "still_unpriced": report.still_unpriced,
        },
    )
    return report
