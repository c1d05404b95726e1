"""The redaction engine: a compiled `Redactor` per project policy, and `redact_records` for ingestion.

    policy = get_policy(project)                  # None: redaction is off for the project
    result = redact_records(project=project, traces=[...], observations=[...], scores=[...])
    write_records(project=project, traces=result.traces, observations=result.observations,
                  scores=result.scores)
    for failure in result.failures: ...           # reject those records, each with failure.error

`redact_records` is fail-closed: a record whose redaction raises is left out of the result lists, its
content fields are removed from the dict, and it is reported in `failures` so that the caller rejects
just that record. Nothing of a failed record is ever handed back unredacted.

Only free-text fields are scanned (reference §4.3: ids, timestamps, model names and numbers are never
touched); inside them every string of the JSON value is redacted, never dict keys or non-string values.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import logging
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from itertools import accumulate

import orjson
import re2
from django.conf import settings
from django.core.cache import cache

from privacy import detectors as d
from privacy import identifiers as ids
from privacy.models import RedactionPolicy
from privacy.policy import (
    RE2_MAX_MEM,
    CustomPattern,
    RedactionMode,
    compile_custom_pattern,
    re2_options,
)

logger = logging.getLogger(__name__)

TRACE_FIELDS = ("input", "output", "metadata")
OBSERVATION_FIELDS = ("input", "output", "metadata", "tool_calls", "status_message", "error_message", "error_stack")
SCORE_FIELDS = ("comment", "metadata")
RECORD_FIELDS = {"trace": TRACE_FIELDS, "observation": OBSERVATION_FIELDS, "score": SCORE_FIELDS}

# The shortest built-in finding is an email like `a@b.co` (6) — `::1`-style IPs are kept anyway.
MIN_BUILTIN_LENGTH = 6
PSEUDONYM_HEX = 8

# Dict keys whose string values are credentials whatever they look like (reference §4.1, Sentry/Relay
# key rules). Bare `token` is deliberately absent: `{"token": "Hello", "logprob": -0.1}` is output.
SECRET_KEYS = frozenset({"authorization", "proxy_authorization", "cookie", "set_cookie", "pwd", "passphrase"})
SECRET_KEY_SUFFIXES = (
    "password", "passwd", "secret", "api_key", "apikey", "access_token", "refresh_token", "id_token",
    "auth_token", "session_token", "bearer_token", "private_key", "secret_key", "access_key",
)


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    k = key.strip().lower().replace("-", "_")
    return k in SECRET_KEYS or k.endswith(SECRET_KEY_SUFFIXES)


def is_secret_key(key) -> bool:
    return type(key) is str and len(key) <= 64 and _is_secret_key(key)


_secret_keys: dict[str, bool] = {}


def _secret_key(key: str) -> bool:
    """`is_secret_key` for a str key, remembered: payloads repeat the same few keys."""
    hit = _secret_keys.get(key)
    if hit is None:
        if len(_secret_keys) >= 4096:
            _secret_keys.clear()
        hit = _secret_keys[key] = len(key) <= 64 and _is_secret_key(key)
    return hit


class Redactor:
    """Detectors compiled for one policy. Thread-safe for use; build once per (project, version)."""

    def __init__(
        self,
        *,
        modes: dict[str, str],
        phone_region: str | None = "US",
        custom_patterns: list[CustomPattern] = (),
        key: bytes = b"",
    ):
        self.modes = {name: modes.get(name, RedactionMode.MASK) for name in d.DETECTORS}
        self.on = frozenset(name for name, mode in self.modes.items() if mode != RedactionMode.OFF)
        self.phone_region = phone_region or None
        self.custom = [p for p in custom_patterns if p.mode != RedactionMode.OFF]
        for p in self.custom:
            self.modes[p.detector] = p.mode
        self._key = key
        self._secret_keys_on = "secret_field" in self.on
        # Without tenant patterns a string shorter than any built-in finding is not even collected.
        self._min_len = 1 if self.custom else MIN_BUILTIN_LENGTH
        self._triggers_on = bool(self.on & d.TRIGGERED_DETECTORS)
        self._numbers_on = bool(self.on & d.NUMERIC_DETECTORS)
        self._identifiers_on = bool(self.on & ids.IDENTIFIER_DETECTORS)
        self._phone_cache = d.PhoneCache()
        self._custom_regex, self._custom_groups = self._compile_custom(self.custom)
        if any(mode == RedactionMode.PSEUDONYMIZE for mode in self.modes.values()) and not key:
            raise ValueError("pseudonymization needs a key")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_policy(cls, policy) -> Redactor:
        modes = {name: policy.detector_modes.get(name, policy.default_mode) for name in d.DETECTORS}
        custom = [
            CustomPattern(p["label"], p["pattern"], p.get("mode", policy.default_mode)) for p in policy.custom_patterns
        ]
        return cls(
            modes=modes,
            phone_region=policy.phone_default_region,
            custom_patterns=custom,
            key=pseudonym_key(project_id=policy.project_id, salt=policy.pseudonym_salt),
        )

    @staticmethod
    def _compile_custom(patterns):
        if not patterns:
            return None, []
        compiled = [compile_custom_pattern(p.pattern) for p in patterns]
        groups, index = [], 1
        for p, c in zip(patterns, compiled):
            groups.append((index, p.detector))
            index += 1 + c.groups
        options = re2_options()
        options.max_mem = 4 * RE2_MAX_MEM
        try:
            combined = re2.compile("|".join(f"({p.pattern})" for p in patterns), options)
        except re2.error:
            # Too large together: scan one by one (each one compiled fine on its own).
            return None, list(zip(compiled, (p.detector for p in patterns)))
        return combined, groups

    # -- detection ------------------------------------------------------------------------------

    def find(self, text: str) -> list[d.Finding]:
        """Non-overlapping findings in `text`, sorted by position."""
        out = self._find_builtin(text) if len(text) >= MIN_BUILTIN_LENGTH else []
        if self.custom:
            self._find_custom(text, out)
        if len(out) > 1:
            out = _resolve_overlaps(out)
        return out

    def _find_builtin(self, text: str) -> list[d.Finding]:
        out: list[d.Finding] = []
        on = self.on
        runs = None
        if self._triggers_on or self._numbers_on:
            seeds, runs = d.scan(text, triggers=self._triggers_on, numbers=self._numbers_on)
            if seeds:
                d.find_secrets(text, on, seeds, out)
                if "iban" in seeds and "iban" in on:
                    d.find_ibans(text, seeds["iban"], out)
                if self._identifiers_on:
                    self._find_identifiers(text, seeds, runs, out)
            elif runs and self._identifiers_on:
                self._find_identifiers(text, seeds, runs, out)
        # `"\\" in text` first: a one-character search is a memchr, six characters cost ten times more.
        if "email" in on and ("@" in text or ("\\" in text and d.AT_ESCAPE in text)):
            d.find_emails(text, out)
        if self._numbers_on and (runs is None or runs):
            d.find_numbers(text, on, self.phone_region, self._phone_cache, out, runs)
        if "ip_address" in on:
            d.find_ips(text, out)
        if out:
            out = [
                f for f in out
                if f.detector not in d.GUARDED_DETECTORS or not d.in_protected_token(text, f.start, f.end)
            ]
        return out

    def _find_identifiers(self, text: str, seeds: dict, runs, out: list) -> None:
        """privacy/identifiers.py, each family only when `scan` saw its trigger (or, for DNI and
        digits-first MACs, a numeric run it stands next to)."""
        on = self.on
        if "credential" in on and ("credential" in seeds or "secret" in seeds):
            ids.find_credentials(text, ids.merged_seeds(seeds, "credential", "secret"), out)
        if "email_obfuscated" in on and "email_obf" in seeds:
            ids.find_obfuscated_emails(text, seeds["email_obf"], out)
        if "es_id" in seeds or runs or "it_cf" in seeds or "gb_nino" in seeds or "iban" in seeds:
            ids.find_letter_ids(text, on, seeds, runs, out)
        if "mac_address" in on and ("mac" in seeds or runs):
            ids.find_macs(text, seeds.get("mac", []), out, runs)
        if "passport" in on and "passport" in seeds:
            ids.find_passports(text, seeds["passport"], out)
        if "date_of_birth" in on and "dob" in seeds:
            ids.find_dates_of_birth(text, seeds["dob"], out)

    def find_many(self, texts: list[str]) -> list[list[d.Finding]]:
        """`find` for many strings at once: the built-in detectors scan them joined by NUL (which no
        pattern matches, so no finding can span two strings) — one pass instead of one per string,
        which matters because JSON payloads are mostly short strings."""
        if len(texts) == 1:
            return [self.find(texts[0])]
        found = self._find_sparse(texts)
        if not found:
            # Most records have no finding at all: one empty list for all of their strings rather
            # than one each (every caller only reads them).
            return [[]] * len(texts)
        return [found.get(i, []) for i in range(len(texts))]

    def _find_sparse(self, texts: list[str]) -> dict[int, list[d.Finding]]:
        """{index: findings} for the strings of `texts` that have any (most have none)."""
        out: dict[int, list[d.Finding]] = {}
        # Without tenant patterns `_collect` leaves out the short strings: nothing to filter then.
        all_long = True
        for text in texts:  # a plain loop: min(map(len, …)) cost more, once per record
            if len(text) < MIN_BUILTIN_LENGTH:
                all_long = False
                break
        if all_long:
            index = None
            parts = texts
        else:
            index = [i for i, t in enumerate(texts) if len(t) >= MIN_BUILTIN_LENGTH]
            parts = [texts[i] for i in index]
        if len(parts) == 1:
            found = self._find_builtin(parts[0])
            if found:
                out[0 if index is None else index[0]] = _resolve_overlaps(found) if len(found) > 1 else found
        elif parts:
            found = self._find_builtin(SEPARATOR.join(parts))
            if found:
                if len(found) > 1:
                    found = _resolve_overlaps(found)
                starts = list(accumulate([len(t) + 1 for t in parts], initial=0))
                for f in found:
                    k = bisect.bisect_right(starts, f.start) - 1
                    base = starts[k]
                    if f.end - base > len(parts[k]):
                        raise RuntimeError(f"finding of {f.detector} spans two strings")
                    out.setdefault(k if index is None else index[k], []).append(
                        d.Finding(f.start - base, f.end - base, f.detector, f.value)
                    )
        if self.custom:
            for i, text in enumerate(texts):
                if text:
                    findings = out.get(i, [])
                    self._find_custom(text, findings)
                    if len(findings) > 1:
                        findings = _resolve_overlaps(findings)
                    if findings:
                        out[i] = findings
        return out

    def _find_custom(self, text: str, out: list) -> None:
        if self._custom_regex is not None:
            for m in self._custom_regex.finditer(text):
                if m.end() == m.start():
                    continue
                for index, detector in self._custom_groups:
                    if m.start(index) >= 0:
                        out.append(d.Finding(m.start(), m.end(), detector, m.group()))
                        break
        else:
            for regex, detector in self._custom_groups:
                for m in regex.finditer(text):
                    if m.end() > m.start():
                        out.append(d.Finding(m.start(), m.end(), detector, m.group()))

    # -- replacement ----------------------------------------------------------------------------

    def token(self, detector: str, value: str) -> str:
        label = detector[7:] if detector.startswith("custom:") else d.DETECTORS[detector].label
        if self.modes.get(detector) == RedactionMode.PSEUDONYMIZE:
            namespace = d.DETECTORS[detector].namespace if detector in d.DETECTORS else detector
            digest = hmac.new(self._key, f"{namespace}\0{value}".encode(), hashlib.sha256).hexdigest()
            return f"[{label}:{digest[:PSEUDONYM_HEX]}]"
        return f"[{label}]"

    def _apply(self, text: str, findings: list[d.Finding], counts: Counter) -> str:
        pieces = []
        last = 0
        for f in findings:
            pieces.append(text[last:f.start])
            pieces.append(self.token(f.detector, f.value))
            counts[f.detector] += 1
            last = f.end
        pieces.append(text[last:])
        redacted = "".join(pieces)
        if text.lstrip()[:1] in ("{", "[") and not _is_json(redacted) and _is_json(text):
            # A JSON document in a string (tool arguments) that a tenant pattern spanning a quote
            # broke: redact it as structure instead, so that it stays valid JSON.
            for f in findings:
                counts[f.detector] -= 1
            parsed = self.redact_value(orjson.loads(text), counts)
            redacted = orjson.dumps(parsed).decode()
            counts += Counter()  # drop the zero entries
        return redacted

    def redact_text(self, text: str) -> tuple[str, Counter]:
        counts: Counter = Counter()
        findings = self.find(text)
        return (self._apply(text, findings, counts) if findings else text), counts

    def redact_value(self, value, counts: Counter | None = None):
        """Redact every string inside a JSON-like value, IN PLACE where it is a dict or list; returns
        the value (a new one when `value` is itself a string)."""
        holder = [value]
        self._redact_slots([(holder, 0, value)], Counter() if counts is None else counts)
        return holder[0]

    def redact_record(self, record: dict, fields: tuple[str, ...]) -> dict:
        """Redact `fields` of one record in place; returns counts {field: {detector: n}}."""
        counts: dict[str, Counter] = {}
        slots: list = []
        bounds: list[int] = []  # slots[bounds[j - 1]:bounds[j]] belong to owners[j]
        owners: list[str] = []
        min_len = self._min_len
        for name in fields:
            if name not in record:
                continue
            value = record[name]
            if type(value) is str:
                if len(value) >= min_len:
                    slots.append((record, name, value))
            elif value is not None:
                replaced = self._collect(record, name, value, slots, min_len)
                if replaced:
                    counts[name] = Counter(secret_field=replaced)
            if slots and (not bounds or bounds[-1] < len(slots)):
                bounds.append(len(slots))
                owners.append(name)
        if slots:
            for i, findings in enumerate(self.find_many([slot[2] for slot in slots])):
                if not findings:
                    continue
                container, key, text = slots[i]
                owner = owners[bisect.bisect_right(bounds, i)]
                field_counts = counts.get(owner)
                if field_counts is None:
                    field_counts = counts[owner] = Counter()
                container[key] = self._apply(text, findings, field_counts)
        return {name: dict(c) for name in fields if (c := counts.get(name))}

    def _redact_slots(self, slots, counts: Counter) -> None:
        collected = []
        replaced = 0
        for container, key, value in slots:
            replaced += self._collect(container, key, value, collected, self._min_len)
        if replaced:
            counts["secret_field"] += replaced
        if collected:
            results = self.find_many([slot[2] for slot in collected])
            for (container, key, text), findings in zip(collected, results):
                if findings:
                    container[key] = self._apply(text, findings, counts)

    def _collect(self, container, key, value, slots: list, min_len: int) -> int:
        """Gather (container, key, string) for every string under `value` at least `min_len` long
        (shorter ones cannot hold a finding); values under credential keys are replaced right away,
        and their number returned. Tuples become lists (JSON has only arrays)."""
        kind = type(value)
        replaced = 0
        if kind is str:
            if len(value) >= min_len:
                slots.append((container, key, value))
        elif kind is dict:
            secret_keys = self._secret_keys_on
            for k, v in value.items():
                kind = type(v)
                if kind is str:
                    if secret_keys and v and type(k) is str:
                        # One subscript for the keys seen before (nearly all of them): most values
                        # of a payload are short strings in dicts, and `.get` is a method call.
                        try:
                            hit = _secret_keys[k]
                        except KeyError:
                            hit = _secret_key(k)
                        if hit:
                            value[k] = self.token("secret_field", v)
                            replaced += 1
                            continue
                    if len(v) >= min_len:
                        slots.append((value, k, v))
                elif v is not None and kind not in _SCALARS:
                    replaced += self._collect(value, k, v, slots, min_len)
        elif kind is list:
            for i, v in enumerate(value):
                kind = type(v)
                if kind is str:
                    if len(v) >= min_len:
                        slots.append((value, i, v))
                elif v is not None and kind not in _SCALARS:
                    replaced += self._collect(value, i, v, slots, min_len)
        elif kind is tuple:
            as_list = list(value)
            container[key] = as_list
            replaced += self._collect(container, key, as_list, slots, min_len)
        elif isinstance(value, str):
            if len(value) >= min_len:
                slots.append((container, key, str(value)))
        elif isinstance(value, dict):
            plain = dict(value)
            container[key] = plain
            replaced += self._collect(container, key, plain, slots, min_len)
        elif isinstance(value, (list, tuple)):
            plain = list(value)
            container[key] = plain
            replaced += self._collect(container, key, plain, slots, min_len)
        return replaced


SEPARATOR = "\x00"
_SCALARS = frozenset({int, float, bool, type(None)})


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _resolve_overlaps(findings: list[d.Finding]) -> list[d.Finding]:
    """Highest priority first, then longest; a finding overlapping a kept one is dropped."""

    def rank(f):
        priority = d.DETECTORS[f.detector].priority if f.detector in d.DETECTORS else d.CUSTOM_PRIORITY
        return (-priority, f.start - f.end, f.start)

    starts: list[int] = []
    kept: list[d.Finding] = []
    for f in sorted(findings, key=rank):
        if f.end <= f.start:
            continue
        i = bisect.bisect_left(starts, f.start)
        if i > 0 and kept[i - 1].end > f.start:
            continue
        if i < len(kept) and kept[i].start < f.end:
            continue
        starts.insert(i, f.start)
        kept.insert(i, f)
    return kept


def pseudonym_key(*, project_id, salt: str) -> bytes:
    """Per-project HMAC key: server pepper + project id + the policy's random salt. Tokens repeat
    within a project, differ across projects, and cannot be brute-forced from a database dump alone
    (the pepper lives only in the server's environment)."""
    pepper = (settings.API_KEY_PEPPER or settings.SECRET_KEY).encode()
    message = b"lookglass.redaction.v1\0" + str(project_id).encode() + b"\0" + salt.encode()
    return hmac.new(pepper, message, hashlib.sha256).digest()


# ---------------------------------------------------------------------------------------------
# Policies and compiled redactors, cached

POLICY_CACHE_TIMEOUT = 60  # bounds staleness if an invalidation races a concurrent read
_NO_POLICY = "none"
# Each process also keeps what the shared cache answered for REDACTION_POLICY_LOCAL_SECONDS: one read
# of the shared cache per project and process per period instead of one per request (a Redis round
# trip was ~2% of the web tier's CPU under ingest load). A saved policy therefore applies at once in
# the process that saved it and within that many seconds on every other web node. Entries:
# project id -> (monotonic time read, the shared cache's payload or _NO_POLICY).
_local: dict[str, tuple[float, object]] = {}
_LOCAL_MAX = 10_000
_COMPILED_MAX = 256
_compiled: OrderedDict = OrderedDict()
_compiled_lock = threading.Lock()


def policy_cache_key(project_id) -> str:
    return f"redaction-policy:v1:{project_id}"


def invalidate_policy_cache(project_id) -> None:
    _local.pop(str(project_id), None)
    try:
        cache.delete(policy_cache_key(project_id))
    except Exception:  # a cache outage must not block saving a policy; entries expire on their own
        logger.warning("could not invalidate the redaction policy cache for project %s", project_id, exc_info=True)


def get_policy(project, *, fresh: bool = False):
    """The project's enabled `RedactionPolicy`, or None when redaction is off.

    Cached in the shared cache and invalidated when the policy is saved. A cache outage falls back
    to the database; a database error propagates (never read as "no policy": that would fail open).
    Each process reuses the shared cache's answer for REDACTION_POLICY_LOCAL_SECONDS (see `_local`);
    `fresh`: not this process's copy (a job that applies the policy once to a whole range of rows)."""
    project_key = str(project.id)
    now = time.monotonic()
    seen = None if fresh else _local.get(project_key)
    if seen is not None and now - seen[0] < settings.REDACTION_POLICY_LOCAL_SECONDS:
        cached = seen[1]
    else:
        cached = _read_shared(project, project_key, now)
    if cached == _NO_POLICY:
        return None
    if isinstance(cached, dict):
        policy = RedactionPolicy(**cached)
    else:  # the shared cache could not be read: the database's answer, kept nowhere
        policy = RedactionPolicy.objects.filter(project_id=project.id).first()
    if policy is None or not policy.enabled:
        return None
    return policy


def _read_shared(project, project_key: str, now: float):
    """The shared cache's payload for the project's policy (filled from the database when absent),
    remembered in `_local`; None when the shared cache cannot be read (the caller asks the database)."""
    key = policy_cache_key(project.id)
    try:
        cached = cache.get(key)
    except Exception:
        logger.warning("redaction policy cache unavailable; reading the database", exc_info=True)
        return None
    if cached != _NO_POLICY and not isinstance(cached, dict):
        policy = RedactionPolicy.objects.filter(project_id=project.id).first()
        cached = _NO_POLICY if policy is None else policy.cache_payload()
        try:
            cache.set(key, cached, POLICY_CACHE_TIMEOUT)
        except Exception:
            logger.warning("could not cache the redaction policy of project %s", project.id, exc_info=True)
    if settings.REDACTION_POLICY_LOCAL_SECONDS > 0:
        if len(_local) >= _LOCAL_MAX:  # a process serving very many projects: start over, never grow unbounded
            _local.clear()
        _local[project_key] = (now, cached)
    return cached


def reset_local_policy_cache() -> None:
    """Forget this process's copies (tests roll back the rows they cached)."""
    _local.clear()


def redactor_for(policy) -> Redactor:
    """The compiled redactor for a policy, shared by every request until the policy changes."""
    # updated_at as well as version: two saves racing outside the service's row lock could both
    # write the same version number, never the same timestamp.
    key = (str(policy.project_id), policy.version, policy.updated_at, policy.pseudonym_salt)
    with _compiled_lock:
        redactor = _compiled.get(key)
        if redactor is not None:
            _compiled.move_to_end(key)
            return redactor
    redactor = Redactor.from_policy(policy)
    with _compiled_lock:
        _compiled[key] = redactor
        while len(_compiled) > _COMPILED_MAX:
            _compiled.popitem(last=False)
    return redactor


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RecordFailure:
    kind: str  # "trace" | "observation" | "score"
    index: int  # position in the list passed to redact_records
    id: str | None
    error: str  # safe to return to the client: says nothing about the content
    status: int = 422  # redaction failures; limits on metadata (ingest.limits) are 400


@dataclass
class RedactionResult:
    """Records that may be stored (redacted in place) and the ones to reject."""

    traces: list[dict] = field(default_factory=list)
    observations: list[dict] = field(default_factory=list)
    scores: list[dict] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    enabled: bool = True
    policy_version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed(self, kind: str) -> list[RecordFailure]:
        return [f for f in self.failures if f.kind == kind]


FAILURE_MESSAGE = "PII redaction failed for this record, so it was not stored; retrying will not help"

_UNSET = object()


def redact_records(*, project, traces=(), observations=(), scores=(), policy=_UNSET) -> RedactionResult:
    """Redact records (dicts shaped as in `ingest.contract`) in place, before storage.

    Each stored record gets `redactions` = {field: {detector: count}} (counts only, never values;
    per field, so the writer's deep merge keeps the counts of a trace's input and output that arrive
    in separate events). With no enabled policy the records pass through untouched.

    Never raises for record content: every failure lands in `result.failures`. Reading the policy
    (`get_policy`) may raise a database error, which the caller answers like any storage outage.
    """
    if policy is _UNSET:
        policy = get_policy(project)
    if policy is None:
        return RedactionResult(list(traces), list(observations), list(scores), enabled=False)
    if str(policy.project_id) != str(project.id):
        raise ValueError("the redaction policy belongs to another project")
    result = RedactionResult(policy_version=policy.version)
    try:
        redactor = redactor_for(policy)
    except Exception as exc:  # a stored pattern this build cannot compile: nothing can be redacted
        logger.error("cannot compile the redaction policy of project %s (%s); rejecting the batch",
                     project.id, type(exc).__name__)
        redactor = None
    for kind, records, out in (
        ("trace", traces, result.traces),
        ("observation", observations, result.observations),
        ("score", scores, result.scores),
    ):
        fields = RECORD_FIELDS[kind]
        for index, record in enumerate(records):
            try:
                if redactor is None:
                    raise RuntimeError("no compiled redactor")
                counts = redactor.redact_record(record, fields)
            except Exception as exc:  # fail closed: whatever went wrong, this record is not stored
                for name in fields:
                    record.pop(name, None)
                record_id = record.get("id") if isinstance(record, dict) else None
                logger.error(
                    "PII redaction failed for %s %r of project %s (%s); record rejected",
                    kind, record_id, project.id, type(exc).__name__,
                )
                result.failures.append(RecordFailure(kind, index, record_id, FAILURE_MESSAGE))
                continue
            record["redactions"] = counts
            out.append(record)
    return result


def default_redactor(*, phone_region: str | None = "US") -> Redactor:
    """Every built-in detector in mask mode (the policy defaults), for tools and tests."""
    return Redactor(modes={}, phone_region=phone_region)
