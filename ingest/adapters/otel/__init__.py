"""OTLP/HTTP trace ingestion: what the Langfuse SDKs v3+ and any OpenTelemetry exporter send.

- `decode`: protobuf / OTLP-JSON bodies → `SpanData` (one neutral shape for both encodings),
  invalid spans set aside with a reason instead of failing the batch;
- `mapping`: spans → trace / observation / score records (see `ingest.contract`), reading the
  Langfuse (`langfuse.*`), OpenInference and OTel GenAI conventions;
- `services`: decode → map → the ingest pipeline; the endpoint is `ingest.otlp_views`
  (`/api/public/otel/v1/traces` and `/v1/traces`).
"""
