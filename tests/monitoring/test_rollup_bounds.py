"""Calls with the largest values the contract accepts (token counts up to 2^60, a start time in 1970)
are stored exactly, and the rollups' sums never overflow: before, a dozen such calls in one hour made
the rollup upsert fail, and with it the whole batch (and every later batch writing to that bucket)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from ingest.rollups import ROLLUP_TOKENS_CAP, ROLLUP_US_CAP
from monitoring.models import HourlyRollup
from traces.models import Observation

T = "2026-11-20T10:05:00Z"


def _generation(i: int, *, tokens: int = 10, start: str = T) -> dict:
    return {"id": f"e-{i}", "type": "generation-create", "timestamp": T,
            "body": {"id": f"g-{i}", "traceId": f"t-{i}", "name": "llm", "model": "gpt-4o", "startTime": start,
                     "endTime": T, "usage": {"input": tokens, "output": 1}}}


def _post(client, key, events):
    return client.post("/api/public/ingestion", data=orjson.dumps({"batch": events}),
                       content_type="application/json", HTTP_AUTHORIZATION=key.basic)


def test_huge_counts_and_ancient_starts_are_stored_and_rolled_up_without_overflow(client, api_key, project,
                                                                                  other_api_key, other_project):
    huge = [_generation(i, tokens=2**60) for i in range(12)]
    ancient = [_generation(100 + i, start="1970-01-01T00:00:00Z") for i in range(3)]
    answer = _post(client, api_key, huge)
    assert answer.status_code == 207 and answer.json()["errors"] == [], answer.content
    assert _post(client, api_key, ancient).status_code == 207
    # The bucket still takes ordinary calls, and a neighbour's ingest is untouched.
    assert _post(client, api_key, [_generation(200)]).json()["errors"] == []
    assert _post(client, other_api_key, [_generation(1)]).json()["errors"] == []

    rows = Observation.objects.for_project(project)
    assert rows.filter(input_tokens=2**60).count() == 12  # the rows keep the exact values
    hour = datetime(2026, 11, 20, 10, tzinfo=UTC)
    bucket = HourlyRollup.objects.for_project(project).get(hour=hour)
    assert bucket.calls == 13 and bucket.input_tokens == 12 * ROLLUP_TOKENS_CAP + 10
    ancient_bucket = HourlyRollup.objects.for_project(project).get(hour=datetime(1970, 1, 1, tzinfo=UTC))
    assert ancient_bucket.calls == 3 and ancient_bucket.latency_us_sum == 3 * ROLLUP_US_CAP
    assert HourlyRollup.objects.for_project(other_project).get(hour=hour).calls == 1
