"""Judge calls through the official SDKs (`openai` for every OpenAI-compatible API, `anthropic`).

Each client gets its HTTP transport from `tenancy.outbound.client`, which checks every request's
address against the SSRF rules (the base URL is also checked when saved) and never follows
redirects. The SDKs' own retries (exponential backoff with jitter, honouring Retry-After) cover 429
and 5xx; what is left after them is classified in `LlmError.kind` so the runner can delay the job
(rate limited), end it in error, or pause the evaluator (auth, billing, refused endpoint).
The plain secret exists only inside `client_for`; nothing here logs it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import anthropic
import openai

from evals import secrets
from evals.evaluation_models import LlmAdapter, LlmConnection, PauseReason
from tenancy import outbound

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
MAX_OUTPUT_TOKENS = 1024
TOOL_NAME = "submit_evaluation"


class LlmError(Exception):
    """A judge call that failed after the SDK's retries. `kind`: auth | billing | rate_limited | malformed |
    refused_url | model | bad_request | transient. `pause` is the reason to pause the evaluator
    with, when retrying cannot help."""

    def __init__(self, kind: str, message: str, *, pause: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.pause = pause
        self.retry_after = retry_after


@dataclass
class Completion:
    """A free-form answer (the console's playground and replay): the text, or the tool calls the
    model asked for as JSON when it answered with those."""

    text: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str
    tool_calls: list
    started: datetime
    ended: datetime


# Parameters taken by name; anything else the caller gives goes in the request body as is
# (`extra_body`), so a recorded parameter the SDK has no argument for is still sent.
NAMED_PARAMETERS = ("temperature", "max_tokens", "top_p")


@dataclass
class JudgeAnswer:
    text: str  # the raw JSON answer
    model: str
    input_tokens: int | None
    output_tokens: int | None
    started: datetime
    ended: datetime


class Judge:
    """One connection's client, shared by the threads of a job batch (httpx clients are thread-safe)."""

    def __init__(self, connection: LlmConnection):
        self.connection = connection
        base = connection.base_url or (DEFAULT_ANTHROPIC_URL if connection.adapter == LlmAdapter.ANTHROPIC else DEFAULT_OPENAI_URL)
        try:
            outbound.check_url(base)
        except outbound.UnsafeURL as exc:
            raise LlmError("refused_url", f"the connection's base URL is refused: {exc}", pause=PauseReason.ENDPOINT_REFUSED) from None
        key = secrets.decrypt(connection.secret_key_encrypted)
        http = outbound.client(timeout=connection.timeout_seconds)
        common = {"api_key": key, "base_url": base, "http_client": http,
                  "max_retries": connection.max_retries, "timeout": connection.timeout_seconds}
        if connection.adapter == LlmAdapter.ANTHROPIC:
            self.client = anthropic.Anthropic(**common)
        else:
            self.client = openai.OpenAI(**common)
        self._http = http

    def close(self) -> None:
        self._http.close()

    def call(self, *, model: str, messages: list[dict], schema: dict) -> JudgeAnswer:
        started = datetime.now(UTC)
        try:
            if self.connection.adapter == LlmAdapter.ANTHROPIC:
                return self._anthropic(model, messages, schema, started)
            return self._openai(model, messages, schema, started)
        except (openai.APIError, anthropic.APIError) as exc:
            raise classify(exc) from None

    def complete(self, *, model: str, messages: list[dict], parameters: dict) -> Completion:
        """One chat completion with the caller's parameters (no judge schema). A provider error is an
        LlmError; an answer the SDK cannot read (not JSON, no choice) is `LlmError("malformed")`."""
        started = datetime.now(UTC)
        named = {k: parameters[k] for k in NAMED_PARAMETERS if parameters.get(k) is not None}
        extra = {k: v for k, v in parameters.items() if k not in NAMED_PARAMETERS and v is not None}
        try:
            if self.connection.adapter == LlmAdapter.ANTHROPIC:
                return self._anthropic_complete(model, messages, named, extra, started)
            return self._openai_complete(model, messages, named, extra, started)
        except (openai.APIResponseValidationError, anthropic.APIResponseValidationError) as exc:
            raise LlmError("malformed", f"the provider's answer is not a chat completion: {str(exc)[:300]}") from None
        except (openai.APIError, anthropic.APIError) as exc:
            raise classify(exc) from None
        except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
            # The SDKs hand back a bare string or a half-filled object when a 200 body is not the
            # shape they expect; reading it fails here, and that is the provider's malformed answer.
            raise LlmError("malformed", f"the provider's answer is not a chat completion ({type(exc).__name__})") from None

    def _openai_complete(self, model, messages, named, extra, started) -> Completion:
        response = self.client.chat.completions.create(model=model, messages=messages, extra_body=extra or None, **named)
        if isinstance(response, (str, bytes)) or not getattr(response, "choices", None):
            raise LlmError("malformed", "the provider's answer holds no choice (no message came back)")
        choice = response.choices[0]
        message = choice.message
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                 for c in (getattr(message, "tool_calls", None) or []) if getattr(c, "function", None)]
        text = message.content or getattr(message, "refusal", None) or ""
        if not text and calls:
            text = json.dumps(calls, ensure_ascii=False)
        usage = response.usage
        return Completion(
            text=text, model=response.model or model,
            input_tokens=getattr(usage, "prompt_tokens", None), output_tokens=getattr(usage, "completion_tokens", None),
            finish_reason=choice.finish_reason or "", tool_calls=calls, started=started, ended=datetime.now(UTC),
        )

    def _anthropic_complete(self, model, messages, named, extra, started) -> Completion:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        chat = [m for m in messages if m["role"] != "system"]
        kwargs = {"system": system} if system else {}
        named = {"max_tokens": MAX_OUTPUT_TOKENS, **named}  # required by the Messages API
        response = self.client.messages.create(model=model, messages=chat, extra_body=extra or None, **named, **kwargs)
        if isinstance(response, (str, bytes)) or not isinstance(getattr(response, "content", None), list):
            raise LlmError("malformed", "the provider's answer holds no content")
        calls = [{"id": b.id, "name": b.name, "arguments": json.dumps(b.input)}
                 for b in response.content if getattr(b, "type", "") == "tool_use"]
        text = "".join(getattr(b, "text", "") or "" for b in response.content)
        if not text and calls:
            text = json.dumps(calls, ensure_ascii=False)
        return Completion(
            text=text, model=response.model or model,
            input_tokens=getattr(response.usage, "input_tokens", None),
            output_tokens=getattr(response.usage, "output_tokens", None),
            finish_reason=response.stop_reason or "", tool_calls=calls, started=started, ended=datetime.now(UTC),
        )

    def _openai(self, model, messages, schema, started) -> JudgeAnswer:
        response = self.client.chat.completions.create(
            model=model,
            messages=messages,
            temperature=0,
            max_tokens=MAX_OUTPUT_TOKENS,
            response_format={"type": "json_schema", "json_schema": {"name": "evaluation", "strict": True, "schema": schema}},
        )
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content if choice and choice.message else None) or ""
        usage = response.usage
        return JudgeAnswer(
            text=text,
            model=response.model or model,
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            started=started,
            ended=datetime.now(UTC),
        )

    def _anthropic(self, model, messages, schema, started) -> JudgeAnswer:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        chat = [m for m in messages if m["role"] != "system"]
        kwargs = {"system": system} if system else {}
        response = self.client.messages.create(
            model=model,
            max_tokens=MAX_OUTPUT_TOKENS,
            temperature=0,
            messages=chat,
            tools=[{"name": TOOL_NAME, "description": "Submit the evaluation.", "input_schema": schema}],
            tool_choice={"type": "tool", "name": TOOL_NAME},
            **kwargs,
        )
        answer = next((b.input for b in response.content if getattr(b, "type", "") == "tool_use"), None)
        if answer is None:
            text = "".join(getattr(b, "text", "") for b in response.content)
        else:
            text = json.dumps(answer)
        return JudgeAnswer(
            text=text,
            model=response.model or model,
            input_tokens=getattr(response.usage, "input_tokens", None),
            output_tokens=getattr(response.usage, "output_tokens", None),
            started=started,
            ended=datetime.now(UTC),
        )


