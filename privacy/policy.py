"""What a redaction policy may contain, and the checks run before one is saved.

Imported by `privacy.models` (the `RedactionPolicy` model), so nothing here imports models.
Tenant-defined patterns are compiled with RE2: matching time is linear in the input whatever the
pattern, so `(a+)+$` cannot stall ingestion the way it stalls a backtracking engine.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import phonenumbers
import re2
from django.core.exceptions import ValidationError
from django.db import models

from privacy.detectors import BUILTIN_LABELS, DETECTORS

MAX_CUSTOM_PATTERNS = 20
MAX_PATTERN_LENGTH = 500
# RE2 program size (instructions): rejects patterns like `(\w{1000}){1000}` that would compile
# into huge automata even though they are short.
MAX_PROGRAM_SIZE = 4000
RE2_MAX_MEM = 8 << 20
LABEL_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")
DEFAULT_PHONE_REGION = "US"


class RedactionMode(models.TextChoices):
    MASK = "mask", "mask: [EMAIL]"
    PSEUDONYMIZE = "pseudonymize", "pseudonymize: [EMAIL:3f9a1c0d], stable within the project"
    OFF = "off", "off"


MODES = frozenset(RedactionMode.values)


def new_pseudonym_salt() -> str:
    return secrets.token_hex(16)


def re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.log_errors = False
    return options


def compile_custom_pattern(pattern: str):
    """Compile one tenant pattern with RE2, or raise ValueError with a message fit for the user."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if "(?P<" in pattern or "(?<" in pattern:
        raise ValueError("named groups and lookbehind are not supported; use (?:…)")
    try:
        compiled = re2.compile(pattern, re2_options())
    except re2.error as exc:
        raise ValueError(f"invalid pattern (RE2 syntax): {exc}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise ValueError(f"pattern is too complex (program size {compiled.programsize} > {MAX_PROGRAM_SIZE})")
    if compiled.search("") is not None:
        raise ValueError("pattern matches the empty string")
    return compiled


@dataclass(frozen=True, slots=True)
class CustomPattern:
    label: str
    pattern: str
    mode: str

    @property
    def detector(self) -> str:
        return f"custom:{self.label}"


def clean_custom_patterns(value) -> list[dict]:
    """Normalised list of {label, pattern, mode}; raises ValidationError listing every problem."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError("custom patterns must be a list of {label, pattern, mode} objects")
    if len(value) > MAX_CUSTOM_PATTERNS:
        raise ValidationError(f"at most {MAX_CUSTOM_PATTERNS} custom patterns per project")
    errors = []
    cleaned = []
    seen = set()
    for i, item in enumerate(value):
        where = f"pattern #{i + 1}"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be an object with label, pattern and mode")
            continue
        unknown = set(item) - {"label", "pattern", "mode"}
        if unknown:
            errors.append(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
            continue
        label = item.get("label")
        mode = item.get("mode", RedactionMode.MASK)
        if not isinstance(label, str) or not LABEL_PATTERN.match(label):
            errors.append(f"{where}: label must be 2–32 characters A–Z, 0–9 or _, starting with a letter")
            continue
        where = f"pattern {label}"
        if label in seen:
            errors.append(f"{where}: duplicate label")
            continue
        if label in BUILTIN_LABELS:
            errors.append(f"{where}: label is used by a built-in detector")
            continue
        seen.add(label)
        if mode not in MODES:
            errors.append(f"{where}: mode must be one of {', '.join(sorted(MODES))}")
            continue
        try:
            compile_custom_pattern(item.get("pattern"))
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            continue
        cleaned.append({"label": label, "pattern": item["pattern"], "mode": mode})
    if errors:
        raise ValidationError(errors)
    return cleaned


def clean_detector_modes(value) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError("detector modes must be an object mapping detector name to mode")
    errors = []
    for name, mode in value.items():
        if name not in DETECTORS:
            errors.append(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}")
        elif mode not in MODES:
            errors.append(f"{name}: mode must be one of {', '.join(sorted(MODES))}")
    if errors:
        raise ValidationError(errors)
    return dict(value)


def clean_phone_region(value) -> str:
    """A libphonenumber region for numbers written without +country code; "" = international only."""
    region = (value or "").strip().upper()
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"unknown phone region {value!r}; use an ISO 3166 code such as US, DE, FR, JP")
    return region
