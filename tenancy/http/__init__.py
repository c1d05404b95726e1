"""The small kit for the Langfuse-compatible HTTP layer: body reader, error type, query parameters,
endpoint decorator."""
