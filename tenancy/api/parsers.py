"""The JSON parser of every DRF endpoint (`/api/v1`): orjson instead of the standard library.

The standard parser recurses once per nesting level, so a body of 100k `[` ended in RecursionError
and a 500. orjson refuses documents nested deeper than 1024 levels with an ordinary decode error,
which becomes DRF's 400 ParseError here; it is also several times faster.

Below that, a body nests at most `MAX_BODY_DEPTH` levels (`tenancy.http.body`), the same answer on
every interpreter. It reads with the public API's reader (`loads_json`), so a lone surrogate escape
becomes U+FFFD here as there.
"""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from tenancy.http.body import MAX_BODY_DEPTH, loads_json, nests_deeper_than


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            if codecs.lookup(encoding).name != "utf-8":
                raw = raw.decode(encoding).encode()
            document = loads_json(raw)
        except (ValueError, LookupError) as exc:  # orjson's JSONDecodeError and UnicodeError among them
            raise ParseError(f"JSON parse error - {exc}") from None
        if nests_deeper_than(document, MAX_BODY_DEPTH):
            raise ParseError(f"JSON parse error - the body nests deeper than {MAX_BODY_DEPTH} levels")
        return document
