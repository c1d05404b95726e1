"""Pure functions shared by the rollup writer (`ingest.rollups`) and the readers: the feature of a
call under a project's rule, and the fixed histogram buckets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitoring.models import HISTOGRAM_BUCKETS, FeatureSource

DEFAULT_FEATURE_KEY = "feature"

# What one call may add to a rollup sum. The rows keep the exact values the contract allows (token
# counts up to 2^60, spans up to the 2262 horizon), but the rollups' bigint sums add a whole day of a
# project's calls: a few calls with absurd counts (or a client whose clock sent 1970 as a start time)
# would overflow them, and every later write to that bucket would fail — the whole batch with it.
# 2^28 tokens of one kind (hundreds of times the largest context window) and 2^32 µs (71 minutes, past
# the histograms' top bucket) per call leave room for billions of calls per bucket and day.
ROLLUP_TOKENS_CAP = 2**28
ROLLUP_US_CAP = 2**32


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


def _first_us_of(bucket: int) -> int:
    """The smallest whole number of µs (0 … ROLLUP_US_CAP) that `bucket_of` puts in `bucket` or above."""
    low, high = 0, ROLLUP_US_CAP
    while low < high:
        middle = (low + high) // 2
        if bucket_of(middle / 1000) >= bucket:
            high = middle
        else:
            low = middle + 1
    return low


# Where each bucket from 1 up starts, in whole µs, found by asking `bucket_of` itself: SQL that buckets
# a duration with `width_bucket(µs, BUCKET_STARTS_US)` agrees with it on every µs value (a transcribed
# `floor(4 * log2(ms))` would differ from Python's at the powers of two that floating point rounds).
BUCKET_STARTS_US = tuple(_first_us_of(bucket) for bucket in range(1, HISTOGRAM_BUCKETS))


def bucket_sql(us: str) -> str:
    """SQL: the histogram bucket of a duration given as whole µs (a bigint expression, within
    0 … ROLLUP_US_CAP), equal to `bucket_of(us / 1000)`."""
    return f"width_bucket({us}, '{{{','.join(map(str, BUCKET_STARTS_US))}}}'::bigint[])"


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
