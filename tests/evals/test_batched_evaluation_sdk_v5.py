"""The real Langfuse SDK v5 `run_batched_evaluation` against a live server: it pages through
`GET /api/public/v2/observations` with a JSON filter and a cursor, runs the caller's evaluators on
each call and writes one score per call back through the public API. The filter must select exactly
this project's matching calls (none of another tenant's), every page must be read once, a run
stopped by `max_items` must resume where it stopped, and every score must land on its call."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scores.models import Score
from tests.clients import run_sdk_script

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

SCRIPT = """
import json, os
from langfuse import Evaluation, EvaluatorInputs, Langfuse

lf = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], base_url=os.environ["HOST"], timeout=60)
condition = json.dumps([
    {"type": "string", "column": "traceName", "operator": "=", "value": "support-chat"},
    {"type": "string", "column": "type", "operator": "=", "value": "GENERATION"},
    {"type": "datetime", "column": "startTime", "operator": ">=", "value": "2026-01-01T00:00:00Z"},
])

def mapper(*, item, **kwargs):
    return EvaluatorInputs(input=item.input, output=item.output, expected_output=None,
                           metadata={"trace": item.trace_id})

def mentions_refund(*, input, output, **kwargs):
    found = "refund" in (output or "")
    return Evaluation(name="mentions_refund", value=1.0 if found else 0.0, comment="found" if found else "absent")

out = {}
first = lf.run_batched_evaluation(mapper=mapper, evaluators=[mentions_refund], filter=condition,
                                  fetch_batch_size=2, max_items=3, metadata={"run": "nightly"})
out["first"] = [first.total_items_processed, first.total_scores_created, first.has_more_items,
                first.resume_token is not None]
rest = lf.run_batched_evaluation(mapper=mapper, evaluators=[mentions_refund], fetch_batch_size=2,
                                 resume_from=first.resume_token, metadata={"run": "nightly"})
out["rest"] = [rest.total_items_processed, rest.total_scores_created, rest.completed, rest.total_items_failed]
out["evaluated"] = sorted([*first.item_evaluations, *rest.item_evaluations])
lf.flush()
lf.shutdown()
print(json.dumps(out))
"""


def _batch(prefix: str, *, name: str, answers: list[str]) -> dict:
    events = []
    for i, answer in enumerate(answers):
        trace_id, started = f"{prefix}-t{i}", f"2026-03-0{1 + i % 5}T10:00:0{i}Z"
        events.append({"id": f"{prefix}-e{i}", "type": "trace-create", "timestamp": started,
                       "body": {"id": trace_id, "name": name, "timestamp": started}})
        events.append({"id": f"{prefix}-g{i}", "type": "generation-create", "timestamp": started,
                       "body": {"id": f"{prefix}-gen{i}", "traceId": trace_id, "name": "answer", "model": "gpt-4o",
                                "startTime": started, "input": [{"role": "user", "content": f"question {i}"}],
                                "output": answer}})
        events.append({"id": f"{prefix}-s{i}", "type": "span-create", "timestamp": started,
                       "body": {"id": f"{prefix}-span{i}", "traceId": trace_id, "name": "retrieve",
                                "startTime": started, "output": "refund policy document"}})
    return {"batch": events}


def _ingest(client, key, body):
    response = client.post("/api/public/ingestion", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 207 and not response.json()["errors"], response.content


def test_run_batched_evaluation_scores_each_matching_call_once_and_resumes(
    live_server, client, project, api_key, other_project, other_api_key
):
    answers = ["your refund is on its way", "no idea", "we issued a refund", "please wait", "refund done"]
    _ingest(client, api_key, _batch("mine", name="support-chat", answers=answers))
    _ingest(client, api_key, _batch("elsewhere", name="billing-chat", answers=["refund"] * 2))
    # Another tenant's calls match the same filter word for word: they must never be read or scored.
    _ingest(client, other_api_key, _batch("theirs", name="support-chat", answers=["refund"] * 3))

    stdout = run_sdk_script(Path(sys.executable), SCRIPT, timeout=120,
                            env={"PK": api_key.public, "SK": api_key.secret, "HOST": live_server.url})
    out = json.loads(stdout.strip().splitlines()[-1])

    # Three items, then the rest from the resume token (pages of two: the cursor is followed).
    assert out["first"] == [3, 3, True, True]
    assert out["rest"] == [2, 2, True, 0]
    expected = {f"mine-gen{i}" for i in range(5)}
    assert set(out["evaluated"]) == expected and len(out["evaluated"]) == 5  # each call once

    scores = Score.objects.for_project(project).filter(name="mentions_refund")
    got = {(s.observation_id, s.trace_id, s.value, s.comment) for s in scores}
    assert got == {
        (f"mine-gen{i}", f"mine-t{i}", 1.0 if "refund" in a else 0.0, "found" if "refund" in a else "absent")
        for i, a in enumerate(answers)
    }
    assert all(s.metadata.get("run") == "nightly" for s in scores)
    assert not Score.objects.for_project(other_project).exists()
