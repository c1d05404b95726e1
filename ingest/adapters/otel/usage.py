"""Token counts and client-sent costs from the Langfuse, OpenInference and GenAI attributes.

Our token kinds are disjoint, as Langfuse normalises them (see `ingest.contract`):
`input_tokens` is FRESH input only, apart from `cached_input_tokens` (cache reads) and
`cache_write_tokens`; `output_tokens` excludes `reasoning_tokens`. `total_tokens` is passed on
when the sender gave one; otherwise the writer sums the five.

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
The raw map as sent is kept in `usage_details` either way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ingest.adapters.otel.values import MAX_COST, parse_json_object, to_cost, to_count

OI_TOKENS = "llm.token_count."
OI_COST = "llm.cost."


def _first_int(source: dict, *keys: str) -> int | None:
    for key in keys:
        value = to_count(source.get(key))
        if value is not None:
            return value
    return None


def _without(count: int, *parts: int | None) -> int:
    remaining = count - sum(p or 0 for p in parts)
    return remaining if remaining >= 0 else count


def _counts(*, input, cached, write, output, reasoning, total, inclusive) -> dict:
    """Our disjoint token fields; `inclusive`: input counts include cache reads/writes and output
    counts include reasoning, so they are subtracted."""
    fields: dict[str, int] = {}
    if input is not None:
        fields["input_tokens"] = _without(input, cached, write) if inclusive else input
    if cached is not None:
        fields["cached_input_tokens"] = cached
    if write is not None:
        fields["cache_write_tokens"] = write
    if output is not None:
        fields["output_tokens"] = _without(output, reasoning) if inclusive else output
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
        return _counts(
            input=to_count(usage.get("prompt_tokens")),
            cached=_first_int(prompt_details, "cached_tokens", "cache_read_tokens"),
            write=_first_int(prompt_details, "cache_creation_tokens", "cache_write_tokens"),
            output=to_count(usage.get("completion_tokens")),
            reasoning=_first_int(completion_details, "reasoning_tokens"),
            total=to_count(usage.get("total_tokens")),
            inclusive=True,
        )
    if "input_tokens_details" in usage or "output_tokens_details" in usage:
        input_details = _details(usage, "input_tokens_details")
        output_details = _details(usage, "output_tokens_details")
        return _counts(
            input=to_count(usage.get("input_tokens")),
            cached=_first_int(input_details, "cached_tokens"),
            write=None,
            output=to_count(usage.get("output_tokens")),
            reasoning=_first_int(output_details, "reasoning_tokens"),
            total=to_count(usage.get("total_tokens")),
            inclusive=True,
        )
    write = _first_int(
        usage, "cache_creation_input_tokens", "input_cache_creation", "cache_write_tokens", "cache_creation"
    )
    if write is None:
        parts = [to_count(usage.get(k)) for k in ("input_cache_creation_5m", "input_cache_creation_1h")]
        if any(p is not None for p in parts):
            write = sum(p or 0 for p in parts)
    return _counts(
        input=_first_int(usage, "input", "input_tokens"),
        cached=_first_int(
            usage,
            "cache_read_input_tokens",
            "input_cached_tokens",
            "input_cache_read",
            "cached_tokens",
            "cache_read_tokens",
            "cache_read",
        ),
        write=write,
        output=_first_int(usage, "output", "output_tokens"),
        reasoning=_first_int(
            usage, "output_reasoning_tokens", "output_reasoning", "reasoning_tokens", "reasoning"
        ),
        total=_first_int(usage, "total", "total_tokens"),
        inclusive=False,
    )


def _pop_prefixed(attrs: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {key: attrs.pop(key) for key in [k for k in attrs if k.startswith(prefix)]}


GENAI_USAGE_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.total_tokens",
    "llm.usage.total_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
)


def extract_usage(attrs: dict[str, Any]) -> dict:
    """Token fields + `usage_details` for one span; the attributes used are removed from attrs."""
    raw = attrs.get("langfuse.observation.usage_details")
    usage = parse_json_object(raw) if raw is not None else None
    if usage is not None:
        attrs.pop("langfuse.observation.usage_details")
        return {"usage_details": usage, **from_usage_map(usage)}

    oi = {k: v for k, v in attrs.items() if k.startswith(OI_TOKENS)}
    if oi:
        _pop_prefixed(attrs, OI_TOKENS)
        return {
            "usage_details": oi,
            **_counts(
                input=to_count(oi.get("llm.token_count.prompt")),
                cached=to_count(oi.get("llm.token_count.prompt_details.cache_read")),
                write=to_count(oi.get("llm.token_count.prompt_details.cache_write")),
                output=to_count(oi.get("llm.token_count.completion")),
                reasoning=to_count(oi.get("llm.token_count.completion_details.reasoning")),
                total=to_count(oi.get("llm.token_count.total")),
                inclusive=True,
            ),
        }

    genai = {k: attrs[k] for k in GENAI_USAGE_KEYS if k in attrs}
    if genai:
        for key in genai:
            attrs.pop(key)
        return {
            "usage_details": genai,
            **_counts(
                input=_first_int(genai, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
                cached=_first_int(
                    genai, "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"
                ),
                write=_first_int(
                    genai,
                    "gen_ai.usage.cache_creation.input_tokens",
                    "gen_ai.usage.cache_creation_input_tokens",
                ),
                output=_first_int(genai, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
                reasoning=_first_int(
                    genai, "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"
                ),
                total=_first_int(genai, "gen_ai.usage.total_tokens", "llm.usage.total_tokens"),
                inclusive=True,
            ),
        }
    return {}


def _sum(values) -> Decimal | None:
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) if present else None


def _valid_costs(details: dict) -> dict:
    return {key: value for key, value in details.items() if to_cost(value) is not None}


def _cost_fields(details: dict, *, input_keys, output_keys, total_key) -> dict | None:
    """None when the amounts do not fit the cost columns (the attribute then stays in metadata)."""
    decimals = {key: to_cost(value) for key, value in details.items()}
    input_cost = _sum(v for k, v in decimals.items() if k.startswith(input_keys))
    output_cost = _sum(v for k, v in decimals.items() if k.startswith(output_keys))
    total = decimals.get(total_key)
    if total is None:
        total = _sum(v for k, v in decimals.items() if k != total_key)
    amounts = {"input_cost": input_cost, "output_cost": output_cost, "total_cost": total}
    if any(v is not None and v >= MAX_COST for v in amounts.values()):
        return None
    return {
        "cost_details": details,
        "cost_source": "client",
        **{k: v for k, v in amounts.items() if v is not None},
    }


def extract_cost(attrs: dict[str, Any]) -> dict:
    """Cost the client computed itself (it wins over the price catalog). Amounts that are negative
    or too large for the cost columns are left out; the attribute then stays in metadata as sent."""
    raw = attrs.get("langfuse.observation.cost_details")
    details = parse_json_object(raw) if raw is not None else None
    valid = _valid_costs(details) if details else None
    if valid:
        fields = _cost_fields(
            valid, input_keys=("input", "cache"), output_keys=("output",), total_key="total"
        )
        if fields is not None:
            if valid == details:
                attrs.pop("langfuse.observation.cost_details")
            return fields
    oi = {k.removeprefix(OI_COST): v for k, v in attrs.items() if k.startswith(OI_COST)}
    valid = _valid_costs(oi)
    if valid:
        # prompt/completion are the totals of their *_details, so only they are summed.
        fields = _cost_fields(
            {k: v for k, v in valid.items() if k in ("prompt", "completion", "total")},
            input_keys=("prompt",),
            output_keys=("completion",),
            total_key="total",
        )
        if fields is not None:
            if valid == oi:
                _pop_prefixed(attrs, OI_COST)
            fields["cost_details"] = valid
            return fields
    total = to_cost(attrs.get("gen_ai.usage.cost"))
    if total is not None:
        attrs.pop("gen_ai.usage.cost")
        return {"cost_details": {"total": float(total)}, "total_cost": total, "cost_source": "client"}
    return {}