def _unsafe_cause(exc: BaseException) -> outbound.UnsafeURL | None:
    seen = exc
    for _ in range(10):
        seen = seen.__cause__ or seen.__context__
        if seen is None:
            return None
        if isinstance(seen, outbound.UnsafeURL):
            return seen
    return None


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    raw = response.headers.get("retry-after") if response is not None else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def classify(exc: Exception) -> LlmError:
    """Turn an SDK error into what the runner does about it. Messages carry the provider's status and
    short reason, never the request (which holds the key in a header)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = code or body["error"].get("code") or body["error"].get("type")
    short = f"{type(exc).__name__} ({status}): {str(getattr(exc, 'message', exc))[:300]}" if status else f"{type(exc).__name__}: {str(exc)[:300]}"
    if isinstance(exc, (openai.APIConnectionError, anthropic.APIConnectionError)):
        unsafe = _unsafe_cause(exc)
        if unsafe is not None:
            return LlmError("refused_url", f"the connection's address is refused: {unsafe}", pause=PauseReason.ENDPOINT_REFUSED)
        if isinstance(exc, (openai.APITimeoutError, anthropic.APITimeoutError)):
            # Still `transient` (the runner retries it later); the message says what happened.
            return LlmError("transient", "the provider did not answer in time (the connection's timeout, after its retries)")
        return LlmError("transient", f"the provider could not be reached: {short}")
    if status in (401, 403):
        return LlmError("auth", f"the provider refused the key: {short}", pause=PauseReason.AUTH_INVALID)
    if status == 402 or code in ("insufficient_quota", "billing_hard_limit_reached", "billing_not_active"):
        return LlmError("billing", f"the provider's account has no credit: {short}", pause=PauseReason.BILLING_EXHAUSTED)
    if status == 429:
        return LlmError("rate_limited", f"rate limited by the provider: {short}", retry_after=_retry_after(exc))
    if status == 404:
        return LlmError("model", f"the model is not available: {short}", pause=PauseReason.MODEL_UNAVAILABLE)
    if status is not None and status >= 500:
        return LlmError("transient", f"the provider failed: {short}", retry_after=_retry_after(exc))
    return LlmError("bad_request", f"the provider refused the request: {short}")


def check_connection(connection: LlmConnection, *, model: str) -> float:
    """A tiny real call (used by the 'test connection' action); returns seconds taken."""
    judge = Judge(connection)
    try:
        begun = time.monotonic()
        judge.call(model=model, messages=[{"role": "user", "content": 'Answer {"reasoning": "ok", "score": true}.'}],
                   schema={"type": "object", "properties": {"reasoning": {"type": "string"}, "score": {"type": "boolean"}},
                           "required": ["reasoning", "score"], "additionalProperties": False})
        return time.monotonic() - begun
    finally:
        judge.close()
