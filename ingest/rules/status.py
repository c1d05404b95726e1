"""An observation's status: `error`, `refused` or `success`.

One list of refusal signals for every path. It used to be two lists with different members (the
writer's for Langfuse batches, another in the OTLP mapping), so a Gemini `prohibited_content` finish
was `success` from a Langfuse batch and `refused` over OTLP. The union of both lists is the rule now.
"""

from __future__ import annotations

ERROR = "error"
REFUSED = "refused"
SUCCESS = "success"
STATUSES = frozenset({SUCCESS, ERROR, REFUSED})

# Finish (stop) reasons that mean the model or the provider's filter declined to answer, compared in
# lower case: OpenAI `content_filter`, Anthropic `refusal`, Gemini `SAFETY`/`BLOCKLIST`/
# `PROHIBITED_CONTENT`/`SPII`, Bedrock and Azure `content_filtered`.
REFUSAL_SIGNALS = frozenset(
    {"content_filter", "content_filtered", "refusal", "safety", "blocklist", "prohibited_content", "spii"}
)


def is_refusal(reason) -> bool:
    return isinstance(reason, str) and reason.strip().lower() in REFUSAL_SIGNALS


def derive_status(row: dict) -> str:
    """The status of an observation row from its level, error fields and finish reason (a row that
    failed is `error` even when it was also refused)."""
    if row.get("level") == "ERROR" or row.get("error_type") or row.get("error_message"):
        return ERROR
    if is_refusal(row.get("finish_reason")):
        return REFUSED
    return SUCCESS
