"""The Langfuse v4 experiment read API over dataset runs: `GET /api/public/experiments` and
`GET /api/public/experiment-items` — shapes, the required window, field sets, filters, cursor pages,
scores at both levels, bad input as 400s, and isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from evals.models import Dataset, DatasetItem
from evals.services import run_item_create
from tests.tenancy.test_http_kit import DEEP_TOKEN
from traces.models import Observation, Trace

EXPERIMENTS = "/api/public/experiments"
ITEMS = "/api/public/experiment-items"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SINCE = (T0 - timedelta(days=1)).isoformat()
CORE = {"id", "name", "description", "startTime", "endTime", "itemCount", "datasetId"}
ITEM_CORE = {"id", "traceId", "startTime", "endTime", "level", "environment", "experimentId", "experimentName",
             "experimentItemId", "experimentDatasetId"}


def get(client, key, path, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=key.basic)


@pytest.fixture
def seeded(project, client, api_key):
    dataset = Dataset.objects.for_project(project).create(name="qa")
    runs = {}
    for index in range(3):
        DatasetItem.objects.for_project(project).create(
            id=f"i{index}", dataset_id=dataset.id, input={"q": index}, expected_output=f"a{index}", metadata={"n": index}
        )
        Trace.objects.for_project(project).create(id=f"t{index}", timestamp=T0, environment="sdk-experiment",
                                                  input={"q": index}, output=f"a{index}")
        Observation.objects.for_project(project).create(
            id=f"o{index}", trace_id=f"t{index}", type="SPAN", name="experiment-item-task",
            start_time=T0 + timedelta(seconds=index), end_time=T0 + timedelta(seconds=index + 1),
            input={"q": index}, output=f"task a{index}", metadata={"k": "v"},
        )
        _, run = run_item_create(
            project=project, run_name="baseline", run_description="first", metadata={"model": "m1"},
            dataset_item_id=f"i{index}", trace_id=f"t{index}", observation_id=f"o{index}",
            created_at=T0 + timedelta(minutes=index),
        )
        runs["baseline"] = run
    Trace.objects.for_project(project).create(id="t9", timestamp=T0, input={"q": 0}, output="x")
    _, runs["candidate"] = run_item_create(
        project=project, run_name="candidate", run_description=None, metadata=None, dataset_item_id="i0",
        trace_id="t9", observation_id=None, created_at=T0 + timedelta(hours=1),
    )
    for body in (
        {"traceId": "t0", "observationId": "o0", "name": "contains", "value": 1, "dataType": "BOOLEAN"},
        {"datasetRunId": str(runs["baseline"].id), "name": "pass-rate", "value": 0.67},
    ):
        response = client.post("/api/public/scores", data=json.dumps(body), content_type="application/json",
                               HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 200, response.content
    return dataset, runs


@pytest.mark.django_db(databases="__all__")
def test_experiments_are_dataset_runs_by_latest_activity_with_cursor_pages(client, api_key, seeded):
    dataset, runs = seeded
    response = get(client, api_key, EXPERIMENTS, fromStartTime=SINCE)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["meta"] == {}
    assert [e["name"] for e in body["data"]] == ["candidate", "baseline"]
    baseline = body["data"][1]
    assert set(baseline) == CORE
    assert baseline == {
        "id": str(runs["baseline"].id), "name": "baseline", "description": "first",
        "startTime": "2026-03-01T12:00:00Z", "endTime": "2026-03-01T12:02:00Z", "itemCount": 3,
        "datasetId": str(dataset.id),
    }
    # The window clips: from 12:01 only two items of the baseline count.
    clipped = get(client, api_key, EXPERIMENTS, fromStartTime="2026-03-01T12:01:00Z", name="baseline").json()["data"]
    assert [(e["startTime"], e["itemCount"]) for e in clipped] == [("2026-03-01T12:01:00Z", 2)]

    first = get(client, api_key, EXPERIMENTS, fromStartTime=SINCE, limit=1).json()
    assert [e["name"] for e in first["data"]] == ["candidate"] and first["meta"]["cursor"]
    second = get(client, api_key, EXPERIMENTS, fromStartTime=SINCE, limit=1, cursor=first["meta"]["cursor"]).json()
    assert [e["name"] for e in second["data"]] == ["baseline"] and second["meta"] == {}

    full = get(client, api_key, EXPERIMENTS, fromStartTime=SINCE, fields="core,metadata,scores",
               id=str(runs["baseline"].id)).json()["data"]
    assert full[0]["metadata"] == {"model": "m1"}
    assert [(s["name"], s["value"]) for s in full[0]["scores"]] == [("pass-rate", 0.67)]
    by_filter = get(client, api_key, EXPERIMENTS, fromStartTime=SINCE,
                    filter=json.dumps([{"column": "datasetId", "operator": "any of", "value": [str(dataset.id)]}]))
    assert len(by_filter.json()["data"]) == 2


@pytest.mark.django_db(databases="__all__")
def test_experiment_items_carry_trace_task_dataset_item_and_scores(client, api_key, seeded):
    dataset, runs = seeded
    response = get(client, api_key, ITEMS, fromStartTime=SINCE, experimentName="baseline",
                   fields="core,dataset,io,metadata,itemMetadata,experimentMetadata,scores")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert [i["experimentItemId"] for i in data] == ["i2", "i1", "i0"]
    item = data[2]
    assert item["id"] == "o0" and item["traceId"] == "t0" and item["environment"] == "sdk-experiment"
    assert (item["startTime"], item["endTime"], item["level"]) == ("2026-03-01T12:00:00Z", "2026-03-01T12:00:01Z", "DEFAULT")
    assert (item["experimentId"], item["experimentDatasetId"]) == (str(runs["baseline"].id), str(dataset.id))
    assert (item["input"], item["output"], item["expectedOutput"]) == ({"q": 0}, "task a0", "a0")
    assert item["metadata"] == {"k": "v"} and item["experimentItemMetadata"] == {"n": 0}
    assert (item["experimentMetadata"], item["experimentDescription"]) == ({"model": "m1"}, "first")
    assert [(s["name"], s["observationId"]) for s in item["scores"]] == [("contains", "o0")]

    default = get(client, api_key, ITEMS, fromStartTime=SINCE).json()
    assert [set(i) for i in default["data"]] == [ITEM_CORE] * 4
    # A v2-style run item linked to a trace only: the trace stands in for the task.
    assert default["data"][0]["id"] == "t9" and default["data"][0]["experimentName"] == "candidate"
    page = get(client, api_key, ITEMS, fromStartTime=SINCE, limit=3).json()
    rest = get(client, api_key, ITEMS, fromStartTime=SINCE, limit=3, cursor=page["meta"]["cursor"]).json()
    assert [i["id"] for i in page["data"] + rest["data"]] == ["t9", "o2", "o1", "o0"] and rest["meta"] == {}
    assert [i["id"] for i in get(client, api_key, ITEMS, fromStartTime=SINCE, experimentItemId="i1").json()["data"]] == ["o1"]


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("path", [EXPERIMENTS, ITEMS])
@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "`fromStartTime` is required"),
        ({"fromStartTime": "yesterday"}, "`fromStartTime` must be an ISO 8601 datetime"),
        ({"fromStartTime": SINCE, "cursor": "not-a-cursor"}, "not a cursor this server issued"),
        ({"fromStartTime": SINCE, "cursor": DEEP_TOKEN}, "not a cursor this server issued"),
        ({"fromStartTime": SINCE, "fields": "core,everything"}, "`fields` may hold"),
        ({"fromStartTime": SINCE, "limit": "101"}, "`limit` must be an integer between 1 and 100"),
        ({"fromStartTime": SINCE, "filter": "[{\"column\": \"tags\"}]"}, "`filter` condition needs a `column`"),
        ({"fromStartTime": SINCE, "filter": "[" * 3000}, "`filter` must be a JSON array"),  # was a RecursionError
    ],
)
def test_bad_parameters_are_400s(client, api_key, path, params, message):
    response = get(client, api_key, path, **params)
    assert response.status_code == 400
    assert message in response.json()["message"]


@pytest.mark.django_db(databases="__all__")
def test_other_tenants_see_no_experiments(client, api_key, seeded, other_api_key, far_api_key):
    _, runs = seeded
    assert get(client, api_key, EXPERIMENTS, fromStartTime=SINCE, id="not-a-uuid").json()["data"] == []
    for key in (other_api_key, far_api_key):
        assert get(client, key, EXPERIMENTS, fromStartTime=SINCE).json()["data"] == []
        assert get(client, key, EXPERIMENTS, fromStartTime=SINCE, id=str(runs["baseline"].id)).json()["data"] == []
        assert get(client, key, ITEMS, fromStartTime=SINCE, experimentId=str(runs["baseline"].id)).json()["data"] == []
    assert client.get(EXPERIMENTS, {"fromStartTime": SINCE}).status_code == 401
