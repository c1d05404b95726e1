"""Pure functions shared by the rollup writer (`ingest.rollups`) and the readers: the feature of a
call under a project's rule, and the fixed histogram buckets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitoring.models import HISTOGRAM_BUCKETS, FeatureSource

DEFAULT_FEATURE_KEY = "feature"


@dataclass(frozen=True)
class FeatureRule:
    source: str = FeatureSource.METADATA.value
    key: str = DEFAULT_FEATURE_KEY

    @property
    def metadata_key(self) -> str:
        """The trace metadata key to read ("" when the rule does not read metadata)."""
        return self.key if self.source == FeatureSource.METADATA.value else ""


def feature_of(rule: FeatureRule, *, name: str, metadata_value: str | None, tags) -> str:
    if rule.source == FeatureSource.TRACE_NAME.value:
        return name or ""
    if rule.source == FeatureSource.TAG_PREFIX.value:
        # Tags are stored sorted, so "the first tag with the prefix" is well defined.
        for tag in tags or ():
            if tag.startswith(rule.key):
                return tag[len(rule.key):]
        return ""
    return metadata_value or ""


def bucket_of(ms: float) -> int:
    """The histogram bucket of a duration in milliseconds (see `monitoring.models.HISTOGRAM_BUCKETS`)."""
    if ms < 1:
        return 0
    return min(HISTOGRAM_BUCKETS - 1, 1 + math.floor(4 * math.log2(ms)))


def bucket_bounds(index: int) -> tuple[float, float | None]:
    """[lower, upper) in ms of a bucket; the last one has no upper bound."""
    if index == 0:
        return 0.0, 1.0
    upper = None if index == HISTOGRAM_BUCKETS - 1 else 2 ** (index / 4)
    return 2 ** ((index - 1) / 4), upper


def percentile_of(hist: list[int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) read from a histogram: the geometric middle of the bucket holding
    that rank (at most ±9% off the true value with four buckets per doubling). None when empty."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            lower, upper = bucket_bounds(index)
            if index == 0:
                return 0.5
            if upper is None:
                return lower
            return math.sqrt(lower * upper)
    return None
