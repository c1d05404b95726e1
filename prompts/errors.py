"""Errors the prompt (and dataset) services raise; the endpoint decorator (`tenancy.http.endpoint`)
renders every `ApiError` as a Langfuse-shaped answer: `{"message": …, "error": kind}` with its status."""

from tenancy.http.errors import HttpError


class ApiError(HttpError):
    status = 400
    kind = "InvalidRequestError"

    def __init__(self, message: str):
        super().__init__(type(self).status, message, type(self).kind)


class InvalidRequest(ApiError):
    pass


class NotFound(ApiError):
    status = 404
    kind = "LangfuseNotFoundError"


class PromptNotFound(NotFound):
    pass


class Conflict(ApiError):
    status = 409
    kind = "ConflictError"


def not_found_message(name: str, *, label: str | None = None, version: int | None = None) -> str:
    if version is not None:
        return f"Prompt not found: '{name}' with version {version}"
    if label is not None:
        return f"Prompt not found: '{name}' with label '{label}'"
    return f"Prompt not found: '{name}'"
