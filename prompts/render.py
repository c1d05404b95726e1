"""Prompts in Langfuse's wire shape (the SDKs' `Prompt_Text` / `Prompt_Chat` / `PromptMeta` models)."""

from __future__ import annotations

from datetime import datetime

from prompts.models import PRODUCTION, Prompt, PromptType, PromptVersion
from tenancy.http.errors import dumps as json_dumps


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prompt_payload(*, prompt: Prompt, version: PromptVersion, labels: list[str]) -> dict:
    return {
        "id": str(version.id),
        "createdAt": iso(version.created_at),
        "updatedAt": iso(version.updated_at),
        "projectId": str(version.project_id),
        "createdBy": version.created_by or "API",
        "name": prompt.name,
        "type": version.type,
        "version": version.version,
        "prompt": version.text if version.type == PromptType.TEXT else version.messages,
        "config": version.config,
        "labels": labels,
        "tags": list(prompt.tags),
        "commitMessage": version.commit_message,
        "resolutionGraph": None,
        # Deprecated in Langfuse, still sent: true when the version carries `production`.
        "isActive": PRODUCTION in labels,
    }


def dumps(payload) -> bytes:
    # A config may hold an integer beyond 64 bits, which orjson refuses: one sent as such, or a float
    # such as 1e20 that jsonb gives back as the integer 100000000000000000000.
    return json_dumps(payload)
