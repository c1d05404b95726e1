"""The pipeline's redact stage: PII redaction of every record before it is stored.

One pass per request, on the whole batch. The policy check comes first and is cheap (the cached
`get_policy`: no database query once cached); a project without an enabled policy gets its records
untouched and the engine never runs. A policy that cannot be read fails the request with
StorageUnavailable (503, the client retries), never as "no policy": that would store PII.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, InterfaceError

from ingest.writer import StorageUnavailable
from privacy import engine
from privacy.engine import FAILURE_MESSAGE

logger = logging.getLogger(__name__)

# A record the redactor fails on is refused for good: resending it fails the same way.
FAILURE_STATUS = 422


def redact(batch) -> None:
    """The pipeline's redact stage: the project's policy over every record of `batch` (an
    `ingest.contract.Batch`), in place. A record that cannot be redacted is refused with 422; a score
    riding on a refused observation (OTLP: carried by the span) goes with it. A record whose fields the
    policy covers are all absent or empty has nothing to redact and skips the engine. Should the engine
    itself fail, every record it was given is refused: fail closed, never store unredacted data."""
    if not batch:
        return
    try:
        policy = engine.get_policy(batch.project)
    except (DatabaseError, InterfaceError) as exc:
        logger.warning("redaction policy of project %s unreadable: %s", batch.project.id, exc)
        raise StorageUnavailable("the redaction policy could not be read; retry later") from exc
    if policy is None:
        return
    given: dict[str, list] = {}
    for kind in ("trace", "observation", "score"):
        fields = engine.RECORD_FIELDS[kind]
        given[kind] = [e for e in batch.entries(kind) if any(e.record.get(name) for name in fields)]
    if not any(given.values()):
        return
    try:
        result = engine.redact_records(
            project=batch.project,
            traces=[e.record for e in given["trace"]],
            observations=[e.record for e in given["observation"]],
            scores=[e.record for e in given["score"]],
            policy=policy,
        )
        failures = [(f.kind, f.index, f.error) for f in result.failures]
    except Exception as exc:  # noqa: BLE001 - fail closed: whatever broke, store nothing unredacted
        logger.error("PII redaction failed for project %s (%s); records rejected", batch.project.id,
                     type(exc).__name__)
        failures = [(kind, index, FAILURE_MESSAGE) for kind in given for index in range(len(given[kind]))]
    if not failures:
        return
    refused: dict[str, set] = {"trace": set(), "observation": set(), "score": set()}
    for kind, index, error in failures:
        entry = given[kind][index]
        refused[kind].add(id(entry))
        batch.refuse(kind, entry, status=FAILURE_STATUS, message=error, stage="redact")
    dropped_observations = {
        e.record.get("id") for e in batch.observations if id(e) in refused["observation"]
    }
    for kind in ("trace", "observation", "score"):
        entries = batch.entries(kind)
        entries[:] = [
            e
            for e in entries
            if id(e) not in refused[kind]
            and not (kind == "score" and e.rides_on is not None and e.rides_on in dropped_observations)
        ]
