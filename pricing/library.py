"""Keeping the catalog current from a maintained price library (`genai-prices`, by Pydantic, MIT).

The library knows *today's* prices (and some dated price changes); we keep *history*
(`effective_from`) and per-project overrides. This module turns the library's data into entries in the
shape of `pricing/data/model_prices.json` and merges them into an existing history without rewriting
it. It is used by `manage.py sync_model_prices`, both to rebuild the shipped data file (a build step)
and to add rows to a running database.

Merge rules (per model):
- A library model is the same model as one of ours when the names are equal or our pattern
  recognises the library's name; it is then priced under our name and our (hand-checked) pattern. Otherwise it is a new model with a pattern built from the
  library's match rules, narrowed so that it never claims a name another entry owns.
- A price is added as a new row dated where the library says the price changed (its start date), or,
  for a price without a start date that differs from ours, at the sync date (`since`). A row is never
  changed or removed: an equal price in force on that date adds nothing, and an existing row on the
  same date is kept as it is.
- Only token prices are kept (input, cache read, cache write, output; per million tokens). Prices
  the library tiers by prompt length use the base tier; audio, image and per-request prices are not
  modelled here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

from pricing.models import EFFECTIVE_FROM_MIN
from pricing.patterns import PatternError, check_pattern

# Which library providers feed which of our providers, and which of their models belong there (the
# library's "google" also sells Claude on Vertex: those stay Anthropic's).
_EMBEDDING = ("embed",)
SOURCES: tuple[tuple[str, str, object], ...] = (
    ("openai", "openai", lambda mid: True),
    # Claude 1 and 2 are retired (and have no cache prices).
    ("anthropic", "anthropic", lambda mid: not mid.startswith(("claude-2", "claude-v1", "claude-instant"))),
    ("google", "google", lambda mid: mid.startswith(("gemini", "gemma", "text-embedding"))),
    ("mistral", "mistral", lambda mid: ":" not in mid and not mid.startswith(("deepseek", "zai-"))),
    ("meta", "meta", lambda mid: True),
    # Meta's open models are sold by hosts; Together's list prices stand for them.
    ("meta", "together", lambda mid: mid.lower().startswith("meta-llama/")),
)
PRICE_KEYS = {
    "input_mtok": "input",
    "cache_read_mtok": "cached_input",
    "cache_write_mtok": "cache_write",
    "output_mtok": "output",
}
OPTIONAL_KINDS = ("cached_input", "cache_write", "reasoning")
FILE_PRICE_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")


def library_version() -> str:
    from genai_prices import __version__

    return __version__


# --- library data → entries ----------------------------------------------------------------------


def _escape(text: str) -> str:
    # re.escape also escapes "-", which is legal but makes patterns hard to read in the admin.
    return re.escape(text).replace("\\-", "-")


def _prefixed(body: str) -> str:
    # Names arrive as sent: with a router/provider prefix ("openai/gpt-4o", "azure/…") or without.
    return rf"(?:.*/)?{body}"


def _clause_regex(clause) -> str | None:
    """A library match clause as a regex body (anchored at the start by the caller)."""
    from genai_prices import types

    if isinstance(clause, types.ClauseEquals):
        return _prefixed(_escape(clause.equals) + "$")
    if isinstance(clause, types.ClauseStartsWith):
        return _prefixed(_escape(clause.starts_with))
    if isinstance(clause, types.ClauseEndsWith):
        return ".*" + _escape(clause.ends_with) + "$"
    if isinstance(clause, types.ClauseContains):
        return ".*" + _escape(clause.contains)
    if isinstance(clause, types.ClauseRegex):
        body = clause.regex
        return _prefixed(body[1:]) if body.startswith("^") else ".*(?:" + body + ")"
    if isinstance(clause, types.ClauseOr):
        parts = [_clause_regex(c) for c in clause.or_]
        return None if any(p is None for p in parts) else "(?:" + "|".join(parts) + ")"
    if isinstance(clause, types.ClauseAnd):
        parts = [_clause_regex(c) for c in clause.and_]
        return None if any(p is None for p in parts) else "".join(f"(?={p})" for p in parts)
    return None


def _periods(prices) -> list[tuple[date | None, object]]:
    """(start date or None for "from the start", ModelPrice) in order; time-of-day prices skipped."""
    from genai_prices import types

    if not isinstance(prices, list):
        return [(None, prices)]
    out = []
    for conditional in prices:
        constraint = conditional.constraint
        if constraint is None:
            out.append((None, conditional.prices))
        elif isinstance(constraint, types.StartDateConstraint):
            out.append((constraint.start_date, conditional.prices))
    return sorted(out, key=lambda item: (item[0] is not None, item[0] or date.min))


def _base(value) -> Decimal | None:
    from genai_prices import types

    if value is None:
        return None
    if isinstance(value, types.TieredPrices):
        return Decimal(value.base)
    return Decimal(value)


def _token_prices(model_price) -> dict[str, Decimal] | None:
    values = {kind: _base(getattr(model_price, key, None)) for key, kind in PRICE_KEYS.items()}
    if values["input"] is None:
        return None  # audio-only, per-request or free models: nothing to price per token
    if values["output"] is None:
        values["output"] = Decimal(0)  # embeddings
    return {kind: value for kind, value in values.items() if value is not None}


@dataclass
class LibraryModel:
    provider: str
    model_id: str
    pattern: str | None
    periods: list[tuple[date | None, dict[str, Decimal]]]
    tiered: bool = False


def library_models(providers: Iterable | None = None) -> list[LibraryModel]:
    """The library's token-priced models of the providers we cover."""
    if providers is None:
        from genai_prices.data import providers as bundled

        providers = bundled
    by_id = {p.id: p for p in providers}
    out: list[LibraryModel] = []
    seen: set[str] = set()
    for ours, theirs, keep in SOURCES:
        provider = by_id.get(theirs)
        if provider is None:
            continue
        for model in provider.models:
            if model.deprecated or not keep(model.id) or model.id.lower() in seen:
                continue
            periods = []
            tiered = False
            for start, model_price in _periods(model.prices):
                prices = _token_prices(model_price)
                if prices is not None:
                    periods.append((start, prices))
                    tiered = tiered or any(
                        type(getattr(model_price, key, None)).__name__ == "TieredPrices" for key in PRICE_KEYS
                    )
            if not periods:
                continue
            body = _clause_regex(model.match)
            own = None if body is None else _checked("^" + body)
            if body is not None and (own is None or not own.search(model.id)):
                # The library names some models by an id its own rules do not match (fine-tune prefixes).
                body = f"(?:{_prefixed(_escape(model.id) + '$')}|{body})"
            seen.add(model.id.lower())
            out.append(LibraryModel(ours, model.id, None if body is None else "^" + body, periods, tiered))
    return out


