"""Messages and tool calls in model outputs, for every path: the tool calls a model asked for, its
finish reasons and refusals. (The Langfuse batch and the OTLP mapping had a copy each.)"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.rules.status import is_refusal


def _json_maybe(value):
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def extract_tool_calls(output) -> list[dict]:
    """Tool calls the model asked for, from OpenAI (`tool_calls`, legacy `function_call`) and
    Anthropic (`tool_use` content blocks) shaped outputs, as [{id, name, arguments}]."""
    if not isinstance(output, (list, dict)):  # a string or number holds no call: skip the walk
        return []
    calls: list[dict] = []
    _visit(output, 0, calls)
    return [call for call in calls if call.get("name")]


_CHILD_KEYS = ("content", "choices", "message", "output")


def _visit(node, depth: int, calls: list[dict]) -> None:
    # Module-level rather than a closure made per call: this runs for every output on every path.
    # Absent keys read None, which is no container: tested first, they cost no isinstance() call (a
    # message node probes six keys, most of them absent); and a list's scalar items, which hold no
    # call, are not visited.
    if depth > 4 or len(calls) >= 128:
        return
    if isinstance(node, list):
        for item in node[:64]:
            if isinstance(item, (list, dict)):
                _visit(item, depth + 1, calls)
        return
    if not isinstance(node, dict):
        return
    get = node.get
    kind = get("type")
    if kind == "tool_use" and "name" in node:
        calls.append({"id": get("id"), "name": get("name"), "arguments": get("input")})
        return
    if kind == "function_call" and "name" in node:  # OpenAI Responses API output item
        calls.append(
            {
                "id": get("call_id") or get("id"),
                "name": node["name"],
                "arguments": _json_maybe(get("arguments")),
            }
        )
        return
    tool_calls = get("tool_calls")
    if tool_calls is not None and isinstance(tool_calls, list):
        for call in tool_calls:
            if isinstance(call, dict):
                function = call.get("function") if isinstance(call.get("function"), dict) else call
                calls.append(
                    {
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": _json_maybe(function.get("arguments")),
                    }
                )
    function_call = get("function_call")
    if function_call is not None and isinstance(function_call, dict) and "name" in function_call:
        calls.append(
            {
                "id": None,
                "name": function_call["name"],
                "arguments": _json_maybe(function_call.get("arguments")),
            }
        )
    for key in _CHILD_KEYS:
        child = get(key)
        if child is not None and isinstance(child, (list, dict)):
            _visit(child, depth + 1, calls)


def messages_of(output: Any) -> list[dict]:
    """The assistant messages of an output: a whole chat completion response (its choices' messages),
    one message, or a list of messages."""
    if isinstance(output, dict):
        if isinstance(output.get("choices"), list):  # a whole chat completion response
            return [
                c.get("message")
                for c in output["choices"]
                if isinstance(c, dict) and isinstance(c.get("message"), dict)
            ]
        return [output]
    if isinstance(output, list):
        return [m for m in output if isinstance(m, dict)]
    return []


def finish_reasons_of(output: Any, messages: list[dict] | None = None) -> list[str]:
    """Every finish (stop) reason in an output, in order: its messages' `finish_reason` (Anthropic:
    `stop_reason`), then a chat completion's choices'. `messages`: the output's messages
    (`messages_of`) when the caller has read them already."""
    return _finish_reasons(output, messages_of(output) if messages is None else messages)


def _finish_reasons(output: Any, messages: list[dict]) -> list[str]:
    reasons = []
    for message in messages:
        for key in ("finish_reason", "stop_reason"):
            reason = message.get(key)
            if isinstance(reason, str) and reason:
                reasons.append(reason)
                break
    if isinstance(output, dict) and isinstance(output.get("choices"), list):
        reasons += [
            c["finish_reason"]
            for c in output["choices"]
            if isinstance(c, dict) and isinstance(c.get("finish_reason"), str) and c["finish_reason"]
        ]
    return reasons


def refusal_of(output: Any, messages: list[dict] | None = None) -> bool:
    """An OpenAI `refusal` in an assistant message. `messages`: as for `finish_reasons_of`."""
    return _refused(messages_of(output) if messages is None else messages)


def _refused(messages: list[dict]) -> bool:
    # A loop rather than any(<generator>): no generator frame for the one or two messages of an output.
    for message in messages:
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            return True
    return False


def pick_finish_reason(reasons: list[str], output: Any = None, *, messages: list[dict] | None = None) -> str | None:
    """The finish reason to store: the first refusal signal among `reasons` (it decides the status),
    else the first reason; "refusal" for an output that refused without naming a reason. `messages`:
    the output's messages (`messages_of`) when the caller has read them already."""
    for reason in reasons:
        if is_refusal(reason):
            return reason
    if reasons:
        return reasons[0]
    return "refusal" if _refused(messages_of(output) if messages is None else messages) else None


def finish_reason(output: Any) -> str | None:
    """`pick_finish_reason(finish_reasons_of(output), output)`, reading the output's messages once."""
    if not isinstance(output, (dict, list)):  # no messages: no reason, no refusal
        return None
    found = messages_of(output)
    return pick_finish_reason(_finish_reasons(output, found), messages=found)


def _refusal_text(message: dict) -> str | None:
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal.strip() and message.get("content") in (None, "", []):
        return refusal
    return None


def with_refusal_as_answer(output: Any) -> Any:
    """An OpenAI answer that refused (`{"content": null, "refusal": "I'm sorry…"}`) with the refusal
    text as its content: the refusal IS the answer, and every reader of `content` (the console, the
    read API's consumers, evaluations) would otherwise see an empty output. `refusal` is kept as sent.
    Anything else is returned unchanged (the same object)."""
    if isinstance(output, dict) and isinstance(output.get("choices"), list):
        choices = output["choices"]
        if not any(
            isinstance(c, dict) and isinstance(c.get("message"), dict) and _refusal_text(c["message"])
            for c in choices
        ):
            return output
        return {
            **output,
            "choices": [
                {**c, "message": with_refusal_as_answer(c["message"])}
                if isinstance(c, dict) and isinstance(c.get("message"), dict)
                else c
                for c in choices
            ],
        }
    if isinstance(output, dict):
        text = _refusal_text(output)
        return {**output, "content": text} if text is not None else output
    if isinstance(output, list) and any(isinstance(m, dict) and _refusal_text(m) for m in output):
        return [with_refusal_as_answer(m) if isinstance(m, dict) else m for m in output]
    return output
