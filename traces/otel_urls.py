from django.urls import path

from traces.otel import views

urlpatterns = [
    # Langfuse SDK v3+ (base `/api/public/otel`, the exporter appends `/v1/traces`).
    path("api/public/otel/v1/traces", views.export_traces, name="otel-traces"),
    # Plain OpenTelemetry exporters with OTEL_EXPORTER_OTLP_ENDPOINT=http://host.
    path("v1/traces", views.export_traces, name="otlp-traces"),
]
