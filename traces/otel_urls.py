from django.urls import path

from traces.ingest.body import streams_body
from traces.otel import views

# The export view reads chunked bodies itself, streaming, under the OTLP limit (tenancy.chunked).
export_traces = streams_body(views.export_traces)

urlpatterns = [
    # Langfuse SDK v3+ (base `/api/public/otel`, the exporter appends `/v1/traces`).
    path("api/public/otel/v1/traces", export_traces, name="otel-traces"),
    # Plain OpenTelemetry exporters with OTEL_EXPORTER_OTLP_ENDPOINT=http://host.
    path("v1/traces", export_traces, name="otlp-traces"),
]
