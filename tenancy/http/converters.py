"""`<anyid:…>` in URL patterns: the rest of the path, whatever it holds.

Trace, observation, session and score ids are arbitrary client strings (the Langfuse SDKs accept any):
`/`, spaces, even line breaks. Django's `path` converter stops at a line break (its `.+` does not
match one), so such an id, percent-encoded as `%0A`, fell through to the JSON 404 of an unimplemented
route. This converter matches every character.
"""

from django.urls import register_converter


class AnyIdConverter:
    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyIdConverter, "anyid")
