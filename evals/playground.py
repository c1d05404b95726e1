"""The console's playground and replay: one chat completion through a project LLM connection, traced.

The call goes through `evals.llm.Judge` (the same SDK clients, SSRF guard and error classes as the
LLM judges; no second client). Each run is recorded as a trace holding one generation in the
reserved environment `lookglass-playground`, through the ONE ingest pipeline (quota, redaction,
pricing, rollups: exactly what any trace gets), so the run's cost comes from the price catalog like
every other call and the run can be found, filtered out or erased like any trace.

Reserved means: never evaluated (`judging.environment_evaluable` refuses `lookglass*`), never a
review-queue or evaluation target. Billing: playground traces are ordinary billable units (a run is a
trace and a generation, 2 units) and count toward the ingest quota; they are NOT judge calls and do
not take from the plan's judge-call cap — that cap bounds the calls Lookglass makes on its own (rules
fanning out over every new trace), while a playground run is one call per click of a member, paid at
the provider with the project's own key. Over the hard quota the answer is still shown but not
recorded (the call was already made), and the result says so.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from evals.evaluation_models import LlmConnection
from evals.llm import Judge, LlmError
from ingest import pipeline
from ingest.contract import Batch, RecordError, check_record
from traces.selectors import observation_get

logger = logging.getLogger(__name__)

PLAYGROUND_ENVIRONMENT = "lookglass-playground"
ROLES = ("system", "user", "assistant")
# Recorded parameters that make no sense for one interactive, non-streamed answer.
DROPPED_PARAMETERS = frozenset({"stream", "stream_options"})
MAX_MESSAGES = 200
MAX_CHARS = 200_000


class PlaygroundInputError(ValueError):
    """What the person typed cannot be sent (no message, a bad role, a parameter out of range)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class RunInput:
    connection: LlmConnection
    model: str
    messages: list[dict]
    parameters: dict = field(default_factory=dict)
    prompt_name: str = ""
    prompt_version: int | None = None
    replay_of: dict | None = None  # {"trace_id", "observation_id"} of the recorded generation
    actor_id: str = ""


@dataclass
class RunResult:
    ok: bool
    text: str = ""
    error: str = ""
    error_kind: str = ""
    model: str = ""
    finish_reason: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    cost: Decimal | None = None
    trace_id: str = ""
    recorded: bool = False
    note: str = ""

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


def check_input(data: RunInput) -> None:
    if not data.model.strip():
        raise PlaygroundInputError("Choose a model (the connection has no default model).")
    if not data.messages:
        raise PlaygroundInputError("Write at least one message.")
    if len(data.messages) > MAX_MESSAGES:
        raise PlaygroundInputError(f"At most {MAX_MESSAGES} messages can be sent.")
    if sum(len(m["content"]) for m in data.messages) > MAX_CHARS:
        raise PlaygroundInputError(f"The messages hold more than {MAX_CHARS:,} characters.")
    for message in data.messages:
        if message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise PlaygroundInputError(f"Each message needs a role ({', '.join(ROLES)}) and a text.")
    unknown = sorted(set(data.parameters) & DROPPED_PARAMETERS)
    if unknown:
        raise PlaygroundInputError(f"{', '.join(unknown)} cannot be set here: the playground waits for the whole answer.")


def clean_parameters(parameters: dict) -> tuple[dict, list[str]]:
    """Recorded model parameters, ready to send: streaming switched off (the playground waits for the
    whole answer), null values left out. Returns (parameters, names dropped)."""
    kept, dropped = {}, []
    for key, value in (parameters or {}).items():
        if key in DROPPED_PARAMETERS:
            dropped.append(key)
        elif value is not None:
            kept[key] = value
    return kept, dropped


