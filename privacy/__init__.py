"""PII and secret redaction before storage.

- `engine`: `Redactor`, `redact_records`, `get_policy` (what the ingest path calls);
- `detectors`: the built-in detectors; `policy`: modes and validation of policies and tenant patterns;
- `models`: `RedactionPolicy` (control plane); `services`: `redaction_policy_update` (validated,
  versioned, audited); `selectors`: policy reads and previews; `signals`: drops cached policies;
- `api`: the management API and `POST /api/public/redact`; `manage.py redact`.

Imports go one way: `models` imports `policy`, `engine` imports `models`, never the reverse.
Erasure, retention and export land here next.
"""
