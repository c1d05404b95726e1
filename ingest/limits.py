"""Per-record limits on metadata, checked once for every ingest path before anything is stored.

Metadata is the one field the writer deep-merges into the stored row on every re-send, and the
client decides its shape. A record whose metadata holds more than MAX_METADATA_KEYS keys (counted
at every level, inside arrays too) or nests deeper than MAX_METADATA_DEPTH objects/arrays is refused
on its own — a 207 error entry, an OTLP partial success, a score error — while the rest of the batch
is stored. The pipeline's normalize stage (`ingest.pipeline.normalize`) applies it to every record of
every source, before redaction (which walks the value) and the writer (which merges it).
"""

from __future__ import annotations

MAX_METADATA_KEYS = 10_000
MAX_METADATA_DEPTH = 20
# A record refused for its metadata is the client's mistake: 400, and resending it fails the same way.
LIMIT_STATUS = 400


def metadata_problem(value) -> str | None:
    """Why this metadata value is refused, or None. Iterative: no recursion limit to hit."""
    keys = 0
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if isinstance(node, dict):
            children = node.values()
            keys += len(node)
            if keys > MAX_METADATA_KEYS:
                return f"metadata has more than {MAX_METADATA_KEYS} keys (counted at every level)"
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > MAX_METADATA_DEPTH:
            return f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels"
        depth += 1
        for child in children:  # a loop, not a generator: this runs for every value of every record
            # Most values are strings: `type(...) is str` settles them, where the `isinstance` that
            # fails (it then looks the object's `__class__` up) costs three times as much.
            if type(child) is not str and isinstance(child, _CONTAINERS):
                push((child, depth))
    return None


_CONTAINERS = (dict, list, tuple)
