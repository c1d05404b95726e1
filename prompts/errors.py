"""Errors the prompt services raise; the views turn them into Langfuse-shaped 4xx answers."""


class InvalidRequest(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PromptNotFound(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def not_found_message(name: str, *, label: str | None = None, version: int | None = None) -> str:
    if version is not None:
        return f"Prompt not found: '{name}' with version {version}"
    if label is not None:
        return f"Prompt not found: '{name}' with label '{label}'"
    return f"Prompt not found: '{name}'"
