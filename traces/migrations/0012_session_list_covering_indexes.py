"""Deep session pages walk indexes only (issue 13).

The sessions list reads first traces newest first (a trace with no earlier trace in its session), so
a page costs the traces it skips: page 100 walked 61,000 traces at 500k observations, each a heap
read, and probed each trace's session for an earlier trace, another heap read per probe (340,000
buffers, 320 ms). Two covering indexes make both sides index-only:
- `trace_project_sessions_time` (partial: traces in a session), in the list's own order (newest
  first, session id breaking ties), with the trace id and environment the probe and filter need;
- `trace_project_session` becomes `trace_project_session_cover`: the same key, plus the trace id the
  probe's tie-break compares and the environment of the environment filter.
Built CONCURRENTLY (non-atomic), the replaced index dropped CONCURRENTLY after its successor exists."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("traces", "0011_prompt_metrics_covering_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(
                fields=["project_id", "-timestamp", "-session_id"],
                include=["id", "environment"],
                condition=~models.Q(session_id=""),
                name="trace_project_sessions_time",
            ),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(
                fields=["project_id", "session_id", "-timestamp"],
                include=["id", "environment"],
                name="trace_project_session_cover",
            ),
        ),
        RemoveIndexConcurrently(model_name="trace", name="trace_project_session"),
    ]