def _records(project, data: RunInput, result: RunResult, completion) -> tuple[dict, dict]:
    trace_id = result.trace_id
    metadata = {"playground": True, "connection": data.connection.provider, "run_by": data.actor_id}
    if data.replay_of:
        metadata["replay_of"] = data.replay_of
    name = "Replay" if data.replay_of else "Playground"
    started = completion.started if completion else None
    trace = {"id": trace_id, "name": name, "environment": PLAYGROUND_ENVIRONMENT, "input": data.messages,
             "metadata": metadata}
    generation = {
        "id": f"{trace_id}-gen", "trace_id": trace_id, "type": "GENERATION", "name": name.lower(),
        "environment": PLAYGROUND_ENVIRONMENT, "model": data.model, "model_parameters": data.parameters,
        "input": data.messages, "metadata": metadata,
    }
    if started:
        trace["timestamp"] = started
        generation.update(start_time=started, end_time=completion.ended)
    if data.prompt_name:
        generation["prompt_name"] = data.prompt_name
        if data.prompt_version is not None:
            generation["prompt_version"] = data.prompt_version
    if result.ok:
        output = {"role": "assistant", "content": result.text}
        if completion.tool_calls:
            output["tool_calls"] = completion.tool_calls
        trace["output"] = output
        generation["output"] = output
        generation["response_model"] = completion.model
        if completion.finish_reason:
            generation["finish_reason"] = completion.finish_reason[:100]
        if completion.input_tokens is not None:
            generation["input_tokens"] = completion.input_tokens
        if completion.output_tokens is not None:
            generation["output_tokens"] = completion.output_tokens
    else:
        generation["level"] = "ERROR"
        generation["status_message"] = result.error[:2000]
    return trace, generation


def _record(project, data: RunInput, result: RunResult, completion) -> None:
    """The run as a trace through the ingest pipeline; the stored generation's cost read back."""
    trace, generation = _records(project, data, result, completion)
    batch = Batch(project=project, source="playground")
    try:
        batch.add("trace", check_record(trace))
        batch.add("observation", check_record(generation))
    except RecordError as exc:
        result.note = f"The run was not recorded: {exc.message}"
        return
    try:
        pipeline.run(batch)
    except pipeline.QuotaExceeded as exc:
        result.note = f"The run was not recorded: the organization is over its quota ({exc})."
        return
    except pipeline.StorageUnavailable:
        result.note = "The run was not recorded: the project's database is not reachable right now."
        return
    if batch.refused:
        result.note = f"The run was not recorded: {batch.refused[0].message}"
        return
    result.recorded = True
    stored = observation_get(project=project, observation_id=generation["id"])
    result.cost = stored.total_cost if stored is not None else None


def run(*, project, data: RunInput) -> RunResult:
    """Send the messages, record the run, and say what happened. Provider errors (auth, rate limit,
    timeout, malformed answer, refused address) come back as `RunResult(ok=False, error=…)`, never as
    an exception; only what the person typed can raise (PlaygroundInputError)."""
    check_input(data)
    result = RunResult(ok=False, trace_id=uuid.uuid4().hex, model=data.model)
    completion = None
    try:
        judge = Judge(data.connection)
    except LlmError as exc:
        result.error, result.error_kind = exc.message, exc.kind
        return result  # nothing was sent: nothing to record
    except Exception as exc:  # noqa: BLE001 - e.g. a stored secret no configured key decrypts
        logger.warning("playground: connection %s unusable: %s", data.connection.pk, type(exc).__name__)
        result.error, result.error_kind = "The connection cannot be used: its secret key cannot be read. Save the key again.", "secret"
        return result
    try:
        completion = judge.complete(model=data.model, messages=data.messages, parameters=data.parameters)
    except LlmError as exc:
        result.error, result.error_kind = exc.message, exc.kind
    except Exception as exc:  # noqa: BLE001 - an SDK or network failure is shown, never a 500
        logger.warning("playground call failed: %s", type(exc).__name__)
        result.error, result.error_kind = f"The call failed: {type(exc).__name__}: {str(exc)[:300]}", "transient"
    finally:
        judge.close()
    if completion is not None:
        result.ok, result.text, result.model = True, completion.text, completion.model
        result.finish_reason = completion.finish_reason
        result.input_tokens, result.output_tokens = completion.input_tokens, completion.output_tokens
        result.latency_ms = (completion.ended - completion.started).total_seconds() * 1000
    if result.error_kind == "refused_url":
        return result  # the guard stopped it before anything left
    _record(project, data, result, completion)
    return result
