"""What a target function may return besides a bare output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TargetResult:
    """Return this from a target to report what only the target knows: the call's cost (USD), its
    status (`success`, `refused`, `error`, or a provider finish reason such as `content_filter`)
    and metadata recorded on the item's trace. A plain return value is the output."""

    output: Any
    cost: float | None = None
    status: str | None = None
    metadata: dict = field(default_factory=dict)
