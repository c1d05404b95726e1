"""Management API for traces (redaction policy, on-demand redaction) and the public `redact` endpoint."""
