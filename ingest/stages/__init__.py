"""The pipeline stages that are more than a few lines (see `ingest.pipeline` for the order)."""
