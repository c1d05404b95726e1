"""Precision and recall of every built-in detector on the labelled corpus (tests/data/redaction_corpus.py),
and proof that ids, timestamps and other lookalikes come out byte-identical."""

from collections import Counter

import pytest

from privacy.detectors import DETECTORS
from privacy.engine import Redactor
from tests.data.redaction_corpus import CASES, as_jsonl

RECALL_FLOOR = 0.99
PRECISION_FLOOR = 0.98
MIN_POSITIVES = 10
ID_KINDS = {"uuid", "hex", "iso", "epoch"}
# What decides a finding, printed next to each detector's figures. Identifiers with a check digit
# must also meet CHECKSUM_FLOOR on at least CHECKSUM_MIN_POSITIVES spans; the contextual ones (a
# keyword must come first) meet the general floors here, which says little about text in the wild.
CHECKSUM_DETECTORS = {"de_tax_id", "fr_nir", "es_dni_nie", "it_codice_fiscale", "nl_bsn", "pl_pesel"}
CONTEXT_DETECTORS = {"passport", "date_of_birth", "credential", "email_obfuscated"}
CHECKSUM_FLOOR = 0.98
CHECKSUM_MIN_POSITIVES = 40
EU_LANGS = {"de", "fr", "es", "it", "nl", "pl", "en"}

_redactors: dict[str, Redactor] = {}


def redactor_for(region: str) -> Redactor:
    if region not in _redactors:
        _redactors[region] = Redactor(modes={}, phone_region=region)
    return _redactors[region]


@pytest.fixture(scope="module")
def scored():
    tp, fp, fn = Counter(), Counter(), Counter()
    mistakes = []
    for case in CASES:
        found = {(f.start, f.end, f.detector) for f in redactor_for(case.region).find(case.text)}
        expected = set(case.spans)
        for _, _, detector in found & expected:
            tp[detector] += 1
        for start, end, detector in found - expected:
            fp[detector] += 1
            mistakes.append(f"FP {case.id} {detector}: {case.text[start:end]!r}")
        for start, end, detector in expected - found:
            fn[detector] += 1
            mistakes.append(f"FN {case.id} {detector}: {case.text[start:end]!r}")
    return tp, fp, fn, mistakes


def test_the_corpus_is_large_and_varied():
    assert len(CASES) >= 300
    assert len({c.id for c in CASES}) == len(CASES)
    assert {"en", "de", "fr", "es", "ja", "it", "pt"} <= {c.lang for c in CASES}
    assert {"chat", "json-log", "stacktrace", "email", "csv", "config", "code", "http"} <= {c.fmt for c in CASES}
    keep_kinds = Counter(kind for c in CASES for _, _, kind in c.keep)
    assert all(keep_kinds[kind] >= 20 for kind in ID_KINDS), keep_kinds
    lines = as_jsonl().splitlines()
    assert len(lines) == len(CASES)


def test_the_new_detectors_are_measured_in_every_eu_language_with_lookalikes():
    langs: dict[str, set] = {}
    for case in CASES:
        for _, _, detector in case.spans:
            langs.setdefault(detector, set()).add(case.lang)
    for detector in CHECKSUM_DETECTORS | CONTEXT_DETECTORS | {"mac_address", "uk_nino"}:
        assert detector in langs, detector
    # Contextual detectors are keyword-driven: each language's keywords are exercised.
    for detector in ("passport", "date_of_birth", "credential"):
        assert EU_LANGS <= langs[detector], (detector, langs[detector])
    keep_kinds = Counter(kind for c in CASES for _, _, kind in c.keep)
    # Wrong check digits, valid numbers nothing names, fingerprints and group MAC addresses.
    assert keep_kinds["checksum"] >= 60 and keep_kinds["order"] >= 60, keep_kinds
    assert keep_kinds["fingerprint"] >= 10 and keep_kinds["mac_like"] >= 10, keep_kinds


def test_every_labelled_span_is_exact():
    for case in CASES:
        for start, end, detector in case.spans:
            assert detector in DETECTORS, (case.id, detector)
            value = case.text[start:end]
            assert value == value.strip() and value, (case.id, value)


def test_precision_and_recall_per_detector(scored):
    tp, fp, fn, mistakes = scored
    rows = []
    failures = []
    for detector in sorted(DETECTORS):
        positives = tp[detector] + fn[detector]
        if detector == "secret_field":
            continue  # keyed on dict keys, not text: covered in test_redaction_engine
        assert positives >= MIN_POSITIVES, f"{detector}: only {positives} labelled spans in the corpus"
        precision = tp[detector] / (tp[detector] + fp[detector]) if tp[detector] + fp[detector] else 1.0
        recall = tp[detector] / positives
        kind = "checksum" if detector in CHECKSUM_DETECTORS else "context" if detector in CONTEXT_DETECTORS else ""
        rows.append(f"{detector:18s} {kind:8s} {positives:5d} {tp[detector]:5d} {fp[detector]:4d} {fn[detector]:4d} "
                    f"{precision:9.3f} {recall:7.3f}")
        if recall < RECALL_FLOOR or precision < PRECISION_FLOOR:
            failures.append(detector)
        if detector in CHECKSUM_DETECTORS and (
            positives < CHECKSUM_MIN_POSITIVES or min(precision, recall) < CHECKSUM_FLOOR
        ):
            failures.append(detector)
    print("\ndetector           kind     spans    tp   fp   fn precision  recall")
    print("\n".join(rows))
    if mistakes:
        print("\n".join(mistakes))
    assert failures == [], f"below recall {RECALL_FLOOR} / precision {PRECISION_FLOOR}: {failures}\n" + "\n".join(mistakes)


def test_ids_timestamps_and_lookalikes_come_out_byte_identical():
    altered = []
    checked = Counter()
    for case in CASES:
        redactor = redactor_for(case.region)
        findings = redactor.find(case.text)
        redacted, _ = redactor.redact_text(case.text)
        for start, end, kind in case.keep:
            # Where the lookalike lands once the findings before it are replaced by tokens.
            shift = sum(len(redactor.token(f.detector, f.value)) - (f.end - f.start) for f in findings if f.end <= start)
            if redacted[start + shift:end + shift] != case.text[start:end]:
                altered.append(f"{case.id} {kind}: {case.text[start:end]!r}")
            checked[kind] += 1
    assert altered == []
    assert sum(checked[k] for k in ID_KINDS) >= 200, checked


def test_no_finding_overlaps_a_lookalike():
    overlapping = []
    for case in CASES:
        for f in redactor_for(case.region).find(case.text):
            for start, end, kind in case.keep:
                if f.start < end and start < f.end:
                    overlapping.append(f"{case.id}: {f.detector} over {kind} {case.text[start:end]!r}")
    assert overlapping == []
