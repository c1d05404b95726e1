"""Evaluation work on Celery.

- `evals.dispatch` (beat, every 30 s, `default` queue): for every project with an enabled rule,
  sends `evals.scan` to the project's region queue (`region.<name>`), like every region task.
- `evals.dispatch_nightly` (beat, 02:15 UTC): the same with `mode="nightly"`: a sample of the
  previous UTC day's production targets (environment not reserved) for rules with `nightly` on.
- `evals.scan` (region queue): finds each rule's targets (new data older than the rule's delay,
  the nightly sample, or a backfill range), creates their jobs (idempotent ids), and runs them in
  batches of EVAL_JOB_BATCH through `evals.run_jobs`; it also picks up jobs left pending by a dead
  worker and delayed jobs now due.
- `evals.run_jobs` (region queue, acks late): `runner.run_jobs`. A worker killed mid-batch leaves the
  message unacknowledged; it is delivered again and the batch re-runs, writing the same score ids.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from evals import runner, targets
from evals.evaluation_models import EvalJob, EvalJobStatus, EvaluationRule, RuleStatus
from tenancy.models import Project
from tenancy.regions import region_queue
from tenancy.tasks import publish

# The new-data scan looks this far behind its cursor: a row is stamped when the SDK made it, and may
# arrive (commit) later than a row stamped after it. Job ids make the overlap free of duplicates.
NEW_DATA_OVERLAP = timedelta(minutes=15)
# A pending job untouched this long was lost (its worker died and the message with it): run it again.
STALE_PENDING = timedelta(minutes=5)


def _active_rules(project, **extra):
    return EvaluationRule.objects.filter(project=project, enabled=True, status=RuleStatus.ACTIVE, **extra)


@shared_task(name="evals.dispatch")
def dispatch() -> int:
    sent = 0
    project_ids = EvaluationRule.objects.filter(enabled=True, status=RuleStatus.ACTIVE).values_list("project_id", flat=True).distinct()
    for project in Project.objects.filter(pk__in=list(project_ids)):
        sent += publish(scan, kwargs={"project_id": str(project.pk), "mode": "new"}, queue=region_queue(project.region))
    return sent


@shared_task(name="evals.dispatch_nightly")
def dispatch_nightly() -> int:
    sent = 0
    day = (timezone.now() - timedelta(days=1)).date().isoformat()
    project_ids = EvaluationRule.objects.filter(enabled=True, status=RuleStatus.ACTIVE, nightly=True).values_list("project_id", flat=True).distinct()
    for project in Project.objects.filter(pk__in=list(project_ids)):
        sent += publish(scan, kwargs={"project_id": str(project.pk), "mode": "nightly", "day": day}, queue=region_queue(project.region))
    return sent


def _chunks(ids: list[str], size: int):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def scan_rule(*, project, rule: EvaluationRule, mode: str, since: datetime | None = None, until: datetime | None = None,
              day: str | None = None, enqueue: bool = True) -> list[str]:
    """Create the rule's jobs for `mode` (new | nightly | backfill) and run them. Returns the job ids."""
    now = timezone.now()
    sampling, limit = rule.sampling, None
    if mode == "new":
        since = (rule.new_data_cursor or now) - NEW_DATA_OVERLAP
        until = now - timedelta(seconds=rule.delay_seconds)
    elif mode == "nightly":
        start = datetime.fromisoformat(day).replace(tzinfo=UTC) if day else (now - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        since, until = start, start + timedelta(days=1)
        sampling, limit = min(rule.sampling, rule.nightly_sampling), rule.nightly_max_targets
    if since is None or until is None or since >= until:
        return []
    found = targets.select(project=project, rule=rule, since=since, until=until, sampling=sampling, limit=limit)
    ids = runner.create_jobs(project=project, rule=rule, targets=found, trigger=mode)
    if mode == "new":
        EvaluationRule.objects.filter(pk=rule.pk).update(new_data_cursor=until)
    if enqueue:
        for chunk in _chunks(ids, settings.EVAL_JOB_BATCH):
            publish(run_jobs, kwargs={"project_id": str(project.pk), "job_ids": chunk}, queue=region_queue(project.region))
    return ids


# Judge batches wait on providers: a batch of EVAL_JOB_BATCH calls with retries can outlast the
# default 60 s soft limit, and a killed batch is redelivered and redone (idempotent, but paid twice).
LONG = {"soft_time_limit": 840, "time_limit": 900}


@shared_task(name="evals.scan", acks_late=True, **LONG)
def scan(*, project_id: str, mode: str = "new", rule_id: str | None = None, since: str | None = None,
         until: str | None = None, day: str | None = None) -> int:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    if mode == "backfill":
        # Asked for by a person for one rule: runs whether or not the rule is enabled for live data,
        # but not while it is paused (its connection cannot work).
        rules = EvaluationRule.objects.filter(project=project, pk=rule_id).exclude(status=RuleStatus.PAUSED)
    else:
        rules = _active_rules(project, **({"pk": rule_id} if rule_id else {}))
    if mode == "nightly":
        rules = rules.filter(nightly=True)
    elif mode == "new":
        rules = rules.filter(run_on_new=True)
    total = 0
    for rule in rules:
        total += len(scan_rule(project=project, rule=rule, mode=mode, since=parse_datetime(since) if since else None,
                               until=parse_datetime(until) if until else None, day=day))
    if mode == "new":
        total += resume_due(project)
    return total


def resume_due(project) -> int:
    """Send again the jobs a dead worker left pending and the delayed ones now due."""
    now = timezone.now()
    due = list(
        EvalJob.objects.for_project(project)
        .filter(status__in=[EvalJobStatus.PENDING, EvalJobStatus.DELAYED], run_after__lte=now)
        .exclude(status=EvalJobStatus.PENDING, updated_at__gt=now - STALE_PENDING)
        .values_list("id", flat=True)[:10_000]
    )
    for chunk in _chunks(due, settings.EVAL_JOB_BATCH):
        publish(run_jobs, kwargs={"project_id": str(project.pk), "job_ids": chunk}, queue=region_queue(project.region))
    return len(due)


@shared_task(name="evals.run_jobs", acks_late=True, **LONG)
def run_jobs(*, project_id: str, job_ids: list[str]) -> int:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    return len(runner.run_jobs(project=project, job_ids=job_ids))
