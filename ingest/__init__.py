"""THE write path (issue 9): every source of telemetry is stored through `ingest.pipeline`.

- `contract`: the record shape every adapter produces, and the batch the pipeline runs on;
- `pipeline`: the named stages, in order, in one place;
- `rules/`: each domain rule once (usage, messages, status, environment, values, ids);
- `stages/`: redaction and pricing, the stages that are more than a few lines;
- `adapters/`: wire formats -> records (Langfuse batch, OTLP, REST scores, browser feedback);
- `writer`: the only module that writes the traces, observations and scores tables;
- `services`, `views`, `otlp_views`, `urls`: the wire write endpoints.
"""
