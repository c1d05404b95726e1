"""THE write path: every source stores telemetry through `run`, which applies the same stages, in the
same order, to every batch — Langfuse batch events, OTLP spans (both routes), REST scores
(`POST /api/public/scores`), browser feedback, and later eval results.

    decode (by the adapter, before `run`: wire format → `ingest.contract` records in a `Batch`)
    quota                   the organization's quota and rate limits (`billing.enforcement`): the whole
                            request is refused with QuotaExceeded (429), or admitted
    normalize               contract rules the adapters cannot vary: id limits (`rules.ids`), metadata
                            size and depth (`ingest.limits`)
    redact                  the project's PII policy; a record that cannot be redacted is refused (422)
    conform_scores          every score against the project's score configs; a breaking score is refused (400)
    price                   the model price catalog for observations without a client cost
    sampling                the client SDK's sample rate onto the trace (`monitoring.sampling_rules`);
                            keeping or dropping a trace waits for it to settle (`monitoring.sampling`)
    write                   `ingest.writer`, the only module that writes traces/observations/scores;
                            inside its transaction `ingest.rollups` moves the monitoring rollups by
                            (new − old) of every call it changed, so they stay exact
    rollups                 the stored units count toward the quota (billing; the monitoring rollups
                            are written by the writer, whose transaction alone makes them exact)

Adapters only translate: their wire format into records (`decode`), and the refusals the stages
record in `batch.refused` back into their wire answers (207 entries, OTLP partial success, 4xx).
Domain rules the adapters share live once in `ingest.rules`. A stage refuses records one at a time
(the others are stored); a stage that cannot run at all (the policy or the configs cannot be read,
the database is down) raises `ingest.writer.StorageUnavailable` and nothing is stored.

The slots are explicit no-ops so the capabilities that come next have their place in the order; they
must keep the contract: take the batch, refuse records through `batch.refuse`, never write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError

from billing import enforcement
from billing.enforcement import QuotaExceeded
from ingest import timing, writer
from ingest.contract import Batch
from ingest.limits import LIMIT_STATUS, metadata_problem
from ingest.rules.ids import MAX_ID_LENGTH, valid_id
from ingest.rules.values import strip_nul
from ingest.stages import price as price_catalog
from ingest.stages.redact import redact
from ingest.writer import InvalidRecord, NotUserFeedback, StorageUnavailable, empty_payloads
from monitoring.sampling_rules import record_client_rates
from scores.services import ScoreConfigError, conform_score, project_score_configs

# The writer's exceptions, for callers outside the package (only `ingest` imports the writer itself).
# `empty_payloads`: the sampling job (`monitoring.sampling`) drops payloads through the writer too.
__all__ = [
    "STAGES", "Batch", "InvalidRecord", "NotUserFeedback", "QuotaExceeded", "StorageUnavailable",
    "empty_payloads", "on_stored", "run",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    apply: Callable[[Batch], None]
    slot: bool = False  # an empty slot for a capability that comes later


def _units(batch: Batch) -> int:
    # Billable units as Langfuse counts them: traces + observations + scores.
    return len(batch.traces) + len(batch.observations) + len(batch.scores)


def quota(batch: Batch) -> None:
    """Billing: the organization's quota and ingest rate limits (`billing.enforcement`). Over a hard
    limit the WHOLE request is refused (QuotaExceeded → 429 + Retry-After; nothing stored), never
    part of it: a client retries a 429, while an event dropped from a 2xx is lost."""
    if batch:
        enforcement.check(project=batch.project, api_key_id=batch.api_key_id, units=_units(batch))


def _normalize_problem(kind: str, record: dict) -> str | None:
    if not valid_id(record.get("id")):
        return f"the {kind} id must be a string of 1–{MAX_ID_LENGTH} characters"
    metadata = record.get("metadata")
    return metadata_problem(metadata) if metadata else None


def normalize(batch: Batch) -> None:
    """Records the writer could not store, or should not merge, whatever the adapter: an id out of
    `rules.ids` limits, metadata over `ingest.limits` (too many keys or too deep)."""
    for kind in ("trace", "observation", "score"):
        entries = batch.entries(kind)
        problems = [_normalize_problem(kind, entry.record) for entry in entries]
        if not any(problems):
            continue
        kept = []
        for entry, problem in zip(entries, problems):
            if problem is None:
                kept.append(entry)
            else:
                batch.refuse(kind, entry, status=LIMIT_STATUS, message=problem, stage="normalize")
        entries[:] = kept


def conform_scores(batch: Batch) -> None:
    """Every score against the project's score configs (one cache read, or one query, per batch):
    a score breaking its config is refused; a conforming one is brought into the config's form."""
    if not batch.scores:
        return
    try:
        configs = project_score_configs(batch.project)
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable("the database is unavailable; retry later") from exc
    if not configs:
        return
    kept = []
    for entry in batch.scores:
        try:
            conform_score(entry.record, configs=configs, explicit_type=entry.typed)
        except ScoreConfigError as exc:
            batch.refuse("score", entry, status=400, message=exc.message, stage="conform_scores")
            continue
        kept.append(entry)
    batch.scores[:] = kept


