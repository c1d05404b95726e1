from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.0345 → "3.5 %"; None → "—"."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f} %"


@register.filter
def get(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def get_next_within(rows, counter) -> bool:
    """Whether the row after the `counter`-th (1-based) is also within the 80% (the line goes after
    the last one that is)."""
    return counter < len(rows) and bool(rows[counter].get("within_80"))


@register.filter
def json_preview(value) -> str:
    """A dataset item's input or output as one line: a string as it is, anything else as compact JSON."""
    import json

    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
