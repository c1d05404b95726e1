"""The real Langfuse SDK v5 (installed here) runs `dataset.run_experiment(...)` with an item evaluator
and a run evaluator against a live server. v5 records the experiment only as spans (plus scores): the
run, its items on the right traces and both kinds of scores must be readable through the dataset-runs
API, the v4 experiment API and the evals run summary; a re-run with the same run name merges into the
same experiment; the experiment link the SDK returns opens the run in the console after login."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from config.celery import app as celery_app
from evals.models import Dataset, DatasetItem, DatasetRun, DatasetRunItem
from tests.clients import run_sdk_script
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

SCRIPT = """
import json, os
from langfuse import Evaluation, Langfuse

lf = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], base_url=os.environ["HOST"], timeout=60)
dataset = lf.get_dataset("sdk/arith")

def task(*, item, **kwargs):
    question = item["input"]["q"] if isinstance(item, dict) else item.input["q"]  # local data: plain dicts
    return str(eval(question))

def exact(*, input, output, expected_output, **kwargs):
    return Evaluation(name="exact", value=1.0 if output == expected_output else 0.0, comment=f"got {output}")

def accuracy(*, item_results, **kwargs):
    values = [e.value for r in item_results for e in r.evaluations if e.name == "exact"]
    return Evaluation(name="accuracy", value=sum(values) / len(values), comment=f"{len(values)} items")

out = []
for attempt in (1, 2):
    result = dataset.run_experiment(name="arith", run_name="arith nightly", description="sums", task=task,
                                    evaluators=[exact], run_evaluators=[accuracy], metadata={"model": "eval"})
    out.append({"id": result.experiment_id, "url": result.experiment_url,
                "items": sorted([r.item.id, r.trace_id] for r in result.item_results)})
local = lf.run_experiment(name="local", run_name="local run", data=[{"input": {"q": "1+1"}, "expected_output": "2"},
                          {"input": {"q": "2+1"}, "expected_output": "4"}], task=task, evaluators=[exact],
                          run_evaluators=[accuracy])
out.append({"id": local.experiment_id, "url": local.experiment_url,
            "items": sorted([r.trace_id] for r in local.item_results)})
