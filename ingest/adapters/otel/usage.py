"""Token counts and client-sent costs from the Langfuse, OpenInference and GenAI attributes of a span.

Which attributes hold the counts is read here; what the counts mean (inclusive or exclusive of cache
and reasoning tokens, and how they become our disjoint token kinds) is the shared rule in
`ingest.rules.usage`; which attribute names mean which kind is the one table in
`ingest.rules.conventions`. `usage_details` holds our kinds in Langfuse's keys; the usage as sent is
kept in `metadata.usage_raw`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ingest.adapters.otel.values import MAX_COST, parse_json_object, to_cost, to_count
from ingest.rules.conventions import (
    CACHE_WRITE,
    CACHED_INPUT,
    INPUT,
    OUTPUT,
    REASONING,
    TOTAL,
    USAGE_ALIASES,
    USAGE_ATTRIBUTE_NAMES,
    kinds_of,
    usage_attributes,
)
from ingest.rules.usage import counts as _counts
from ingest.rules.usage import from_usage_map, langfuse_usage_details, openai_shape

OI_TOKENS = "llm.token_count."
OI_COST = "llm.cost."


USAGE_DETAILS = "langfuse.observation.usage_details"
COST_DETAILS = "langfuse.observation.cost_details"
GENAI_COST = "gen_ai.usage.cost"
# Without one of these (or an `llm.token_count.*` / `llm.cost.*` key beside them) a span has no usage
# (no cost): the mapper skips the call (`extract_usage`'s `token_keys` count only beside a count).
USAGE_KEYS = (USAGE_DETAILS, *USAGE_ALIASES)
COST_KEYS = (COST_DETAILS, GENAI_COST)


def extract_usage(
    attrs: dict[str, Any], token_keys: list[str] | None = None, usage_keys: tuple[str, ...] = USAGE_ATTRIBUTE_NAMES
) -> dict:
    """Token fields + `usage_details` for one span; the attributes used are removed from attrs.

    `usage_details` holds only our token kinds in Langfuse's keys: Langfuse-compatible consumers sum
    every key containing "input", so a raw attribute name kept beside them (`gen_ai.usage.input_tokens`)
    was counted twice. The usage as sent goes to `usage_raw` (stored in `metadata.usage_raw`).
    `token_keys`: the keys of attrs under `llm.token_count.` when the caller knows them (no scan);
    `usage_keys`: the attributes of the usage table that may be there (`usage_attributes`).
    """
    raw = attrs.get(USAGE_DETAILS)
    usage = parse_json_object(raw) if raw is not None else None
    if usage is not None:
        attrs.pop(USAGE_DETAILS)
        fields = from_usage_map(usage)
        if openai_shape(usage) is None:
            # Langfuse's own keys: already disjoint, kept as Langfuse keeps them.
            return {"usage_details": usage, **fields}
        return {"usage_details": langfuse_usage_details(fields), "usage_raw": usage, **fields}

    # Only the table's attributes that may be there are probed (`usage_keys`); none there: no usage
    # (`token_keys` count only beside one of them).
    present = usage_attributes(attrs, usage_keys)
    if not present:
        return {}
    # OpenInference's other sub-counts (audio …) are parts of the counts above: kept with the raw usage.
    if token_keys is None:
        token_keys = [k for k in attrs if k.startswith(OI_TOKENS)]
    present.update({k: attrs[k] for k in token_keys if k not in present})
    for key in present:
        attrs.pop(key)
    kinds = kinds_of(present, to_count)
    fields = _counts(
        input=kinds.get(INPUT),
        cached=kinds.get(CACHED_INPUT),
        write=kinds.get(CACHE_WRITE),
        output=kinds.get(OUTPUT),
        reasoning=kinds.get(REASONING),
        total=kinds.get(TOTAL),
        inclusive=True,
    )
    return {"usage_details": langfuse_usage_details(fields), "usage_raw": present, **fields}


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


def _disjoint_oi_costs(costs: dict, total: Decimal | None) -> dict:
    """OpenInference costs (`prompt` includes its `prompt_details.*`, `completion` its
    `completion_details.*`) as disjoint kinds that sum to the total, as Langfuse's `costDetails` do:
    input is fresh input only, output excludes reasoning."""
    amounts = {k: to_cost(v) for k, v in costs.items()}
    cached, write = amounts.get("prompt_details.cache_read"), amounts.get("prompt_details.cache_write")
    reasoning = amounts.get("completion_details.reasoning")
    out: dict[str, Decimal] = {}
    for kind, whole, part, parts in (
        ("input", "prompt", "prompt_details.input", (cached, write)),
        ("output", "completion", "completion_details.output", (reasoning,)),
    ):
        if amounts.get(part) is not None:
            out[kind] = amounts[part]
        elif amounts.get(whole) is not None:
            rest = amounts[whole] - sum((p for p in parts if p is not None), Decimal(0))
            # A sender whose whole is below its parts evidently left them out (as with token counts).
            out[kind] = rest if rest >= 0 else amounts[whole]
    for kind, amount in (("cached_input", cached), ("cache_write", write), ("reasoning", reasoning)):
        if amount is not None:
            out[kind] = amount
    if total is not None:
        out["total"] = total
    return {k: float(v) for k, v in out.items()}


def extract_cost(attrs: dict[str, Any], cost_keys: list[str] | None = None) -> dict:
    """Cost the client computed itself (it wins over the price catalog). Amounts that are negative
    or too large for the cost columns are left out; the attribute then stays in metadata as sent.
    `cost_keys`: the keys of attrs under `llm.cost.` when the caller knows them (no scan)."""
    raw = attrs.get(COST_DETAILS)
    details = parse_json_object(raw) if raw is not None else None
    valid = _valid_costs(details) if details else None
    if valid:
        fields = _cost_fields(
            valid, input_keys=("input", "cache"), output_keys=("output",), total_key="total"
        )
        if fields is not None:
            if valid == details:
                attrs.pop(COST_DETAILS)
            return fields
    if cost_keys is None:
        cost_keys = [k for k in attrs if k.startswith(OI_COST)]
    oi = {k.removeprefix(OI_COST): attrs[k] for k in cost_keys}
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
                for key in cost_keys:
                    del attrs[key]
            fields["cost_details"] = _disjoint_oi_costs(valid, fields.get("total_cost"))
            fields["cost_raw"] = valid
            return fields
    total = to_cost(attrs.get(GENAI_COST))
    if total is not None:
        attrs.pop(GENAI_COST)
        return {"cost_details": {"total": float(total)}, "total_cost": total, "cost_source": "client"}
    return {}
