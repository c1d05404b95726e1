"""Chat messages from the conventions' many shapes → one stored shape.

Stored shape (OpenAI-chat-like, what the Langfuse SDKs send as generation input and what UIs render):
    {"role": "user", "content": "hi"}
    {"role": "assistant", "content": None, "tool_calls": [{"id", "type": "function",
                                                          "function": {"name", "arguments"}}]}
    {"role": "tool", "tool_call_id": "call_1", "content": "..."}
`content` is a string for a text-only message, else a list of parts (text parts as
{"type": "text", "text"}, images as {"type": "image_url", "image_url": {"url"}}, anything else as
sent). Keys the converters do not know are kept on the message, never dropped.
"""

from __future__ import annotations

from typing import Any

from ingest.adapters.otel.values import parse_json, parse_json_container, to_text

MAX_INDEX = 10_000  # a flattened list longer than this is not a list of messages; leave the keys alone


_SMALL_INDEXES = {str(index): index for index in range(256)}  # "0" → 0: no isdigit and int per key

# (prefix, keys) → [((key, rest), …) per index, in index order]: which key goes to which message and
# under which name depends only on the keys, and a sender sends the same keys span after span, so the
# layout is learned once per key list (an OpenInference chat history is 2–4 keys per message; parsing
# each key on every span was most of reassembling its messages). Bounded like `mapping._FAMILY_OF`:
# short key lists only (at most 256 keys, 16,384 characters in all), and at most 2048 of them, so a
# sender making up keys cannot grow it by their number or their size.
_LAYOUTS: dict[tuple[str, tuple[str, ...]], list[tuple[tuple[str, str], ...]]] = {}


def _layout(prefix: str, keys) -> list[tuple[tuple[str, str], ...]]:
    """The `{prefix}{i}.{rest}` keys among `keys` grouped by i (ascending; gaps closed up), each group
    its (key, rest) pairs in the order of `keys`; keys of another shape are not in it."""
    groups: dict[int, list[tuple[str, str]]] = {}
    size = len(prefix)
    for key in keys:
        head, sep, rest = key[size:].partition(".")
        if not sep:
            continue
        index = _SMALL_INDEXES.get(head)
        if index is None:
            if not head.isdigit() or int(head) > MAX_INDEX:
                continue
            index = int(head)
        group = groups.get(index)
        if group is None:
            groups[index] = [(key, rest)]
        else:
            group.append((key, rest))
    return [tuple(groups[index]) for index in sorted(groups)]


