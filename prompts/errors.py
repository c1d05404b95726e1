"""Errors the prompt services raise; the endpoint decorator (`tenancy.http.endpoint`) renders them as
Langfuse-shaped 4xx answers."""

from tenancy.http.errors import HttpError


class InvalidRequest(HttpError):
    def __init__(self, message: str):
        super().__init__(400, message, "InvalidRequestError")


class PromptNotFound(HttpError):
    def __init__(self, message: str):
        super().__init__(404, message, "LangfuseNotFoundError")


def not_found_message(name: str, *, label: str | None = None, version: int | None = None) -> str:
    if version is not None:
        return f"Prompt not found: '{name}' with version {version}"
    if label is not None:
        return f"Prompt not found: '{name}' with label '{label}'"
    return f"Prompt not found: '{name}'"
