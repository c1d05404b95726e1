"""Langfuse REST score bodies (`POST /api/public/scores`: one object, or an array as SDK v5 sends)
→ score records, and the pipeline's refusals back into the endpoint's per-score errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.adapters.langfuse import EventError, score_record
from ingest.contract import Batch

USER = "USER"


@dataclass
class ScoresResult:
    ids: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"index", "message"[, "status" when not 400]}


def decode(batch: Batch, bodies: list, *, public_only: bool, comment_limit: int | None) -> ScoresResult:
    """Each body on its own into `batch` (ref = its index); the ones that are not scores at all are
    reported in the result. With only the public key (browser feedback) the source is USER and the id
    is always ours: a browser must not overwrite an evaluation or annotation score whose id it learnt."""
    result = ScoresResult()
    for index, body in enumerate(bodies):
        try:
            if public_only and isinstance(body, dict):
                body = {k: v for k, v in body.items() if k != "id"}
            record = score_record(body, source=USER if public_only else None)
            if comment_limit is not None and len(record.get("comment") or "") > comment_limit:
                raise EventError(
                    f"`comment` is longer than {comment_limit} characters (this project's limit)"
                )
        except EventError as exc:
            result.errors.append({"index": index, "message": exc.message})
            continue
        batch.add("score", record, ref=index, typed=body.get("dataType") is not None)
    return result


def answer(batch: Batch, result: ScoresResult) -> ScoresResult:
    """The stored ids, and every refusal as an error of the body it came from, in body order."""
    for refusal in batch.refused:
        error = {"index": refusal.ref, "message": refusal.message}
        if refusal.status != 400:
            error["status"] = refusal.status
        result.errors.append(error)
    result.errors.sort(key=lambda error: error["index"])
    result.ids = [entry.record["id"] for entry in batch.scores]
    return result
