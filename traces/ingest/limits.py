"""Per-record limits on metadata, checked once for every ingest path before anything is stored.

Metadata is the one field the writer deep-merges into the stored row on every re-send, and the
client decides its shape. A record whose metadata holds more than MAX_METADATA_KEYS keys (counted
at every level, inside arrays too) or nests deeper than MAX_METADATA_DEPTH objects/arrays is refused
on its own — a 207 error entry, an OTLP partial success, a score error — while the rest of the batch
is stored. `traces.ingest.redact.redact_for_storage`, which every path (Langfuse batch, OTLP, REST
scores) calls right before the writer, applies it.
"""

from __future__ import annotations

from dataclasses import replace

from privacy.engine import RecordFailure

MAX_METADATA_KEYS = 10_000
MAX_METADATA_DEPTH = 20
# A record refused for its metadata is the client's mistake: 400, and resending it fails the same way.
LIMIT_STATUS = 400


def metadata_problem(value) -> str | None:
    """Why this metadata value is refused, or None. Iterative: no recursion limit to hit."""
    keys = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
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
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return None


def screen(*, traces=(), observations=(), scores=()):
    """Split records into those within the limits and failures.

    Returns ({kind: [(index in the given list, record), ...]}, [RecordFailure, ...]).
    """
    kept: dict[str, list[tuple[int, dict]]] = {"trace": [], "observation": [], "score": []}
    failures: list[RecordFailure] = []
    for kind, records in (("trace", traces), ("observation", observations), ("score", scores)):
        for index, record in enumerate(records):
            problem = metadata_problem(record.get("metadata")) if isinstance(record, dict) else None
            if problem is None:
                kept[kind].append((index, record))
            else:
                failures.append(RecordFailure(kind, index, record.get("id"), problem, status=LIMIT_STATUS))
    return kept, failures


def restore_indices(failures, kept: dict[str, list[tuple[int, dict]]]) -> list[RecordFailure]:
    """Failures reported against the screened lists, re-pointed at the caller's lists."""
    return [replace(f, index=kept[f.kind][f.index][0]) for f in failures]
