"""Storing one OTLP trace export for a project: decode → map → write, in the request (a 200 means
the spans are in the database, not merely queued)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from traces.ingest.writer import write_records
from traces.otel.decode import decode_json, decode_protobuf
from traces.otel.mapping import map_decoded

MAX_ERROR_MESSAGE = 4000


@dataclass(frozen=True)
class ExportResult:
    accepted_spans: int
    rejected: list[str]

    @property
    def error_message(self) -> str:
        """OTLP `partial_success.error_message`: what was wrong with the rejected spans."""
        if not self.rejected:
            return ""
        shown = []
        size = 0
        for reason in self.rejected:
            if size + len(reason) > MAX_ERROR_MESSAGE:
                break
            shown.append(reason)
            size += len(reason) + 2
        message = f"{len(self.rejected)} span(s) rejected: " + "; ".join(shown)
        if len(shown) < len(self.rejected):
            message += f"; and {len(self.rejected) - len(shown)} more"
        return message


def export_traces(
    *, project, body: bytes, protobuf: bool, received_at: datetime | None = None
) -> ExportResult:
    """Raises `decode.DecodeError` for a body that is not an export request at all (→ 400) and
    `writer.StorageUnavailable` when the region database cannot take the write (→ 503)."""
    decoded = decode_protobuf(body) if protobuf else decode_json(body)
    mapped = map_decoded(decoded, received_at=received_at or timezone.now())
    if mapped.observations or mapped.scores:
        write_records(
            project=project, traces=mapped.traces, observations=mapped.observations, scores=mapped.scores
        )
    return ExportResult(accepted_spans=len(mapped.observations), rejected=mapped.rejected)
