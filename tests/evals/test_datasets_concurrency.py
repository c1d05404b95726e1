"""The SDKs link items concurrently (v4/v5 run experiments with up to 50 tasks at once): many first
run items of one new run make exactly one run, and concurrent upserts of one dataset make one row."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from evals.models import Dataset, DatasetRun, DatasetRunItem
from evals.services import dataset_item_upsert, dataset_upsert

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
WORKERS = 8


def _post_all(url: str, key, bodies: list[dict]) -> list[int]:
    def post(body):
        with httpx.Client(timeout=30) as http:
            return http.post(url, json=body, auth=(key.public, key.secret)).status_code

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(post, bodies))


def test_concurrent_first_run_items_make_one_run(live_server, api_key, project):
    dataset_upsert(project=project, fields={"name": "qa"}, actor=None)
    for index in range(WORKERS * 2):
        dataset_item_upsert(project=project, dataset_name="qa", item_id=f"i{index}", fields={"input": index})
    bodies = [{"runName": "parallel", "datasetItemId": f"i{i}", "traceId": f"t{i}"} for i in range(WORKERS * 2)]
    statuses = _post_all(f"{live_server.url}/api/public/dataset-run-items", api_key, bodies)
    assert statuses == [200] * len(bodies)
    run = DatasetRun.objects.for_project(project).get()
    assert run.name == "parallel"
    assert DatasetRunItem.objects.for_project(project).filter(run_id=run.id).count() == len(bodies)


def test_concurrent_upserts_of_one_dataset_make_one_row(live_server, api_key, project):
    bodies = [{"name": "same", "description": f"d{i}"} for i in range(WORKERS * 2)]
    statuses = _post_all(f"{live_server.url}/api/public/v2/datasets", api_key, bodies)
    assert statuses == [200] * len(bodies)
    assert Dataset.objects.for_project(project).filter(name="same").count() == 1