lf.flush()
lf.shutdown()
print(json.dumps(out))
"""


@pytest.fixture(autouse=True)
def _eager_tasks():
    # The follower publishes on commit to the region queue; the live server runs the task in-process.
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def arith(project):
    dataset = Dataset.objects.for_project(project).create(name="sdk/arith")
    for item_id, question, answer in (("sum-1", "2+2", "4"), ("sum-2", "3+3", "6"), ("sum-3", "5+5", "11")):
        DatasetItem.objects.for_project(project).create(
            id=item_id, dataset_id=dataset.id, input={"q": question}, expected_output=answer
        )
    return dataset


def test_run_experiment_is_a_dataset_run_with_its_items_and_scores(
    live_server, client, project, api_key, owner, arith, other_owner
):
    stdout = run_sdk_script(Path(sys.executable), SCRIPT, timeout=120,
                            env={"PK": api_key.public, "SK": api_key.secret, "HOST": live_server.url})
    first, second, local = json.loads(stdout.strip().splitlines()[-1])

    # The SDK's id is the stable hash of (project, dataset, run name), computed here by hand; the
    # re-run with the same name has the same id and joins the same run.
    literal = json.dumps(["langfuse-experiment-v1", str(project.id), str(arith.id), "arith nightly"],
                         separators=(",", ":"))
    run_id = hashlib.sha256(literal.encode()).hexdigest()[:16]
    assert first["id"] == second["id"] == run_id
    run = DatasetRun.objects.for_project(project).get(dataset_id=arith.id)
    assert (run.id, run.name, run.description, run.dataset_id) == (run_id, "arith nightly", "sums", arith.id)

    # Every item of both attempts, linked to the trace the SDK reported and to its task span.
    reported = sorted(tuple(pair) for attempt in (first, second) for pair in attempt["items"])
    assert len(reported) == 6
    links = sorted(DatasetRunItem.objects.for_project(project).filter(run_id=run_id).values_list(
        "dataset_item_id", "trace_id", "observation_id"))
    assert [(item, trace) for item, trace, _ in links] == reported
    for _, trace_id, observation_id in links:
        task = Observation.objects.for_project(project).get(id=observation_id)
        assert (task.trace_id, task.name) == (trace_id, "experiment-item-task")
        assert Trace.objects.for_project(project).get(id=trace_id).environment == "sdk-experiment"

    auth = {"HTTP_AUTHORIZATION": api_key.basic}
    # Langfuse's dataset-runs endpoints.
    runs = client.get(f"/api/public/datasets/{quote('sdk/arith', safe='')}/runs", **auth).json()["data"]
    assert [(r["id"], r["name"], r["datasetId"]) for r in runs] == [(run_id, "arith nightly", str(arith.id))]
    detail = client.get(f"/api/public/datasets/{quote('sdk/arith', safe='')}/runs/{quote('arith nightly')}", **auth).json()
    assert sorted((i["datasetItemId"], i["traceId"]) for i in detail["datasetRunItems"]) == reported
    listed = client.get("/api/public/dataset-run-items", {"datasetId": str(arith.id), "runName": "arith nightly"},
                        **auth).json()
    assert listed["meta"]["totalItems"] == 6

    # The v4 experiment API: the experiment with both run-level scores, each item with its item score.
    window = {"fromStartTime": "2020-01-01T00:00:00Z"}
    [experiment] = client.get("/api/public/experiments", {**window, "fields": "core,scores", "datasetId": str(arith.id)},
                              **auth).json()["data"]
    assert (experiment["id"], experiment["itemCount"]) == (run_id, 6)
    assert sorted((s["name"], round(s["value"], 3), s["comment"]) for s in experiment["scores"]) == [
        ("accuracy", 0.667, "3 items"), ("accuracy", 0.667, "3 items")]
    items = client.get("/api/public/experiment-items", {**window, "experimentId": run_id, "fields": "core,scores"},
                       **auth).json()["data"]
    assert len(items) == 6
    for item in items:
        trace_id, item_id = item["traceId"], item["experimentItemId"]
        [score] = item["scores"]
        assert (score["name"], score["traceId"], score["observationId"]) == ("exact", trace_id, item["id"])
        assert score["value"] == (0.0 if item_id == "sum-3" else 1.0)

    # The evals run summary and compare (the run against itself: no regressions).
    client.force_login(owner)
    base = f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/evals/eval-results/"
    summary = client.get(base + f"runs/{run_id}").json()
    assert (summary["runId"], summary["itemCount"]) == (run_id, 6)
    [exact] = summary["evaluators"]
    assert (exact["name"], exact["count"], round(exact["average"], 3)) == ("exact", 6, 0.667)
    assert [s["name"] for s in summary["runScores"]] == ["accuracy", "accuracy"]
    compare = client.get(base + "compare", {"baseline": run_id, "candidate": run_id}).json()
    assert compare["regressions"] == [] and len(compare["items"]) == 3

    # The experiment link the SDK returned opens the run's summary in the console (after login).
    url = urlsplit(first["url"])
    assert url.path == f"/project/{project.id}/experiments/results" and url.query == f"baseline={run_id}"
    response = client.get(url.path + "?" + url.query)
    assert response.status_code == 302
    assert response["Location"] == f"/console/p/{project.id}/datasets/{run.dataset_id}/runs/{run_id}/"
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"Run arith nightly" in page.content
    body = page.content.decode()
    assert ">6</div>" in body  # items run
    assert 'id="lg-run-scores"' in body and body.count("<td>accuracy</td>") == 2  # the run evaluator, both runs
    # Local data (`langfuse.run_experiment(data=[…])`): an experiment in no dataset, under the SDK's random id.
    local_run = DatasetRun.objects.for_project(project).get(id=local["id"])
    assert (local_run.name, local_run.dataset_id) == ("local run", None)
    [listed] = client.get("/api/public/experiments", {**window, "fields": "core,scores", "id": local["id"]},
                          **auth).json()["data"]
    assert (listed["datasetId"], listed["itemCount"]) == (None, 2)
    assert [(s["name"], s["value"]) for s in listed["scores"]] == [("accuracy", 0.5)]
    local_items = client.get("/api/public/experiment-items", {**window, "experimentId": local["id"],
                                                              "fields": "core,dataset,io,scores"}, **auth).json()["data"]
    assert sorted([i["traceId"]] for i in local_items) == local["items"]
    by_input = {json.dumps(i["input"], separators=(",", ":")): i for i in local_items}
    item = by_input['{"q":"1+1"}']
    # The SDK's item id for local data: the first 16 hex of the SHA-256 of the serialised input.
    assert item["experimentItemId"] == hashlib.sha256(b'{"q": "1+1"}').hexdigest()[:16]
    # The expected output the span carried (the SDK sends a string bare; read as JSON like every value).
    assert (item["experimentDatasetId"], item["expectedOutput"], item["scores"][0]["value"]) == (None, 2, 1.0)
    assert client.get(base + f"runs/{local['id']}").json()["itemCount"] == 2
    assert urlsplit(local["url"]).query == f"baseline={local['id']}"

    # Another tenant's owner following it finds nothing.
    client.force_login(other_owner)
    assert client.get(url.path + "?" + url.query).status_code == 404
