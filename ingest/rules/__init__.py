"""Each domain rule of the write path, once. Every adapter (Langfuse batch, OTLP, REST scores, browser
feedback) and the writer call these instead of keeping their own copy:

- `status`: error / refused / success, and THE list of refusal signals;
- `environment`: Langfuse's environment rule;
- `usage`: token counts from every provider's usage shape, into our disjoint token kinds;
- `messages`: tool calls and finish reasons in model outputs;
- `values`: value and time parsing;
- `ids`: id limits.
"""
