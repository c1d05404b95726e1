"""Writes to model prices. Cache invalidation rides on the model's signals (pricing/signals.py), so
it also covers writes that bypass these functions (admin bulk delete, a project's cascade)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime

from pricing.models import ModelPrice, PriceSource
from tenancy.models import AuditAction, Project, User
from tenancy.services import audit_record

DEFAULT_CATALOG_FILE = Path(__file__).resolve().parent / "data" / "model_prices.json"

EDITABLE_FIELDS = (
    "provider",
    "model_name",
    "match_pattern",
    "effective_from",
    "input_price",
    "cached_input_price",
    "cache_write_price",
    "output_price",
    "reasoning_price",
)
# The data file names prices by usage kind; the model by column.
FILE_PRICE_KEYS = {
    "input": "input_price",
    "cached_input": "cached_input_price",
    "cache_write": "cache_write_price",
    "output": "output_price",
    "reasoning": "reasoning_price",
}

AUDIT_CREATED = AuditAction.MODEL_PRICE_CREATED
AUDIT_UPDATED = AuditAction.MODEL_PRICE_UPDATED
AUDIT_DELETED = AuditAction.MODEL_PRICE_DELETED


def _audit(*, price: ModelPrice, actor: User | None, action: str, data: dict) -> None:
    # The audit log is per organization; the global catalog belongs to none (superusers only).
    if price.project_id is None:
        return
    project = price.project
    audit_record(
        organization=project.organization, actor=actor, action=action, target_type="model_price",
        target_id=price.id, data={"project": str(project.id), "model_name": price.model_name, **data},
    )


def _snapshot(price: ModelPrice) -> dict:
    return {name: _jsonable(getattr(price, name)) for name in EDITABLE_FIELDS}


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@transaction.atomic
def model_price_create(*, project: Project | None, actor: User | None, data: dict[str, Any]) -> ModelPrice:
    """A project override (project set) or a global catalog row (project None, superusers)."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    price = ModelPrice(project=project, source=PriceSource.CUSTOM, **data)
    price.full_clean()
    price.save()
    _audit(price=price, actor=actor, action=AUDIT_CREATED, data={"price": _snapshot(price)})
    return price


@transaction.atomic
def model_price_update(*, price: ModelPrice, actor: User | None, data: dict[str, Any]) -> ModelPrice:
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    before = _snapshot(price)
    for name, value in data.items():
        setattr(price, name, value)
    # A person's edit is theirs: the catalog loader must not revert it on the next start.
    price.source = PriceSource.CUSTOM
    price.full_clean()
    price.save()
    after = _snapshot(price)
    changes = {name: [before[name], after[name]] for name in EDITABLE_FIELDS if before[name] != after[name]}
    _audit(price=price, actor=actor, action=AUDIT_UPDATED, data={"changes": changes})
    return price


@transaction.atomic
def model_price_delete(*, price: ModelPrice, actor: User | None) -> None:
    _audit(price=price, actor=actor, action=AUDIT_DELETED, data={"price": _snapshot(price)})
    price.delete()


# --- the shipped catalog ---------------------------------------------------------------------


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_custom: int = 0
    kept_custom_names: list[str] = field(default_factory=list)


def read_catalog_file(path: Path | str = DEFAULT_CATALOG_FILE) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle, parse_float=Decimal)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path} is not valid JSON: {exc}") from None
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, list):
        raise ValidationError(f"{path} must be an object with a \"models\" list")
    return models


def _parse_effective_from(value) -> datetime:
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)
        day = parse_date(value)
        if day is not None:
            return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time.min, tzinfo=dt_timezone.utc)
    raise ValueError(f"effective_from must be a date (YYYY-MM-DD) or an ISO datetime, not {value!r}")


