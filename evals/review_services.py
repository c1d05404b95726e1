"""Writes of review rules (control plane, audited) and of the review items they make (data plane).

`review_item_from_score` is idempotent: the item id is derived from (rule, dataset, trace,
observation), and an insert that finds the id taken changes nothing. So a trace judged bad by two
users, a rating changed and changed back, or a task redelivered after a worker died, all leave one
item.
"""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from evals import schemas
from evals.models import Dataset, DatasetItem, DatasetItemStatus
from evals.models_review import ReviewRule
from evals.services import SCHEMA_FIELDS
from tenancy.models import Project
from tenancy.regions import region_database
from tenancy.services import audit_record
from traces.models import Observation, Trace

logger = logging.getLogger(__name__)

ITEM_NAMESPACE = uuid.UUID("0c1d5c0e-3f56-4f4e-9d2a-7265766965ff")
RULE_EDITABLE = (
    "name", "dataset_name", "score_name", "source", "data_type", "operator", "value", "string_value",
    "require_comment", "enabled",
)


# --- rules --------------------------------------------------------------------------------------


def _audit(rule: ReviewRule, *, actor, action: str, fields=()) -> None:
    audit_record(
        organization=rule.project.organization,
        actor=actor,
        action=action,
        target_type="review_rule",
        target_id=rule.id,
        data={"project": str(rule.project_id), "name": rule.name, "dataset": rule.dataset_name, "fields": sorted(fields)},
    )


RULES_CACHE_SECONDS = 300
_MATCH_FIELDS = ("id", "score_name", "source", "data_type", "operator", "value", "string_value", "require_comment")


def _rules_cache_key(project_id) -> str:
    return f"review-rules:v1:{project_id}"


def enabled_review_rules(*, project) -> list[ReviewRule]:
    """The project's enabled rules, as unsaved instances that can `matches()`: from the cache (one
    round trip) or one query. Every batch holding scores asks, so a project without rules must not
    cost a control-plane query per request."""
    key = _rules_cache_key(project.id)
    try:
        rows = cache.get(key)
    except Exception:  # noqa: BLE001 - the database answers instead
        logger.warning("review rule cache unavailable; reading the database", exc_info=True)
        rows = None
    if rows is None:
        rows = list(ReviewRule.objects.filter(project_id=project.id, enabled=True).values(*_MATCH_FIELDS))
        try:
            cache.set(key, rows, RULES_CACHE_SECONDS)
        except Exception:  # noqa: BLE001
            logger.warning("could not cache the review rules of project %s", project.id, exc_info=True)
    return [ReviewRule(project_id=project.id, **row) for row in rows]


def _invalidate_rules(project_id) -> None:
    def drop():
        try:
            cache.delete(_rules_cache_key(project_id))
        except Exception:  # noqa: BLE001 - entries expire on their own
            logger.warning("could not invalidate the review rules of project %s", project_id, exc_info=True)

    drop()
    # Again after commit: a reader between the two would otherwise cache the rules before the change.
    transaction.on_commit(drop, using="default")


def _save(rule: ReviewRule) -> None:
    rule.full_clean()
    try:
        with transaction.atomic(using="default"):
            rule.save()
            _invalidate_rules(rule.project_id)
    except IntegrityError:
        raise ValidationError({"name": "A review rule with this name already exists in the project."}) from None


def review_rule_create(*, project: Project, actor, **fields) -> ReviewRule:
    rule = ReviewRule(project=project, **{k: v for k, v in fields.items() if k in RULE_EDITABLE})
    with transaction.atomic(using="default"):
        _save(rule)
        _audit(rule, actor=actor, action="review_rule.created", fields=fields)
    return rule


def review_rule_update(*, rule: ReviewRule, actor, **fields) -> ReviewRule:
    changes = {k: v for k, v in fields.items() if k in RULE_EDITABLE}
    for key, value in changes.items():
        setattr(rule, key, value)
    rule.updated_at = timezone.now()
    with transaction.atomic(using="default"):
        _save(rule)
        _audit(rule, actor=actor, action="review_rule.updated", fields=changes)
    return rule


