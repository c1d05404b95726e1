"""The JSON parser of every DRF endpoint (`/api/v1`): orjson instead of the standard library.

The standard parser recurses once per nesting level, so a body of 100k `[` ended in RecursionError
and a 500. orjson refuses documents nested deeper than 1024 levels with an ordinary decode error,
which becomes DRF's 400 ParseError here; it is also several times faster.

Below orjson's limit, how deep a value could go used to depend on the interpreter: DRF re-encodes
JSONField values with the standard library, whose stack ran out a few hundred levels down on CPython
3.11 (a 400 through `tenancy.api.exceptions`) but not on 3.13 (the same body stored, a 200). So the
parser sets the limit itself: MAX_BODY_DEPTH levels, the same answer on every interpreter.
"""

from __future__ import annotations

import codecs

import orjson
from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Above the 100 levels ingestion keeps of any JSON value (`ingest.contract.MAX_JSON_DEPTH`), with room
# for the object a value is sent in; far beyond any settings or policy document.
MAX_BODY_DEPTH = 128


def _too_deep(document) -> bool:
    """Whether `document` nests containers more than MAX_BODY_DEPTH levels (the outermost is level 1).
    A walk with its own stack: no recursion, so no interpreter limit is involved."""
    if not isinstance(document, (dict, list)):
        return False
    stack = [(document, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                if depth == MAX_BODY_DEPTH:
                    return True
                push((child, depth + 1))
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            if codecs.lookup(encoding).name != "utf-8":
                raw = raw.decode(encoding).encode()
            document = orjson.loads(raw)
        except (orjson.JSONDecodeError, UnicodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _too_deep(document):
            raise ParseError(f"JSON parse error - the body nests deeper than {MAX_BODY_DEPTH} levels")
        return document
