"""Storing one OTLP trace export for a project: decode → map → the ingest pipeline, in the request
(a 200 means the spans are in the database, not merely queued)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from ingest import pipeline, timing
from ingest.adapters.otel.decode import decode_json, decode_protobuf
from ingest.adapters.otel.mapping import map_decoded
from ingest.contract import Batch

MAX_ERROR_MESSAGE = 4000


@dataclass(frozen=True)
class ExportResult:
    accepted_spans: int
    rejected: list[str]
    # Problems with records that are not spans (a trace's own fields, a score): reported in the
    # message, but not counted in `rejected_spans`.
    notes: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        """OTLP `partial_success.error_message`: what was wrong with the rejected spans."""
        reasons = [*self.rejected, *self.notes]
        if not reasons:
            return ""
        shown = []
        size = 0
        for reason in reasons:
            if size + len(reason) > MAX_ERROR_MESSAGE:
                break
            shown.append(reason)
            size += len(reason) + 2
        prefix = f"{len(self.rejected)} span(s) rejected: " if self.rejected else ""
        message = prefix + "; ".join(shown)
        if len(shown) < len(reasons):
            message += f"; and {len(reasons) - len(shown)} more"
        return message


def export_traces(
    *, project, body: bytes, protobuf: bool, received_at: datetime | None = None, api_key_id=None
) -> ExportResult:
    """Raises `decode.DecodeError` for a body that is not an export request at all (→ 400) and
    `writer.StorageUnavailable` when the region database cannot take the write or the redaction
    policy cannot be read (→ 503)."""
    with timing.stage("decode"):
        decoded = decode_protobuf(body) if protobuf else decode_json(body)
    with timing.stage("map"):
        mapped = map_decoded(decoded, received_at=received_at or timezone.now())
    if not (mapped.observations or mapped.scores):
        return ExportResult(accepted_spans=0, rejected=mapped.rejected)
    batch = Batch(project=project, source="otlp", api_key_id=api_key_id)
    for record in mapped.traces:
        batch.add("trace", record, ref=record.get("id"))
    for record in mapped.observations:
        # The experiment item this span is the task of (if any) rides along for the evals follower.
        batch.add("observation", record, ref=record.get("id"), experiment=mapped.experiments.get(record["id"]))
    for record in mapped.scores:
        # A score carried by a span (its own, or a GenAI evaluation of it) is stored with the span or
        # not at all; trace- and session-level annotations stand on their own. OTLP names no data
        # type: score configs infer it from the value.
        batch.add("score", record, ref=record.get("id"), typed=False, rides_on=record.get("observation_id"))
    pipeline.run(batch)
    rejected, notes = list(mapped.rejected), []
    for refusal in batch.refused:
        if refusal.kind == "observation":
            rejected.append(f"span {refusal.record_id}: {refusal.message}")
        elif refusal.kind == "trace":
            what = "its trace-level input, output and metadata"
            notes.append(f"trace {refusal.record_id}: {refusal.message} ({what})")
        else:
            notes.append(f"score {refusal.record_id}: {refusal.message}")
    return ExportResult(accepted_spans=len(batch.observations), rejected=rejected, notes=notes)
