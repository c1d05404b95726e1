"""Pure functions of sampling, shared by the ingest slot (`ingest.pipeline.sampling`) and the
decision job (`monitoring.sampling`): the deterministic keep test and the client sample rate."""

from __future__ import annotations

import hashlib
import math

# The same test as the Langfuse v2 SDK and the Langfuse server (`sampling.ts`): the first 8 hex
# digits of sha256(trace id) as a fraction of 0xFFFFFFFF, kept when below the rate. A trace id has one
# answer, so every span of a trace, whenever it arrives, gets the same decision.
_SCALE = 0xFFFFFFFF


def keep_fraction(trace_id: str) -> float:
    return int(hashlib.sha256(trace_id.encode()).hexdigest()[:8], 16) / _SCALE


def kept_by_share(trace_id: str, share: float) -> bool:
    return keep_fraction(trace_id) < share


def valid_rate(value) -> float | None:
    """A client sample rate in (0, 1], or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        rate = float(value)
    except ValueError:
        return None
    return rate if math.isfinite(rate) and 0 < rate <= 1 else None


def rate_from_tracestate(trace_state: str) -> float | None:
    """The sampling probability an OTel SDK recorded in the W3C trace state (`ot=th:<hex>`, the
    OpenTelemetry consistent-probability-sampling threshold: spans are kept with probability
    1 − th / 2^56, th given in up to 14 hex digits with trailing zeros dropped)."""
    if not trace_state or "ot=" not in trace_state:
        return None
    for member in trace_state.split(","):
        key, _, value = member.strip().partition("=")
        if key != "ot":
            continue
        for field in value.split(";"):
            name, _, th = field.partition(":")
            if name == "th" and 0 < len(th) <= 14:
                try:
                    threshold = int(th.ljust(14, "0"), 16)
                except ValueError:
                    return None
                return valid_rate(1 - threshold / 2**56)
    return None


def record_client_rates(traces: list[dict], observations: list[dict]) -> None:
    """At ingest (cheap: one dictionary walk): a client sample rate carried by an OTel span's trace
    state is stamped on its trace's record as `metadata.sample_rate` (unless the trace says one
    itself), where the decision job and the counts read it. The Langfuse SDKs sample on the client
    without telling the server; a team using them records its rate as trace metadata `sample_rate`."""
    rates: dict[str, float] = {}
    for record in observations:
        otel = (record.get("metadata") or {}).get("otel")
        if isinstance(otel, dict) and otel.get("trace_state"):
            rate = rate_from_tracestate(str(otel["trace_state"]))
            if rate is not None:
                rates.setdefault(record.get("trace_id"), rate)
    if not rates:
        return
    for record in traces:
        rate = rates.get(record.get("id"))
        if rate is None:
            continue
        metadata = record.get("metadata")
        if not isinstance(metadata, dict):
            metadata = record["metadata"] = {}
        metadata.setdefault("sample_rate", rate)
