"""Adapter between the writer and the price catalog (`billing.pricing`).

The writer asks for many costs at once; this keeps the number of catalog queries independent of
the batch size, whatever the catalog offers (a batch call, or a single call we memoise per
model/usage/day).
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from decimal import Decimal

logger = logging.getLogger(__name__)


def _pricing():
    try:
        return importlib.import_module("billing.pricing")
    except ImportError:
        return None


def _as_decimal(value) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def to_columns(result) -> dict | None:
    """A catalog CostResult as observation cost columns (input/output/total cost, cost_details)."""
    if result is None:
        return None
    get = (lambda k: result.get(k)) if isinstance(result, dict) else (lambda k: getattr(result, k, None))
    details = get("details") or get("cost_details") or {}
    details = {str(k): float(v) for k, v in dict(details).items() if v is not None}
    input_cost = _as_decimal(get("input_cost"))
    output_cost = _as_decimal(get("output_cost"))
    total_cost = _as_decimal(get("total_cost"))
    if total_cost is None:
        total_cost = _as_decimal(get("total"))
    if input_cost is None and details:
        input_cost = sum(
            (_as_decimal(details[k]) for k in ("input", "cached_input", "cache_write") if k in details),
            Decimal(0),
        )
    if output_cost is None and details:
        output_cost = sum(
            (_as_decimal(details[k]) for k in ("output", "reasoning") if k in details), Decimal(0)
        )
    if total_cost is None:
        if details:
            total_cost = sum((_as_decimal(v) for k, v in details.items() if k != "total"), Decimal(0))
        elif input_cost is not None or output_cost is not None:
            total_cost = (input_cost or 0) + (output_cost or 0)
    if total_cost is None:
        return None
    if not details:
        details = {k: float(v) for k, v in (("input", input_cost), ("output", output_cost)) if v is not None}
    details.setdefault("total", float(total_cost))
    return {
        "input_cost": input_cost,
        "output_cost": output_cost,
        "total_cost": total_cost,
        "cost_details": details,
    }


def catalog_costs(*, project_id, items: list[tuple[str, dict, datetime]]) -> list[dict | None]:
    """Cost columns for each (model, usage, at), or None where the catalog knows no price."""
    if not items:
        return []
    pricing = _pricing()
    if pricing is None:
        return [None] * len(items)
    batch = getattr(pricing, "compute_costs", None)
    if batch is not None:
        try:
            results = batch(items, project_id=project_id)
        except ValueError:  # InvalidUsage: the writer only sends valid kinds, so a bug; never fail the batch
            logger.exception("pricing refused a batch; storing it without catalog costs")
            return [None] * len(items)
        return [to_columns(r) for r in results]
    single = getattr(pricing, "compute_cost", None)
    if single is None:
        return [None] * len(items)
    memo: dict = {}
    out = []
    for model, usage, at in items:
        key = (model, tuple(sorted(usage.items())), at.date())
        if key not in memo:
            memo[key] = to_columns(single(project_id=project_id, model=model, usage=usage, at=at))
        out.append(memo[key])
    return out
