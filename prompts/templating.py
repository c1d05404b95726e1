"""`{{variable}}` substitution exactly as the Langfuse SDKs' `compile()` does it, on the server.

The SDK scans for `{{`, takes everything up to the next `}}` as the name (whitespace stripped),
substitutes `str(value)` (None → ""), and leaves unknown variables untouched. There is no escaping
and no logic. Chat placeholders (`{"type": "placeholder", "name": …}`) are replaced by the list of
messages given under their name. The preview reproduces that so what people see is what their
code will send; it adds what the SDK only logs: which variables are missing and which are unused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPEN, CLOSE = "{{", "}}"


def _next_variable(content: str, start: int) -> tuple[str, int, int] | None:
    begin = content.find(OPEN, start)
    if begin == -1:
        return None
    end = content.find(CLOSE, begin)
    if end == -1:
        return None
    return content[begin + len(OPEN) : end].strip(), begin, end + len(CLOSE)


def variable_names(content: str) -> list[str]:
    names, at = [], 0
    while at < len(content):
        found = _next_variable(content, at)
        if found is None:
            break
        names.append(found[0])
        at = found[2]
    return names


def _as_text(value) -> str:
    # The Python SDK's str(): True → "True", 3 → "3". JSON null means "empty", as the SDK's None does.
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)


def compile_text(content: str, variables: dict) -> str:
    out, at = [], 0
    while at < len(content):
        found = _next_variable(content, at)
        if found is None:
            out.append(content[at:])
            break
        name, begin, end = found
        out.append(content[at:begin])
        out.append(_as_text(variables[name]) if name in variables else content[begin:end])
        at = end
    return "".join(out)


def template_variables(*, text: str | None = None, messages: list | None = None) -> list[str]:
    """Variable names in order of first appearance (placeholders are not variables)."""
    names: list[str] = []
    sources = (
        [text]
        if text is not None
        else [m.get("content", "") for m in messages or [] if not is_placeholder(m)]
    )
    for source in sources:
        for name in variable_names(source):
            if name not in names:
                names.append(name)
    return names


def placeholder_names(messages: list | None) -> list[str]:
    return [m["name"] for m in messages or [] if is_placeholder(m)]


def is_placeholder(message: dict) -> bool:
    return message.get("type") == "placeholder"


@dataclass
class Compiled:
    prompt: str | list
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def compile_prompt(*, text: str | None = None, messages: list | None = None, variables: dict) -> Compiled:
    wanted = template_variables(text=text, messages=messages)
    placeholders = placeholder_names(messages)
    missing = [name for name in [*wanted, *placeholders] if name not in variables]
    unused = [name for name in variables if name not in wanted and name not in placeholders]
    if text is not None:
        return Compiled(prompt=compile_text(text, variables), missing=missing, unused=unused)

    compiled, warnings = [], []
    for message in messages or []:
        if not is_placeholder(message):
            compiled.append({"role": message["role"], "content": compile_text(message["content"], variables)})
            continue
        name = message["name"]
        if name not in variables:
            compiled.append({"type": "placeholder", "name": name})
            continue
        value = variables[name]
        if not isinstance(value, list):
            warnings.append(f"placeholder {name!r} needs a list of messages; got {type(value).__name__}")
            compiled.append({"role": "NOT_GIVEN", "content": _as_text(value)})
            continue
        for item in value:
            if isinstance(item, dict):
                filled = dict(item)
                filled["role"] = item.get("role", "NOT_GIVEN")
                filled["content"] = compile_text(_as_text(item.get("content", "")), variables)
                compiled.append(filled)
            else:
                warnings.append(f"placeholder {name!r}: each message must be an object with role and content")
                compiled.append({"role": "NOT_GIVEN", "content": _as_text(value)})
    return Compiled(prompt=compiled, missing=missing, unused=unused, warnings=warnings)
