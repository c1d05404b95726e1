"""The prompt registry: data plane (prompt text is customer content), in the project's region.

- `Prompt`: one row per name (names may contain `/` for folders); its type and tags apply to every
  version. `latest_version` is the version counter, bumped under the row's lock.
- `PromptVersion`: immutable content of version 1..n (a trigger refuses edits of the content columns).
- `PromptLabel`: a label points at exactly one version of a prompt. Its primary key is
  (project_id, prompt_id, label), so "one version per label per prompt" is the database's rule,
  and a composite foreign key makes it point at a version that exists (migration 0002).
- `PromptLabelEvent`: the history of label moves (who, from, to, when), next to the prompts.

No foreign keys: Django's composite primary keys cannot be foreign-key targets yet, so the
relations are plain UUID columns with database-level constraints added by migration 0002.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel

LATEST = "latest"
PRODUCTION = "production"


class PromptType(models.TextChoices):
    TEXT = "text"
    CHAT = "chat"


class Prompt(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField(default=uuid.uuid4)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=8, choices=PromptType.choices, default=PromptType.TEXT)
    tags = ArrayField(models.TextField(), default=list, blank=True)
    latest_version = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project_id", "name"], name="prompt_project_name_unique")
        ]
        indexes = [models.Index(fields=["project_id", "-updated_at"], name="prompt_project_updated")]

    def __str__(self) -> str:
        return self.name


class PromptVersion(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField(default=uuid.uuid4)
    prompt_id = models.UUIDField()
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=8, choices=PromptType.choices)
    # Exactly one of the two holds the content, as the type says (a check constraint enforces it).
    text = models.TextField(null=True, blank=True)
    # [{"type": "chatmessage", "role", "content"} | {"type": "placeholder", "name"}]
    messages = models.JSONField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    commit_message = models.TextField(null=True, blank=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # Moves when a label arrives or leaves (the Langfuse `updatedAt`); the content never changes.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project_id", "prompt_id", "version"], name="promptversion_unique"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(type=PromptType.TEXT, text__isnull=False, messages__isnull=True)
                    | models.Q(type=PromptType.CHAT, text__isnull=True, messages__isnull=False)
                ),
                name="promptversion_content_matches_type",
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="promptversion_version_positive"),
        ]

    def __str__(self) -> str:
        return f"v{self.version}"

    @property
    def content(self):
        return self.text if self.type == PromptType.TEXT else self.messages


class PromptLabel(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "prompt_id", "label")
    prompt_id = models.UUIDField()
    label = models.CharField(max_length=36)
    version = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["project_id", "prompt_id", "version"], name="promptlabel_version")]

    def __str__(self) -> str:
        return f"{self.label} → v{self.version}"


class PromptLabelEvent(DataPlaneModel):
    """A label arrived at, or left, a version. `from_version` is null when the label is new to the
    prompt; `to_version` is null when it was removed. The automatic `latest` is not recorded: it
    always sits on the newest version."""

    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.UUIDField(default=uuid.uuid4)
    prompt_id = models.UUIDField()
    prompt_name = models.CharField(max_length=255)
    label = models.CharField(max_length=36)
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)
    # "api key pk-lg-…" or a person's email; actor_user_id is set for people.
    actor = models.CharField(max_length=254, blank=True, default="")
    actor_user_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project_id", "prompt_id", "-created_at"], name="promptlabelevent_prompt"),
        ]

    def __str__(self) -> str:
        return f"{self.label}: v{self.from_version} → v{self.to_version}"
