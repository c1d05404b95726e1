"""Review rules at work: stored scores that meet a rule become review dataset items.

The ingest pipeline calls `after_scores_stored` after every batch it stored (`ingest.pipeline.
on_stored`, registered in `EvalsConfig.ready`): the browser feedback endpoint, `POST /api/public/
scores`, score events in ingestion batches and OTLP all pass there. It only reads the project's
enabled rules (cached, `review_services.enabled_review_rules`: no query per batch) and, when a
score matches, enqueues `review_items_from_scores` on the project's region queue once the request commits. The
task re-reads the scores as stored (a rating changed back before it runs makes no item), makes the
items idempotently (`evals.review_services`), and retries later when a score arrived before its
trace.
"""

from __future__ import annotations

import logging

from celery import shared_task

from evals.models_review import ReviewRule
from evals.review_services import enabled_review_rules, review_item_from_score
from ingest.contract import Batch
from scores.models import Score
from tenancy.models import Project
from tenancy.tasks import enqueue_for_project

logger = logging.getLogger(__name__)

# A score may arrive before its trace (feedback on a trace still being exported): try again later.
TRACE_WAIT_SECONDS = 60
TRACE_WAIT_RETRIES = 10


def after_scores_stored(batch: Batch) -> None:
    if not batch.scores:
        return
    rules = enabled_review_rules(project=batch.project)
    if not rules:
        return
    rule_ids, score_ids = set(), []
    for entry in batch.scores:
        matched = [rule for rule in rules if rule.matches(entry.record)]
        if matched:
            score_ids.append(entry.record["id"])
            rule_ids.update(str(rule.id) for rule in matched)
    if score_ids:
        enqueue_for_project(
            review_items_from_scores,
            project=batch.project,
            kwargs={"score_ids": score_ids, "rule_ids": sorted(rule_ids)},
        )


def _fields(score: Score) -> dict:
    return {
        "trace_id": score.trace_id,
        "name": score.name,
        "source": score.source,
        "data_type": score.data_type,
        "value": score.value,
        "string_value": score.string_value,
        "comment": score.comment,
    }


@shared_task(name="evals.review_items_from_scores", bind=True, acks_late=True, max_retries=TRACE_WAIT_RETRIES)
def review_items_from_scores(self, *, project_id: str, score_ids: list[str], rule_ids: list[str]) -> dict[str, int]:
    """Idempotent: items have deterministic ids, so a redelivered or repeated task adds nothing."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {}
    rules = list(ReviewRule.objects.filter(project=project, id__in=rule_ids, enabled=True))
    counts: dict[str, int] = {}
    waiting = False
    for score in Score.objects.for_project(project).filter(id__in=score_ids):
        fields = _fields(score)
        for rule in rules:
            if rule.matches(fields):
                outcome, _ = review_item_from_score(project=project, rule=rule, score=score)
                counts[outcome] = counts.get(outcome, 0) + 1
                waiting = waiting or outcome == "no_trace"
    if waiting:
        if self.request.retries < self.max_retries:
            raise self.retry(countdown=TRACE_WAIT_SECONDS)
        logger.warning("review rules: traces of scores %s never arrived; no items made for them", score_ids)
    return counts
