"""Score writes (Langfuse `POST /api/public/scores`, also reached through `score-create` events)."""

from __future__ import annotations

from dataclasses import dataclass, field

from feedback.models import Score, ScoreSource
from traces.ingest.langfuse import EventError, score_record
from traces.ingest.writer import write_records


@dataclass
class ScoresResult:
    ids: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"index", "message"}


def scores_create(*, project, bodies: list, public_only: bool = False) -> ScoresResult:
    """Validate each score body on its own and store the valid ones in one write.

    With only the public key (browser feedback), the source is USER and the id is always ours:
    a browser must not be able to overwrite an evaluation or annotation score whose id it learnt.
    """
    result = ScoresResult()
    records = []
    for index, body in enumerate(bodies):
        try:
            if public_only and isinstance(body, dict):
                body = {k: v for k, v in body.items() if k != "id"}
            record = score_record(body, source=ScoreSource.USER.value if public_only else None)
        except EventError as exc:
            result.errors.append({"index": index, "message": exc.message})
            continue
        records.append(record)
        result.ids.append(record["id"])
    if records:
        write_records(project=project, traces=[], observations=[], scores=records)
    return result


def score_delete(*, project, score_id: str) -> bool:
    """Delete one of the project's scores; False when it has none with that id (another project's
    score counts as none)."""
    deleted, _ = Score.objects.for_project(project).filter(id=score_id).delete()
    return deleted > 0
