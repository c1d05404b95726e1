"""Builders for OTLP export requests, for tests and benchmarks (real opentelemetry-proto objects)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACE_ID = "5b8efff798038103d269b633813fc60c"
ROOT_SPAN_ID = "eee19b7ec3c1b174"
T0_NANOS = 1_795_722_118_704_042_614  # 2026-11-26T19:41:58.704042614Z


def any_value(value: Any) -> AnyValue:
    if isinstance(value, AnyValue):
        return value
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(key_values(value))
        return out
    if value is None:
        return AnyValue()
    raise TypeError(f"no AnyValue for {type(value).__name__}")


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def make_span(
    *,
    trace_id: str = TRACE_ID,
    span_id: str = ROOT_SPAN_ID,
    parent_span_id: str | None = None,
    name: str = "span",
    kind: int = Span.SPAN_KIND_INTERNAL,
    start_ns: int = T0_NANOS,
    end_ns: int | None = None,
    attributes: dict[str, Any] | None = None,
    events: Iterable[tuple[str, int, dict[str, Any]]] = (),
    status: tuple[int, str] | None = None,
    links: Iterable[tuple[str, str, dict[str, Any]]] = (),
) -> Span:
    span = Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent_span_id) if parent_span_id else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns if end_ns is not None else start_ns + 250_000_000,
    )
    span.attributes.extend(key_values(attributes or {}))
    for event_name, time_ns, event_attributes in events:
        event = span.events.add(name=event_name, time_unix_nano=time_ns)
        event.attributes.extend(key_values(event_attributes))
    for link_trace, link_span, link_attributes in links:
        link = span.links.add(trace_id=bytes.fromhex(link_trace), span_id=bytes.fromhex(link_span))
        link.attributes.extend(key_values(link_attributes))
    if status is not None:
        span.status.CopyFrom(Status(code=status[0], message=status[1]))
    return span


def make_request(
    spans: Iterable[Span],
    *,
    resource: dict[str, Any] | None = None,
    scope_name: str = "tests",
    scope_version: str = "1.0",
    scope_attributes: dict[str, Any] | None = None,
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        key_values(resource if resource is not None else {"service.name": "svc"})
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope_name
    scope_spans.scope.version = scope_version
    scope_spans.scope.attributes.extend(key_values(scope_attributes or {}))
    scope_spans.spans.extend(spans)
    return request


_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in _ID_KEYS and isinstance(value, str)
            else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def to_otlp_json(request: ExportTraceServiceRequest) -> dict:
    """The request as OTLP/JSON: the protobuf JSON mapping with integer enums, then ids as hex (the
    OTLP deviation from the generic mapping, which would give base64)."""
    return _hex_ids(json_format.MessageToDict(request, use_integers_for_enums=True))
