"""Request bodies sent with `Transfer-Encoding: chunked` (no Content-Length).

Django sizes every request body by CONTENT_LENGTH: without it `request.body`, `request.read()` and
DRF's parsers all see an empty body. gunicorn, though, de-chunks such bodies itself and hands them
to the application through `wsgi.input` with no CONTENT_LENGTH (and `wsgi.input_terminated` set, the
WSGI extension saying the stream ends where the body does). Ignored, a chunked OTLP export would be
answered `200 {}` with nothing stored: acknowledged and dropped.

Two readers cover every view:

- views that stream their own body through `tenancy.http.body.read_body` (ingestion, OTLP, scores,
  score configs, prompts, feedback, redact) read `chunked_input(request)` directly, after
  authentication and under their own decompressed-size limits; they are marked `@streams_body`;
- every other view (DRF's `/api/v1`, forms) gets the body buffered by `ChunkedBodyMiddleware` up to
  DATA_UPLOAD_MAX_MEMORY_SIZE, with CONTENT_LENGTH set, so Django and DRF read it as usual.

A server that does not terminate the input (Django's runserver, wsgiref) cannot be read without
risking a read that never ends; such a chunked request answers 411 Length Required rather than
pretending its body was empty.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import JsonResponse

LENGTH_REQUIRED_MESSAGE = (
    "this server cannot read a chunked request body here; send it with a Content-Length header"
)


class LengthRequired(Exception):
    status = 411
    message = LENGTH_REQUIRED_MESSAGE


def is_chunked(meta) -> bool:
    """A body is coming without a Content-Length: Transfer-Encoding names `chunked`."""
    if meta.get("CONTENT_LENGTH") not in (None, ""):
        return False
    encodings = (meta.get("HTTP_TRANSFER_ENCODING") or "").lower()
    return "chunked" in {part.strip() for part in encodings.split(",")}


def chunked_input(request):
    """The de-chunked body stream of a chunked request, or None for a request with a
    Content-Length (or none at all). Raises LengthRequired when the server left the input unbounded.
    Callers bound their own reads."""
    meta = request.META
    if not is_chunked(meta):
        return None
    if not meta.get("wsgi.input_terminated"):
        raise LengthRequired()
    request._read_started = True  # Django's own readers must not try the (empty) limited stream later
    return meta["wsgi.input"]


def streams_body(view):
    """Marks a view that reads a chunked body itself, streaming (see `tenancy.http.body`)."""
    view.streams_body = True
    return view


def _error(status: int, error: str, message: str) -> JsonResponse:
    return JsonResponse({"error": error, "message": message, "detail": message}, status=status)


class ChunkedBodyMiddleware:
    """Buffers a chunked body (bounded) for the views that do not stream it themselves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not is_chunked(request.META) or getattr(view_func, "streams_body", False):
            return None
        try:
            stream = chunked_input(request)
        except LengthRequired as exc:
            return _error(411, "LengthRequiredError", exc.message)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        data = bytearray()
        while len(data) <= limit:
            chunk = stream.read(min(64 * 1024, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) > limit:
            return _error(413, "PayloadTooLargeError", f"request body exceeds {limit} bytes")
        request.META["CONTENT_LENGTH"] = str(len(data))
        request._stream = LimitedStream(io.BytesIO(bytes(data)), len(data))
        request._read_started = False
        return None
