"""Quotas and ingest rate limits, enforced in the ingest pipeline's `quota` stage.

One Redis round trip per request (a Lua script): take a token from the organization's bucket and the
API key's bucket (both or neither) and read the organization's usage counter for the period. After
the write, the `rollups` stage adds the stored units to the counter (`count_usage`). Nothing here
queries the database once `billing.limits` is warm, and an organization on the `unlimited` default
(no subscription: self-hosting) never reaches Redis at all.

- Hard limit (usage + this request's units > the included units of a plan without overage): the
  whole request is refused with `QuotaExceeded` (429, Retry-After, a message naming the limit, the
  usage and how to raise it). Nothing is stored: a 429 is retried by SDKs and OTLP exporters, where
  a 403 — or a 2xx that discarded the data — loses it.
- Soft limit (usage ≥ `soft_limit_share` of the included units): an `X-Lookglass-Quota-Warning`
  header on the answer.
- Rate limits: token buckets of `rate` requests per second holding BILLING_RATE_BURST_SECONDS of
  them; `X-RateLimit-Limit/Remaining/Reset` on every answer, 429 + Retry-After when empty.
- Redis down or stalled: everything is let through and logged (fail open).

Every refused request adds its events, per organization, project, day and reason, to a Redis hash
that `billing.services.rejections_flush` moves into `RejectedEvents`; customers read both through the
API. The usage counter counts accepted events (an update counts again); the exact, by-creation meter
is the metering job's (not built yet).

Headers reach the answer through `answer_headers`, a per-request context that ingest views open
with the `with_billing_headers` decorator.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from billing.limits import Limits, limits_for
from billing.models import RejectedEvents
from tenancy.http.errors import json_response

logger = logging.getLogger(__name__)

PREFIX = "lg:billing:v1"
REJECTED_KEY = f"{PREFIX}:rejected"
WARNING_HEADER = "X-Lookglass-Quota-Warning"
USAGE_TTL_SECONDS = 40 * 86400  # a period is at most 31 days; the counter outlives it a little

# KEYS: org bucket, key bucket ("" for none), usage counter. ARGV: org rate, org capacity, key rate,
# key capacity (0: no bucket). Buckets are hashes {tokens, at}; time is the server's, so the clocks of
# the web processes do not matter. Both buckets give a token, or neither does.
# Returns {limited (0 none, 1 org, 2 key), limit, remaining, reset ms, retry ms, usage}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function load(key, rate, cap)
  if rate <= 0 then return nil end
  local v = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(v[1]), tonumber(v[2])
  if tokens == nil then tokens = cap; at = now end
  tokens = math.min(cap, tokens + (now - at) * rate / 1000)
  return tokens
end
local org_rate, org_cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local key_rate, key_cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local org = load(KEYS[1], org_rate, org_cap)
local key = load(KEYS[2], key_rate, key_cap)
local usage = tonumber(redis.call('GET', KEYS[3]) or '0')
local limited = 0
if org ~= nil and org < 1 then limited = 1 elseif key ~= nil and key < 1 then limited = 2 end
if limited == 0 then
  if org ~= nil then org = org - 1 end
  if key ~= nil then key = key - 1 end
end
local function store(k, tokens, rate, cap)
  if tokens == nil then return end
  redis.call('HSET', k, 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', k, math.ceil(cap / rate * 1000) + 1000)
end
store(KEYS[1], org, org_rate, org_cap)
store(KEYS[2], key, key_rate, key_cap)
-- The header reports the tighter bucket.
local tokens, rate, cap = org, org_rate, org_cap
if key ~= nil and (org == nil or key / key_cap < org / org_cap) then tokens, rate, cap = key, key_rate, key_cap end
if limited == 1 then tokens, rate, cap = org, org_rate, org_cap elseif limited == 2 then tokens, rate, cap = key, key_rate, key_cap end
if tokens == nil then return {0, 0, 0, 0, 0, usage} end
local reset = math.ceil((cap - tokens) / rate * 1000)
local retry = 0
if limited > 0 then retry = math.ceil((1 - tokens) / rate * 1000) end
return {limited, cap, math.floor(tokens), reset, retry, usage}
"""

_answer: contextvars.ContextVar[dict | None] = contextvars.ContextVar("billing_answer_headers", default=None)


