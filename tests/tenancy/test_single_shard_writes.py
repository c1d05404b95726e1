"""The ingest hot path never runs a statement that spans projects (README "Scaling out"): once the
data plane is distributed by `project_id`, a statement that names a data-plane table without pinning
the project is a multi-shard query on every request. Every statement an ingest request runs on the
region database — writes, the merge reads, duplicate marking, rollups — must carry the project's id.

Statements are captured with their parameters (a database execute wrapper); a statement that
touches a data-plane table and holds the project id neither in its text nor in any parameter (ids
inside a bound JSON batch count) fails."""

from __future__ import annotations

import re
import uuid

import orjson
import pytest
from django.apps import apps

from tenancy.planes import Plane
from tenancy.regions import region_database
from tests.billing.support import otlp_request

TABLES = sorted(
    {m._meta.db_table for m in apps.get_models() if getattr(m, "PLANE", None) == Plane.DATA and m._meta.managed},
    key=len, reverse=True,
)
_TABLE_RE = re.compile(r'"?\b(' + "|".join(map(re.escape, TABLES)) + r')\b"?')


def _batch(trace_id: str) -> dict:
    ts = "2026-12-01T10:00:00Z"
    return {"batch": [
        {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": ts,
         "body": {"id": trace_id, "name": "chat", "userId": "u-1", "sessionId": "s-1", "metadata": {"feature": "f"}}},
        {"id": uuid.uuid4().hex, "type": "span-create", "timestamp": ts,
         "body": {"id": trace_id + "-root", "traceId": trace_id, "name": "root", "startTime": ts}},
        {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": ts,
         "body": {"id": trace_id + "-g", "traceId": trace_id, "parentObservationId": trace_id + "-root",
                  "name": "llm", "model": "gpt-4o", "startTime": ts, "usage": {"input": 10, "output": 5}}},
        {"id": uuid.uuid4().hex, "type": "generation-update", "timestamp": ts,
         "body": {"id": trace_id + "-g", "traceId": trace_id, "output": "answer", "endTime": "2026-12-01T10:00:01Z"}},
        {"id": uuid.uuid4().hex, "type": "score-create", "timestamp": ts,
         "body": {"id": trace_id + "-s", "traceId": trace_id, "name": "quality", "value": 1}},
    ]}


@pytest.fixture
def capture_region():
    from contextlib import contextmanager

    from django.db import connections

    @contextmanager
    def capture(alias):
        statements: list[str] = []

        def wrapper(execute, sql, params, many, context):
            rows = params if many else [params]
            bound = " ".join(str(p) for row in (rows or []) for p in (row or []) if p is not None) \
                if not isinstance(params, dict) else " ".join(str(v) for v in params.values())
            statements.append(f"{sql} -- params: {bound}")
            return execute(sql, params, many, context)

        with connections[alias].execute_wrapper(wrapper):
            yield statements

    return capture


def _offending(statements: list[str], project_id: str) -> list[str]:
    return [sql[:300] for sql in statements if _TABLE_RE.search(sql.split(" -- params: ")[0])
            and project_id not in sql]


def _ingest_everything(client, api_key, trace_id: str):
    auth = api_key.basic
    answer = client.post("/api/public/ingestion", data=orjson.dumps(_batch(trace_id)),
                         content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert answer.status_code == 207, answer.content
    assert all(200 <= item["status"] < 300 for item in answer.json()["successes"])
    # The same batch again (a replay), then OTLP and a REST score.
    assert client.post("/api/public/ingestion", data=orjson.dumps(_batch(trace_id)),
                       content_type="application/json", HTTP_AUTHORIZATION=auth).status_code == 207
    otlp = client.post("/api/public/otel/v1/traces", data=otlp_request().SerializeToString(),
                       content_type="application/x-protobuf", HTTP_AUTHORIZATION=auth)
    assert otlp.status_code == 200, otlp.content
    score = client.post("/api/public/scores", data=orjson.dumps({"traceId": trace_id, "name": "q", "value": 0.5}),
                        content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert score.status_code == 200, score.content


def test_every_ingest_statement_is_pinned_to_the_project(client, project, api_key, capture_region):
    alias = region_database(project.region)
    with capture_region(alias) as statements:
        _ingest_everything(client, api_key, "shard-1")
    touching = [sql for sql in statements if _TABLE_RE.search(sql)]
    # The capture saw the writes of every table the path touches (upserts, rollups, scores).
    for table in ("traces_trace", "traces_observation", "feedback_score", "monitoring_hourlyrollup"):
        assert any(table in sql for sql in touching), table
    assert _offending(statements, str(project.id)) == []


def test_the_check_sees_a_statement_that_spans_projects(project):
    # The detector itself: a read by trace id alone (what a forgotten project filter looks like).
    spanning = 'SELECT "id" FROM "traces_observation" WHERE "trace_id" = \'shard-1\''
    pinned = f'SELECT "id" FROM "traces_observation" WHERE "project_id" = \'{project.id}\'::uuid'
    assert _offending([spanning, pinned, "SAVEPOINT s1"], str(project.id)) == [spanning]
