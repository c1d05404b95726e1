"""The wire write routes: Langfuse batch ingestion, scores and OTLP/HTTP (no trailing slash: the SDKs
and exporters POST to these exact paths). Score ids are arbitrary strings, `/` included, so the id
routes take the rest of the path."""

from django.urls import path

from ingest import otlp_views, views
from tenancy.http.body import streams_body

# The export view reads chunked bodies itself, streaming, under the OTLP limit (tenancy.chunked).
export_traces = streams_body(otlp_views.export_traces)

urlpatterns = [
    path("api/public/ingestion", views.ingestion, name="public-ingestion"),
    path("api/public/scores", views.scores, name="public-scores"),
    path("api/public/scores/<path:score_id>", views.score_detail, name="public-score-detail"),
    path("api/public/v2/scores", views.scores, name="public-scores-v2"),
    path("api/public/v2/scores/<path:score_id>", views.score_detail, name="public-score-detail-v2"),
    # Langfuse SDK v3+ (base `/api/public/otel`, the exporter appends `/v1/traces`).
    path("api/public/otel/v1/traces", export_traces, name="otel-traces"),
    # Plain OpenTelemetry exporters with OTEL_EXPORTER_OTLP_ENDPOINT=http://host.
    path("v1/traces", export_traces, name="otlp-traces"),
]
