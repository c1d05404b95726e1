"""Each domain rule of the write path, once. Every adapter (Langfuse batch, OTLP, REST scores, browser
feedback) and the writer call these instead of keeping their own copy:

- `status`: error / refused / success, and THE list of refusal signals;
- `environment`: Langfuse's environment rule;
- `usage`: token counts from every provider's usage shape, into our disjoint token kinds;
- `conventions`: THE table of span attributes (written conventions and vendor variants) carrying token
  counts and stop reasons;
- `messages`: tool calls, finish reasons and refusals (kept as the answer) in model outputs;
- `values`: value and time parsing;
- `ids`: id limits.
"""
