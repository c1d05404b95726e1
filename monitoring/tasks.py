"""Celery tasks of monitoring: alert evaluation (every minute, on each region's queue; beat entries
in config/celery.py), alert deliveries with retries (default queue), sampling decisions (every
minute, on each region's queue)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from tenancy.tasks import publish

logger = logging.getLogger(__name__)

DELIVERY_RETRIES = 6


def backoff(retries: int) -> int:
    """Seconds before retry number `retries + 1`: 10 s, 20 s, 40 s … capped at 10 minutes."""
    return min(600, 10 * 2**retries)


@shared_task(name="monitoring.evaluate_alerts", acks_late=True, ignore_result=True)
def evaluate_alerts(*, region: str) -> dict:
    from monitoring.alerts import evaluate_region

    return evaluate_region(region)


@shared_task(name="monitoring.deliver_alert", bind=True, acks_late=True, ignore_result=True,
             max_retries=DELIVERY_RETRIES)
def deliver_alert(self, *, delivery_id: str) -> str:
    from monitoring import alerts_delivery
    from monitoring.alerts_models import AlertDelivery, DeliveryStatus

    delivery = AlertDelivery.objects.select_related("channel").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return "gone"
    if not alerts_delivery.attempt(delivery):
        return delivery.status
    if self.request.retries >= self.max_retries:
        delivery.status = DeliveryStatus.FAILED
        delivery.save(update_fields=["status"])
        return delivery.status
    raise self.retry(countdown=backoff(self.request.retries))


def enqueue_delivery(delivery_id) -> None:
    publish(deliver_alert, kwargs={"delivery_id": str(delivery_id)}, queue="default")


@shared_task(name="monitoring.decide_sampling", acks_late=True, ignore_result=True)
def decide_sampling(*, region: str) -> dict:
    from monitoring.sampling import decide_region

    return decide_region(region, now=timezone.now())