# --- merging into a history ----------------------------------------------------------------------


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.astimezone(dt_timezone.utc).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _rates(entry: dict) -> tuple:
    """Prices after the catalog's fallbacks, so "no cache price" equals "cache price = input"."""
    def get(kind):
        return None if entry.get(kind) is None else Decimal(str(entry[kind]))

    inp, out = get("input"), get("output")
    return (
        inp,
        get("cached_input") if get("cached_input") is not None else inp,
        get("cache_write") if get("cache_write") is not None else inp,
        out,
        get("reasoning") if get("reasoning") is not None else out,
    )


@dataclass
class MergeReport:
    added: list[dict] = field(default_factory=list)
    new_models: list[str] = field(default_factory=list)
    changed_models: list[str] = field(default_factory=list)
    kept_on_same_date: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _names(entry: dict) -> list[str]:
    return [entry["model_name"], *entry.get("examples", [])]


def merge(existing: list[dict], models: list[LibraryModel], *, since: date) -> MergeReport:
    """New entries (file shape) that bring `existing` up to the library; `existing` is not changed.

    `existing` entries need model_name, match_pattern, provider, effective_from and the price kinds.
    """
    report = MergeReport()
    by_name: dict[str, list[dict]] = {}
    for entry in existing:
        by_name.setdefault(entry["model_name"], []).append(entry)
    compiled = {}
    for name, rows in by_name.items():
        try:
            compiled[name] = check_pattern(rows[0]["match_pattern"])
        except PatternError:
            compiled[name] = None
    claimed: set[str] = set()
    new_models: list[tuple[LibraryModel, re.Pattern]] = []
    pending: list[tuple[str, LibraryModel]] = []
    for model in models:
        own = None if model.pattern is None else _checked(model.pattern)
        target = _same_model(model, by_name, compiled)
        if target is not None:
            if target in claimed:
                report.skipped.append(f"{model.model_id}: another library model already prices {target}")
                continue
            claimed.add(target)
            pending.append((target, model))
        elif own is None:
            report.skipped.append(f"{model.model_id}: its match rules cannot be expressed as a safe pattern")
        else:
            new_models.append((model, own))

    # New models: narrow each pattern so it never claims another entry's names.
    all_names = {n.lower() for rows in by_name.values() for e in rows for n in _names(e)}
    all_names |= {m.model_id.lower() for m, _ in new_models}
    for model, own in new_models:
        foreign = sorted(n for n in all_names if n != model.model_id.lower() and own.search(n))
        pattern = model.pattern
        if foreign:
            if any(f in model.model_id.lower() for f in foreign):
                report.skipped.append(f"{model.model_id}: its pattern cannot exclude {', '.join(foreign)}")
                continue
            excluded = "|".join(re.escape(n) for n in foreign)
            pattern = f"^(?!.*(?:{excluded}))(?:{model.pattern[1:]})"
            try:
                check_pattern(pattern)
            except PatternError as exc:
                report.skipped.append(f"{model.model_id}: {exc}")
                continue
        by_name[model.model_id] = []
        pending.append((model.model_id, LibraryModel(model.provider, model.model_id, pattern, model.periods, model.tiered)))
        report.new_models.append(model.model_id)

    for name, model in pending:
        rows = by_name[name]
        pattern = rows[0]["match_pattern"] if rows else model.pattern
        provider = rows[0]["provider"] if rows else model.provider
        dated = [p for p in model.periods if p[0] is not None]
        added_any = False
        for start, prices in model.periods:
            if start is None:
                if not rows:
                    # A new model's first price: from the sync date, or from before its first dated change.
                    day = EFFECTIVE_FROM_MIN.date() if dated else since
                elif dated:
                    continue  # our history already covers the time before the library's first change
                else:
                    day = since
            else:
                day = start
            history = sorted(rows, key=lambda e: _as_date(e["effective_from"]))
            in_force = [e for e in history if _as_date(e["effective_from"]) <= day]
            current = in_force[-1] if in_force else None
            if current is not None:
                # A kind the library does not price (often the cache prices) is not a change: ours stays.
                prices = {**{k: current[k] for k in OPTIONAL_KINDS if current.get(k) is not None}, **prices}
            if current is not None and _rates(current) == _rates(prices):
                continue
            if current is not None and _as_date(current["effective_from"]) == day:
                report.kept_on_same_date.append(f"{name} on {day}")
                continue
            entry = {
                "provider": provider,
                "model_name": name,
                "match_pattern": pattern,
                "effective_from": day.isoformat(),
                **{k: prices[k] for k in FILE_PRICE_KINDS if k in prices},
                "notes": _note(model),
            }
            rows.append(entry)
            report.added.append(entry)
            added_any = True
        if added_any and name not in report.new_models:
            report.changed_models.append(name)
    return report


def _note(model: LibraryModel) -> str:
    note = f"genai-prices {library_version()} ({model.model_id})"
    if model.tiered:
        note += "; base tier only (long prompts cost more)"
    return note


def _checked(pattern: str) -> re.Pattern | None:
    try:
        return check_pattern(pattern)
    except PatternError:
        return None


def _same_model(model: LibraryModel, by_name: dict[str, list[dict]], compiled: dict) -> str | None:
    lowered = model.model_id.lower()
    for name in by_name:
        if name.lower() == lowered:
            return name
    candidates = [
        name for name, regex in compiled.items()
        if regex is not None and by_name[name] and by_name[name][0]["provider"] == model.provider
        and regex.search(model.model_id)
    ]
    if not candidates:
        return None
    return max(candidates, key=len)