class QuotaExceeded(Exception):
    """The request is refused for billing; nothing of it was stored. Views answer `status` (429)
    with `Retry-After: retry_after` and `body()` in their wire format."""

    status = 429

    def __init__(self, *, reason: str, message: str, retry_after: int, limit: int, usage: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = max(1, int(retry_after))
        self.limit = limit
        self.usage = usage

    def body(self) -> dict:
        body = {"error": "QuotaExceeded" if self.reason == RejectedEvents.Reason.QUOTA else "RateLimitExceeded",
                "message": self.message, "reason": self.reason, "limit": self.limit,
                "retryAfterSeconds": self.retry_after}
        if self.usage is not None:
            body["usage"] = self.usage
        return body


def with_billing_headers(view):
    """Open the per-request header context for an ingest view and put what the quota stage said
    (rate-limit state, quota warning, Retry-After) on whatever answer the view gives."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        token = _answer.set({})
        try:
            response = view(request, *args, **kwargs)
            for name, value in (_answer.get() or {}).items():
                if name not in response:
                    response[name] = value
            return response
        finally:
            _answer.reset(token)

    return wrapper


def _set_headers(headers: dict) -> None:
    current = _answer.get()
    if current is not None:
        current.update(headers)


def _client():
    # One fail-fast client per cache backend instance (Django builds a new Redis object on every
    # get_client(), which costs more than the command itself on this path); it is thread-safe.
    backend = cache._cache
    client = backend.__dict__.get("_billing_client")
    if client is None:
        client = backend.__dict__["_billing_client"] = backend.get_client(write=True)
    return client


_script_holder: list = []


def _run_script(keys: list, args: list):
    # One Script object (it holds the SHA); each call goes through a fresh fail-fast client of the
    # cache's pool (EVALSHA, falling back to EVAL once after a Redis restart).
    client = _client()
    if not _script_holder:
        _script_holder.append(client.register_script(_SCRIPT))
    return _script_holder[0](keys=keys, args=args, client=client)


def _usage_key(organization_id, start: datetime) -> str:
    return f"{PREFIX}:usage:{organization_id}:{int(start.timestamp())}"


def usage_in_period(limits: Limits, *, now: datetime | None = None) -> int | None:
    """Accepted units counted so far this period (None when Redis does not answer)."""
    return usages_in_period([limits], now=now or timezone.now())[0]


def usages_in_period(limits: list[Limits], *, now: datetime) -> list[int | None]:
    """`usage_in_period` of several organizations in one Redis round trip (all None when it does not
    answer)."""
    if not limits:
        return []
    keys = [_usage_key(each.organization_id, each.period(now)[0]) for each in limits]
    try:
        return [int(value or 0) for value in _client().mget(keys)]
    except Exception:  # noqa: BLE001
        logger.warning("billing usage counter unavailable", exc_info=True)
        return [None] * len(limits)


def _capacity(rate: int) -> int:
    return max(1, math.ceil(rate * settings.BILLING_RATE_BURST_SECONDS))


def check(*, project, api_key_id, units: int) -> None:
    """Admit a request of `units` events for `project`, or raise QuotaExceeded (counted)."""
    limits = limits_for(project.organization_id)
    if limits is None or limits.unlimited:
        return  # Redis down (fail open, logged by billing.limits) or the self-hosting default
    now = timezone.now()
    start, end = limits.period(now)
    org_rate, key_rate = limits.org_rate or 0, (limits.key_rate or 0) if api_key_id else 0
    keys = [
        f"{PREFIX}:bucket:org:{limits.organization_id}",
        f"{PREFIX}:bucket:key:{api_key_id}" if key_rate else f"{PREFIX}:bucket:none",
        _usage_key(limits.organization_id, start),
    ]
    args = [org_rate, _capacity(org_rate) if org_rate else 0, key_rate, _capacity(key_rate) if key_rate else 0]
    try:
        limited, cap, remaining, reset_ms, retry_ms, usage = _run_script(keys, args)
    except Exception:  # noqa: BLE001 - Redis down or stalled: let the data in
        logger.warning("billing check unavailable (Redis); request for project %s allowed", project.id, exc_info=True)
        return
    headers = {}
    if cap:
        headers = {
            "X-RateLimit-Limit": str(cap),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(math.ceil(reset_ms / 1000)),
        }
    if limited:
        reason = RejectedEvents.Reason.ORG_RATE if limited == 1 else RejectedEvents.Reason.KEY_RATE
        rate = org_rate if limited == 1 else key_rate
        who = "organization" if limited == 1 else "API key"
        retry_after = max(1, math.ceil(retry_ms / 1000))
        headers["Retry-After"] = str(retry_after)
        _set_headers(headers)
        _reject(project, reason, units)
        raise QuotaExceeded(
            reason=reason, limit=rate, retry_after=retry_after,
            message=(f"Ingest rate limit of the {who} reached: {rate} requests per second "
                     f"(plan {limits.plan!r}). Retry after {retry_after} s; an organization owner can raise "
                     "it by changing the plan (GET /api/v1/organizations/{id}/subscription shows it)."),
        )
    hard, soft = limits.hard_units, limits.soft_units
    if hard is not None and usage + units > hard:
        retry_after = min(max(1, math.ceil((end - now).total_seconds())), settings.BILLING_QUOTA_RETRY_AFTER_SECONDS)
        headers["Retry-After"] = str(retry_after)
        _set_headers(headers)
        _reject(project, RejectedEvents.Reason.QUOTA, units)
        raise QuotaExceeded(
            reason=RejectedEvents.Reason.QUOTA, limit=hard, usage=usage, retry_after=retry_after,
            message=(f"Monthly quota of plan {limits.plan!r} reached: {usage:,} of {hard:,} billable units "
                     f"(traces + observations + scores) used, and this request holds {units:,}. Nothing was "
                     f"stored. The quota resets at {end.astimezone(UTC).isoformat()}; an organization owner "
                     "can raise it now by changing the plan (a plan with overage is never refused)."),
        )
    if soft is not None and usage + units >= soft:
        included = limits.included_units
        headers[WARNING_HEADER] = (
            f"{usage + units} of {included} included units used this period ({limits.plan}); "
            f"resets {end.astimezone(UTC).isoformat()}"
        )
    _set_headers(headers)


def count_usage(*, project, units: int) -> None:
    """Add `units` stored events to the organization's counter for the current period."""
    if units <= 0:
        return
    limits = limits_for(project.organization_id)
    if limits is None or limits.unlimited:
        return
    start, _ = limits.period(timezone.now())
    key = _usage_key(limits.organization_id, start)
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.incrby(key, units)
        pipe.expire(key, USAGE_TTL_SECONDS)
        pipe.execute()
    except Exception:  # noqa: BLE001
        logger.warning("billing usage counter not updated (+%d units, project %s)", units, project.id, exc_info=True)


def _reject(project, reason: str, units: int) -> None:
    day = timezone.now().date().isoformat()
    field = f"{project.organization_id}|{project.id}|{day}|{reason}"
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.hincrby(REJECTED_KEY, field + "|requests", 1)
        pipe.hincrby(REJECTED_KEY, field + "|events", units)
        pipe.execute()
    except Exception:  # noqa: BLE001 - the refusal stands; only its count is lost
        logger.warning("rejected events not counted: %s +%d", field, units, exc_info=True)


def quota_response(exc: QuotaExceeded):
    """The JSON answer of the Langfuse-shaped endpoints (batch ingestion, scores, feedback)."""
    response = json_response(exc.body(), status=exc.status)
    response["Retry-After"] = str(exc.retry_after)
    return response


# KEYS: the period's judge-call counter. ARGV: calls wanted, the plan's limit, TTL seconds.
# Returns {granted, used before}. Granting and counting in one script: two workers judging at once
# never pass the limit together.
_JUDGE_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), math.max(0, tonumber(ARGV[2]) - used))
if grant > 0 then
  redis.call('INCRBY', KEYS[1], grant)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
