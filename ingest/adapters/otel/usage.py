"""Token counts and client-sent costs from the Langfuse, OpenInference and GenAI attributes of a span.

Which attributes hold the counts is read here; what the counts mean (inclusive or exclusive of cache
and reasoning tokens, and how they become our disjoint token kinds) is the shared rule in
`ingest.rules.usage`. The raw map as sent is kept in `usage_details` either way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ingest.adapters.otel.values import MAX_COST, parse_json_object, to_cost, to_count
from ingest.rules.usage import counts as _counts
from ingest.rules.usage import first_count as _first_int
from ingest.rules.usage import from_usage_map

OI_TOKENS = "llm.token_count."
OI_COST = "llm.cost."


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
