"""Storing one OTLP trace export for a project: decode → map → write, in the request (a 200 means
the spans are in the database, not merely queued)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from ingest.stages.redact import redact_for_storage
from ingest.writer import write_records
from ingest.adapters.otel.decode import decode_json, decode_protobuf
from ingest.adapters.otel.mapping import map_decoded

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
    *, project, body: bytes, protobuf: bool, received_at: datetime | None = None
) -> ExportResult:
    """Raises `decode.DecodeError` for a body that is not an export request at all (→ 400) and
    `writer.StorageUnavailable` when the region database cannot take the write or the redaction
    policy cannot be read (→ 503)."""
    decoded = decode_protobuf(body) if protobuf else decode_json(body)
    mapped = map_decoded(decoded, received_at=received_at or timezone.now())
    if not (mapped.observations or mapped.scores):
        return ExportResult(accepted_spans=0, rejected=mapped.rejected)
    # PII redaction before storage (a no-op unless the project's policy is on): a span that cannot
    # be redacted is rejected, and so are the scores it carried; nothing of them is stored.
    redacted = redact_for_storage(
        project=project, traces=mapped.traces, observations=mapped.observations, scores=mapped.scores
    )
    rejected, notes = list(mapped.rejected), []
    failed_spans = set()
    for failure in redacted.failures:
        if failure.kind == "observation":
            failed_spans.add(failure.id)
            rejected.append(f"span {failure.id}: {failure.error}")
        elif failure.kind == "trace":
            notes.append(f"trace {failure.id}: {failure.error} (its trace-level input, output and metadata)")
        else:
            notes.append(f"score {failure.id}: {failure.error}")
    scores = redacted.scores
    if failed_spans:
        scores = [s for s in scores if s.get("observation_id") not in failed_spans]
    if redacted.observations or scores:
        write_records(project=project, traces=redacted.traces, observations=redacted.observations, scores=scores)
    return ExportResult(accepted_spans=len(redacted.observations), rejected=rejected, notes=notes)