def price(batch: Batch) -> None:
    """Catalog costs for observations the client sent no cost for. The writer applies the pricer
    inside its transaction, because a merged row is priced from its *stored* model and usage."""
    batch.pricer = price_catalog.catalog_costs


def sampling(batch: Batch) -> None:
    """Monitoring: only what must happen at ingest — the client SDK's own sample rate (an OTel
    `ot=th:` trace state) recorded on its trace, so counts can be scaled. The server's keep/drop
    decision is not taken here: it waits for the trace to settle (`monitoring.sampling`), so a late
    error span still keeps its trace, and the rollups count every call first."""
    if batch.observations:
        record_client_rates(batch.records("trace"), batch.records("observation"))


def write(batch: Batch) -> None:
    if not batch:
        return
    if batch.write == "user_feedback":
        [entry] = batch.scores
        # NUL becomes U+FFFD as in every write (`rules.values.strip_nul`), here on the record itself:
        # the feedback history row is written from it, in the same transaction.
        entry.record = strip_nul(entry.record)
        batch.written = writer.write_user_feedback(
            project=batch.project, record=entry.record, after_write=batch.after_write
        )
        return
    writer.write_records(
        project=batch.project,
        traces=batch.records("trace"),
        observations=batch.records("observation"),
        scores=batch.records("score"),
        pricer=batch.pricer,
    )


def rollups(batch: Batch) -> None:
    """Billing: what was stored counts toward the period's quota. The monitoring rollups are written
    by the writer itself, in its transaction (`ingest.rollups`): a stage after the commit could not
    see the rows' previous state, so a replay or a late update would count twice."""
    enforcement.count_usage(project=batch.project, units=_units(batch))


STAGES: tuple[Stage, ...] = (
    Stage("quota", quota),
    Stage("normalize", normalize),
    Stage("redact", redact),
    Stage("conform_scores", conform_scores),
    Stage("price", price),
    Stage("sampling", sampling),
    Stage("write", write),
    Stage("rollups", rollups),
)


# Followers of what was stored, registered by higher layers at startup (evals' review rules turn
# matching scores into dataset items; experiment task spans become dataset run items). They run after every stage, outside the writer's transaction,
# and may only enqueue work (a Celery task on the region queue): the write is durable by then, so a
# follower's failure is logged, never raised into the request.
_STORED_LISTENERS: list[Callable[[Batch], None]] = []


def on_stored(listener: Callable[[Batch], None]) -> Callable[[Batch], None]:
    if listener not in _STORED_LISTENERS:
        _STORED_LISTENERS.append(listener)
    return listener


def _notify_stored(batch: Batch) -> None:
    if not batch:
        return
    for listener in _STORED_LISTENERS:
        try:
            listener(batch)
        except Exception:  # noqa: BLE001 - see _STORED_LISTENERS: the records are stored regardless
            logger.exception("a follower of stored records failed (%s) for project %s", listener, batch.project.id)


def run(batch: Batch) -> Batch:
    """Every stage, in order, then the followers of what was stored. Returns the batch: what is left
    in it was stored, `batch.refused` says what was not and why. Raises StorageUnavailable (nothing
    stored; the client retries) and `ingest.writer.InvalidRecord` (a record breaking the contract: a
    bug, answered as a 400)."""
    for stage in STAGES:
        with timing.stage(stage.name):
            stage.apply(batch)
    _notify_stored(batch)
    return batch
