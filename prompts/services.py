"""Writes to the prompt registry.

A write locks the prompt's row for its transaction, so version numbers and label moves of one prompt
are serialised (two concurrent creates get versions n+1 and n+2, never the same number), while
different prompts never wait for each other.

Label moves are recorded twice: as `PromptLabelEvent` rows next to the prompt (region database,
with the prompt's name) and as control-plane audit entries (ids, label and versions only; the name
stays in the region). The audit entry commits just before the region transaction, so a failure
between the two can leave an audit entry for a move that did not happen, never a silent move.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from prompts import cache
from prompts.errors import InvalidRequest, PromptNotFound, not_found_message
from prompts.models import LATEST, Prompt, PromptLabel, PromptLabelEvent, PromptVersion
from prompts.payloads import PromptInput, validate_labels, validate_name
from tenancy.authentication import KeyPrincipal
from tenancy.models import AuditAction, Project, User
from tenancy.regions import region_database
from tenancy.services import audit_record


def _created_by(actor) -> str:
    # Langfuse's convention: "API" for keys, the person's id otherwise.
    if isinstance(actor, User):
        return str(actor.id)
    return "API"


def _actor_label(actor) -> str:
    if isinstance(actor, User):
        return actor.email
    if isinstance(actor, KeyPrincipal):
        return str(actor)
    return str(actor) if actor else ""


def _lock_prompt(project: Project, name: str) -> Prompt | None:
    return Prompt.objects.for_project(project).select_for_update().filter(name=name).first()


def _lock_or_create_prompt(project: Project, data: PromptInput, actor) -> Prompt:
    prompts = Prompt.objects.for_project(project)
    # ON CONFLICT DO NOTHING, then lock: concurrent first creates of a name end up on one row.
    prompts.bulk_create(
        [Prompt(name=data.name, type=data.type, tags=data.tags or [], created_by=_created_by(actor))],
        ignore_conflicts=True,
    )
    return _lock_prompt(project, data.name)


def _assign_labels(
    *, project: Project, prompt: Prompt, version: int, labels: list[str], actor, now
) -> list[tuple]:
    """Point each label at `version`; returns the moves as (label, from_version, to_version)."""
    labels_qs = PromptLabel.objects.for_project(project).filter(prompt_id=prompt.id)
    current = dict(labels_qs.filter(label__in=labels).values_list("label", "version"))
    moves = [(label, current.get(label), version) for label in labels if current.get(label) != version]
    if not moves:
        return []
    moved = [label for label, before, _ in moves if before is not None]
    if moved:
        labels_qs.filter(label__in=moved).update(version=version, updated_at=now)
    PromptLabel.objects.for_project(project).bulk_create(
        [
            PromptLabel(prompt_id=prompt.id, label=label, version=version, updated_at=now)
            for label, before, _ in moves
            if before is None
        ]
    )
    touched = {before for _, before, _ in moves if before is not None} | {version}
    PromptVersion.objects.for_project(project).filter(prompt_id=prompt.id, version__in=touched).update(
        updated_at=now
    )
    _record_moves(project=project, prompt=prompt, moves=moves, actor=actor, now=now)
    return moves


def _record_moves(*, project: Project, prompt: Prompt, moves: list[tuple], actor, now) -> None:
    # `latest` follows every create by definition; recording it would only repeat the version list.
    moves = [move for move in moves if move[0] != LATEST]
    if not moves:
        return
    PromptLabelEvent.objects.for_project(project).bulk_create(
        [
            PromptLabelEvent(
                prompt_id=prompt.id,
                prompt_name=prompt.name,
                label=label,
                from_version=before,
                to_version=after,
                actor=_actor_label(actor),
                actor_user_id=actor.id if isinstance(actor, User) else None,
                created_at=now,
            )
            for label, before, after in moves
        ]
    )
    with transaction.atomic(using="default"):
        for label, before, after in moves:
            audit_record(
                organization=project.organization,
                actor=actor,
                action=AuditAction.PROMPT_LABEL_MOVED,
                target_type="prompt",
                target_id=prompt.id,
                data={
                    "project": str(project.id),
                    "label": label,
                    "from_version": before,
                    "to_version": after,
                },
            )


def prompt_create_version(*, project: Project, data: PromptInput, actor) -> tuple[Prompt, PromptVersion]:
    """A new version (max + 1) of the named prompt, created with the prompt if it is new. The
    labels in `data` move to it, and so does `latest`. Tags given replace the prompt's tags (they
    apply to every version); tags omitted keep them."""
    # Checked again here, whatever the caller parsed: a blank name or a `latest` set by hand would
    # be stored for good (names never change, and `latest` would point at an old version).
    validate_name(data.name)
    validate_labels(data.labels, allow_latest=False)
    db = region_database(project.region)
    with transaction.atomic(using=db):
        prompt = _lock_or_create_prompt(project, data, actor)
        if prompt.latest_version and prompt.type != data.type:
            raise InvalidRequest(
                f"prompt {prompt.name!r} is a {prompt.type} prompt; a new version cannot change it to {data.type}."
            )
        now = timezone.now()
        number = prompt.latest_version + 1
        version = PromptVersion.objects.for_project(project).create(
            prompt_id=prompt.id,
            version=number,
            type=data.type,
            text=data.text,
            messages=data.messages,
            config=data.config,
            commit_message=data.commit_message,
            created_by=_created_by(actor),
            created_at=now,
            updated_at=now,
        )
        prompt.latest_version, prompt.updated_at = number, now
        if data.tags is not None:
            prompt.tags = data.tags
        Prompt.objects.for_project(project).filter(id=prompt.id).update(
            latest_version=number, updated_at=now, tags=prompt.tags
        )
        _assign_labels(
            project=project,
            prompt=prompt,
            version=number,
            labels=[*data.labels, LATEST],
            actor=actor,
            now=now,
        )
        cache.invalidate_on_commit(project.id, prompt.name, using=db)
    return prompt, version


def prompt_version_add_labels(
    *, project: Project, name: str, version: int, labels: list[str], actor
) -> Prompt:
    """Langfuse's `update_prompt`: the labels move to `version` (labels it already has stay)."""
    validate_labels(labels, allow_latest=False)
    db = region_database(project.region)
    with transaction.atomic(using=db):
        prompt = _lock_prompt(project, name)
        exists = prompt is not None and (
            PromptVersion.objects.for_project(project).filter(prompt_id=prompt.id, version=version).exists()
        )
        if not exists:
            raise PromptNotFound(not_found_message(name, version=version))
        _assign_labels(
            project=project, prompt=prompt, version=version, labels=labels, actor=actor, now=timezone.now()
        )
        cache.invalidate_on_commit(project.id, prompt.name, using=db)
    return prompt


def prompt_label_remove(*, project: Project, name: str, label: str, actor) -> None:
    """Take a label off the prompt entirely (the console's "remove"); `latest` cannot be removed."""
    if label == LATEST:
        raise InvalidRequest("the `latest` label always points at the newest version and cannot be removed.")
    db = region_database(project.region)
    with transaction.atomic(using=db):
        prompt = _lock_prompt(project, name)
        if prompt is None:
            raise PromptNotFound(not_found_message(name))
        current = PromptLabel.objects.for_project(project).filter(prompt_id=prompt.id, label=label)
        before = current.values_list("version", flat=True).first()
        if before is None:
            raise PromptNotFound(not_found_message(name, label=label))
        current.delete()
        now = timezone.now()
        PromptVersion.objects.for_project(project).filter(prompt_id=prompt.id, version=before).update(
            updated_at=now
        )
        _record_moves(project=project, prompt=prompt, moves=[(label, before, None)], actor=actor, now=now)
        cache.invalidate_on_commit(project.id, prompt.name, using=db)