def _parse_price(value, key: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise ValueError(f"{key} must be a number")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{key} must be a number, not {value!r}") from None


# `examples` (names as sent that the pattern must match) and `notes` are for people and tests.
FILE_ENTRY_KEYS = {"provider", "model_name", "match_pattern", "effective_from", *FILE_PRICE_KEYS, "examples", "notes"}


def _entry_to_fields(entry: dict) -> dict:
    if not isinstance(entry, dict):
        raise ValueError("each entry must be an object")
    unknown = set(entry) - FILE_ENTRY_KEYS
    if unknown:
        # A misspelt price key would otherwise silently fall back to another price.
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    for key in ("provider", "model_name", "match_pattern", "effective_from", "input", "output"):
        if entry.get(key) in (None, ""):
            raise ValueError(f"{key} is required")
    fields = {
        "provider": str(entry["provider"]).strip().lower(),
        "model_name": str(entry["model_name"]).strip(),
        "match_pattern": str(entry["match_pattern"]),
        "effective_from": _parse_effective_from(entry["effective_from"]),
    }
    for key, column in FILE_PRICE_KEYS.items():
        fields[column] = _parse_price(entry.get(key), key)
    return fields


def _same(existing: ModelPrice, fields: dict) -> bool:
    for name, value in fields.items():
        current = getattr(existing, name)
        if isinstance(value, Decimal) or isinstance(current, Decimal):
            if (current is None) != (value is None) or (current is not None and Decimal(current) != value):
                return False
        elif current != value:
            return False
    return True


@transaction.atomic
def catalog_load(*, entries: list[dict]) -> LoadReport:
    """Idempotent upsert of catalog rows keyed by (model_name, effective_from). Every entry is
    validated before anything is written. Rows a person edited (`custom`) are left alone, and rows
    missing from the file are kept: they are history."""
    problems: list[str] = []
    parsed: list[dict] = []
    seen: set[tuple[str, datetime]] = set()
    for index, entry in enumerate(entries):
        label = entry.get("model_name") if isinstance(entry, dict) else None
        try:
            fields = _entry_to_fields(entry)
        except ValueError as exc:
            problems.append(f"entry {index} ({label or '?'}): {exc}")
            continue
        key = (fields["model_name"], fields["effective_from"])
        if key in seen:
            problems.append(f"entry {index} ({label}): duplicate model_name and effective_from in the file")
            continue
        seen.add(key)
        candidate = ModelPrice(project=None, source=PriceSource.CATALOG, **fields)
        try:
            # Uniqueness is settled by the upsert itself; everything else is checked here.
            candidate.full_clean(validate_constraints=False)
        except ValidationError as exc:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            problems.append(f"entry {index} ({label}): {details}")
            continue
        parsed.append({name: getattr(candidate, name) for name in fields})
    if problems:
        raise ValidationError(problems)

    existing = {
        (row.model_name, row.effective_from): row
        for row in ModelPrice.objects.select_for_update().filter(project__isnull=True)
    }
    report = LoadReport()
    for fields in parsed:
        row = existing.get((fields["model_name"], fields["effective_from"]))
        if row is None:
            ModelPrice.objects.create(project=None, source=PriceSource.CATALOG, **fields)
            report.created += 1
        elif row.source == PriceSource.CUSTOM:
            report.kept_custom += 1
            report.kept_custom_names.append(row.model_name)
        elif _same(row, fields):
            report.unchanged += 1
        else:
            for name, value in fields.items():
                setattr(row, name, value)
            row.save()
            report.updated += 1
    return report


# --- keeping the catalog current from the price library ---------------------------------------


def _row_as_entry(row: ModelPrice) -> dict:
    entry = {
        "provider": row.provider,
        "model_name": row.model_name,
        "match_pattern": row.match_pattern,
        "effective_from": row.effective_from,
    }
    for kind, column in FILE_PRICE_KEYS.items():
        entry[kind] = getattr(row, column)
    return entry


@transaction.atomic
def catalog_sync(*, since: date, models=None):
    """Add catalog rows for what the price library knows and our catalog does not (new models, and
    prices that changed), dated where the library dates the change or else `since`. Never changes or
    deletes a row (history stays explainable) and never touches project overrides."""
    from pricing import library

    rows = ModelPrice.objects.select_for_update().filter(project__isnull=True)
    existing = [_row_as_entry(row) for row in rows if row.effective_from is not None]
    report = library.merge(existing, library.library_models() if models is None else models, since=since)
    problems = []
    for entry in report.added:
        fields = _entry_to_fields({k: v for k, v in entry.items() if k != "notes"})
        candidate = ModelPrice(project=None, source=PriceSource.CATALOG, **fields)
        try:
            candidate.full_clean()
        except ValidationError as exc:
            problems.append(f"{entry['model_name']}: {'; '.join(exc.messages)}")
            continue
        candidate.save()
    if problems:
        raise ValidationError(problems)
    return report


def catalog_file_sync(*, path: Path | str = DEFAULT_CATALOG_FILE, since: date, models=None):
    """The build step: append to the shipped data file what the price library adds to its history."""
    from pricing import library

    path = Path(path)
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    existing = document["models"]
    report = library.merge(existing, library.library_models() if models is None else models, since=since)
    document["models"] = [*existing, *report.added]
    path.write_text(render_catalog_file(document), encoding="utf-8")
    return report


def render_catalog_file(document: dict) -> str:
    """One entry a line, prices written exactly as stored (no float rounding), so diffs stay readable."""

    def value(v):
        if isinstance(v, Decimal):
            return format(v, "f")
        if isinstance(v, bool) or v is None:
            return json.dumps(v)
        if isinstance(v, (int, float)):
            return format(Decimal(str(v)), "f")
        return json.dumps(v, ensure_ascii=False)

    def entry(e: dict) -> str:
        return "{" + ", ".join(f"{json.dumps(k)}: {value(v)}" for k, v in e.items()) + "}"

    head = {k: v for k, v in document.items() if k != "models"}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    lines.append('  "models": [')
    models = document["models"]
    lines += [f"    {entry(e)}{',' if i < len(models) - 1 else ''}" for i, e in enumerate(models)]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)
