"""The internal shape every ingest path produces (Langfuse batch events, OTLP spans, REST scores).

A *record* is a plain dict keyed by the field names of `traces.models.Trace`,
`traces.models.Observation` or `feedback.models.Score`, holding ONLY the fields the client actually
sent: an absent key means "not sent", which matters for Langfuse's merge rules (an update that omits
a field must not clear it). Rules:

- always `id`; observation records also carry `trace_id`; never `project_id` (the writer sets it);
- datetimes are timezone-aware `datetime` objects;
- JSON fields (input, output, metadata, model_parameters, usage_details, cost_details, tool_calls)
  hold plain JSON-able Python values;
- token columns (input_tokens = fresh input only, cached_input_tokens, cache_write_tokens,
  output_tokens, reasoning_tokens, total_tokens) may be given directly, and `usage_details` keeps the
  raw usage map as sent; the writer fills what can be derived (total, status, latency-independent
  fields, cost from the price catalog when the client sent none);
- unknown client attributes go into `metadata`, never dropped.

`ingest.writer.write_records(project=..., traces=[...], observations=[...], scores=[...])`
stores a batch of records with one bulk upsert per table.

Details the writer relies on (added with the writer):
- token kinds are disjoint, as Langfuse normalises them: `input_tokens` excludes cached and
  cache-write input, `output_tokens` excludes `reasoning_tokens`; `total_tokens`, when not sent, is
  the sum of the five;
- a cost the client sent (`input_cost`/`output_cost`/`total_cost` or `cost_details`) is stored with
  `cost_source="client"`; otherwise the writer prices the tokens from the catalog;
- `status` is derived (error / refused / success) unless the record carries it;
- `write_records` raises `ingest.writer.InvalidRecord` for records breaking this contract
  (ids over 200 characters, unknown keys, naive datetimes) and `ingest.writer.StorageUnavailable`
  when the region database cannot take the write: answer 503 with `Retry-After`
  (`StorageUnavailable.retry_after` seconds), never 500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TRACE_KEYS = frozenset(
    {"id", "name", "timestamp", "user_id", "session_id", "environment", "release", "version", "tags",
     "metadata", "input", "output", "public", "redactions"}
)

OBSERVATION_KEYS = frozenset(
    {"id", "trace_id", "parent_observation_id", "type", "name", "start_time", "end_time",
     "completion_start_time", "level", "status_message", "status", "version", "environment", "input",
     "output", "metadata", "model", "response_model", "model_parameters", "prompt_name", "prompt_version",
     "finish_reason", "tool_calls", "usage_details", "input_tokens", "cached_input_tokens",
     "cache_write_tokens", "output_tokens", "reasoning_tokens", "total_tokens", "cost_details",
     "input_cost", "output_cost", "total_cost", "cost_source", "tool_name", "tool_call_id", "error_type",
     "error_message", "error_stack", "redactions"}
)

SCORE_KEYS = frozenset(
    {"id", "trace_id", "observation_id", "session_id", "name", "value", "string_value", "data_type",
     "source", "comment", "author_user_id", "config_id", "metadata", "environment", "timestamp",
     "redactions"}
)


# ---------------------------------------------------------------------------------------------
# The batch and its outcome: what adapters hand to `ingest.pipeline.run` and get back.


@dataclass
class Entry:
    """One record on its way to storage, with what its adapter needs to answer for it."""

    record: dict
    ref: Any = None  # the adapter's handle (event position, span id, body index): echoed in refusals
    typed: bool = True  # scores: whether the client named the data type (score configs infer it if not)
    rides_on: str | None = None  # scores carried by an observation (OTLP): dropped when it is refused


@dataclass(frozen=True)
class Refusal:
    """A record the pipeline refused; nothing of it is stored. `message` is safe to return."""

    kind: str  # "trace" | "observation" | "score"
    ref: Any
    record_id: str | None
    status: int  # 400: the record breaks a rule (a score config); 422: it cannot be redacted
    message: str
    stage: str


@dataclass
class Batch:
    """The records of one request for one project, by kind, in the order they are to be merged.

    `write` chooses the writer: "upsert" (Langfuse's merge rules, every source) or "user_feedback"
    (one end-user rating replaced by a changed mind; `after_write` then runs in the same transaction
    with the row it replaced)."""

    project: Any
    source: str  # "langfuse" | "otlp" | "scores" | "feedback" (later "eval")
    traces: list[Entry] = field(default_factory=list)
    observations: list[Entry] = field(default_factory=list)
    scores: list[Entry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    write: str = "upsert"
    after_write: Callable | None = None
    pricer: Callable | None = None  # set by the price stage
    written: Any = None  # what the write stage returned

    def add(self, kind: str, record: dict, ref: Any = None, **meta) -> None:
        self.entries(kind).append(Entry(record, ref, **meta))

    def entries(self, kind: str) -> list[Entry]:
        return {"trace": self.traces, "observation": self.observations, "score": self.scores}[kind]

    def records(self, kind: str) -> list[dict]:
        return [entry.record for entry in self.entries(kind)]

    def refuse(self, kind: str, entry: Entry, *, status: int, message: str, stage: str) -> None:
        self.refused.append(Refusal(kind, entry.ref, entry.record.get("id"), status, message, stage))

    def __bool__(self) -> bool:
        return bool(self.traces or self.observations or self.scores)
