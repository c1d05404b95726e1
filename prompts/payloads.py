"""Validation of prompt request bodies, with Langfuse's rules and messages a person can act on.

Langfuse's limits: names 1..255 characters without `|` (it delimits prompt references), labels
1..36 characters of `a-z 0-9 _ - .`, commit messages up to 500 characters. Our own rule: a name
may not end in `/metrics`, which would collide with the metrics route of its parent folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.contract import RecordError, check_json
from prompts.errors import InvalidRequest
from prompts.models import LATEST, PromptType
from prompts.templating import placeholder_names, template_variables

NAME_MAX = 255
LABEL_MAX = 36
COMMIT_MESSAGE_MAX = 500
LABEL_RE = re.compile(r"^[a-z0-9_\-.]+$")
RESERVED_SUFFIXES = ("/metrics",)


@dataclass(frozen=True)
class PromptInput:
    name: str
    type: str
    text: str | None
    messages: list | None
    config: dict
    labels: list[str]
    tags: list[str] | None  # None: keep the prompt's tags
    commit_message: str | None


def validate_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidRequest("`name` is required: a non-empty string (folders are separated by `/`).")
    if not name.strip():
        # A blank name cannot be told apart in any list, nor fetched back by most clients.
        raise InvalidRequest("`name` cannot be blank: it needs a character other than whitespace.")
    if len(name) > NAME_MAX:
        raise InvalidRequest(f"`name` is {len(name)} characters long; at most {NAME_MAX} are allowed.")
    if "|" in name:
        raise InvalidRequest("`name` cannot contain `|` (it delimits prompt references).")
    if name.endswith(RESERVED_SUFFIXES):
        raise InvalidRequest(
            "`name` cannot end in `/metrics`: that path serves the metrics of the folder's prompt."
        )
    return name


def validate_labels(labels, *, field: str = "labels", allow_latest: bool) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise InvalidRequest(f"`{field}` must be a list of strings.")
    clean: list[str] = []
    for label in labels:
        if not label or len(label) > LABEL_MAX or not LABEL_RE.match(label):
            raise InvalidRequest(
                f"label {label!r} is not valid: use 1-{LABEL_MAX} lowercase letters, digits, `_`, `-` or `.`."
            )
        if label == LATEST and not allow_latest:
            raise InvalidRequest(
                "the `latest` label is managed by the server: it always points at the newest version."
            )
        if label != LATEST and label not in clean:
            clean.append(label)
    return clean


def _messages(value) -> list:
    if not isinstance(value, list) or not value:
        raise InvalidRequest("a chat prompt needs `prompt` as a non-empty list of messages.")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise InvalidRequest(f"prompt[{index}] must be an object with `role` and `content`.")
        if message.get("type") == "placeholder":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"prompt[{index}] is a placeholder and needs a non-empty string `name`.")
            messages.append({"type": "placeholder", "name": name})
            continue
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role or not isinstance(content, str):
            raise InvalidRequest(
                f"prompt[{index}] needs a string `role` and a string `content` "
                "(or `type: placeholder` with a `name`)."
            )
        messages.append({"role": role, "content": content, "type": "chatmessage"})
    return messages


def parse_create(body) -> PromptInput:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object.")
    name = validate_name(body.get("name"))
    raw_prompt = body.get("prompt")
    kind = body.get("type")
    if kind is None:
        # v5 omits the type of text prompts; a list can only mean chat.
        kind = PromptType.CHAT if isinstance(raw_prompt, list) else PromptType.TEXT
    if kind not in PromptType.values:
        raise InvalidRequest(f'`type` must be "text" or "chat", not {kind!r}.')
    text = messages = None
    if kind == PromptType.TEXT:
        if not isinstance(raw_prompt, str):
            raise InvalidRequest("a text prompt needs `prompt` as a string.")
        text = raw_prompt
    else:
        messages = _messages(raw_prompt)
        variables = set(template_variables(messages=messages))
        clashes = sorted(variables & set(placeholder_names(messages)))
        if clashes:
            raise InvalidRequest(
                f"variable and placeholder names must differ; both use {', '.join(clashes)}."
            )
    config = body.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidRequest("`config` must be a JSON object (model, temperature, …).")
    try:
        check_json(config, "config")  # the limits every stored JSON value keeps (depth, integers)
    except RecordError as exc:
        raise InvalidRequest(str(exc)) from None
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags)):
        raise InvalidRequest("`tags` must be a list of non-empty strings.")
    commit_message = body.get("commitMessage")
    if commit_message is not None:
        if not isinstance(commit_message, str):
            raise InvalidRequest("`commitMessage` must be a string.")
        if len(commit_message) > COMMIT_MESSAGE_MAX:
            raise InvalidRequest(f"`commitMessage` is longer than {COMMIT_MESSAGE_MAX} characters.")
    return PromptInput(
        name=name,
        type=str(kind),
        text=text,
        messages=messages,
        config=config,
        # `latest` is the server's to move: refused here as on every other path that sets labels.
        labels=validate_labels(body.get("labels"), allow_latest=False),
        tags=list(dict.fromkeys(tags)) if tags is not None else None,
        commit_message=commit_message,
    )


def parse_version(value) -> int:
    try:
        version = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"`version` must be a positive integer, not {value!r}.") from None
    if version < 1:
        raise InvalidRequest(f"`version` must be a positive integer, not {value!r}.")
    return version
