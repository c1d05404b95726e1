"""Management API for redaction (the policy, on-demand redaction) and the public `redact` endpoint."""
