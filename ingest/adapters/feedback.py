"""Browser feedback (`POST /api/v1/feedback`, parsed by the feedback app) → a USER score record.

The rating becomes a score like any other and goes through the pipeline; it is written with
`write="user_feedback"` (one row per rating, replaced by a changed mind) instead of the merge rules."""

from __future__ import annotations

from ingest.rules.environment import DEFAULT_ENVIRONMENT

USER = "USER"


def score_record(
    *,
    score_id: str,
    trace_id: str,
    observation_id: str,
    user_id: str,
    name: str,
    data_type: str,
    value: float,
    comment: str,
    metadata: dict,
    environment: str | None,
) -> dict:
    record = {
        "id": score_id,
        "trace_id": trace_id,
        "observation_id": observation_id,
        "session_id": "",
        "name": name,
        "data_type": data_type,
        "value": value,
        "source": USER,
        "comment": comment,
        "author_user_id": user_id,
        "metadata": metadata,
        "environment": environment or DEFAULT_ENVIRONMENT,
    }
    if data_type == "BOOLEAN":
        record["string_value"] = "True" if value == 1 else "False"
    return record
