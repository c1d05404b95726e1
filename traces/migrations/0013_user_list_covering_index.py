"""The console's users list counts each user's traces with an error from indexes only (issue 16).

It joins a page of users' traces (50 users of ~400 traces each at 10M observations) to the failed
calls' partial index `obs_project_trace_failed`; `trace_project_user` held no trace id, so each of
the 20,000 traces was a heap page read. `trace_project_user` becomes `trace_project_user_cover`: the
same key plus the trace id (as `trace_project_session_cover` did for sessions). Built CONCURRENTLY
(non-atomic), the replaced index dropped CONCURRENTLY after its successor exists."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("traces", "0012_session_list_covering_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(
                fields=["project_id", "user_id", "-timestamp"], include=["id"], name="trace_project_user_cover"
            ),
        ),
        RemoveIndexConcurrently(model_name="trace", name="trace_project_user"),
    ]
