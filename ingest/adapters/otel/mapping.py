"""OTLP spans → trace, observation and score records (`ingest.contract`). Pure functions.

One span is one observation (id = span id, trace_id = trace id, parent_observation_id = parent
span id, all lowercase hex). Three conventions are read, in this order where they overlap:
the Langfuse SDK's `langfuse.*` attributes, OpenInference (`openinference.span.kind`, `llm.*`,
`input.value`, …) and OTel GenAI (`gen_ai.*`, current and deprecated names, span events).

Every attribute is *consumed* by the field it fills (popped from a working copy); whatever is left,
including the losing candidates when two sources offer the same field, is kept under
`metadata["otel"]["attributes"]`, so nothing the client sent is silently dropped. Resource
attributes, the instrumentation scope, span kind, links and the events not turned into fields are
kept under `metadata["otel"]` as well.

Trace records follow Langfuse's rules: a root span (no parent, or `langfuse.internal.as_root`)
gives the full trace (name falls back to the span name, input/output to the root observation's);
other spans contribute only the trace attributes they carry (`langfuse.trace.*`, `user.id`,
`session.id`, tags …); a trace seen only through child spans still gets a minimal record, so the
observations are never orphans. Records for one trace within a batch are merged into one.

Decisions where no convention decides (see also `usage.py`):
- `lookglass.status` = success | error | refused sets the observation status explicitly, over
  everything derived (OTel status ERROR, exception events and `error.type` → error; finish reasons
  content_filter/refusal/safety…, or an OpenAI `refusal` in the output → refused).
- OpenInference RERANKER, PROMPT, DECISION and UNKNOWN spans are SPAN observations (the kind stays
  in metadata); GenAI `retrieval` → RETRIEVER and `invoke_workflow` → CHAIN; a span with no type
  information but a model attribute is a GENERATION (as Langfuse does).
- A prompt version is only linked together with a prompt name (langfuse prompt name,
  `gen_ai.prompt.name`, or OpenInference `prompt.id`); `llm.prompt_template.*` is always kept in
  `metadata["prompt_template"]`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ingest.adapters.otel import messages as msg
from ingest.adapters.otel.decode import (
    SPAN_KINDS,
    STATUS_ERROR,
    DecodedBatch,
    SpanData,
    SpanEvent,
    from_request,
)
from ingest.adapters.otel.usage import COST_KEYS, USAGE_KEYS, extract_cost, extract_usage
from ingest.adapters.otel.values import (
    MAX_INT,
    parse_datetime,
    parse_json,
    parse_json_container,
    parse_json_object,
    to_bool,
    to_count,
    to_int,
    to_tags,
    to_text,
)
from ingest.contract import ExperimentLink, check_records
from ingest.rules import messages as rules_messages
from ingest.rules.conventions import FINISH_REASON_ATTRIBUTES, USAGE_ATTRIBUTE_NAMES
from ingest.rules.environment import normalize_environment
from ingest.rules.status import STATUSES, is_refusal
from ingest.rules.values import nanos_to_datetime

logger = logging.getLogger(__name__)

LANGFUSE_SCOPE = "langfuse-sdk"

LANGFUSE_TYPES = {
    "span": "SPAN",
    "generation": "GENERATION",
    "event": "EVENT",
    "agent": "AGENT",
    "tool": "TOOL",
    "chain": "CHAIN",
    "retriever": "RETRIEVER",
    "evaluator": "EVALUATOR",
    "embedding": "EMBEDDING",
    "guardrail": "GUARDRAIL",
}
OPENINFERENCE_KINDS = {
    "LLM": "GENERATION",
    "TOOL": "TOOL",
    "AGENT": "AGENT",
    "CHAIN": "CHAIN",
    "RETRIEVER": "RETRIEVER",
    "EMBEDDING": "EMBEDDING",
    "EVALUATOR": "EVALUATOR",
    "GUARDRAIL": "GUARDRAIL",
}
GENAI_OPERATIONS = {
    "chat": "GENERATION",
    "text_completion": "GENERATION",
    "generate_content": "GENERATION",
    "completion": "GENERATION",
    "generate": "GENERATION",
    "embeddings": "EMBEDDING",
    "execute_tool": "TOOL",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
    "retrieval": "RETRIEVER",
    "invoke_workflow": "CHAIN",
}
MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.request.model",
    "llm.request.model_name",
    "llm.model_name",
    "embedding.model_name",
    "reranker.model_name",
)
RESPONSE_MODEL_KEYS = ("gen_ai.response.model", "llm.response.model_name")
MODEL_PARAMETER_KEYS = (  # JSON objects of parameters, merged in this order
    "embedding.invocation_parameters",
    "llm.invocation_parameters",
    "langfuse.observation.model.parameters",
)
LEVELS = {
    "DEBUG": "DEBUG",
    "TRACE": "DEBUG",
    "VERBOSE": "DEBUG",
    "DEFAULT": "DEFAULT",
    "INFO": "DEFAULT",
    "LOG": "DEFAULT",
    "NOTICE": "DEFAULT",
    "OK": "DEFAULT",
    "SUCCESS": "DEFAULT",
    "WARNING": "WARNING",
    "WARN": "WARNING",
    "ERROR": "ERROR",
    "FATAL": "ERROR",
    "CRITICAL": "ERROR",
}
FIRST_TOKEN_EVENTS = {
    "first token stream event",
    "llm.content.completion.chunk",
    "gen_ai.content.completion.chunk",
    "ai.stream.firstchunk",
    "first_token",
}
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
EVALUATION_EVENT = "gen_ai.evaluation.result"
ENVIRONMENT_KEYS = ("langfuse.environment", "deployment.environment.name", "deployment.environment")
SCORE_ID_NAMESPACE = uuid.UUID("6f1d7c2e-8a43-4bde-9f0e-3c5a1b7d9e21")


@dataclass
class MappedBatch:
    traces: list[dict] = field(default_factory=list)
    observations: list[dict] = field(default_factory=list)
    scores: list[dict] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    # span id → the experiment item whose task that span is (see `_experiment`)
    experiments: dict[str, ExperimentLink] = field(default_factory=dict)


@dataclass(slots=True)
class _SpanResult:  # built positionally, once a span: keyword arguments cost ~0.4 µs more
    observation: dict
    trace: dict  # trace fields this span carries (partial unless root)
    is_root: bool
    scores: list[dict]
    trace_defaults: dict = field(default_factory=dict)  # a root's fallbacks, used when no span set them
    experiment: ExperimentLink | None = None


# --- small helpers ---------------------------------------------------------------------------


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _pop_first(attrs: dict, keys: Iterable[str]) -> Any:
    """The first key with a value; only that key is consumed."""
    for key in keys:
        value = attrs.get(key)  # `_present`, inlined: ten calls a span, most for absent keys
        if value is not None and value != "":
            return attrs.pop(key)
    return None


def _first(sources: Iterable[dict], keys: Iterable[str]) -> Any:
    for source in sources:
        for key in keys:
            if _present(source.get(key)):
                return source[key]
    return None


# Every prefix under which the mapper takes a group of keys (flattened lists, prefixed maps). A span
# carries dozens of attributes (an OpenInference chat history alone is 4–6 per message); asking each
# of these prefixes of every key cost 6–7 µs of the ~87 a span took to map. `_Families` finds them in
# one pass instead. No prefix here is the prefix of another.
FAMILIES = (
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "llm.tools.",
    "llm.token_count.",
    "llm.cost.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "gen_ai.request.",
    "langfuse.trace.metadata.",
    "langfuse.observation.metadata.",
    "langfuse.metadata.",
    "langfuse.experiment.metadata.",
    "langfuse.experiment.item.metadata.",
    *(f"{level}{plural}." for level in ("", "trace.", "session.") for plural in ("annotations", "evaluations")),
)


# attribute key → its prefix in FAMILIES, or None (see `_Families`). Shared by a process's threads: every
# entry is a pure function of its key, so a lookup racing a `clear` only learns the key again.
_FAMILY_OF: dict[str, str | None] = {}
_NOT_LEARNED = object()


def _learn_family(key: str) -> str | None:
    family = None
    if key.startswith(FAMILIES):
        for prefix in FAMILIES:
            if key.startswith(prefix):
                family = prefix
                break
    # Only short keys are kept, and at most 8192: a sender making up keys cannot grow it by their size.
    if len(key) <= 256:
        if len(_FAMILY_OF) >= 8192:
            _FAMILY_OF.clear()
        _FAMILY_OF[key] = family
    return family


class _Families:
    """The keys of a span's attributes in each of FAMILIES, found in one pass over the keys. A sender
    sends the same keys on every span, so each key's family is learned once (`_FAMILY_OF`) and then
    costs one dict lookup, the key's hash being already known from the attributes. Built after the
    attributes are complete; consumers pop keys, so `take` answers only the keys still there.

    It also answers which of the candidate keys the fields are read from are present at all (`only`,
    `langfuse`): a span carries ~20 attributes, and the fields probe ~120 candidates of three
    conventions, most absent. These answers depend only on the span's keys, and hold for the whole
    span: the mapper only removes attributes once the families are built (`_annotation_scores` puts
    back some it removed), so a key absent then is absent throughout. `_families_of` learns them once
    per key list."""

    __slots__ = ("keys", "langfuse", "only")

    def __init__(self, attrs: dict):
        found: dict[str, list[str]] = {}
        family_of = _FAMILY_OF.get
        for key in attrs:
            prefix = family_of(key, _NOT_LEARNED)
            if prefix is None:
                continue
            if prefix is _NOT_LEARNED:
                prefix = _learn_family(key)
                if prefix is None:
                    continue
            bucket = found.get(prefix)
            if bucket is None:
                found[prefix] = [key]
            else:
                bucket.append(key)
        # Tuples: `take` hands them out as they are, to every span of these keys.
        self.keys = {prefix: tuple(keys) for prefix, keys in found.items()}
        # Every key the Langfuse convention is read from starts so: a span without one skips its fields.
        self.langfuse = any(key.startswith("langfuse.") for key in attrs)
        self.only = _Present(attrs)

    def has(self, prefix: str) -> bool:
        return prefix in self.keys

    def take(self, attrs: dict, prefix: str) -> tuple[str, ...] | list[str]:
        keys = self.keys.get(prefix)
        if keys is None:
            return ()
        # Nearly always every key is still there (each family has one consumer): the learned tuple
        # itself, without building the list a comprehension makes (~0.3 µs a call, 3-5 calls a span).
        for key in keys:
            if key not in attrs:
                return [key for key in keys if key in attrs]
        return keys


class _Present(dict):
    """`only[candidates]`: the candidates present, in their order (probing only those finds what probing
    all finds; empty when none is there). Learned on first use; a dict, so answering costs no call."""

    __slots__ = ("_keys",)

    def __init__(self, keys):
        super().__init__()
        self._keys = frozenset(keys)

    def __missing__(self, candidates: tuple[str, ...]) -> tuple[str, ...]:
        found = self[candidates] = tuple(key for key in candidates if key in self._keys)
        return found


# tuple(attribute keys) → their `_Families`, shared by the spans with the same keys (a sender sends the
# same few key lists span after span). Only short key lists are kept (at most 128 keys, 8,192 characters
# in all: a sender making up long keys cannot grow it by their size), and at most 1024 of them. The
# instance is shared, so nothing changes it after it is built (`only` fills with answers that are
# pure functions of the keys, like the rest).
_FAMILIES_OF: dict[tuple[str, ...], _Families] = {}


def _families_of(attrs: dict) -> _Families:
    keys = tuple(attrs)
    families = _FAMILIES_OF.get(keys)
    if families is None:
        families = _Families(keys)
        if len(keys) <= 128 and sum(map(len, keys)) <= 8192:
            if len(_FAMILIES_OF) >= 1024:
                _FAMILIES_OF.clear()
            _FAMILIES_OF[keys] = families
    return families


def _is_langfuse_v5(span: SpanData) -> bool:
    if span.scope.name != LANGFUSE_SCOPE:
        return False
    major = to_int(span.scope.version.split(".", 1)[0]) if span.scope.version else None
    return major is not None and major >= 5


def _langfuse_metadata(attrs: dict, families: _Families, prefix: str, *, values_are_json: bool) -> dict:
    """`prefix` (a JSON object, merged) and `prefix.<key>` attributes. The v5 Python SDK JSON-encodes
    every value so "123" and 123 stay distinct; older senders send plain strings."""
    if not families.langfuse:
        return {}
    dotted = prefix + "."
    if prefix not in attrs and not families.has(dotted):
        return {}
    out: dict[str, Any] = {}
    if prefix in attrs:
        whole = parse_json(attrs.pop(prefix))
        if isinstance(whole, dict):
            out.update(whole)
        elif whole is not None:
            out["metadata"] = whole
    for key in families.take(attrs, dotted):
        value = attrs.pop(key)
        out[key[len(dotted) :]] = parse_json(value) if values_are_json else parse_json_container(value)
    return out


EXPERIMENT_PREFIX = "langfuse.experiment."
# `langfuse.experiment.<attribute>` → the key it is kept under in `metadata["experiment"]`.
EXPERIMENT_TEXT = {
    "id": "id",
    "name": "name",
    "description": "description",
    "dataset.id": "dataset_id",
    "item.id": "item_id",
    "item.version": "item_version",
    "item.root_observation_id": "root_observation_id",
}


_EXPERIMENT_KEYS = frozenset(EXPERIMENT_PREFIX + suffix for suffix in (
    *EXPERIMENT_TEXT, "metadata", "item.metadata", "item.expected_output"))


def _experiment(span: SpanData, attrs: dict, families: _Families, *, is_root: bool,
                v5: bool) -> tuple[dict, ExperimentLink | None]:
    """The `langfuse.experiment.*` attributes (v4/v5 `run_experiment`; 4.x may flatten the metadata
    into `.metadata.<key>`), consumed into (what `metadata["experiment"]` keeps, the link or None).

    The SDK sets them on the item's root span, its task span and (propagated) every span below. Only
    the task span — the one `item.root_observation_id` names, as Langfuse links the run item to it —
    makes the link, so an item is linked once however its spans are split across exports. A sender
    that names no task span links from the item's trace root."""
    # Exact keys and the families found in the one pass: no scan of every attribute per span. (The
    # caller calls it only for a span with a `langfuse.` key: every key read here starts so.)
    if not (not attrs.keys().isdisjoint(_EXPERIMENT_KEYS) or families.has(EXPERIMENT_PREFIX + "metadata.")
            or families.has(EXPERIMENT_PREFIX + "item.metadata.")):
        return {}, None
    kept: dict[str, Any] = {}
    for suffix, key in EXPERIMENT_TEXT.items():
        value = attrs.pop(EXPERIMENT_PREFIX + suffix, None)
        if _present(value):
            kept[key] = to_text(value)
    for suffix, key in (("metadata", "metadata"), ("item.metadata", "item_metadata")):
        values = _langfuse_metadata(attrs, families, EXPERIMENT_PREFIX + suffix, values_are_json=v5)
        if values:
            kept[key] = values
    if EXPERIMENT_PREFIX + "item.expected_output" in attrs:
        kept["expected_output"] = parse_json(attrs.pop(EXPERIMENT_PREFIX + "item.expected_output"))
    task = kept.get("root_observation_id")
    if not (kept.get("id") and kept.get("name")) or not (task == span.span_id or (task is None and is_root)):
        return kept, None
    return kept, ExperimentLink(
        experiment_id=kept["id"],
        run_name=kept["name"],
        trace_id=span.trace_id,
        observation_id=span.span_id,
        item_id=kept.get("item_id"),
        dataset_id=kept.get("dataset_id"),
        description=kept.get("description"),
        metadata=kept.get("metadata"),
        item_version=kept.get("item_version"),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _event_time(event: SpanEvent, fallback: datetime) -> datetime:
    return nanos_to_datetime(event.time_unix_nano) if event.time_unix_nano else fallback


# --- type -----------------------------------------------------------------------------------

_LANGFUSE_GENERATION_HINTS = (
    "langfuse.observation.model.name",
    "langfuse.observation.usage_details",
    "langfuse.observation.cost_details",
    "langfuse.observation.completion_start_time",
    "langfuse.observation.model.parameters",
    "langfuse.observation.prompt.name",
)


def _observation_type(attrs: dict) -> str:
    declared = attrs.get("langfuse.observation.type")
    if isinstance(declared, str) and declared.strip().lower() in LANGFUSE_TYPES:
        attrs.pop("langfuse.observation.type")
        kind = LANGFUSE_TYPES[declared.strip().lower()]
        # Python SDK <= 3.3 sent generations as type "span" carrying generation attributes.
        if kind == "SPAN" and any(key in attrs for key in _LANGFUSE_GENERATION_HINTS):
            return "GENERATION"
        return kind
    oi_kind = attrs.get("openinference.span.kind")
    if isinstance(oi_kind, str) and oi_kind.strip():
        mapped = OPENINFERENCE_KINDS.get(oi_kind.strip().upper())
        if mapped:
            attrs.pop("openinference.span.kind")
            return mapped
        return "SPAN"  # RERANKER, PROMPT, DECISION, UNKNOWN: the kind stays in metadata
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation.strip().lower() in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[operation.strip().lower()]
    if _present(attrs.get("gen_ai.tool.name")) or _present(attrs.get("gen_ai.tool.call.id")):
        return "TOOL"
    if any(_present(attrs.get(key)) for key in MODEL_KEYS + RESPONSE_MODEL_KEYS):
        return "GENERATION"
    return "SPAN"


# --- events ---------------------------------------------------------------------------------


@dataclass
class _Events:
    exceptions: list[SpanEvent] = field(default_factory=list)
    input_messages: list[SpanEvent] = field(default_factory=list)
    choices: list[SpanEvent] = field(default_factory=list)
    content_prompt: SpanEvent | None = None
    content_completion: SpanEvent | None = None
    evaluations: list[SpanEvent] = field(default_factory=list)
    first_token: SpanEvent | None = None
    other: list[SpanEvent] = field(default_factory=list)


# A span without events (most spans) shares this one: nothing changes an empty classification (the
# mapper only takes from lists that hold something), and tuples would refuse an append.
_NO_EVENTS = _Events(exceptions=(), input_messages=(), choices=(), evaluations=(), other=())  # type: ignore[arg-type]


def _classify_events(span: SpanData, attrs: dict) -> _Events:
    if not span.events:
        return _NO_EVENTS
    events = _Events()
    for event in span.events:
        name = event.name or to_text(event.attributes.get("event.name"))
        lowered = name.lower()
        if lowered == "exception":
            events.exceptions.append(event)
        elif name == DETAILS_EVENT:
            # The newer GenAI "details" event carries the same attributes as the span would;
            # the span's own attributes win.
            for key, value in event.attributes.items():
                attrs.setdefault(key, value)
        elif name in msg.EVENT_ROLES:
            events.input_messages.append(event)
        elif name == "gen_ai.choice":
            events.choices.append(event)
        elif name == "gen_ai.content.prompt" and events.content_prompt is None:
            events.content_prompt = event
        elif name == "gen_ai.content.completion" and events.content_completion is None:
            events.content_completion = event
        elif name == EVALUATION_EVENT:
            events.evaluations.append(event)
        elif lowered in FIRST_TOKEN_EVENTS and (
            events.first_token is None or event.time_unix_nano < events.first_token.time_unix_nano
        ):
            if events.first_token is not None:
                events.other.append(events.first_token)
            events.first_token = event
        else:
            events.other.append(event)
    return events


def _event_dict(event: SpanEvent) -> dict:
    entry: dict[str, Any] = {"name": event.name}
    if event.time_unix_nano:
        entry["time"] = _iso(nanos_to_datetime(event.time_unix_nano))
    if event.attributes:
        entry["attributes"] = event.attributes
    if event.dropped_attributes_count:
        entry["dropped_attributes_count"] = event.dropped_attributes_count
    return entry


# --- input / output -------------------------------------------------------------------------


def _mime_value(attrs: dict, key: str, mime_key: str) -> Any:
    value = attrs.pop(key)
    mime = attrs.pop(mime_key, None)
    if isinstance(mime, str) and mime.strip().lower() == "application/json":
        return parse_json(value)
    if isinstance(mime, str) and mime.strip().lower().startswith("text/"):
        return value
    return parse_json_container(value)


def _input_messages(attrs: dict, families: _Families, events: _Events) -> list[dict] | None:
    if _present(attrs.get("gen_ai.input.messages")):
        parsed = msg.genai_messages(attrs["gen_ai.input.messages"])
        if parsed is not None:
            attrs.pop("gen_ai.input.messages")
            return parsed
    if "llm.input_messages." in families.keys:
        found = msg.pop_indexed(attrs, "llm.input_messages.", families.take(attrs, "llm.input_messages."))
        if found:
            return [msg.oi_message(fields) for fields in found]
    if "gen_ai.prompt." in families.keys:
        found = msg.pop_indexed(attrs, "gen_ai.prompt.", families.take(attrs, "gen_ai.prompt."))
        if found:
            return [msg.flat_genai_message(fields) for fields in found]
    if events.input_messages:
        found = [
            msg.event_message(e.name or e.attributes.get("event.name"), e.attributes)
            for e in events.input_messages
        ]
        events.input_messages = []
        return found
    if events.content_prompt is not None:
        parsed = msg.genai_messages(events.content_prompt.attributes.get("gen_ai.prompt"))
        if parsed is not None:
            events.content_prompt = None
            return parsed
    return None


def _output_messages(attrs: dict, families: _Families, events: _Events) -> list[dict] | None:
    if _present(attrs.get("gen_ai.output.messages")):
        parsed = msg.genai_messages(attrs["gen_ai.output.messages"])
        if parsed is not None:
            attrs.pop("gen_ai.output.messages")
            return parsed
    if "llm.output_messages." in families.keys:
        found = msg.pop_indexed(attrs, "llm.output_messages.", families.take(attrs, "llm.output_messages."))
        if found:
            return [msg.oi_message(fields) for fields in found]
    if "gen_ai.completion." in families.keys:
        found = msg.pop_indexed(attrs, "gen_ai.completion.", families.take(attrs, "gen_ai.completion."))
        if found:
            return [msg.flat_genai_message(fields) for fields in found]
    if events.choices:
        found = [msg.choice_message(e.attributes) for e in events.choices]
        events.choices = []
        return found
    if events.content_completion is not None:
        parsed = msg.genai_messages(events.content_completion.attributes.get("gen_ai.completion"))
        if parsed is not None:
            events.content_completion = None
            return parsed
    return None


def _input(attrs: dict, families: _Families, events: _Events, obs_type: str) -> tuple[bool, Any]:
    if "langfuse.observation.input" in attrs:
        return True, parse_json(attrs.pop("langfuse.observation.input"))
    messages = _input_messages(attrs, families, events)
    system = None
    if _present(attrs.get("gen_ai.system_instructions")) and (
        messages is not None or obs_type == "GENERATION"
    ):
        system = msg.system_instructions_message(attrs.pop("gen_ai.system_instructions"))
    if messages is not None or system is not None:
        return True, ([system] if system else []) + (messages or [])
    if obs_type == "TOOL" and _present(attrs.get("gen_ai.tool.call.arguments")):
        return True, parse_json(attrs.pop("gen_ai.tool.call.arguments"))
    if "input.value" in attrs:
        return True, _mime_value(attrs, "input.value", "input.mime_type")
    if obs_type == "TOOL" and _present(attrs.get("tool.parameters")):
        return True, parse_json(attrs.pop("tool.parameters"))
    if "llm.prompts." in families.keys:
        found = msg.pop_indexed(attrs, "llm.prompts.", families.take(attrs, "llm.prompts."))
        prompts = [p.get("prompt.text", p) for p in found]
        if prompts:
            return True, prompts[0] if len(prompts) == 1 else prompts
    if "traceloop.entity.input" in attrs:
        return True, parse_json(attrs.pop("traceloop.entity.input"))
    if obs_type == "RETRIEVER" and _present(attrs.get("gen_ai.retrieval.query.text")):
        return True, attrs.pop("gen_ai.retrieval.query.text")
    return False, None


def _output(attrs: dict, families: _Families, events: _Events, obs_type: str) -> tuple[bool, Any]:
    if "langfuse.observation.output" in attrs:
        return True, parse_json(attrs.pop("langfuse.observation.output"))
    messages = _output_messages(attrs, families, events)
    if messages is not None:
        return True, msg.single_or_list(messages)
    if obs_type == "TOOL" and "gen_ai.tool.call.result" in attrs:
        return True, parse_json(attrs.pop("gen_ai.tool.call.result"))
    if "output.value" in attrs:
        return True, _mime_value(attrs, "output.value", "output.mime_type")
    if "llm.choices." in families.keys:
        found = msg.pop_indexed(attrs, "llm.choices.", families.take(attrs, "llm.choices."))
        choices = [c.get("completion.text", c) for c in found]
        if choices:
            return True, choices[0] if len(choices) == 1 else choices
    if "traceloop.entity.output" in attrs:
        return True, parse_json(attrs.pop("traceloop.entity.output"))
    if obs_type == "RETRIEVER" and _present(attrs.get("gen_ai.retrieval.documents")):
        return True, parse_json(attrs.pop("gen_ai.retrieval.documents"))
    return False, None


# --- model, prompt, tools ---------------------------------------------------------------------


def _model_parameters(attrs: dict, families: _Families) -> dict:
    params: dict[str, Any] = {}
    for key in families.take(attrs, "gen_ai.request."):
        if key == "gen_ai.request.model":
            continue
        params[key.removeprefix("gen_ai.request.")] = attrs.pop(key)
    for key in families.only[MODEL_PARAMETER_KEYS]:
        if key in attrs:
            parsed = parse_json_object(attrs[key])
            if parsed is not None:
                attrs.pop(key)
                params.update(parsed)
    return params


PROMPT_TEMPLATE_PREFIX = "llm.prompt_template."
PROMPT_TEMPLATE_KEYS = ("template", "variables", "version")
PROMPT_NAME_KEYS = ("langfuse.observation.prompt.name", "langfuse.prompt.name", "gen_ai.prompt.name")
# Without one of these `_prompt` finds nothing (a version or `prompt.id` only counts with a name or a template):
# the mapper calls it only for a span with one.
_PROMPT_KEYS = (*(PROMPT_TEMPLATE_PREFIX + key for key in PROMPT_TEMPLATE_KEYS), *PROMPT_NAME_KEYS)


def _prompt(attrs: dict, metadata: dict, families: _Families) -> dict:
    fields: dict[str, Any] = {}
    template = {}
    for key in PROMPT_TEMPLATE_KEYS:
        full = PROMPT_TEMPLATE_PREFIX + key
        if full in attrs:
            template[key] = parse_json_container(attrs.pop(full)) if key == "variables" else attrs.pop(full)
    if template:
        metadata.setdefault("prompt_template", template)
    name = _pop_first(attrs, PROMPT_NAME_KEYS)
    if name is None and template:
        name = _pop_first(attrs, ("prompt.id",))
    if name is None:
        return fields
    fields["prompt_name"] = to_text(name)
    version_keys = ("langfuse.observation.prompt.version", "langfuse.prompt.version")
    version = to_count(_first([attrs], version_keys), maximum=MAX_INT)
    if version is not None:
        _pop_first(attrs, version_keys)
    elif template.get("version") is not None:
        version = to_count(to_text(template["version"]).strip().lower().removeprefix("v"), maximum=MAX_INT)
    if version is not None:
        fields["prompt_version"] = version
    return fields


def _tool_definitions(attrs: dict, families: _Families) -> list | None:
    if _present(attrs.get("gen_ai.tool.definitions")):
        parsed = parse_json(attrs.pop("gen_ai.tool.definitions"))
        return parsed if isinstance(parsed, list) else [parsed]
    if "llm.tools." in families.keys:
        tools = []
        for fields in msg.pop_indexed(attrs, "llm.tools.", families.take(attrs, "llm.tools.")):
            schema = fields.pop("tool.json_schema", None)
            tool = parse_json(schema) if schema is not None else {}
            if not isinstance(tool, dict):
                tool = {"json_schema": tool}
            for key, value in fields.items():
                tool.setdefault(key.removeprefix("tool."), value)
            tools.append(tool)
        return tools
    return None


# --- errors, status, completion start -----------------------------------------------------------


_FINISH_REASON_KEYS = tuple(attribute for attribute, _ in FINISH_REASON_ATTRIBUTES)


def _finish_reasons(attrs: dict, families: _Families, output: Any, messages: list[dict]) -> list[str]:
    reasons: list[str] = []
    for attribute in families.only[_FINISH_REASON_KEYS]:
        if attribute not in attrs:
            continue
        raw = attrs.pop(attribute)
        if isinstance(raw, (str, list, tuple)):
            reasons += to_tags(raw)
        elif _present(raw):
            reasons.append(to_text(raw))
    reasons += rules_messages.finish_reasons_of(output, messages)
    return reasons


_TIME_TO_FIRST_CHUNK = (("gen_ai.response.time_to_first_chunk", 1.0), ("ai.response.msToFirstChunk", 0.001))
COMPLETION_START_TIME = "langfuse.observation.completion_start_time"
_COMPLETION_START_KEYS = (COMPLETION_START_TIME, *(key for key, _ in _TIME_TO_FIRST_CHUNK))


def _completion_start(
    attrs: dict, families: _Families, start: datetime, first_token: SpanEvent | None
) -> datetime | None:
    if families.only[_COMPLETION_START_KEYS]:  # else none of the attributes below is there
        if COMPLETION_START_TIME in attrs:
            moment = parse_datetime(attrs[COMPLETION_START_TIME])
            if moment is not None:
                attrs.pop(COMPLETION_START_TIME)
                return moment
        for key, unit in _TIME_TO_FIRST_CHUNK:
            value = attrs.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**7:
                attrs.pop(key)
                return start + timedelta(seconds=value * unit)
    if first_token is not None and first_token.time_unix_nano:
        return nanos_to_datetime(first_token.time_unix_nano)
    return None


def _pick_exception(exceptions: list[SpanEvent]) -> SpanEvent | None:
    if not exceptions:
        return None
    escaped = [e for e in exceptions if to_bool(e.attributes.get("exception.escaped"))]
    return (escaped or exceptions)[-1]


# --- scores --------------------------------------------------------------------------------------


def _score_id(*parts: str) -> str:
    return uuid.uuid5(SCORE_ID_NAMESPACE, ":".join(parts)).hex


def _score_value(record: dict, value: Any, label: Any) -> None:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is not None:
        record["value"] = float(number)
        record["data_type"] = "NUMERIC"
        if _present(label):
            record.setdefault("metadata", {})["label"] = to_text(label)
    elif isinstance(value, bool):
        record["value"] = 1.0 if value else 0.0
        record["string_value"] = "True" if value else "False"
        record["data_type"] = "BOOLEAN"
    elif _present(label):
        record["string_value"] = to_text(label)[:1000]
        record["data_type"] = "CATEGORICAL"


def _evaluation_scores(span: SpanData, events: list[SpanEvent], base: dict, start: datetime) -> list[dict]:
    scores = []
    for index, event in enumerate(events):
        attributes = dict(event.attributes)
        name = attributes.pop("gen_ai.evaluation.name", None) or "evaluation"
        record = {
            "id": _score_id("genai-eval", span.trace_id, span.span_id, str(index)),
            "name": to_text(name)[:500],
            "source": "EVAL",
            "timestamp": _event_time(event, start),
            "observation_id": span.span_id,
            **base,
        }
        _score_value(
            record,
            attributes.pop("gen_ai.evaluation.score.value", None),
            attributes.pop("gen_ai.evaluation.score.label", None),
        )
        explanation = attributes.pop("gen_ai.evaluation.explanation", None)
        if _present(explanation):
            record["comment"] = to_text(explanation)
        if "value" not in record and "string_value" not in record:
            continue
        if attributes:
            record.setdefault("metadata", {}).update(attributes)
        scores.append(record)
    return scores


_ANNOTATION_PREFIXES = frozenset(
    f"{level}{plural}." for level in ("", "trace.", "session.") for plural in ("annotations", "evaluations")
)


def _annotation_scores(
    span: SpanData, attrs: dict, families: _Families, base: dict, start: datetime, session_id: str | None
) -> list:
    """OpenInference feedback carried on spans: annotations.N.annotation.* / evaluations.N.evaluation.*,
    also at trace (trace.annotations…) and session (session.annotations…) level."""
    scores: list[dict] = []
    if families.keys.keys().isdisjoint(_ANNOTATION_PREFIXES):  # nearly every span
        return scores
    for level in ("", "trace.", "session."):
        for plural, singular in (("annotations", "annotation"), ("evaluations", "evaluation")):
            prefix = f"{level}{plural}."
            if not families.has(prefix):
                continue
            if level == "session." and not session_id:
                continue
            for index, fields in enumerate(msg.pop_indexed(attrs, prefix, families.take(attrs, prefix))):
                item = {k.removeprefix(f"{singular}."): v for k, v in fields.items()}
                name = item.pop("name", None)
                if not _present(name):
                    attrs.update({f"{prefix}{index}.{k}": v for k, v in fields.items()})
                    continue
                kind = to_text(item.pop("annotator_kind", "")).upper()
                record: dict[str, Any] = {
                    "id": _score_id("oi", level or "span.", plural, span.trace_id, span.span_id, str(index)),
                    "name": to_text(name)[:500],
                    "source": "ANNOTATION" if kind == "HUMAN" else "EVAL",
                    "timestamp": start,
                    **base,
                }
                if level == "":
                    record["observation_id"] = span.span_id
                if level == "session.":
                    record.pop("trace_id", None)
                    record["session_id"] = session_id
                _score_value(record, item.pop("score", None), item.pop("label", None))
                explanation = item.pop("explanation", None)
                if _present(explanation):
                    record["comment"] = to_text(explanation)
                extra = parse_json_object(item.pop("metadata", None)) or {}
                extra.update(item)
                if kind:
                    extra["annotator_kind"] = kind
                if extra:
                    record.setdefault("metadata", {}).update(extra)
                if "value" in record or "string_value" in record:
                    scores.append(record)
    return scores


# --- one span ------------------------------------------------------------------------------------


def _environment(attrs: dict, resource: dict) -> str | None:
    for key in ENVIRONMENT_KEYS:
        value = attrs.get(key)
        if value is not None and value != "":
            return normalize_environment(attrs.pop(key))
        value = resource.get(key)
        if value is not None and value != "":
            return normalize_environment(value)
    return None


USER_ID_KEYS = ("langfuse.user.id", "user.id")
SESSION_ID_KEYS = ("langfuse.session.id", "session.id", "gen_ai.conversation.id")
TAGS_KEYS = ("langfuse.trace.tags", "langfuse.tags", "tag.tags")  # all of them, merged


def _trace_fields(attrs: dict, families: _Families, span: SpanData, *, v5: bool) -> dict:
    fields: dict[str, Any] = {}
    name = _pop_first(attrs, ("langfuse.trace.name",)) if families.langfuse else None
    if name is not None:
        fields["name"] = to_text(name)
    user_id = _pop_first(attrs, families.only[USER_ID_KEYS])
    if user_id is not None:
        fields["user_id"] = to_text(user_id)
    session_id = _pop_first(attrs, families.only[SESSION_ID_KEYS])
    if session_id is not None:
        fields["session_id"] = to_text(session_id)
    tags: list[str] = []
    for key in families.only[TAGS_KEYS]:
        if key in attrs:
            tags += to_tags(attrs.pop(key))
    if tags:
        # Deduplicated in their order. A span's tags rarely repeat one, and telling so by a set costs
        # less than `dict.fromkeys` rebuilding the same list (~0.3 µs of every span carrying tags).
        fields["tags"] = tags if len(set(tags)) == len(tags) else list(dict.fromkeys(tags))
    if not families.langfuse:
        return fields
    if "langfuse.trace.public" in attrs or "langfuse.public" in attrs:
        public = to_bool(_first([attrs], ("langfuse.trace.public", "langfuse.public")))
        if public is not None:
            _pop_first(attrs, ("langfuse.trace.public", "langfuse.public"))
            fields["public"] = public
    metadata = _langfuse_metadata(attrs, families, "langfuse.trace.metadata", values_are_json=v5)
    if metadata:
        fields["metadata"] = metadata
    for key, target in (("langfuse.trace.input", "input"), ("langfuse.trace.output", "output")):
        if key in attrs:
            fields[target] = parse_json(attrs.pop(key))
    return fields


# Every key `_model_fields` reads beside the `gen_ai.request.` family: without one of them it finds no model
# and no parameters, and the mapper does not call it (most spans: tools, chains, retrievers).
_MODEL_FIELD_KEYS = (*MODEL_KEYS, *RESPONSE_MODEL_KEYS, *MODEL_PARAMETER_KEYS)


def _model_fields(attrs: dict, families: _Families) -> dict:
    fields: dict[str, Any] = {}
    model_key = None
    model_keys = families.only[MODEL_KEYS]
    for key in model_keys:
        if key in attrs:
            model_key = key
            break
    model = _pop_first(attrs, model_keys)
    response_model = _pop_first(attrs, families.only[RESPONSE_MODEL_KEYS])
    params = _model_parameters(attrs, families)
    requested = params.get("model") if isinstance(params, dict) else None
    if model_key == "llm.model_name" and response_model is None and isinstance(requested, str) and requested:
        # OpenInference's OpenAI instrumentor puts the model *as answered* in llm.model_name and the
        # one requested only in llm.invocation_parameters.model.
        if to_text(model) != requested:
            response_model, model = model, requested
    if model is None:
        model = response_model
    if model is not None:
        fields["model"] = to_text(model)
    if response_model is not None:
        fields["response_model"] = to_text(response_model)
    if params:
        fields["model_parameters"] = params
    return fields


def _status_fields(
    span: SpanData, attrs: dict, families: _Families, exception: SpanEvent | None, output: Any, has_output: bool
) -> dict:
    """Error details, level, status message, finish reason and status."""
    fields: dict[str, Any] = {}
    error_type = _pop_first(attrs, ("error.type",))
    if exception is not None:
        ex = exception.attributes
        error_type = ex.get("exception.type") or error_type
        if _present(ex.get("exception.message")):
            fields["error_message"] = to_text(ex["exception.message"])
        if _present(ex.get("exception.stacktrace")):
            fields["error_stack"] = to_text(ex["exception.stacktrace"])
    if _present(error_type):
        fields["error_type"] = to_text(error_type)
    if "error_message" not in fields and span.status_code == STATUS_ERROR and span.status_message:
        fields["error_message"] = span.status_message

    status_message = _pop_first(attrs, ("langfuse.observation.status_message",)) if families.langfuse else None
    if status_message is None:
        status_message = span.status_message or fields.get("error_message")
    if _present(status_message):
        fields["status_message"] = to_text(status_message)

    level = None
    declared_level = attrs.get("langfuse.observation.level") if families.langfuse else None
    if isinstance(declared_level, str) and declared_level.strip().upper() in LEVELS:
        level = LEVELS[attrs.pop("langfuse.observation.level").strip().upper()]
    failed = span.status_code == STATUS_ERROR or exception is not None or _present(error_type)
    if level is None and failed:
        level = "ERROR"
    if level is not None:
        fields["level"] = level

    # The output's messages, read once for its finish reasons, the reason picked and its refusal
    # (`output` is None without an output: no messages).
    if isinstance(output, (dict, list)) or families.only[_FINISH_REASON_KEYS]:
        messages = rules_messages.messages_of(output)
        reasons = _finish_reasons(attrs, families, output, messages)
        finish_reason = rules_messages.pick_finish_reason(reasons, output if has_output else None, messages=messages)
        # The reason picked is a refusal signal when any reason is one, and "refusal" for an output that
        # refused without naming a reason: only beside other reasons is the output's refusal still unread.
        refused = is_refusal(finish_reason) or (
            bool(reasons) and has_output and rules_messages.refusal_of(output, messages)
        )
    else:
        # No output, or a text: no messages, so neither a reason nor a refusal (as `finish_reason` in
        # `ingest.rules.messages` answers), and no finish reason attribute. Most chain and tool spans.
        finish_reason, refused = None, False
    if finish_reason:
        fields["finish_reason"] = finish_reason[:100]

    explicit = attrs.get("lookglass.status")
    if isinstance(explicit, str) and explicit.strip().lower() in STATUSES:
        fields["status"] = attrs.pop("lookglass.status").strip().lower()
    elif failed or level == "ERROR":
        fields["status"] = "error"
    elif refused:
        fields["status"] = "refused"
    return fields


_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _otel_metadata(span: SpanData, attrs: dict, events: _Events, exception: SpanEvent | None) -> dict:
    """What no field took: leftover attributes and events, plus span kind, status, links, resource, scope."""
    otel: dict[str, Any] = {"span_kind": SPAN_KINDS.get(span.kind, str(span.kind))}
    if span.status_code or span.status_message:
        otel["status"] = {"code": _STATUS_CODES.get(span.status_code, span.status_code)}
        if span.status_message:
            otel["status"]["message"] = span.status_message
    if attrs:
        otel["attributes"] = attrs
    if span.events:  # every leftover is one of the span's own events
        leftover_events = list(events.other)
        leftover_events += [e for e in events.exceptions if e is not exception]
        leftover_events += events.input_messages + events.choices
        leftover_events += [e for e in (events.content_prompt, events.content_completion) if e is not None]
        if leftover_events:
            leftover_events.sort(key=lambda e: e.time_unix_nano)
            otel["events"] = [_event_dict(e) for e in leftover_events]
    if span.links:
        otel["links"] = span.links
    if span.trace_state:
        otel["trace_state"] = span.trace_state
    if span.dropped:
        otel["dropped"] = span.dropped
    otel["resource"] = span.resource
    scope: dict[str, Any] = {"name": span.scope.name}
    if span.scope.version:
        scope["version"] = span.scope.version
    if span.scope.attributes:
        scope["attributes"] = span.scope.attributes
    otel["scope"] = scope
    return otel


def map_span(span: SpanData, *, received_at: datetime) -> _SpanResult:
    attrs = dict(span.attributes)
    resource = span.resource
    v5 = _is_langfuse_v5(span)
    events = _classify_events(span, attrs)
    families = _families_of(attrs)  # after the events: a details event adds attributes

    start = nanos_to_datetime(span.start_time_unix_nano) if span.start_time_unix_nano else None
    end = nanos_to_datetime(span.end_time_unix_nano) if span.end_time_unix_nano else None
    start = start or end or received_at
    end = end or start
    if end < start:  # max(end, start), without the call
        end = start

    as_root = False
    if families.langfuse:
        as_root = to_bool(attrs.pop("langfuse.internal.as_root", None)) is True
        attrs.pop("langfuse.internal.is_app_root", None)
    is_root = not span.parent_span_id or as_root

    environment = _environment(attrs, resource)
    release = _pop_first(attrs, ("langfuse.release",)) if families.langfuse else None
    if release is None:
        release = resource.get("langfuse.release")
    version = _pop_first(attrs, ("langfuse.version",)) if families.langfuse else None
    if version is None:
        version = resource.get("service.version")

    trace = _trace_fields(attrs, families, span, v5=v5)
    # A span with no `langfuse.` key (OpenInference, GenAI: nearly every span) has none of the Langfuse
    # convention's experiment or metadata keys: no call asks for them.
    langfuse = families.langfuse
    if langfuse:
        experiment_fields, experiment = _experiment(span, attrs, families, is_root=is_root, v5=v5)
    else:
        experiment_fields, experiment = {}, None
    obs_type = _observation_type(attrs)
    if obs_type == "EVENT":
        end = start

    observation: dict[str, Any] = {
        "id": span.span_id,
        "trace_id": span.trace_id,
        "type": obs_type,
        "name": span.name,
        "start_time": start,
        "end_time": end,
    }
    if span.parent_span_id:
        observation["parent_observation_id"] = span.parent_span_id
    if environment:
        observation["environment"] = environment
    if _present(version):
        observation["version"] = to_text(version)

    metadata: dict[str, Any] = {}
    if langfuse:
        metadata.update(_langfuse_metadata(attrs, families, "langfuse.observation.metadata", values_are_json=v5))
        metadata.update(_langfuse_metadata(attrs, families, "langfuse.metadata", values_are_json=v5))
    if "metadata" in attrs:
        oi_metadata = parse_json_object(attrs["metadata"])
        if oi_metadata is not None:
            attrs.pop("metadata")
            for key, value in oi_metadata.items():
                metadata.setdefault(key, value)

    has_input, input_value = _input(attrs, families, events, obs_type)
    if has_input:
        observation["input"] = input_value
    has_output, output_value = _output(attrs, families, events, obs_type)
    if has_output:
        output_value = rules_messages.with_refusal_as_answer(output_value)
        observation["output"] = output_value

    if families.only[_MODEL_FIELD_KEYS] or families.has("gen_ai.request."):  # else no model, no parameters
        observation.update(_model_fields(attrs, families))
    if families.only[_PROMPT_KEYS]:  # else `_prompt` finds nothing
        observation.update(_prompt(attrs, metadata, families))
    tools = _tool_definitions(attrs, families)
    if tools:
        metadata.setdefault("tools", tools)

    if families.only[USAGE_KEYS]:
        usage_keys = families.only[USAGE_ATTRIBUTE_NAMES]
        observation.update(extract_usage(attrs, families.take(attrs, "llm.token_count."), usage_keys))
        if "usage_raw" in observation:
            metadata["usage_raw"] = observation.pop("usage_raw")
    if families.only[COST_KEYS] or families.has("llm.cost."):
        observation.update(extract_cost(attrs, families.take(attrs, "llm.cost.")))
        if "cost_raw" in observation:
            metadata["cost_raw"] = observation.pop("cost_raw")

    first_token = events.first_token
    if first_token is not None or families.only[_COMPLETION_START_KEYS]:  # else there is none
        completion_start = _completion_start(attrs, families, start, first_token)
    else:
        completion_start = None
    if completion_start is not None:
        observation["completion_start_time"] = completion_start
    elif events.first_token is not None:
        events.other.append(events.first_token)

    tool_calls = rules_messages.extract_tool_calls(output_value) if has_output else []
    if tool_calls:
        observation["tool_calls"] = tool_calls

    if obs_type == "TOOL":
        tool_name = _pop_first(attrs, ("gen_ai.tool.name", "tool.name"))
        observation["tool_name"] = to_text(tool_name) if tool_name is not None else span.name
        call_id = _pop_first(attrs, ("gen_ai.tool.call.id", "tool.id", "tool_call.id"))
        if call_id is not None:
            observation["tool_call_id"] = to_text(call_id)

    exception = _pick_exception(events.exceptions) if events.exceptions else None
    observation.update(
        _status_fields(span, attrs, families, exception, output_value if has_output else None, has_output)
    )

    # Trace-level context and feedback.
    score_base: dict[str, Any] = {"trace_id": span.trace_id}
    if environment:
        score_base["environment"] = environment
    scores = _evaluation_scores(span, events.evaluations, score_base, start) if events.evaluations else []
    if families.keys:
        scores += _annotation_scores(span, attrs, families, score_base, start, trace.get("session_id"))

    if experiment_fields:
        metadata["experiment"] = experiment_fields
    metadata["otel"] = _otel_metadata(span, attrs, events, exception)
    observation["metadata"] = metadata

    # The trace record this span contributes.
    if environment:
        trace["environment"] = environment
    defaults: dict[str, Any] = {}
    if is_root:
        defaults["name"] = span.name
        trace["timestamp"] = start
        if has_input:
            defaults["input"] = input_value
        if has_output:
            defaults["output"] = output_value
        if _present(release):
            trace["release"] = to_text(release)
        if _present(version):
            trace["version"] = to_text(version)
    return _SpanResult(observation, trace, is_root, scores, defaults, experiment)


# --- a batch -------------------------------------------------------------------------------------


def _merge_trace(target: dict, fields: dict, *, override: bool) -> None:
    for key, value in fields.items():
        if key == "tags":
            current = target.get("tags")
            if current != value:  # the same tags on every span of a trace (a target's tags are deduplicated)
                target["tags"] = list(dict.fromkeys((current or []) + value))
        elif key == "metadata":
            current = target.get("metadata", {})
            target["metadata"] = {**current, **value} if override else {**value, **current}
        elif override or key not in target:
            target[key] = value


def map_spans(spans: Iterable[SpanData], *, received_at: datetime | None = None) -> MappedBatch:
    received_at = received_at or timezone.now()
    batch = MappedBatch()
    roots: dict[str, dict] = {}
    partial: dict[str, dict] = {}
    defaults: dict[str, dict] = {}
    earliest: dict[str, datetime] = {}
    order: list[str] = []
    # Every span is mapped first and all their records checked in one call: `check_records` encodes
    # a request's JSON values in one pass, where a call per record paid the encoder's fixed cost and
    # its depth padding each time. Entries, in span order: (span, result, first record, count), or
    # (span, None, message) for a span that could not be mapped.
    entries: list[tuple] = []
    records: list[dict] = []
    for span in spans:
        try:
            result = map_span(span, received_at=received_at)
        except Exception as exc:  # one unmappable span must not cost the client its whole batch
            logger.exception("could not map OTLP span %s", span.span_id)
            entries.append((span, None, f"span {span.span_id}: could not be mapped ({type(exc).__name__})"))
            continue
        # Values no row can store (or be read back with) reject this span, not the export.
        # A root's fallbacks are the observation's own name, input and output, checked with it:
        # checking them again encoded a root's whole input and output a second time.
        observation = result.observation
        defaults_of = result.trace_defaults
        fallbacks = {k: v for k, v in defaults_of.items() if v is not observation.get(k)} if defaults_of else None
        first = len(records)
        records.extend(record for record in (observation, result.trace, fallbacks, *result.scores) if record)
        entries.append((span, result, first, len(records) - first))
    problems = check_records(records) if records else []
    for span, result, *where in entries:
        if result is None:
            batch.rejected.append(where[0])
            continue
        first, count = where
        problem = next((p for p in problems[first : first + count] if p is not None), None)
        if problem is not None:  # the first of its records' problems, in the order they were checked
            batch.rejected.append(f"span {span.span_id}: {problem.message}")
            continue
        batch.observations.append(result.observation)
        batch.scores.extend(result.scores)
        if result.experiment is not None:
            batch.experiments[span.span_id] = result.experiment
        trace_id = span.trace_id
        if trace_id not in earliest:
            order.append(trace_id)
            earliest[trace_id] = result.observation["start_time"]
        else:
            earliest[trace_id] = min(earliest[trace_id], result.observation["start_time"])
        if result.is_root:
            _merge_trace(roots.setdefault(trace_id, {}), result.trace, override=False)
            _merge_trace(defaults.setdefault(trace_id, {}), result.trace_defaults, override=False)
        else:
            _merge_trace(partial.setdefault(trace_id, {}), result.trace, override=False)
    for trace_id in order:
        record: dict[str, Any] = {"id": trace_id}
        _merge_trace(record, partial.get(trace_id, {}), override=True)
        if trace_id in roots:
            _merge_trace(record, roots[trace_id], override=True)
        _merge_trace(record, defaults.get(trace_id, {}), override=False)
        # The writer keeps the earliest timestamp it has seen for a trace, so a batch holding only
        # child spans cannot move a trace's start later than its root's.
        record.setdefault("timestamp", earliest[trace_id])
        batch.traces.append(record)
    return batch


def map_decoded(decoded: DecodedBatch, *, received_at: datetime | None = None) -> MappedBatch:
    mapped = map_spans(decoded.spans, received_at=received_at)
    mapped.rejected = decoded.rejected + mapped.rejected
    return mapped


def map_request(request, *, received_at: datetime | None = None) -> MappedBatch:
    """An `ExportTraceServiceRequest` → records (what the tests build spans with)."""
    return map_decoded(from_request(request), received_at=received_at)
