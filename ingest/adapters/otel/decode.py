"""OTLP trace export bodies → `SpanData`, for both wire encodings.

Protobuf goes through `opentelemetry-proto`. OTLP/JSON is walked directly (orjson), because the
generic protobuf JSON mapping gets OTLP wrong: ids are hex strings there, not base64 (a naive
`json_format.Parse` silently yields 24-byte trace ids). Both paths produce the same `SpanData`.

A body that cannot be decoded at all raises `DecodeError` (→ 400). A span that decodes but is
invalid (bad ids, timestamps out of range, wrong shapes in JSON) is set aside in
`DecodedBatch.rejected` with a reason, so the rest of the batch is still stored (OTLP partial
success).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tenancy.http.body import loads_json

SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
_STATUS_NAMES = {
    "STATUS_CODE_UNSET": 0,
    "STATUS_CODE_OK": 1,
    "STATUS_CODE_ERROR": 2,
    "UNSET": 0,
    "OK": 1,
    "ERROR": 2,
}
_KIND_NAMES = {f"SPAN_KIND_{name}": code for code, name in SPAN_KINDS.items()} | {
    name: code for code, name in SPAN_KINDS.items()
}
# The last instant every ingest path accepts (`ingest.contract.MAX_TIMESTAMP`): int64 nanoseconds.
MAX_UNIX_NANOS = 2**63 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class DecodeError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidSpan(Exception):
    pass


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class Scope:
    name: str = ""
    version: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SpanData:
    trace_id: str  # 32 lowercase hex characters
    span_id: str  # 16 lowercase hex characters
    parent_span_id: str  # "" for a root span
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    events: list[SpanEvent]
    links: list[dict[str, Any]]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    scope: Scope
    trace_state: str = ""
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class DecodedBatch:
    spans: list[SpanData] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one reason per rejected span


# --- ids -----------------------------------------------------------------------------------


def _id_from_bytes(raw: bytes, *, size: int, what: str, allow_empty: bool = False) -> str:
    if not raw:
        if allow_empty:
            return ""
        raise InvalidSpan(f"{what} is missing")
    if len(raw) != size:
        raise InvalidSpan(f"{what} must be {size} bytes, got {len(raw)}")
    if not any(raw):
        if allow_empty:
            return ""
        raise InvalidSpan(f"{what} is all zeros, which OTLP defines as invalid")
    return raw.hex()


def _id_from_json(value: Any, *, size: int, what: str, allow_empty: bool = False) -> str:
    """OTLP/JSON ids are hex. Base64 (what a generic protobuf JSON encoder emits) is accepted too:
    the two cannot be confused, since hex of N bytes is 2N characters and base64 is ~4N/3."""
    if value is None or value == "":
        return _id_from_bytes(b"", size=size, what=what, allow_empty=allow_empty)
    if not isinstance(value, str):
        raise InvalidSpan(f"{what} must be a hex string")
    if len(value) == 2 * size:
        try:
            return _id_from_bytes(bytes.fromhex(value), size=size, what=what, allow_empty=allow_empty)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpan(f"{what} {value[:64]!r} is not {2 * size} hex characters") from None
    if len(raw) != size:
        raise InvalidSpan(f"{what} {value[:64]!r} is not {2 * size} hex characters")
    return _id_from_bytes(raw, size=size, what=what, allow_empty=allow_empty)


def _nanos(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InvalidSpan(f"{what} must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidSpan(f"{what} must be an integer")
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise InvalidSpan(f"{what} {value[:40]!r} is not an integer") from None
    if not isinstance(value, int):
        raise InvalidSpan(f"{what} must be an integer")
    if value < 0 or value > MAX_UNIX_NANOS:
        raise InvalidSpan(f"{what} {value} is out of range")
    return value


# --- protobuf ------------------------------------------------------------------------------


def _pb_value(value) -> Any:
    # A oneof holds one value and every other member reads as its default, so a non-zero int_value IS
    # the value (token counts, the usual non-string): one field read instead of `WhichOneof`.
    number = value.int_value
    if number:
        return number
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value" or which == "bool_value":
        return getattr(value, which)
    if which == "double_value":
        return _finite(value.double_value)
    if which == "array_value":  # mostly strings (tags, finish reasons): as in `_pb_attributes`
        items = []
        for item in value.array_value.values:  # a loop, not a comprehension: one array per span
            items.append(item.string_value or _pb_value(item))
        return items
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None  # unset, or a kind this server does not know


def _pb_attributes(key_values) -> dict[str, Any]:
    # Nearly every attribute is a non-empty string (a chat history alone is dozens): those skip both
    # `WhichOneof` and the call (a oneof holds one value, so a non-empty string_value IS the value).
    # An empty one may be an empty string or any other kind: `_pb_value` tells.
    out: dict[str, Any] = {}
    for kv in key_values:
        value = kv.value
        text = value.string_value
        out[kv.key] = text if text else _pb_value(value)
    return out


_ZERO_16, _ZERO_8 = bytes(16), bytes(8)


def _pb_nanos(value: int, what: str) -> int:
    # A protobuf fixed64 is already a non-negative int: only the upper bound of `_nanos` applies.
    if value > MAX_UNIX_NANOS:
        raise InvalidSpan(f"{what} {value} is out of range")
    return value


def _pb_events(events) -> list[SpanEvent]:
    return [
        SpanEvent(
            event.name,
            _pb_nanos(event.time_unix_nano, "event time"),
            _pb_attributes(event.attributes),
            event.dropped_attributes_count,
        )
        for event in events
    ]


def _pb_links(pb_links) -> list[dict[str, Any]]:
    links = []
    for link in pb_links:
        entry = {
            "trace_id": link.trace_id.hex(),
            "span_id": link.span_id.hex(),
        }
        if link.trace_state:
            entry["trace_state"] = link.trace_state
        if link.attributes:
            entry["attributes"] = _pb_attributes(link.attributes)
        links.append(entry)
    return links


def _pb_dropped(span) -> dict[str, int]:
    dropped = {}
    if span.dropped_attributes_count:
        dropped["attributes"] = span.dropped_attributes_count
    if span.dropped_events_count:
        dropped["events"] = span.dropped_events_count
    if span.dropped_links_count:
        dropped["links"] = span.dropped_links_count
    return dropped


def _pb_span(span, resource: dict, scope: Scope) -> SpanData:
    # Every read of a protobuf field builds a Python object, so each is read once; events, links and
    # dropped counts (absent from most spans) cost a truthiness test when there are none. `SpanData`
    # is built positionally: keyword arguments cost a microsecond per span. The checks run in the order
    # the refusal reason depends on: event times, then ids, then span times.
    events, links = span.events, span.links
    events = _pb_events(events) if events else []
    trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    status = span.status
    return SpanData(
        # Valid ids (the usual case) straight to hex; `_id_from_bytes` says what is wrong with the others.
        trace_id.hex()
        if len(trace_id) == 16 and trace_id != _ZERO_16
        else _id_from_bytes(trace_id, size=16, what="trace_id"),
        span_id.hex() if len(span_id) == 8 and span_id != _ZERO_8 else _id_from_bytes(span_id, size=8, what="span_id"),
        parent_id.hex()
        if len(parent_id) == 8 and parent_id != _ZERO_8
        else _id_from_bytes(parent_id, size=8, what="parent_span_id", allow_empty=True),
        span.name,
        span.kind,
        start if start <= MAX_UNIX_NANOS else _pb_nanos(start, "start_time_unix_nano"),
        end if end <= MAX_UNIX_NANOS else _pb_nanos(end, "end_time_unix_nano"),
        _pb_attributes(span.attributes),
        events,
        _pb_links(links) if links else [],
        status.code,
        status.message,
        resource,
        scope,
        span.trace_state,
        _pb_dropped(span),
    )


def from_request(request: ExportTraceServiceRequest) -> DecodedBatch:
    batch = DecodedBatch()
    spans, rejected = batch.spans.append, batch.rejected.append
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope_pb = scope_spans.scope
            scope = Scope(scope_pb.name, scope_pb.version, _pb_attributes(scope_pb.attributes))
            for span in scope_spans.spans:
                try:
                    spans(_pb_span(span, resource, scope))
                except InvalidSpan as exc:
                    rejected(_reason(span.span_id.hex() or "?", str(exc)))
    return batch


def decode_protobuf(body: bytes) -> DecodedBatch:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (ProtobufDecodeError, ValueError, RuntimeError) as exc:
        raise DecodeError(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
    return from_request(request)


# --- OTLP/JSON -----------------------------------------------------------------------------


def _finite(number: float) -> float | str:
    # JSON columns cannot hold NaN/Infinity; keep them readable instead of failing the span.
    return number if math.isfinite(number) else str(number)


def _get(obj: dict, camel: str, snake: str, default=None):
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake, default)
    return default if value is None else value


def _list(obj: dict, camel: str, snake: str, what: str) -> list:
    value = _get(obj, camel, snake, [])
    if not isinstance(value, list):
        raise InvalidSpan(f"{what} must be a list")
    return value


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict):
        raise InvalidSpan("attribute value must be an AnyValue object")
    if not value:
        return None
    for key, raw in value.items():
        if key == "stringValue" or key == "string_value":
            if not isinstance(raw, str):
                raise InvalidSpan("stringValue must be a string")
            return raw
        if key == "boolValue" or key == "bool_value":
            if not isinstance(raw, bool):
                raise InvalidSpan("boolValue must be true or false")
            return raw
        if key == "intValue" or key == "int_value":
            if isinstance(raw, bool):
                raise InvalidSpan("intValue must be an integer")
            number = None
            if isinstance(raw, int):
                number = raw
            elif isinstance(raw, float) and raw.is_integer():
                number = int(raw)
            elif isinstance(raw, str):
                try:
                    number = int(raw.strip())
                except ValueError:
                    pass
            if number is None:
                raise InvalidSpan(f"intValue {str(raw)[:40]!r} is not an integer")
            # OTLP's intValue is an int64 (protobuf cannot carry more); JSON can, and no JSON column
            # can store it.
            if not INT64_MIN <= number <= INT64_MAX:
                raise InvalidSpan(f"intValue {str(raw)[:40]} is outside the int64 range")
            return number
        if key == "doubleValue" or key == "double_value":
            if isinstance(raw, bool):
                raise InvalidSpan("doubleValue must be a number")
            if isinstance(raw, (int, float)):
                return _finite(float(raw))
            if isinstance(raw, str):
                try:
                    return _finite(float(raw))
                except ValueError:
                    pass
            raise InvalidSpan(f"doubleValue {str(raw)[:40]!r} is not a number")
        if key in ("arrayValue", "array_value", "kvlistValue", "kvlist_value"):
            values = raw.get("values") if isinstance(raw, dict) else None
            values = [] if values is None else values
            if not isinstance(values, list):
                raise InvalidSpan(f"{key}.values must be a list")
            if key.startswith("array"):
                return [_json_value(item) for item in values]
            return _json_attributes(values)
        if key == "bytesValue" or key == "bytes_value":
            if not isinstance(raw, str):
                raise InvalidSpan("bytesValue must be a base64 string")
            return raw
    # Only unknown keys: a newer AnyValue variant this server does not know.
    return None


def _json_attributes(key_values: Any) -> dict[str, Any]:
    if key_values is None:
        return {}
    if not isinstance(key_values, list):
        raise InvalidSpan("attributes must be a list of {key, value}")
    out: dict[str, Any] = {}
    for kv in key_values:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise InvalidSpan("each attribute must be an object with a string key")
        out[kv["key"]] = _json_value(kv.get("value") or {})
    return out


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidSpan(f"{what} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.strip().lstrip("-").isdigit():
            return int(value)
        if value in names:
            return names[value]
    raise InvalidSpan(f"{what} {str(value)[:40]!r} is not a known value")


def _str(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSpan(f"{what} must be a string")
    return value


def _json_span(span: Any, resource: dict, scope: Scope) -> SpanData:
    if not isinstance(span, dict):
        raise InvalidSpan("span must be an object")
    events = []
    for event in _list(span, "events", "events", "events"):
        if not isinstance(event, dict):
            raise InvalidSpan("each event must be an object")
        events.append(
            SpanEvent(
                name=_str(event.get("name"), "event name"),
                time_unix_nano=_nanos(_get(event, "timeUnixNano", "time_unix_nano"), "event time"),
                attributes=_json_attributes(event.get("attributes")),
                dropped_attributes_count=int(
                    _get(event, "droppedAttributesCount", "dropped_attributes_count", 0)
                ),
            )
        )
    links = []
    for link in _list(span, "links", "links", "links"):
        if not isinstance(link, dict):
            raise InvalidSpan("each link must be an object")
        entry = {
            "trace_id": _id_from_json(_get(link, "traceId", "trace_id"), size=16, what="link trace_id"),
            "span_id": _id_from_json(_get(link, "spanId", "span_id"), size=8, what="link span_id"),
        }
        trace_state = _get(link, "traceState", "trace_state")
        if trace_state:
            entry["trace_state"] = _str(trace_state, "link traceState")
        attributes = _json_attributes(link.get("attributes"))
        if attributes:
            entry["attributes"] = attributes
        links.append(entry)
    status = span.get("status") or {}
    if not isinstance(status, dict):
        raise InvalidSpan("status must be an object")
    dropped = {}
    for name, camel, snake in (
        ("attributes", "droppedAttributesCount", "dropped_attributes_count"),
        ("events", "droppedEventsCount", "dropped_events_count"),
        ("links", "droppedLinksCount", "dropped_links_count"),
    ):
        count = _get(span, camel, snake, 0)
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise InvalidSpan(f"{camel} must be an integer") from None
        if count:
            dropped[name] = count
    return SpanData(
        trace_id=_id_from_json(_get(span, "traceId", "trace_id"), size=16, what="traceId"),
        span_id=_id_from_json(_get(span, "spanId", "span_id"), size=8, what="spanId"),
        parent_span_id=_id_from_json(
            _get(span, "parentSpanId", "parent_span_id"), size=8, what="parentSpanId", allow_empty=True
        ),
        name=_str(span.get("name"), "name"),
        kind=_enum(span.get("kind"), _KIND_NAMES, "kind"),
        start_time_unix_nano=_nanos(
            _get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"
        ),
        end_time_unix_nano=_nanos(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        attributes=_json_attributes(span.get("attributes")),
        events=events,
        links=links,
        status_code=_enum(status.get("code"), _STATUS_NAMES, "status.code"),
        status_message=_str(status.get("message"), "status.message"),
        resource=resource,
        scope=scope,
        trace_state=_str(_get(span, "traceState", "trace_state"), "traceState"),
        dropped=dropped,
    )


def _reason(span_id: str, message: str) -> str:
    return f"span {span_id or '?'}: {message}"


def _json_span_id_hint(span: Any) -> str:
    if isinstance(span, dict):
        value = _get(span, "spanId", "span_id")
        if isinstance(value, str):
            return value[:32]
    return "?"


def _structure_error(what: str) -> DecodeError:
    return DecodeError(f"OTLP/JSON: {what}")


def decode_json(body: bytes) -> DecodedBatch:
    if not body.strip():
        return DecodedBatch()
    try:
        document = loads_json(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _structure_error("the body must be an object with `resourceSpans`")
    resource_spans_list = _get(document, "resourceSpans", "resource_spans", [])
    if not isinstance(resource_spans_list, list):
        raise _structure_error("`resourceSpans` must be a list")
    batch = DecodedBatch()
    for rs_index, resource_spans in enumerate(resource_spans_list):
        if not isinstance(resource_spans, dict):
            raise _structure_error(f"resourceSpans[{rs_index}] must be an object")
        resource_obj = resource_spans.get("resource") or {}
        scope_spans_list = _get(resource_spans, "scopeSpans", "scope_spans", [])
        if not isinstance(resource_obj, dict) or not isinstance(scope_spans_list, list):
            raise _structure_error(
                f"resourceSpans[{rs_index}] must have an object `resource` and a list `scopeSpans`"
            )
        try:
            resource = _json_attributes(resource_obj.get("attributes"))
        except InvalidSpan as exc:
            raise _structure_error(f"resourceSpans[{rs_index}].resource: {exc}") from None
        for ss_index, scope_spans in enumerate(scope_spans_list):
            where = f"resourceSpans[{rs_index}].scopeSpans[{ss_index}]"
            if not isinstance(scope_spans, dict):
                raise _structure_error(f"{where} must be an object")
            scope_obj = scope_spans.get("scope") or {}
            spans = scope_spans.get("spans") or []
            if not isinstance(scope_obj, dict) or not isinstance(spans, list):
                raise _structure_error(f"{where} must have an object `scope` and a list `spans`")
            try:
                scope = Scope(
                    name=_str(scope_obj.get("name"), "scope.name"),
                    version=_str(scope_obj.get("version"), "scope.version"),
                    attributes=_json_attributes(scope_obj.get("attributes")),
                )
            except InvalidSpan as exc:
                raise _structure_error(f"{where}.scope: {exc}") from None
            for span in spans:
                try:
                    batch.spans.append(_json_span(span, resource, scope))
                except (InvalidSpan, TypeError, ValueError) as exc:
                    batch.rejected.append(_reason(_json_span_id_hint(span), str(exc)))
    return batch
