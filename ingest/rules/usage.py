"""Token usage, every provider's shape, into our disjoint token kinds — one rule for every path.

Our token kinds are disjoint, as Langfuse normalises them (see `ingest.contract`): `input_tokens` is
FRESH input only, apart from `cached_input_tokens` (cache reads) and `cache_write_tokens`;
`output_tokens` excludes `reasoning_tokens`. `total_tokens` is passed on when the sender gave one.

Conventions disagree on whether their counts include those parts:
- OpenAI-style `prompt_tokens`/`completion_tokens`, Responses `input_tokens`/`output_tokens` (with
  `*_tokens_details`), OpenInference `llm.token_count.prompt`/`completion` and GenAI
  `gen_ai.usage.input_tokens`/`output_tokens` INCLUDE them: we subtract.
- Anthropic-style `input_tokens` next to `cache_read_input_tokens`, and Langfuse's own keys (`input`,
  `output`, `cache_read_input_tokens`, `output_reasoning_tokens` …, each priced on its own) EXCLUDE
  them: we take the counts as they are.
- An "inclusive" sender whose input (output) is smaller than its cache (reasoning) counts evidently
  reported it without them; subtracting would go negative (Langfuse's best-known cost bug), so we
  don't.

The Langfuse batch adapter also keeps the usage map in Langfuse's keys (`usage_details`); the token
columns of every path come from `token_counts` here.
"""

from __future__ import annotations

from ingest.rules.values import to_count

OPENAI_CHAT = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
OPENAI_RESPONSES = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def openai_shape(usage: dict) -> tuple[str, str, str, str] | None:
    """The keys (input, output, input details, output details) of an OpenAI Chat Completions or
    Responses usage map, or None for another shape."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return OPENAI_CHAT
    if ("input_tokens_details" in usage or "output_tokens_details" in usage) or (
        "input_tokens" in usage and "output_tokens" in usage and "total_tokens" in usage
    ):
        return OPENAI_RESPONSES
    return None


# Langfuse's own keys and the providers' flat names for the parts of input and output (first match wins).
CACHE_READ_KEYS = (
    "cache_read_input_tokens",
    "input_cached_tokens",
    "input_cache_read",
    "cached_input_tokens",
    "input_cached",
    "cached_tokens",
    "cache_read_tokens",
    "cache_read",
)
CACHE_WRITE_KEYS = (
    "cache_creation_input_tokens",
    "input_cache_creation",
    "input_cache_write",
    "cache_write_input_tokens",
    "cache_write_tokens",
    "cache_creation",
)
REASONING_KEYS = ("output_reasoning_tokens", "output_reasoning", "reasoning_tokens", "reasoning")


def first_count(source: dict, *keys: str) -> int | None:
    for key in keys:
        value = to_count(source.get(key))
        if value is not None:
            return value
    return None


def without(count: int, *parts: int | None) -> int:
    remaining = count
    for part in parts:  # a loop, not sum() of a generator: two calls a span with usage
        if part:
            remaining -= part
    return remaining if remaining >= 0 else count


def counts(*, input, cached, write, output, reasoning, total, inclusive) -> dict:
    """Our disjoint token fields; `inclusive`: input counts include cache reads/writes and output
    counts include reasoning, so they are subtracted."""
    fields: dict[str, int] = {}
    if input is not None:
        fields["input_tokens"] = without(input, cached, write) if inclusive else input
    if cached is not None:
        fields["cached_input_tokens"] = cached
    if write is not None:
        fields["cache_write_tokens"] = write
    if output is not None:
        fields["output_tokens"] = without(output, reasoning) if inclusive else output
    if reasoning is not None:
        fields["reasoning_tokens"] = reasoning
    if total is not None:
        fields["total_tokens"] = total
    return fields


def _details(usage: dict, key: str) -> dict:
    value = usage.get(key)
    return value if isinstance(value, dict) else {}


def from_usage_map(usage: dict) -> dict:
    """A usage map as Langfuse accepts it in `usage_details`: OpenAI chat, OpenAI Responses,
    Anthropic, or Langfuse's own keys."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt_details = _details(usage, "prompt_tokens_details")
        completion_details = _details(usage, "completion_tokens_details")
        return counts(
            input=to_count(usage.get("prompt_tokens")),
            cached=first_count(prompt_details, "cached_tokens", "cache_read_tokens"),
            write=first_count(prompt_details, "cache_creation_tokens", "cache_write_tokens"),
            output=to_count(usage.get("completion_tokens")),
            reasoning=first_count(completion_details, "reasoning_tokens"),
            total=to_count(usage.get("total_tokens")),
            inclusive=True,
        )
    if "input_tokens_details" in usage or "output_tokens_details" in usage:
        input_details = _details(usage, "input_tokens_details")
        output_details = _details(usage, "output_tokens_details")
        return counts(
            input=to_count(usage.get("input_tokens")),
            cached=first_count(input_details, "cached_tokens"),
            write=None,
            output=to_count(usage.get("output_tokens")),
            reasoning=first_count(output_details, "reasoning_tokens"),
            total=to_count(usage.get("total_tokens")),
            inclusive=True,
        )
    write = first_count(usage, *CACHE_WRITE_KEYS)
    if write is None:
        parts = [to_count(usage.get(k)) for k in ("input_cache_creation_5m", "input_cache_creation_1h")]
        if any(p is not None for p in parts):
            write = sum(p or 0 for p in parts)
    return counts(
        input=first_count(usage, "input", "input_tokens"),
        cached=first_count(usage, *CACHE_READ_KEYS),
        write=write,
        output=first_count(usage, "output", "output_tokens"),
        reasoning=first_count(usage, *REASONING_KEYS),
        total=first_count(usage, "total", "total_tokens"),
        inclusive=False,
    )


def token_counts(usage: dict, *, total_of: dict | None = None) -> dict:
    """Our token columns from a usage map. Without a total in the map, `total_of` (Langfuse's rule
    for `usageDetails`: the total is the sum of every key provided) gives one."""
    fields = from_usage_map(usage)
    if "total_tokens" not in fields and total_of is not None:
        numbers = [
            v for k, v in total_of.items() if isinstance(v, int) and not isinstance(v, bool) and k != "total"
        ]
        if numbers:
            fields["total_tokens"] = sum(numbers)
    return fields


# Our token columns → Langfuse's normalised usage keys (what its read API serves in `usageDetails`).
LANGFUSE_USAGE_KEYS = (
    ("input_tokens", "input"),
    ("cached_input_tokens", "input_cached_tokens"),
    ("cache_write_tokens", "input_cache_creation"),
    ("output_tokens", "output"),
    ("reasoning_tokens", "output_reasoning_tokens"),
    ("total_tokens", "total"),
)


def langfuse_usage_details(fields: dict) -> dict:
    """Our disjoint token fields as a Langfuse `usageDetails` map (each key counted once by a consumer
    that sums the keys containing "input" / "output"). Without a total, the total is their sum, as
    Langfuse defines it (and as the writer derives the total_tokens column)."""
    details = {key: fields[column] for column, key in LANGFUSE_USAGE_KEYS if fields.get(column) is not None}
    if details and "total" not in details:
        details["total"] = sum(details.values())
    return details
