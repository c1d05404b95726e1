"""NUL characters (models and fuzzers emit them; PostgreSQL text and jsonb refuse them) are stored as
U+FFFD everywhere a call's text lands — its row and the rollup dimensions it is counted under — so a
trace named with a NUL is stored, counted, and its rollup row matches a rebuild from the stored rows.
Found by the OTLP fuzz suite: the rollup upsert passed the raw name and the whole request was a 400."""

from __future__ import annotations

import uuid

import orjson

from monitoring.models import HourlyRollup
from traces.models import Trace


def test_a_trace_name_with_a_nul_is_stored_and_counted(client, project, api_key):
    ts = "2026-12-01T10:00:00Z"
    body = {"batch": [
        {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": ts,
         "body": {"id": "nul-1", "name": "a\u0000b", "metadata": {"feature": "f\u0000x"}}},
        {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": ts,
         "body": {"id": "nul-1-g", "traceId": "nul-1", "name": "llm\u0000", "model": "m\u0000", "startTime": ts}},
    ]}
    answer = client.post("/api/public/ingestion", data=orjson.dumps(body), content_type="application/json",
                         HTTP_AUTHORIZATION=api_key.basic)
    assert answer.status_code == 207, answer.content
    assert [s["status"] for s in answer.json()["successes"]] == [201, 201], answer.json()
    assert Trace.objects.for_project(project).get(id="nul-1").name == "a\ufffdb"
    rollup = HourlyRollup.objects.for_project(project).get()
    assert (rollup.trace_name, rollup.model, rollup.calls) == ("a\ufffdb", "m\ufffd", 1)
