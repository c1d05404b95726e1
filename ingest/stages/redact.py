"""PII redaction on the ingest paths, between parsing and `write_records`.

    result = redact_for_storage(project=project, traces=..., observations=..., scores=...)
    write_records(project=project, traces=result.traces, observations=result.observations,
                  scores=result.scores)
    # result.failures: records to reject, each with a message safe to return

One call per request, on the whole batch. The policy check comes first and is cheap (the cached
`get_policy`: no database query once cached); a project without an enabled policy gets its records
back untouched and the engine never runs. A policy that cannot be read fails the request with
StorageUnavailable (503, the client retries), never as "no policy": that would store PII.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, InterfaceError

from ingest.writer import StorageUnavailable
from traces.redaction import engine
from traces.redaction.engine import FAILURE_MESSAGE, RecordFailure, RedactionResult

logger = logging.getLogger(__name__)

__all__ = ["FAILURE_MESSAGE", "FAILURE_STATUS", "RecordFailure", "RedactionResult", "redact_for_storage"]

# A record the redactor fails on is refused for good: resending it fails the same way.
FAILURE_STATUS = 422


def redact_for_storage(*, project, traces=(), observations=(), scores=()) -> RedactionResult:
    try:
        policy = engine.get_policy(project)
    except (DatabaseError, InterfaceError) as exc:
        logger.warning("redaction policy of project %s unreadable: %s", project.id, exc)
        raise StorageUnavailable("the redaction policy could not be read; retry later") from exc
    if policy is None:
        return RedactionResult(list(traces), list(observations), list(scores), enabled=False)
    return engine.redact_records(
        project=project, traces=traces, observations=observations, scores=scores, policy=policy
    )
