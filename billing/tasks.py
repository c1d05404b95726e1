from celery import shared_task

from billing.services import rejections_flush


@shared_task(name="billing.flush_rejections", ignore_result=True)
def flush_rejections() -> int:
    """Every minute (config/celery.py): rejected-event counters from Redis into the control plane."""
    return rejections_flush()
