"""Sending one alert notification (`AlertDelivery`) to its channel.

- webhook: POST of the JSON body with `X-Lookglass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256
  of "<t>.<raw body>" keyed with the channel secret>` (Langfuse's and Stripe's scheme: the receiver
  recomputes it over the raw body and rejects old timestamps, so a captured request cannot be
  replayed later); `X-Lookglass-Delivery` carries the delivery id for de-duplication of retries.
- slack: POST `{"text": …}` to the incoming-webhook URL.
- email: Django's email backend, to the channel's addresses.

Every URL goes through `tenancy.outbound.client`, which re-checks it against SSRF rules before each
request (DNS may have changed since it was saved) and follows no redirect. `attempt` returns whether
a failure is worth retrying (network errors, 429 and 5xx); the Celery task (`monitoring.tasks`)
retries those with exponential backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import orjson
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from monitoring.alerts_models import AlertDelivery, ChannelKind, DeliveryStatus
from tenancy import outbound

SIGNATURE_HEADER = "X-Lookglass-Signature"
TIMEOUT = 10.0
MAX_ERROR = 500


def signature(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (used by the tests' receiver; documented for customers)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = signature(secret, body, timestamp=t).split(",", 1)[1][3:]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _slack_text(body: dict) -> str:
    message = body["payload"]["message"]
    return f"*{message['title']}*\n{message['body']}".strip()


def _post(url: str, content: bytes, headers: dict) -> httpx.Response:
    with outbound.client(timeout=TIMEOUT) as client:
        return client.post(url, content=content, headers=headers)


def attempt(delivery: AlertDelivery) -> bool:
    """Send once and record the result. Returns True when it failed in a way worth retrying."""
    channel = delivery.channel
    delivery.attempts += 1
    retry = False
    status = None
    error = ""
    try:
        if channel.kind == ChannelKind.EMAIL:
            message = delivery.payload["payload"]["message"]
            send_mail(message["title"], message["body"] or message["title"], settings.DEFAULT_FROM_EMAIL,
                      list(channel.emails))
        else:
            if channel.kind == ChannelKind.WEBHOOK:
                content = orjson.dumps(delivery.payload)
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": "Lookglass/1.0",
                    "X-Lookglass-Delivery": str(delivery.id),
                    SIGNATURE_HEADER: signature(channel.secret, content),
                }
            else:
                content = orjson.dumps({"text": _slack_text(delivery.payload)})
                headers = {"Content-Type": "application/json"}
            response = _post(channel.url, content, headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
                retry = status == 429 or status >= 500
    except outbound.UnsafeURL as exc:
        error = str(exc)  # not retried: the address is refused until the channel changes
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
        retry = True
    except OSError as exc:  # the mail server
        error = f"{type(exc).__name__}: {exc}"
        retry = True
    delivery.response_status = status
    delivery.last_error = error[:MAX_ERROR]
    if not error:
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = timezone.now()
    elif not retry:
        delivery.status = DeliveryStatus.FAILED
    delivery.save(update_fields=["attempts", "response_status", "last_error", "status", "sent_at"])
    return retry
