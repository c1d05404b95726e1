"""The one Celery app. Region work goes to `region.<name>` queues so each region's workers touch
only their own database; control-plane work goes to `default`."""

import gc
import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_init, worker_process_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lookglass")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_finalize.connect
def _declare_queues(sender, **kwargs):
    from tenancy.regions import region_queue, served_regions

    sender.conf.task_default_queue = "default"
    # A worker started without -Q consumes every queue (the embedded `make run`); production
    # starts one worker pool per region with `-Q region.<name>`.
    # A node serving only some regions (SERVE_REGIONS) declares, and so consumes, only their queues.
    sender.conf.task_queues = [Queue("default", routing_key="default")] + [
        Queue(region_queue(name), routing_key=region_queue(name)) for name in served_regions()
    ]


@worker_init.connect
def _worker_database_timeouts(**kwargs):
    # Web requests get short statement/lock timeouts (settings); purges and backfills need longer.
    from config.db import use_worker_timeouts

    use_worker_timeouts()


@worker_init.connect
@worker_process_init.connect
def freeze_startup_heap(**kwargs):
    """What a worker process imported at start (Django, the apps, their modules: ~240,000 objects)
    lives as long as the process; frozen, the cyclic garbage collector no longer walks it. Unfrozen,
    each full collection walked it all (≈ 100 ms), and batches that make many objects — a batch of
    1,000 evaluation jobs builds ~50,000 — set one off every few batches: a third of the worker's
    CPU per evaluated item in `make bench-evals` (README, Benchmarks). Called in the main process
    before the pool forks (the children share those pages copy-on-write) and again in each child
    after its own start-up imports. `gc.freeze` only moves what exists now; later garbage is collected
    as before."""
    gc.collect()
    gc.freeze()


app.autodiscover_tasks()

# Periodic tasks live here, in one place (crontab reasons next to each as they are added). A task
# repeated on an interval expires before its next turn: after a backlog (workers down, a full queue)
# the queued copies are dropped instead of all running at once; the next turn does the same work.
# The nightly ones keep theirs: a night's evaluation sample or retention is not repeated for an hour.
app.conf.beat_schedule = {
    # A purge enqueued after a project's deletion is lost if the broker was down at that moment
    # (tenancy/tasks.py logs it); the hourly sweep re-enqueues every recent deletion's purge.
    "sweep-project-purges": {"task": "tenancy.sweep_project_purges", "schedule": 3600.0, "options": {"expires": 3540}},
    # Rejected-event counters (billing/enforcement.py) into the control plane; the API adds what is
    # still in Redis, so customers see refusals at once either way.
    "flush-billing-rejections": {"task": "billing.flush_rejections", "schedule": 60.0, "options": {"expires": 55}},
    # The exact meter: each region counts its closed hours into the control plane (idempotent per
    # hour, so a missed or repeated run changes nothing); soft-limit e-mails at most once a period.
    "meter-regions": {"task": "billing.meter_regions", "schedule": 300.0, "options": {"expires": 290}},
    "billing-quota-notices": {"task": "billing.send_quota_notices", "schedule": 600.0, "options": {"expires": 590}},
    # Evaluation rules: new data every 30 s (each rule waits its own delay), and the nightly sample
    # of the previous UTC day's production traces; both fan out to the region queues (evals/tasks.py).
    "evals-dispatch": {"task": "evals.dispatch", "schedule": 30.0, "options": {"expires": 25}},
    "evals-dispatch-nightly": {"task": "evals.dispatch_nightly", "schedule": crontab(hour=2, minute=15)},
    # Open erasure requests run again hourly: late arrivals for the subject are erased during the
    # grace period, then the region forgets the subject (privacy/tasks.py).
    "sweep-erasures": {"task": "privacy.sweep_erasures", "schedule": 3600.0, "options": {"expires": 3540}},
    # Nightly retention, one task per project on its region's queue, in small batches (privacy/tasks.py).
    "schedule-retention": {"task": "privacy.schedule_retention", "schedule": crontab(hour=3, minute=17)},
}


@app.on_after_finalize.connect
def _region_beat(sender, **kwargs):
    # Per-region periodic work runs on that region's queue, so only its workers (and database) do it:
    # alert rules are evaluated every minute (a condition that becomes true fires within two), and
    # settled traces get their sampling decision every minute (`monitoring.tasks`).
    from django.conf import settings

    from tenancy.regions import region_queue

    for name in settings.DATA_REGIONS:
        for entry, task in (("evaluate-alerts", "monitoring.evaluate_alerts"),
                            ("decide-sampling", "monitoring.decide_sampling")):
            sender.conf.beat_schedule[f"{entry}-{name}"] = {
                "task": task, "schedule": 60.0, "kwargs": {"region": name},
                "options": {"queue": region_queue(name), "expires": 55},
            }
