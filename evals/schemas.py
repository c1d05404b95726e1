"""JSON Schema validation of dataset items, with regular expressions run by RE2.

A dataset's schemas are written by the tenant, and `jsonschema` matches `pattern` and
`patternProperties` with Python's backtracking `re`: a pattern such as `^(a+)+$` against a long
item would hold a server thread for minutes. The RE2-backed validator lives once, in the client
package the server installs (`lookglass._jsonschema`, also used by the CLI's `json_schema`
evaluator); a schema whose patterns RE2 cannot run (backreferences, lookaround), or that combines
`patternProperties` with `unevaluatedProperties`, is refused when the dataset is saved.
"""

from __future__ import annotations

from lookglass import _jsonschema
from lookglass._jsonschema import UnsupportedSchema

__all__ = ["UnsupportedSchema", "check_schema", "first_error"]


def check_schema(schema) -> None:
    """Raises UnsupportedSchema with a reason when `schema` is not a JSON Schema we can run."""
    _jsonschema.compile_schema(schema)


def first_error(schema, value) -> str | None:
    """Why `value` fails `schema` (`$.path: message`), or None. `schema` was checked when saved."""
    return _jsonschema.first_error(_jsonschema.validator(schema), value)