end
return {grant, used}
"""
_judge_script_holder: list = []


class JudgeCalls:
    """What `judge_calls_take` granted: `granted` of the calls asked for, and when refused, why."""

    def __init__(self, granted: int, message: str = ""):
        self.granted = granted
        self.message = message


def judge_calls_take(*, organization_id, wanted: int) -> JudgeCalls:
    """Take `wanted` LLM-judge calls from the organization's plan for this period (`eval_judge_calls`).

    The calls past the limit are not made; the caller records why on each job (never a silent
    skip). No limit (or the self-hosting default): everything is granted without Redis. Redis down:
    granted and logged (fail open, as the ingest quota)."""
    if wanted <= 0:
        return JudgeCalls(0)
    limits = limits_for(organization_id)
    if limits is None or limits.eval_judge_calls is None:
        return JudgeCalls(wanted)
    now = timezone.now()
    start, end = limits.period(now)
    key = f"{PREFIX}:judge:{organization_id}:{int(start.timestamp())}"
    try:
        client = _client()
        if not _judge_script_holder:
            _judge_script_holder.append(client.register_script(_JUDGE_SCRIPT))
        granted, used = _judge_script_holder[0](
            keys=[key], args=[wanted, limits.eval_judge_calls, USAGE_TTL_SECONDS], client=client)
    except Exception:  # noqa: BLE001
        logger.warning("judge-call limit unavailable (Redis); %d calls allowed", wanted, exc_info=True)
        return JudgeCalls(wanted)
    granted = int(granted)
    if granted >= wanted:
        return JudgeCalls(granted)
    return JudgeCalls(granted, (
        f"not judged: plan {limits.plan!r} includes {limits.eval_judge_calls:,} LLM-judge calls per period and "
        f"{int(used) + granted:,} are used; the limit resets at {end.astimezone(UTC).isoformat()} "
        "(an operator can raise it by changing the plan)"))
