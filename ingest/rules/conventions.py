"""THE table of span attributes that carry token counts and stop reasons, written convention and vendor
variants alike.

The written conventions (OpenTelemetry GenAI, OpenInference) are not what every SDK sends: the
official `anthropic` SDK traces itself with `gen_ai.usage.cache_write.input_tokens` and
`anthropic.message.stop_reason`, OpenLLMetry with `gen_ai.usage.cache_creation_input_tokens` and
`llm.usage.*`, pydantic-ai with `gen_ai.usage.details.*`. An attribute missing from here is not an
error (it stays in `metadata.otel.attributes`) but its count is lost: an unknown cache-write count is
counted as fresh input (233 tokens instead of 23 on an Anthropic cache hit). So every alias is one row
here, and each row has its test (tests/test_capture_conventions.py).

Every attribute convention here is INCLUSIVE (see `ingest.rules.usage`): the input count includes the
cache reads and writes, the output count includes reasoning. Instrumentations of Anthropic fold
Anthropic's exclusive `input_tokens` back into the inclusive count (OpenInference, OpenLLMetry, the
SDK's own tracing, pydantic-ai all do); a sender that did not is caught by `usage.without`.
"""

from __future__ import annotations

# Our token kinds (`ingest.contract`), as the keys of `kinds_of` below.
INPUT = "input"
CACHED_INPUT = "cached_input"
CACHE_WRITE = "cache_write"
OUTPUT = "output"
REASONING = "reasoning"
TOTAL = "total"

# (attribute, kind, who sends it). Order matters only when one span carries two aliases of one kind:
# the first present wins (the written convention before its variants).
USAGE_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    # OpenInference (written convention).
    ("llm.token_count.prompt", INPUT, "OpenInference"),
    ("llm.token_count.prompt_details.cache_read", CACHED_INPUT, "OpenInference"),
    ("llm.token_count.prompt_details.cache_write", CACHE_WRITE, "OpenInference"),
    ("llm.token_count.completion", OUTPUT, "OpenInference"),
    ("llm.token_count.completion_details.reasoning", REASONING, "OpenInference"),
    ("llm.token_count.total", TOTAL, "OpenInference"),
    # OpenTelemetry GenAI (written convention, current names).
    ("gen_ai.usage.input_tokens", INPUT, "OTel GenAI"),
    ("gen_ai.usage.cache_read.input_tokens", CACHED_INPUT, "OTel GenAI"),
    ("gen_ai.usage.cache_creation.input_tokens", CACHE_WRITE, "OTel GenAI"),
    ("gen_ai.usage.output_tokens", OUTPUT, "OTel GenAI"),
    ("gen_ai.usage.reasoning.output_tokens", REASONING, "OTel GenAI"),
    # OpenTelemetry GenAI, deprecated names (OpenLLMetry still sends them).
    ("gen_ai.usage.prompt_tokens", INPUT, "OTel GenAI (deprecated), OpenLLMetry"),
    ("gen_ai.usage.completion_tokens", OUTPUT, "OTel GenAI (deprecated), OpenLLMetry"),
    # The official `anthropic` SDK's own tracing.
    ("gen_ai.usage.cache_write.input_tokens", CACHE_WRITE, "anthropic SDK"),
    # OpenLLMetry (traceloop) and others flattening Anthropic's usage names.
    ("gen_ai.usage.cache_read_input_tokens", CACHED_INPUT, "OpenLLMetry"),
    ("gen_ai.usage.cache_creation_input_tokens", CACHE_WRITE, "OpenLLMetry"),
    ("llm.usage.cache_read_input_tokens", CACHED_INPUT, "OpenLLMetry (older)"),
    ("llm.usage.cache_creation_input_tokens", CACHE_WRITE, "OpenLLMetry (older)"),
    ("gen_ai.usage.reasoning_tokens", REASONING, "OpenLLMetry"),
    ("llm.usage.reasoning_tokens", REASONING, "OpenLLMetry (older)"),
    ("gen_ai.usage.total_tokens", TOTAL, "OpenLLMetry"),
    ("llm.usage.total_tokens", TOTAL, "OpenLLMetry"),
    # OpenAI's usage object flattened into attributes (`prompt_tokens_details.cached_tokens` …).
    ("gen_ai.usage.prompt_tokens_details.cached_tokens", CACHED_INPUT, "OpenAI usage, flattened"),
    ("gen_ai.usage.input_tokens_details.cached_tokens", CACHED_INPUT, "OpenAI Responses usage, flattened"),
    ("gen_ai.usage.completion_tokens_details.reasoning_tokens", REASONING, "OpenAI usage, flattened"),
    ("gen_ai.usage.output_tokens_details.reasoning_tokens", REASONING, "OpenAI Responses usage, flattened"),
    ("gen_ai.openai.usage.cached_tokens", CACHED_INPUT, "OpenAI instrumentations"),
    # pydantic-ai / Logfire: provider details under `gen_ai.usage.details.*`.
    ("gen_ai.usage.details.cache_read_tokens", CACHED_INPUT, "pydantic-ai"),
    ("gen_ai.usage.details.cache_write_tokens", CACHE_WRITE, "pydantic-ai"),
    ("gen_ai.usage.details.reasoning_tokens", REASONING, "pydantic-ai"),
)

USAGE_ALIASES: dict[str, str] = {attribute: kind for attribute, kind, _ in USAGE_ATTRIBUTES}

# Attributes naming the stop (finish) reason, beside `gen_ai.response.finish_reasons` (a list).
# Their values go through the one refusal list, `ingest.rules.status.REFUSAL_SIGNALS`.
FINISH_REASON_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("gen_ai.response.finish_reasons", "OTel GenAI"),
    ("llm.finish_reason", "OpenInference"),
    ("anthropic.message.stop_reason", "anthropic SDK"),
    ("gen_ai.response.finish_reason", "single-valued variant"),
    ("gen_ai.response.stop_reason", "single-valued variant"),
    ("llm.response.stop_reason", "OpenLLMetry (older)"),
)


USAGE_ATTRIBUTE_NAMES: tuple[str, ...] = tuple(attribute for attribute, _, _ in USAGE_ATTRIBUTES)


def usage_attributes(attrs: dict, candidates: tuple[str, ...] = USAGE_ATTRIBUTE_NAMES) -> dict[str, object]:
    """The usage attributes present in a span, as sent, in table order. `candidates`: the table's
    attributes (in its order) that may be there, when the caller knows the others are not."""
    return {attribute: attrs[attribute] for attribute in candidates if attribute in attrs}


def kinds_of(present: dict, to_count) -> dict[str, int]:
    """{kind: count} from the usage attributes of one span (first alias present wins per kind)."""
    out: dict[str, int] = {}
    for attribute, value in present.items():
        kind = USAGE_ALIASES.get(attribute)
        if kind is None or kind in out:
            continue
        count = to_count(value)
        if count is not None:
            out[kind] = count
    return out