def pop_indexed(attrs: dict[str, Any], prefix: str, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Remove `{prefix}{i}.{rest}` keys from attrs and return [{rest: value}] ordered by i.

    `prefix` ends with a dot, e.g. "llm.input_messages.". Gaps in the indexes are closed up. `keys`:
    the keys of attrs starting with `prefix` when the caller knows them already (no scan)."""
    if keys is None:
        keys = [k for k in attrs if k.startswith(prefix)]
    if not keys:
        return []
    learned = (prefix, tuple(keys))
    layout = _LAYOUTS.get(learned)
    if layout is None:
        layout = _layout(prefix, keys)
        if len(keys) <= 256 and sum(map(len, keys)) <= 16384:
            if len(_LAYOUTS) >= 2048:
                _LAYOUTS.clear()
            _LAYOUTS[learned] = layout
    # A plain loop over the learned pairs: `dict(zip(rests, map(pop, keys)))` made a zip, a map and a
    # tuple per pair, and cost twice as much per message (~0.9 µs against ~0.4 for a two-key one). Equal
    # rests ("0.role" and "00.role"): the first key's name, the last key's value, as dict(zip) kept.
    pop = attrs.pop
    found = []
    for pairs in layout:
        fields = {}
        for key, rest in pairs:
            fields[rest] = pop(key)
        found.append(fields)
    return found


def _tool_call(call_id: Any, name: Any, arguments: Any, extra: dict | None = None) -> dict:
    call: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    if extra:
        call.update(extra)
    return call


def _text_or_parts(parts: list[dict]) -> str | list | None:
    if not parts:
        return None
    if len(parts) == 1 and parts[0].get("type") == "text" and set(parts[0]) == {"type", "text"}:
        return parts[0]["text"]
    return parts


# --- OpenInference: llm.input_messages.N.message.* ------------------------------------------


def _oi_content_part(fields: dict[str, Any]) -> dict:
    part: dict[str, Any] = {}
    image_url = None
    for key, value in fields.items():
        key = key.removeprefix("message_content.")
        if key == "image.image.url":
            image_url = value
        else:
            part[key] = value
    if image_url is not None:
        part["type"] = "image_url"
        part["image_url"] = {"url": image_url}
    part.setdefault("type", "text" if "text" in part else "unknown")
    return part


_OI_LISTS = ("message.tool_calls.", "message.contents.")
_OI_NAMED = frozenset(
    {"message.role", "message.content", "message.function_call_name", "message.function_call_arguments_json"}
)


def oi_message(fields: dict[str, Any]) -> dict:
    if len(fields) == 2 and "message.role" in fields and "message.content" in fields:  # most messages
        return {"role": fields["message.role"], "content": fields["message.content"]}
    # The keys of its tool calls and of its content parts, found in one pass (as `pop_indexed` would
    # find each by a scan of its own).
    calls: list[str] = []
    parts: list[str] = []
    for key in fields:
        if key.startswith(_OI_LISTS):
            (calls if key.startswith("message.tool_calls.") else parts).append(key)
    if not calls and not parts:
        # Most messages (role + content) hold no tool calls or content parts: the same message
        # without the copy.
        plain: dict[str, Any] = {"role": fields.get("message.role"), "content": fields.get("message.content")}
        for key, value in fields.items():
            if key not in _OI_NAMED:
                plain[key.removeprefix("message.")] = value
        name, arguments = fields.get("message.function_call_name"), fields.get("message.function_call_arguments_json")
        if name is not None or arguments is not None:
            plain["function_call"] = {"name": name, "arguments": arguments}
        return plain
    return _oi_message(fields, calls, parts)


def _oi_message(
    fields: dict[str, Any], call_keys: list[str] | None = None, part_keys: list[str] | None = None
) -> dict:
    """Any OpenInference message (`oi_message` takes the plain ones itself). `call_keys`, `part_keys`:
    its keys starting with "message.tool_calls." and "message.contents.", in its order, when the
    caller has found them (else each is found by a scan)."""
    fields = dict(fields)
    message: dict[str, Any] = {}
    tool_calls = []
    for call in pop_indexed(fields, "message.tool_calls.", call_keys):
        extra = {
            k.removeprefix("tool_call."): v
            for k, v in call.items()
            if k not in ("tool_call.id", "tool_call.function.name", "tool_call.function.arguments")
        }
        tool_calls.append(
            _tool_call(
                call.get("tool_call.id"),
                call.get("tool_call.function.name"),
                call.get("tool_call.function.arguments"),
                extra,
            )
        )
    parts = [_oi_content_part(part) for part in pop_indexed(fields, "message.contents.", part_keys)]
    function_name = fields.pop("message.function_call_name", None)
    function_args = fields.pop("message.function_call_arguments_json", None)
    message["role"] = fields.pop("message.role", None)
    content = fields.pop("message.content", None)
    if content is None:
        content = _text_or_parts(parts)
    elif parts:
        message["contents"] = parts
    message["content"] = content
    for key, value in fields.items():
        message[key.removeprefix("message.")] = value
    if tool_calls:
        message["tool_calls"] = tool_calls
    if function_name is not None or function_args is not None:
        message["function_call"] = {"name": function_name, "arguments": function_args}
    return message


# --- OTel GenAI: gen_ai.input.messages / gen_ai.output.messages ----------------------------


def _genai_part_to_content(part: Any) -> dict:
    if not isinstance(part, dict):
        return {"type": "text", "text": to_text(part)}
    kind = part.get("type")
    if kind == "text":
        converted = {"type": "text", "text": part.get("content")}
        converted.update({k: v for k, v in part.items() if k not in ("type", "content")})
        return converted
    if kind == "uri" and part.get("modality") == "image":
        return {"type": "image_url", "image_url": {"url": part.get("uri")}} | {
            k: v for k, v in part.items() if k not in ("type", "uri", "modality")
        }
    return dict(part)


def genai_message(raw: Any) -> dict:
    if not isinstance(raw, dict):
        return {"role": None, "content": raw}
    parts = raw.get("parts")
    if type(parts) is list and len(parts) == 1:
        part = parts[0]
        if type(part) is dict and len(part) == 2 and part.get("type") == "text" and type(part.get("content")) is str:
            # One text part (most chat turns): the message the general path below makes of it.
            plain: dict[str, Any] = {"role": raw.get("role"), "content": part["content"]}
            for key, value in raw.items():
                if key not in ("role", "parts", "content"):
                    plain[key] = value
            return plain
    return _genai_message(raw)


def _genai_message(raw: dict) -> dict:
    """Any GenAI message object (`genai_message` takes the one-text-part ones itself)."""
    message: dict[str, Any] = {"role": raw.get("role")}
    parts = raw.get("parts")
    if parts is None and "content" in raw:  # already chat-shaped (some senders skip `parts`)
        parts = [{"type": "text", "content": raw["content"]}] if isinstance(raw["content"], str) else None
        if parts is None:
            message["content"] = raw["content"]
    if isinstance(parts, str):
        parts = [{"type": "text", "content": parts}]
    contents: list[dict] = []
    tool_calls = []
    for part in parts or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "tool_call":
            extra = {k: v for k, v in part.items() if k not in ("type", "id", "name", "arguments")}
            tool_calls.append(_tool_call(part.get("id"), part.get("name"), part.get("arguments"), extra))
        elif kind == "tool_call_response":
            message["tool_call_id"] = part.get("id")
            response = part.get("response", part.get("result"))
            contents.append(
                {"type": "text", "text": response}
                if isinstance(response, str)
                else {"type": "tool_call_response", "response": response}
            )
        else:
            contents.append(_genai_part_to_content(part))
    if "content" not in message:
        content = _text_or_parts(contents)
        if isinstance(content, list) and len(content) == 1 and content[0].get("type") == "tool_call_response":
            content = content[0]["response"]
        message["content"] = content
    if tool_calls:
        message["tool_calls"] = tool_calls
    for key, value in raw.items():
        if key not in ("role", "parts", "content"):
            message[key] = value
    return message


def genai_messages(value: Any) -> list[dict] | None:
    parsed = parse_json(value)
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return None
    return [genai_message(item) for item in parsed]


def system_instructions_message(value: Any) -> dict | None:
    parsed = parse_json(value)
    if parsed is None or parsed == [] or parsed == "":
        return None
    if isinstance(parsed, str):
        return {"role": "system", "content": parsed}
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return {"role": "system", "content": parsed}
    return {"role": "system", "content": _text_or_parts([_genai_part_to_content(part) for part in parsed])}


# --- Deprecated flattened GenAI (OpenLLMetry): gen_ai.prompt.N.*, gen_ai.completion.N.* ----


def flat_genai_message(fields: dict[str, Any]) -> dict:
    fields = dict(fields)
    tool_calls = []
    for call in pop_indexed(fields, "tool_calls."):
        name = call.pop("name", call.pop("function.name", None))
        arguments = call.pop("arguments", call.pop("function.arguments", None))
        call_id = call.pop("id", None)
        call.pop("type", None)
        tool_calls.append(_tool_call(call_id, name, arguments, call))
    message: dict[str, Any] = {"role": fields.pop("role", None)}
    message["content"] = parse_json_container(fields.pop("content", None))
    message.update(fields)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


# --- Legacy GenAI span events: gen_ai.{system,user,assistant,tool}.message, gen_ai.choice ---

EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def _openai_tool_calls(value: Any) -> list[dict]:
    parsed = parse_json(value)
    if not isinstance(parsed, list):
        return []
    calls = []
    for call in parsed:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        calls.append(
            _tool_call(
                call.get("id"),
                function.get("name", call.get("name")),
                function.get("arguments", call.get("arguments")),
            )
        )
    return calls


def event_message(event_name: str, attributes: dict[str, Any]) -> dict:
    attributes = dict(attributes)
    attributes.pop("gen_ai.system", None)
    attributes.pop("gen_ai.provider.name", None)
    attributes.pop("event.name", None)
    message: dict[str, Any] = {"role": attributes.pop("role", None) or EVENT_ROLES[event_name]}
    message["content"] = parse_json_container(attributes.pop("content", None))
    call_id = attributes.pop("id", None)
    if call_id is not None:
        message["tool_call_id"] = call_id
    tool_calls = _openai_tool_calls(attributes.pop("tool_calls", None))
    if tool_calls:
        message["tool_calls"] = tool_calls
    message.update(attributes)
    return message


def choice_message(attributes: dict[str, Any]) -> dict:
    attributes = dict(attributes)
    for key in ("gen_ai.system", "gen_ai.provider.name", "event.name"):
        attributes.pop(key, None)
    inner = parse_json(attributes.pop("message", None))
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(inner, dict):
        message["role"] = inner.get("role") or "assistant"
        message["content"] = parse_json_container(inner.get("content"))
        calls = _openai_tool_calls(inner.get("tool_calls"))
        if calls:
            message["tool_calls"] = calls
    calls = _openai_tool_calls(attributes.pop("tool_calls", None))
    if calls:
        message["tool_calls"] = calls
    message.update(attributes)
    return message


# --- tool calls the model asked for, finish reasons ------------------------------------------


def single_or_list(messages: list[dict]) -> Any:
    """Output of one choice is that message; several choices stay a list."""
    return messages[0] if len(messages) == 1 else messages
