"""Reading request bodies for the ingest endpoints, with limits applied *after* decompression.

A gzip bomb (a few KB that inflate to gigabytes) is stopped as soon as the inflated size passes the
limit, because we decompress incrementally and never ask zlib for more than limit + 1 bytes.

Bodies sent chunked (no Content-Length) are read from the server's de-chunked input under the same
limits (`tenancy.chunked`); views calling `read_body` are marked `@streams_body` so that nothing
buffers the body before they authenticate the request.
"""

from __future__ import annotations

import re
import zlib

from tenancy.chunked import LengthRequired, chunked_input, streams_body

__all__ = ["BodyError", "BodyLengthRequired", "BodyTooLarge", "UnsupportedEncoding", "read_body", "streams_body"]
import orjson

CHUNK = 64 * 1024


class BodyError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BodyTooLarge(BodyError):
    status = 413


class UnsupportedEncoding(BodyError):
    status = 415


class BodyLengthRequired(BodyError):
    status = 411


def _read_at_most(stream, size: int) -> bytes:
    """Up to `size` bytes: a WSGI input may return less than asked before its end (PEP 3333)."""
    out = bytearray()
    while len(out) < size:
        chunk = stream.read(min(CHUNK, size - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _inflate(stream, *, wbits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=wbits)
    out = bytearray()
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        data = chunk
        while data:
            out += decompressor.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise BodyTooLarge(f"request body exceeds {limit} bytes after decompression")
            data = decompressor.unconsumed_tail
        if decompressor.eof:
            break
    try:
        out += decompressor.flush()
    except zlib.error as exc:
        raise BodyError(f"corrupt compressed body: {exc}") from None
    if len(out) > limit:
        raise BodyTooLarge(f"request body exceeds {limit} bytes after decompression")
    if not decompressor.eof:
        raise BodyError("truncated compressed body")
    return bytes(out)


def read_body(request, *, limit: int) -> bytes:
    """The request body, decompressed per Content-Encoding (identity, gzip, deflate).

    Raises BodyTooLarge (413), UnsupportedEncoding (415), BodyLengthRequired (411, a chunked body the
    server cannot bound) or BodyError (400) with a clear message.
    Reads from the WSGI stream directly so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply;
    our own limits do.
    """
    encoding = (request.META.get("HTTP_CONTENT_ENCODING") or "identity").strip().lower()
    declared = request.META.get("CONTENT_LENGTH")
    try:
        declared_length = int(declared) if declared else None
    except ValueError:
        raise BodyError("invalid Content-Length header") from None
    stream = request  # HttpRequest is file-like over the (length-limited) WSGI input
    try:
        chunked = chunked_input(request)
    except LengthRequired as exc:
        raise BodyLengthRequired(exc.message) from None
    if chunked is not None:
        stream = chunked  # the server's de-chunked input; every read below is bounded
    try:
        if encoding in ("identity", ""):
            if declared_length is not None and declared_length > limit:
                raise BodyTooLarge(f"request body exceeds {limit} bytes")
            data = _read_at_most(stream, limit + 1)
            if len(data) > limit:
                raise BodyTooLarge(f"request body exceeds {limit} bytes")
            return data
        if encoding in ("gzip", "x-gzip"):
            return _inflate(stream, wbits=16 + zlib.MAX_WBITS, limit=limit)
        if encoding == "deflate":
            return _inflate(stream, wbits=zlib.MAX_WBITS, limit=limit)
    except zlib.error as exc:
        raise BodyError(f"corrupt {encoding} body: {exc}") from None
    raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")


# An escaped backslash, a surrogate pair, or a lone surrogate escape (in that order of preference).
_SURROGATE_ESCAPE = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


def _replace_lone_surrogate(match: re.Match) -> bytes:
    return b"\\ufffd" if len(match.group()) == 6 else match.group()


def without_lone_surrogates(raw: bytes) -> bytes:
    """JSON text with each lone UTF-16 surrogate escape (`"\\ud83d"` without its pair) replaced by
    `\\ufffd`; escaped backslashes and surrogate pairs are kept. For a reader other than `loads_json`
    (the standard library's keeps such a string, which PostgreSQL and UTF-8 then refuse)."""
    return _SURROGATE_ESCAPE.sub(_replace_lone_surrogate, raw)


def loads_json(raw: bytes):
    """`orjson.loads`, except that a lone UTF-16 surrogate escape (`"\\ud83d"` without its pair)
    becomes U+FFFD instead of failing the whole body.

    Python's json module (the v2 SDK, most clients) writes such escapes for strings that hold a lone
    surrogate (a cut emoji, a `surrogateescape`d file name); orjson refuses them, which turned one bad
    string into a 400 for every event of the batch. Text cannot hold a lone surrogate anyway, so it
    becomes the replacement character, as NUL does in the writer. Raises orjson.JSONDecodeError.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
    return orjson.loads(without_lone_surrogates(raw))


# A JSON body nests at most this deep wherever it is one object (the management API, prompts,
# redaction previews, erasure and export requests): above the 100 levels ingestion keeps of any value
# (`ingest.contract.MAX_JSON_DEPTH`), with room for the object a value is sent in. Without a limit of
# its own, how deep a body could go rested on the interpreter's stack where a serializer re-encodes
# it with the standard library: a RecursionError (a 500 on plain views) on CPython 3.11, a 200 on 3.13.
MAX_BODY_DEPTH = 128


def nests_deeper_than(document, levels: int) -> bool:
    """Whether `document` nests containers more than `levels` deep (the outermost is level 1). A walk
    with its own stack: no recursion, so no interpreter limit is involved."""
    if not isinstance(document, (dict, list)):
        return False
    stack = [(document, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                if depth == levels:
                    return True
                push((child, depth + 1))
    return False
