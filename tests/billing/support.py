"""Helpers of the billing tests: plans, subscriptions and one small request per ingest path."""

from __future__ import annotations

import uuid

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from billing.models import Plan, Subscription
from scores.models import Score
from traces.models import Observation, Trace


def make_plan(**values) -> Plan:
    values.setdefault("name", "p-" + uuid.uuid4().hex[:10])
    values.setdefault("soft_limit_share", 0.8)
    return Plan.objects.create(**values)


def subscribe(organization, plan, **values) -> Subscription:
    subscription, _ = Subscription.objects.update_or_create(
        organization=organization, defaults={"plan": plan, **values}
    )
    return subscription


def langfuse_batch(prefix: str = "t") -> dict:
    """Two billable units: a trace and a generation."""
    trace_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return {"batch": [
        {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": "2026-12-01T10:00:00Z",
         "body": {"id": trace_id, "name": "q"}},
        {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": "2026-12-01T10:00:00Z",
         "body": {"id": trace_id + "-g", "traceId": trace_id, "name": "llm", "model": "m"}},
    ]}


def post_batch(client, api_key, body=None):
    return client.post("/api/public/ingestion", data=orjson.dumps(body or langfuse_batch()),
                       content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)


def otlp_request(trace_hex: str | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(trace_hex or uuid.uuid4().hex)
    span.span_id = bytes.fromhex(uuid.uuid4().hex[:16])
    span.name = "llm"
    span.start_time_unix_nano = 1_764_000_000_000_000_000
    span.end_time_unix_nano = 1_764_000_001_000_000_000
    return request


def post_otlp(client, api_key, *, route="/api/public/otel/v1/traces", json=False):
    request = otlp_request()
    if json:
        from google.protobuf.json_format import MessageToJson

        return client.post(route, data=MessageToJson(request), content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)
    return client.post(route, data=request.SerializeToString(), content_type="application/x-protobuf",
                       HTTP_AUTHORIZATION=api_key.basic)


def post_score(client, api_key, trace_id="t-1"):
    return client.post("/api/public/scores", data=orjson.dumps({"traceId": trace_id, "name": "q", "value": 1}),
                       content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)


def post_feedback(client, api_key, trace_id="t-1"):
    return client.post("/api/v1/feedback", data=orjson.dumps({"trace_id": trace_id, "rating": "up"}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key.public}")


def stored(project) -> int:
    return sum(m.objects.for_project(project).count() for m in (Trace, Observation, Score))


def clear_rejection_counters() -> None:
    """Redis outlives each test's rolled-back rows: start every test with empty counters."""
    from billing import enforcement
    from billing.services import FLUSHING_KEY

    enforcement._client().delete(enforcement.REJECTED_KEY, FLUSHING_KEY)


def shipped_plans() -> None:
    """The data migration's plans. A transactional test elsewhere in the suite truncates every table
    (migration data included), so tests that use them make sure they exist."""
    from billing.plans import ensure_default_plans

    ensure_default_plans(Plan)