def review_rule_delete(*, rule: ReviewRule, actor) -> None:
    """The rule goes; the items it made stay in their dataset."""
    with transaction.atomic(using="default"):
        _audit(rule, actor=actor, action="review_rule.deleted")
        rule.delete()
        _invalidate_rules(rule.project_id)


# --- items --------------------------------------------------------------------------------------


def review_item_id(*, rule: ReviewRule, dataset_id, trace_id: str, observation_id: str) -> str:
    return str(uuid.uuid5(ITEM_NAMESPACE, f"{rule.id}\0{dataset_id}\0{trace_id}\0{observation_id}"))


def _review_dataset(project: Project, rule: ReviewRule) -> Dataset:
    dataset = Dataset.objects.for_project(project).filter(name=rule.dataset_name).first()
    if dataset is not None:
        return dataset
    try:
        with transaction.atomic(using=region_database(project.region)):
            return Dataset.objects.for_project(project).create(
                name=rule.dataset_name,
                description=f"Review items made by the review rule {rule.name!r}.",
                metadata={"review_rule_id": str(rule.id)},
            )
    except IntegrityError:  # created concurrently by another task
        return Dataset.objects.for_project(project).get(name=rule.dataset_name)


def review_item_from_score(*, project: Project, rule: ReviewRule, score) -> tuple[str, str]:
    """(outcome, item id): outcome is "created", "exists", "no_trace" (the trace has not arrived
    yet: the caller retries later) or "invalid" (the dataset's schemas refuse the trace's input)."""
    trace_id, observation_id = score.trace_id, score.observation_id or ""
    source = None
    if observation_id:
        source = (
            Observation.objects.for_project(project)
            .filter(id=observation_id, trace_id=trace_id)
            .only("id", "input", "output")
            .first()
        )
    trace = Trace.objects.for_project(project).filter(id=trace_id).only("id", "input", "output").first()
    if trace is None:
        return "no_trace", ""
    source = source or trace
    dataset = _review_dataset(project, rule)
    item_id = review_item_id(rule=rule, dataset_id=dataset.id, trace_id=trace_id, observation_id=observation_id)
    if DatasetItem.objects.for_project(project).filter(id=item_id).exists():
        return "exists", item_id
    # The output was judged bad, so it is no expected output: it is kept in the metadata for the
    # reviewer, who writes the expected output.
    metadata = {
        "review_rule": {"id": str(rule.id), "name": rule.name},
        "comment": score.comment or None,
        "output": source.output,
        "score": {
            "id": score.id,
            "name": score.name,
            "value": score.value,
            "stringValue": score.string_value or None,
            "dataType": score.data_type,
            "source": score.source,
            "authorUserId": score.author_user_id or None,
            "timestamp": score.timestamp.isoformat(),
        },
    }
    for value_field, schema_field, wire_name in SCHEMA_FIELDS:
        schema = getattr(dataset, schema_field)
        value = source.input if value_field == "input" else None
        if schema is not None and value is not None and schemas.first_error(schema, value) is not None:
            logger.warning("review rule %s: trace %s does not meet dataset %s's %s schema", rule.id, trace_id,
                           dataset.id, wire_name)
            return "invalid", item_id
    try:
        with transaction.atomic(using=region_database(project.region)):
            DatasetItem.objects.for_project(project).create(
                id=item_id,
                dataset_id=dataset.id,
                input=source.input,
                expected_output=None,
                metadata=metadata,
                source_trace_id=trace_id,
                source_observation_id=observation_id or None,
                status=DatasetItemStatus.ACTIVE,
            )
    except IntegrityError:
        return "exists", item_id  # made by a concurrent run of the same task
    return "created", item_id
