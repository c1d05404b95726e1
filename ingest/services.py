"""The write entry points of the wire endpoints: decode with the source's adapter, run the one
pipeline (`ingest.pipeline`), answer in the source's terms. Ingestion is synchronous: a 207/200 means
the rows are committed in the region database."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ingest import pipeline, timing, writer
from ingest.adapters import scores as scores_adapter
from ingest.adapters.langfuse import parse_batch
from ingest.contract import Batch
from ingest.writer import reprice_observations
from pricing.models import ModelPrice, RepriceRun
from pricing.patterns import compile_pattern
from privacy.models import JobStatus
from tenancy.models import Project, User
from tenancy.services import audit_record
from tenancy.tasks import enqueue_for_project
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
    names = _reprice_names(project=project, since=since, until=until, models=models, prices=prices)
    report = reprice_observations(project=project, since=since, until=until, models=names)
    _audit_repriced(project=project, actor=actor, since=since, until=until, names=names, report=report)
    return report


def _reprice_names(*, project: Project, since: datetime, until: datetime, models: list[str] | None,
                   prices: list[ModelPrice] | None) -> list[str] | None:
    """The model names (as sent) a re-pricing covers; None for every model."""
    if not (models or prices):
        return None
    names = sorted({m.strip() for m in models or [] if m and m.strip()})
    if prices:
        patterns = [p.match_pattern for p in prices]
        compiled = [c for c in (compile_pattern(p) for p in patterns) if c is not None]
        seen = model_names_seen(project=project, since=since, until=until)
        names = sorted({*names, *(n for n in seen if any(c.search(n) for c in compiled))})
    if len(names) > MAX_REPRICE_MODELS:
        raise ValidationError(f"at most {MAX_REPRICE_MODELS} model names at once")
    return names


def _audit_repriced(*, project, actor, since, until, names, report, run_id=None) -> None:
    data = {
        "project": str(project.id),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "models": names,
        "examined": report.examined,
        "repriced": report.repriced,
        "newly_priced": report.newly_priced,
        "still_unpriced": report.still_unpriced,
    }
    if run_id is not None:
        data["run_id"] = str(run_id)
    audit_record(organization=project.organization, actor=actor, action=AUDIT_REPRICED, target_type="project",
                 target_id=str(project.id), data=data)


# Re-pricing from the admin runs in the background (`ingest.reprice` on the project's region queue):
# over a wide range of a big project it outlives a web request. The CLI keeps the synchronous path.
AUDIT_REPRICE_REQUESTED = "model_price.reprice_requested"
REPRICE_BUDGET_SECONDS = 40  # per task message; the run then continues in a new one


@transaction.atomic
def reprice_run_create(
    *,
    project: Project,
    actor: User | None,
    since: datetime,
    until: datetime,
    models: list[str] | None = None,
    prices: list[ModelPrice] | None = None,
) -> RepriceRun:
    """Record a re-pricing of `project`'s calls that started in [since, until) (the filters of
    `observations_reprice`), audit the request and queue it (after commit) on the project's region
    queue. The run's counts show its progress; the outcome is audited as `model_price.repriced`."""
    from ingest import tasks

    if since is None or until is None or since >= until:
        raise ValidationError("the time range is empty: `since` must be before `until`")
    requested = sorted({m.strip() for m in models or [] if m and m.strip()})
    if len(requested) > MAX_REPRICE_MODELS:
        raise ValidationError(f"at most {MAX_REPRICE_MODELS} model names at once")
    run = RepriceRun.objects.create(
        project=project, since=since, until=until, models_requested=requested,
        price_ids=sorted(str(p.id) for p in prices or []),
        requested_by=actor if isinstance(actor, User) else None,
    )
    audit_record(
        organization=project.organization, actor=actor, action=AUDIT_REPRICE_REQUESTED, target_type="project",
        target_id=str(project.id), data={"run_id": str(run.id), "since": since.isoformat(),
                                         "until": until.isoformat(), "models": requested,
                                         "prices": run.price_ids},
    )
    enqueue_for_project(tasks.reprice, project=project, kwargs={"run_id": str(run.id)})
    return run


def reprice_run(*, run_id, project_id, budget_seconds: float | None = REPRICE_BUDGET_SECONDS,
                batch_size: int = writer.REPRICE_BATCH) -> bool:
    """Run (or continue) a queued re-pricing, batch by batch, adding each batch's counts and keyset
    position to the run as it commits. True when finished (or nothing to do: a done run, or an id
    that is not this project's), False when the time budget ran out (the caller sends it again).

    Resumable: a continuation or a redelivered message carries on after the last recorded batch. A
    batch committed in the region but not yet recorded here is examined again; its calls are priced
    already, so nothing is counted twice as re-priced."""
    run = RepriceRun.objects.select_related("project__organization", "requested_by").filter(
        id=run_id, project_id=project_id).first()
    if run is None or run.status == JobStatus.DONE:
        return True
    project = run.project
    runs = RepriceRun.objects.filter(id=run.id)
    runs.update(status=JobStatus.RUNNING, error="")
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    try:
        names = run.model_names
        if names is None and (run.models_requested or run.price_ids):
            prices = list(ModelPrice.objects.filter(id__in=run.price_ids))
            names = _reprice_names(project=project, since=run.since, until=run.until,
                                   models=run.models_requested, prices=prices)
            runs.update(model_names=names)
        after = (run.position_time, run.position_id) if run.position_time is not None else None
        for batch, position in writer.reprice_batches(project=project, since=run.since, until=run.until,
                                                      models=names, after=after, batch_size=batch_size):
            progress = {
                "examined": F("examined") + batch.examined, "repriced": F("repriced") + batch.repriced,
                "newly_priced": F("newly_priced") + batch.newly_priced,
                "still_unpriced": F("still_unpriced") + batch.still_unpriced,
            }
            if position is not None:
                progress.update(position_time=position[0], position_id=position[1])
            runs.update(**progress)
            if batch.examined < batch_size:
                break  # the last batch
            if deadline is not None and time.monotonic() > deadline:
                return False
    except Exception as exc:
        runs.update(status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now())
        raise
    runs.update(status=JobStatus.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    report = writer.RepriceReport(examined=run.examined, repriced=run.repriced, newly_priced=run.newly_priced,
                                  still_unpriced=run.still_unpriced)
    _audit_repriced(project=project, actor=run.requested_by, since=run.since, until=run.until, names=names,
                    report=report, run_id=run.id)
    return True
