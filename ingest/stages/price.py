"""Adapter between the writer and the price catalog (`pricing.pricing`).

The writer asks for many costs at once; the catalog's batch call keeps the number of catalog
queries independent of the batch size.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from ingest.contract import MAX_COST
from pricing import pricing as catalog

logger = logging.getLogger(__name__)
_ZERO = Decimal(0)


def _pricing():
    """The price catalog; tests put a fake here, or None for "no catalog prices"."""
    return catalog


def _as_decimal(value) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _catalog_columns(result: catalog.CostResult) -> dict | None:
    """`to_columns` of the catalog's own result, read straight from its per-kind costs: the same
    columns (its `details`, `input_cost`, `output_cost` and `total_cost` are these sums and copies),
    without the generic accessors, for each priced call of a batch."""
    costs = result.costs
    details = {k: float(v) for k, v in costs.items()}
    # `input_cost`/`output_cost` spelled as a loop: the same additions, from the same Decimal(0) and in
    # the same kind order, as the properties' sums, without their generators (every priced call).
    input_cost = output_cost = _ZERO
    for kind in catalog.INPUT_KINDS:
        if kind in costs:
            input_cost = input_cost + costs[kind]
    for kind in catalog.OUTPUT_KINDS:
        if kind in costs:
            output_cost = output_cost + costs[kind]
    return _columns(details, input_cost, output_cost, result.total)


def to_columns(result) -> dict | None:
    """A catalog CostResult as observation cost columns (input/output/total cost, cost_details)."""
    if result is None:
        return None
    if result.__class__ is catalog.CostResult:
        return _catalog_columns(result)
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
            (_as_decimal(details[k]) for k in catalog.INPUT_KINDS if k in details),
            Decimal(0),
        )
    if output_cost is None and details:
        output_cost = sum(
            (_as_decimal(details[k]) for k in catalog.OUTPUT_KINDS if k in details), Decimal(0)
        )
    if total_cost is None:
        if details:
            total_cost = sum((_as_decimal(v) for k, v in details.items() if k != "total"), Decimal(0))
        elif input_cost is not None or output_cost is not None:
            total_cost = (input_cost or 0) + (output_cost or 0)
    return _columns(details, input_cost, output_cost, total_cost)


def _columns(details: dict, input_cost, output_cost, total_cost) -> dict | None:
    if total_cost is None:
        return None
    # Each amount tested in turn rather than by any(<generator>): this runs for every priced call.
    if not (
        (input_cost is None or input_cost < MAX_COST)
        and (output_cost is None or output_cost < MAX_COST)
        and total_cost < MAX_COST
    ):
        # Token counts can be valid while their price is not storable (2^60 tokens cost trillions):
        # the call is kept without a catalog cost rather than failing the client's whole batch.
        logger.warning("catalog cost %s is beyond the cost columns; stored without a cost", total_cost)
        return None
    if not details:
        details = {}
        if input_cost is not None:
            details["input"] = float(input_cost)
        if output_cost is not None:
            details["output"] = float(output_cost)
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
    try:
        results = pricing.compute_costs(items, project_id=project_id)
    except ValueError:  # InvalidUsage: the writer only sends valid kinds, so a bug; never fail the batch
        logger.exception("pricing refused a batch; storing it without catalog costs")
        return [None] * len(items)
    return [to_columns(r) for r in results]
