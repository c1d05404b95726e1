from celery import shared_task

from billing.services import quota_notices_send, rejections_flush
from tenancy.regions import region_names, region_queue
from tenancy.tasks import publish


@shared_task(name="billing.flush_rejections", ignore_result=True)
def flush_rejections() -> int:
    """Every minute (config/celery.py): rejected-event counters from Redis into the control plane."""
    return rejections_flush()


@shared_task(name="billing.meter_regions", ignore_result=True)
def meter_regions() -> int:
    """Every five minutes (config/celery.py): ask each region's workers to meter its closed hours."""
    sent = 0
    for region in region_names():
        sent += publish(meter_region, kwargs={"region": region}, queue=region_queue(region))
    return sent


@shared_task(name="billing.meter_region", acks_late=True, ignore_result=True)
def meter_region(*, region: str) -> int:
    """Runs on the region's queue; idempotent per hour (billing/metering.py)."""
    from billing.metering import meter_region as run

    return run(region=region, limit=48)


@shared_task(name="billing.send_quota_notices", ignore_result=True)
def send_quota_notices() -> int:
    return quota_notices_send()
