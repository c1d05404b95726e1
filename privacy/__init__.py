"""PII and secret redaction before storage.

- `engine`: `Redactor`, `redact_records`, `get_policy` (what the ingest path calls);
- `detectors`: the built-in detectors; `policy`: modes and validation of policies and tenant patterns;
- `services`: `redaction_policy_update` (validated, versioned, audited).

Kept import-free: `traces.models` imports `policy`, and `engine` imports models lazily.
"""
