"""OTLP/HTTP trace export: `POST /api/public/otel/v1/traces` (Langfuse SDK v3+) and `POST /v1/traces`
(any OpenTelemetry exporter pointed at `OTEL_EXPORTER_OTLP_ENDPOINT=http://host`).

Answers follow the OTLP/HTTP spec: 200 with an `ExportTraceServiceResponse` in the request's encoding
(with `partial_success` when some spans were rejected and the rest stored); errors carry a
`google.rpc.Status` (protobuf for protobuf requests, its JSON form otherwise). Only 429/502/503/504
make exporters retry, so an unavailable database is 503 + Retry-After, never 500.
"""

from __future__ import annotations

import logging

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from billing.enforcement import QuotaExceeded, with_billing_headers
from ingest.adapters.otel.decode import DecodeError
from ingest.adapters.otel.services import export_traces as store_export
from ingest.writer import InvalidRecord, StorageUnavailable
from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.http.body import BodyError, read_body

logger = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
PROTOBUF_TYPES = {"application/x-protobuf", "application/protobuf"}
MAX_INGESTION_VERSION = 4
RETRY_AFTER_SECONDS = 5
_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    405: code_pb2.UNIMPLEMENTED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    503: code_pb2.UNAVAILABLE,
}


def _content_type(request) -> str:
    return (request.META.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()


def _error(
    status: int, message: str, *, protobuf: bool, retry_after: int | None = None, headers: dict | None = None
) -> HttpResponse:
    code = _GRPC_CODES.get(status, code_pb2.UNKNOWN)
    if protobuf:
        body = status_pb2.Status(code=code, message=message)
        if retry_after is not None:
            body.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=retry_after)))
        response = HttpResponse(body.SerializeToString(), status=status, content_type=PROTOBUF)
    else:
        response = HttpResponse(
            orjson.dumps({"code": code, "message": message}), status=status, content_type=JSON
        )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _success(*, protobuf: bool, rejected: int, error_message: str) -> HttpResponse:
    if protobuf:
        message = ExportTraceServiceResponse()
        if rejected or error_message:
            message.partial_success.rejected_spans = rejected
            message.partial_success.error_message = error_message
        return HttpResponse(message.SerializeToString(), content_type=PROTOBUF)
    body: dict = {}
    if rejected or error_message:
        # OTLP/JSON encodes int64 as a decimal string.
        body["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": error_message}
    return HttpResponse(orjson.dumps(body), content_type=JSON)


def _ingestion_version_error(request) -> str | None:
    """Langfuse's rule: the header is optional; if sent it must be an integer no newer than 4."""
    raw = request.META.get("HTTP_X_LANGFUSE_INGESTION_VERSION")
    if raw is None:
        return None
    try:
        version = int(raw.strip())
    except ValueError:
        version = None
    if version is None or version > MAX_INGESTION_VERSION:
        return (
            f'Unsupported x-langfuse-ingestion-version: "{raw[:20]}". '
            f'Maximum supported: "{MAX_INGESTION_VERSION}".'
        )
    return None


@csrf_exempt
@with_billing_headers
def export_traces(request):
    content_type = _content_type(request)
    protobuf = content_type in PROTOBUF_TYPES
    if request.method != "POST":
        return _error(
            405,
            "Method not allowed: OTLP trace exports are sent with POST.",
            protobuf=protobuf,
            headers={"Allow": "POST"},
        )
    if not protobuf and content_type != JSON:
        return _error(
            415,
            f"Unsupported Content-Type {content_type or '(none)'!r}: send OTLP as {PROTOBUF} or {JSON}.",
            protobuf=False,
        )

    try:
        principal = authenticate_header(request.META.get("HTTP_AUTHORIZATION"))
    except AuthenticationFailed as exc:
        return _error(
            401, exc.message, protobuf=protobuf, headers={"WWW-Authenticate": 'Basic realm="lookglass"'}
        )
    except (OperationalError, InterfaceError):
        logger.warning("OTLP export: control-plane database unavailable during authentication", exc_info=True)
        return _error(
            503,
            "Authentication is temporarily unavailable; retry later.",
            protobuf=protobuf,
            retry_after=RETRY_AFTER_SECONDS,
        )

    version_error = _ingestion_version_error(request)
    if version_error:
        return _error(400, version_error, protobuf=protobuf)

    try:
        body = read_body(request, limit=settings.OTLP_MAX_BODY_BYTES)
    except BodyError as exc:
        return _error(exc.status, exc.message, protobuf=protobuf)

    try:
        result = store_export(
            project=principal.project, body=body, protobuf=protobuf, api_key_id=principal.api_key.id
        )
    except QuotaExceeded as exc:
        # 429 is one of the codes OTLP exporters retry (with RetryInfo); nothing of it was stored.
        return _error(429, exc.message, protobuf=protobuf, retry_after=exc.retry_after)
    except DecodeError as exc:
        return _error(400, exc.message, protobuf=protobuf)
    except StorageUnavailable as exc:
        return _error(503, exc.message, protobuf=protobuf, retry_after=exc.retry_after)
    except InvalidRecord as exc:
        # Records are checked span by span before the write; should the database still refuse one,
        # the export is answered as bad input (exporters drop it), never as a crash.
        logger.warning("OTLP export for project %s refused by the database: %s", principal.project.id, exc)
        return _error(400, str(exc), protobuf=protobuf)
    if result.rejected:
        logger.info(
            "OTLP export for project %s: %d span(s) stored, %s",
            principal.project.id,
            result.accepted_spans,
            result.error_message[:500],
        )
    return _success(protobuf=protobuf, rejected=len(result.rejected), error_message=result.error_message)
