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
