"""The Langfuse-compatible datasets API: shapes, upsert, partial update, 409, pagination, ACTIVE-only
lists, JSON Schema validation, names with `/`, runs and run items, and isolation."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from evals.models import Dataset, DatasetItem, DatasetRun, DatasetRunItem
from tenancy.models import AuditLogEntry
from traces.models import Observation, Trace

DATASETS = "/api/public/v2/datasets"
ITEMS = "/api/public/dataset-items"
RUN_ITEMS = "/api/public/dataset-run-items"

DATASET_KEYS = {
    "id", "name", "description", "metadata", "inputSchema", "expectedOutputSchema", "projectId", "createdAt",
    "updatedAt",
}
ITEM_KEYS = {
    "id", "status", "input", "expectedOutput", "metadata", "sourceTraceId", "sourceObservationId", "datasetId",
    "datasetName", "createdAt", "updatedAt", "mediaReferences",
}
RUN_KEYS = {"id", "name", "description", "metadata", "datasetId", "datasetName", "createdAt", "updatedAt"}
RUN_ITEM_KEYS = {
    "id", "datasetRunId", "datasetRunName", "datasetItemId", "traceId", "observationId", "createdAt", "updatedAt",
}


def post(client, key, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=key.basic)


def get(client, key, path, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=key.basic)


def delete(client, key, path):
    return client.delete(path, HTTP_AUTHORIZATION=key.basic)


def enc(name: str) -> str:
    return quote(name, safe="")


def make_dataset(client, key, name="qa", **body):
    response = post(client, key, DATASETS, {"name": name, **body})
    assert response.status_code == 200, response.content
    return response.json()


def make_item(client, key, dataset="qa", **body):
    response = post(client, key, ITEMS, {"datasetName": dataset, **body})
    assert response.status_code == 200, response.content
    return response.json()


# --- datasets -----------------------------------------------------------------------------------


def test_a_dataset_is_created_in_langfuse_shape_and_upserted_by_name(client, api_key, project):
    created = make_dataset(client, api_key, "qa", description="first", metadata={"team": "support"})
    assert set(created) == DATASET_KEYS
    assert created["projectId"] == str(project.id)
    assert (created["description"], created["metadata"], created["inputSchema"]) == ("first", {"team": "support"}, None)

    again = make_dataset(client, api_key, "qa", description="second")
    assert again["id"] == created["id"]
    # Fields left out keep their values; fields sent replace them.
    assert (again["description"], again["metadata"]) == ("second", {"team": "support"})
    assert Dataset.objects.for_project(project).count() == 1
    actions = list(
        AuditLogEntry.objects.filter(organization_id=project.organization_id, target_type="dataset")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["dataset.created", "dataset.updated"]

    fetched = get(client, api_key, f"{DATASETS}/qa").json()
    assert fetched == again


def test_dataset_names_with_slashes_are_read_url_encoded(client, api_key):
    make_dataset(client, api_key, "evals/support/v1")
    response = get(client, api_key, f"{DATASETS}/{enc('evals/support/v1')}")
    assert response.status_code == 200
    assert response.json()["name"] == "evals/support/v1"
    make_item(client, api_key, "evals/support/v1", input="x")
    items = get(client, api_key, ITEMS, datasetName="evals/support/v1").json()
    assert [i["datasetName"] for i in items["data"]] == ["evals/support/v1"]


def test_a_missing_dataset_is_a_langfuse_404(client, api_key):
    response = get(client, api_key, f"{DATASETS}/nope")
    assert response.status_code == 404
    assert response.json() == {"message": "Dataset not found", "error": "LangfuseNotFoundError"}
    assert post(client, api_key, ITEMS, {"datasetName": "nope", "input": 1}).status_code == 404
    assert get(client, api_key, ITEMS, datasetName="nope").status_code == 404


def test_the_dataset_list_paginates_with_a_correct_total(client, api_key):
    for index in range(5):
        make_dataset(client, api_key, f"d{index}")
    first = get(client, api_key, DATASETS, page=1, limit=2).json()
    assert first["meta"] == {"page": 1, "limit": 2, "totalItems": 5, "totalPages": 3}
    names = [d["name"] for page in (1, 2, 3) for d in get(client, api_key, DATASETS, page=page, limit=2).json()["data"]]
    assert sorted(names) == [f"d{i}" for i in range(5)]
    assert get(client, api_key, DATASETS, page=4, limit=2).json()["data"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": 3},
        {"name": "x", "description": 5},
        {"name": "x", "inputSchema": "not a schema"},
        {"name": "x", "inputSchema": {"type": "no-such-type"}},
        [],
    ],
)
def test_bad_dataset_bodies_are_400(client, api_key, body):
    response = post(client, api_key, DATASETS, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "InvalidRequestError"


def test_bad_paging_is_400(client, api_key):
    for params in ({"page": 0}, {"limit": 101}, {"limit": "x"}):
        assert get(client, api_key, DATASETS, **params).status_code == 400
        assert get(client, api_key, ITEMS, **params).status_code == 400


def test_wrong_methods_are_405_and_no_key_is_401(client, api_key):
    assert client.get(DATASETS).status_code == 401
    assert client.get(ITEMS).status_code == 401
    assert client.delete(DATASETS, HTTP_AUTHORIZATION=api_key.basic).status_code == 405
    assert client.put(ITEMS, HTTP_AUTHORIZATION=api_key.basic).status_code == 405
    assert client.put(RUN_ITEMS, HTTP_AUTHORIZATION=api_key.basic).status_code == 405
    assert client.get(RUN_ITEMS, HTTP_AUTHORIZATION=api_key.basic).status_code == 400


# --- items --------------------------------------------------------------------------------------


def test_an_item_is_created_in_langfuse_shape(client, api_key, project):
    dataset = make_dataset(client, api_key)
    item = make_item(
        client,
        api_key,
        input={"question": "2+2?"},
        expectedOutput="4",
        metadata={"difficulty": "easy"},
        sourceTraceId="t-1",
        sourceObservationId="o-1",
    )
    assert set(item) == ITEM_KEYS
    assert item["mediaReferences"] == []
    assert item["status"] == "ACTIVE"
    assert (item["datasetId"], item["datasetName"]) == (dataset["id"], "qa")
    assert (item["input"], item["expectedOutput"], item["metadata"]) == ({"question": "2+2?"}, "4", {"difficulty": "easy"})
    assert (item["sourceTraceId"], item["sourceObservationId"]) == ("t-1", "o-1")
    assert get(client, api_key, f"{ITEMS}/{item['id']}").json() == item


def test_posting_an_existing_id_is_a_partial_update(client, api_key, project):
    make_dataset(client, api_key)
    first = make_item(client, api_key, id="item-1", input={"q": 1}, expectedOutput="a", metadata={"m": 1})
    updated = make_item(client, api_key, id="item-1", expectedOutput="b", status="ARCHIVED")
    assert updated["id"] == "item-1"
    # Omitted fields keep their stored values.
    assert (updated["input"], updated["metadata"]) == ({"q": 1}, {"m": 1})
    assert (updated["expectedOutput"], updated["status"]) == ("b", "ARCHIVED")
    assert updated["createdAt"] == first["createdAt"]
    assert updated["updatedAt"] >= first["updatedAt"]
    # null counts as not sent: the SDKs send null for every argument the caller left out.
    kept = make_item(client, api_key, id="item-1", input=None, metadata=None, expectedOutput="c")
    assert (kept["input"], kept["metadata"], kept["expectedOutput"]) == ({"q": 1}, {"m": 1}, "c")
    assert DatasetItem.objects.for_project(project).count() == 1


def test_an_id_of_another_dataset_is_409_and_changes_nothing(client, api_key, project):
    make_dataset(client, api_key, "a")
    make_dataset(client, api_key, "b")
    make_item(client, api_key, "a", id="shared", input="from a")
    response = post(client, api_key, ITEMS, {"datasetName": "b", "id": "shared", "input": "from b"})
    assert response.status_code == 409
    assert response.json()["error"] == "ConflictError"
    assert DatasetItem.objects.for_project(project).get(id="shared").input == "from a"


def test_item_ids_may_contain_slashes_and_nul_characters_are_cleaned(client, api_key):
    make_dataset(client, api_key)
    item = make_item(client, api_key, id="cases/1", input={"text": "a\u0000b"})
    assert item["input"] == {"text": "a\ufffdb"}
    assert get(client, api_key, f"{ITEMS}/{enc('cases/1')}").json()["id"] == "cases/1"
    assert get(client, api_key, ITEMS + "/" + enc("nul\u0000")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"input": 1},  # no datasetName
        {"datasetName": "qa", "id": ""},
        {"datasetName": "qa", "id": "x" * 256},
        {"datasetName": "qa", "id": 7},
        {"datasetName": "qa", "status": "DELETED"},
        {"datasetName": "qa", "sourceTraceId": 5},
        {"datasetName": "qa", "input": json.loads("[" * 150 + "]" * 150)},
    ],
)
def test_bad_item_bodies_are_400(client, api_key, body):
    make_dataset(client, api_key)
    response = post(client, api_key, ITEMS, body)
    assert response.status_code == 400, response.content


def test_item_lists_paginate_with_a_correct_total_pages_and_hide_archived_items(client, api_key):
    make_dataset(client, api_key)
    for index in range(7):
        make_item(client, api_key, id=f"i{index}", input=index)
    make_item(client, api_key, id="archived", input="old", status="ARCHIVED")

    pages = []
    page = 1
    while True:  # exactly how every SDK pages: stop when totalPages <= page
        body = get(client, api_key, ITEMS, datasetName="qa", page=page, limit=3).json()
        pages.append(body)
        if body["meta"]["totalPages"] <= page:
            break
        page += 1
    assert pages[0]["meta"] == {"page": 1, "limit": 3, "totalItems": 7, "totalPages": 3}
    ids = [item["id"] for body in pages for item in body["data"]]
    assert sorted(ids) == [f"i{i}" for i in range(7)]
    # Archived items are hidden from lists but still readable by id.
    assert get(client, api_key, f"{ITEMS}/archived").json()["status"] == "ARCHIVED"
    empty = get(client, api_key, ITEMS, datasetName="qa", page=1, limit=50)
    assert empty.json()["meta"]["totalItems"] == 7


def test_an_empty_dataset_lists_zero_pages(client, api_key):
    make_dataset(client, api_key)
    assert get(client, api_key, ITEMS, datasetName="qa").json()["meta"] == {
        "page": 1, "limit": 50, "totalItems": 0, "totalPages": 0,
    }


def test_items_filter_by_source_trace_and_observation(client, api_key):
    make_dataset(client, api_key, "a")
    make_dataset(client, api_key, "b")
    make_item(client, api_key, "a", id="1", sourceTraceId="t1")
    make_item(client, api_key, "b", id="2", sourceTraceId="t1", sourceObservationId="o1")
    make_item(client, api_key, "b", id="3", sourceTraceId="t2")
    by_trace = get(client, api_key, ITEMS, sourceTraceId="t1").json()
    assert sorted(i["id"] for i in by_trace["data"]) == ["1", "2"]
    assert {i["datasetName"] for i in by_trace["data"]} == {"a", "b"}
    assert [i["id"] for i in get(client, api_key, ITEMS, sourceObservationId="o1").json()["data"]] == ["2"]
    assert [i["id"] for i in get(client, api_key, ITEMS, datasetName="b", sourceTraceId="t1").json()["data"]] == ["2"]


def test_version_needs_a_dataset_name_and_leaves_out_newer_items(client, api_key):
    make_dataset(client, api_key)
    make_item(client, api_key, id="old")
    assert get(client, api_key, ITEMS, version="2020-01-01T00:00:00Z").status_code == 400
    assert get(client, api_key, ITEMS, datasetName="qa", version="yesterday").status_code == 400
    assert get(client, api_key, ITEMS, datasetName="qa", version="2020-01-01T00:00:00Z").json()["data"] == []
    assert [i["id"] for i in get(client, api_key, ITEMS, datasetName="qa", version="2999-01-01T00:00:00Z").json()["data"]] == ["old"]


def test_deleting_an_item_deletes_its_run_items(client, api_key, project):
    make_dataset(client, api_key)
    make_item(client, api_key, id="gone")
    assert post(client, api_key, RUN_ITEMS, {"runName": "r", "datasetItemId": "gone", "traceId": "t"}).status_code == 200
    response = delete(client, api_key, f"{ITEMS}/gone")
    assert response.status_code == 200
    assert response.json() == {"message": "Dataset item successfully deleted"}
    assert get(client, api_key, f"{ITEMS}/gone").status_code == 404
    assert delete(client, api_key, f"{ITEMS}/gone").status_code == 404
    assert DatasetRunItem.objects.for_project(project).count() == 0
    assert DatasetRun.objects.for_project(project).count() == 1


# --- JSON Schema --------------------------------------------------------------------------------

INPUT_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}},
    "required": ["question"],
}


def test_items_are_validated_against_the_dataset_schemas(client, api_key, project):
    make_dataset(client, api_key, inputSchema=INPUT_SCHEMA, expectedOutputSchema={"type": "string"})
    assert make_item(client, api_key, input={"question": "hi"}, expectedOutput="hello")["input"] == {"question": "hi"}

    bad = post(client, api_key, ITEMS, {"datasetName": "qa", "input": {"question": 3}})
    assert bad.status_code == 400
    message = bad.json()["message"]
    assert message.startswith("Dataset item validation failed: ")
    assert "$.question" in message and "is not of type 'string'" in message

    missing = post(client, api_key, ITEMS, {"datasetName": "qa", "input": {}, "expectedOutput": 5})
    assert missing.status_code == 400
    assert "'question' is a required property" in missing.json()["message"]
    assert "expectedOutput" in missing.json()["message"]
    assert DatasetItem.objects.for_project(project).count() == 1


def test_a_partial_update_is_validated_on_the_merged_item(client, api_key):
    make_dataset(client, api_key, inputSchema=INPUT_SCHEMA)
    make_item(client, api_key, id="x", input={"question": "q"})
    assert post(client, api_key, ITEMS, {"datasetName": "qa", "id": "x", "metadata": {"a": 1}}).status_code == 200
    assert post(client, api_key, ITEMS, {"datasetName": "qa", "id": "x", "input": ["no"]}).status_code == 400


def test_a_new_schema_is_checked_against_existing_items(client, api_key, project):
    make_dataset(client, api_key)
    make_item(client, api_key, id="loose", input="just text")
    response = post(client, api_key, DATASETS, {"name": "qa", "inputSchema": INPUT_SCHEMA})
    assert response.status_code == 400
    assert "loose" in response.json()["message"]
    assert Dataset.objects.for_project(project).get(name="qa").input_schema is None
    make_item(client, api_key, id="loose", input={"question": "ok"})
    assert make_dataset(client, api_key, "qa", inputSchema=INPUT_SCHEMA)["inputSchema"] == INPUT_SCHEMA


# --- runs ---------------------------------------------------------------------------------------


def test_a_run_item_creates_the_run_and_links_the_trace(client, api_key, project):
    make_dataset(client, api_key)
    make_item(client, api_key, id="i1")
    make_item(client, api_key, id="i2")
    first = post(
        client,
        api_key,
        RUN_ITEMS,
        {"runName": "baseline", "runDescription": "desc", "metadata": {"m": 1}, "datasetItemId": "i1", "traceId": "t1"},
    )
    assert first.status_code == 200, first.content
    body = first.json()
    assert set(body) == RUN_ITEM_KEYS
    assert (body["datasetRunName"], body["datasetItemId"], body["traceId"], body["observationId"]) == (
        "baseline", "i1", "t1", None,
    )
    second = post(
        client,
        api_key,
        RUN_ITEMS,
        {"runName": "baseline", "datasetItemId": "i2", "traceId": "t2", "observationId": "o2",
         "datasetVersion": "2026-01-01T00:00:00Z"},
    ).json()
    assert second["datasetRunId"] == body["datasetRunId"]
    run = DatasetRun.objects.for_project(project).get()
    assert (run.name, run.description) == ("baseline", "desc")
    assert run.metadata == {"dataset_version": "2026-01-01T00:00:00+00:00"}

    runs = get(client, api_key, "/api/public/datasets/qa/runs").json()
    assert runs["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}
    assert set(runs["data"][0]) == RUN_KEYS
    assert runs["data"][0]["name"] == "baseline"

    listed = get(client, api_key, RUN_ITEMS, datasetId=run.dataset_id, runName="baseline", limit=1).json()
    assert listed["meta"] == {"page": 1, "limit": 1, "totalItems": 2, "totalPages": 2}
    assert set(listed["data"][0]) == RUN_ITEM_KEYS
    assert get(client, api_key, RUN_ITEMS, datasetId=run.dataset_id, runName="other").status_code == 404
    assert get(client, api_key, RUN_ITEMS, datasetId="not-a-uuid", runName="baseline").status_code == 404

    detail = get(client, api_key, "/api/public/datasets/qa/runs/baseline").json()
    assert set(detail) == RUN_KEYS | {"datasetRunItems"}
    assert sorted((ri["datasetItemId"], ri["traceId"], ri["observationId"]) for ri in detail["datasetRunItems"]) == [
        ("i1", "t1", None), ("i2", "t2", "o2"),
    ]


def test_a_run_item_with_only_an_observation_finds_its_trace(client, api_key, project):
    from django.utils import timezone

    Trace.objects.for_project(project).create(id="tr", timestamp=timezone.now())
    Observation.objects.for_project(project).create(id="ob", trace_id="tr", type="SPAN", start_time=timezone.now())
    make_dataset(client, api_key)
    make_item(client, api_key, id="i1")
    body = post(client, api_key, RUN_ITEMS, {"runName": "r", "datasetItemId": "i1", "observationId": "ob"}).json()
    assert (body["traceId"], body["observationId"]) == ("tr", "ob")
    missing = post(client, api_key, RUN_ITEMS, {"runName": "r", "datasetItemId": "i1", "observationId": "nope"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "body,status",
    [
        ({"runName": "r", "datasetItemId": "i1"}, 400),  # neither trace nor observation
        ({"datasetItemId": "i1", "traceId": "t"}, 400),
        ({"runName": "r", "traceId": "t"}, 400),
        ({"runName": "r", "datasetItemId": "i1", "traceId": "t", "createdAt": "soon"}, 400),
        ({"runName": "r", "datasetItemId": "missing", "traceId": "t"}, 404),
    ],
)
def test_bad_run_items_are_refused(client, api_key, body, status):
    make_dataset(client, api_key)
    make_item(client, api_key, id="i1")
    assert post(client, api_key, RUN_ITEMS, body).status_code == status


def test_runs_are_deleted_with_their_run_items_and_names_may_contain_slashes(client, api_key, project):
    make_dataset(client, api_key, "sets/qa")
    make_item(client, api_key, "sets/qa", id="i1")
    post(client, api_key, RUN_ITEMS, {"runName": "exp/1", "datasetItemId": "i1", "traceId": "t"})
    post(client, api_key, RUN_ITEMS, {"runName": "exp/2", "datasetItemId": "i1", "traceId": "t"})
    base = f"/api/public/datasets/{enc('sets/qa')}/runs"
    assert sorted(r["name"] for r in get(client, api_key, base).json()["data"]) == ["exp/1", "exp/2"]
    assert get(client, api_key, f"{base}/{enc('exp/1')}").json()["name"] == "exp/1"
    response = delete(client, api_key, f"{base}/{enc('exp/1')}")
    assert response.status_code == 200
    assert response.json() == {"message": "Dataset run successfully deleted"}
    assert get(client, api_key, f"{base}/{enc('exp/1')}").status_code == 404
    assert delete(client, api_key, f"{base}/{enc('exp/1')}").status_code == 404
    assert list(DatasetRun.objects.for_project(project).values_list("name", flat=True)) == ["exp/2"]
    assert DatasetRunItem.objects.for_project(project).count() == 1
    assert DatasetItem.objects.for_project(project).count() == 1
    assert get(client, api_key, "/api/public/datasets/nope/runs").status_code == 404
    assert delete(client, api_key, base).status_code == 405


def test_the_legacy_dataset_read_lists_items_and_run_names(client, api_key):
    make_dataset(client, api_key)
    make_item(client, api_key, id="i1")
    make_item(client, api_key, id="old", status="ARCHIVED")
    post(client, api_key, RUN_ITEMS, {"runName": "r1", "datasetItemId": "i1", "traceId": "t"})
    body = get(client, api_key, "/api/public/datasets/qa").json()
    assert set(body) == DATASET_KEYS | {"items", "runs"}
    assert [i["id"] for i in body["items"]] == ["i1"]
    assert body["runs"] == ["r1"]


# --- isolation ----------------------------------------------------------------------------------


def test_another_projects_datasets_items_and_runs_answer_404(client, api_key, other_api_key, other_project, project):
    """`other_*` is in the same region: a missing project filter would show up here."""
    make_dataset(client, other_api_key, "private")
    make_item(client, other_api_key, "private", id="secret-item", input="secret")
    post(client, other_api_key, RUN_ITEMS, {"runName": "run", "datasetItemId": "secret-item", "traceId": "t"})

    assert get(client, api_key, f"{DATASETS}/private").status_code == 404
    assert get(client, api_key, DATASETS).json()["data"] == []
    assert get(client, api_key, f"{ITEMS}/secret-item").status_code == 404
    assert get(client, api_key, ITEMS, datasetName="private").status_code == 404
    assert get(client, api_key, ITEMS, sourceTraceId="t").json()["data"] == []
    assert get(client, api_key, ITEMS).json()["meta"]["totalItems"] == 0
    assert delete(client, api_key, f"{ITEMS}/secret-item").status_code == 404
    assert get(client, api_key, "/api/public/datasets/private/runs").status_code == 404
    assert get(client, api_key, "/api/public/datasets/private/runs/run").status_code == 404
    assert delete(client, api_key, "/api/public/datasets/private/runs/run").status_code == 404
    assert get(client, api_key, "/api/public/datasets/private").status_code == 404
    their_dataset = Dataset.objects.for_project(other_project).get(name="private")
    assert get(client, api_key, RUN_ITEMS, datasetId=their_dataset.id, runName="run").status_code == 404
    # Linking to the neighbour's item, or writing into its dataset, is refused too.
    linked = post(client, api_key, RUN_ITEMS, {"runName": "run", "datasetItemId": "secret-item", "traceId": "t"})
    assert linked.status_code == 404
    assert post(client, api_key, ITEMS, {"datasetName": "private", "input": "x"}).status_code == 404

    # Our own dataset of the same name and an item id the neighbour uses are separate rows.
    make_dataset(client, api_key, "private")
    mine = make_item(client, api_key, "private", id="secret-item", input="mine")
    assert mine["input"] == "mine"
    assert DatasetItem.objects.for_project(other_project).get(id="secret-item").input == "secret"
    assert DatasetRunItem.objects.for_project(other_project).count() == 1
    assert DatasetRun.objects.for_project(project).count() == 0


def test_rows_stay_in_the_projects_region(client, api_key, far_api_key, far_project, project):
    from django.db import connections

    from tenancy.regions import region_database

    make_dataset(client, far_api_key, "far")
    make_item(client, far_api_key, "far", id="far-item")
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM evals_dataset WHERE name = 'far'")
        assert cursor.fetchone()[0] == 0
    assert Dataset.objects.for_project(far_project).filter(name="far").exists()
    assert get(client, api_key, f"{DATASETS}/far").status_code == 404


def test_schema_patterns_run_in_linear_time_and_unsupported_ones_are_refused(client, api_key):
    import time

    evil = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}
    make_dataset(client, api_key, inputSchema=evil)
    started = time.monotonic()
    # Python's backtracking `re` takes ~2^30 steps on this; RE2 answers at once.
    response = post(client, api_key, ITEMS, {"datasetName": "qa", "input": {"code": "a" * 30 + "!"}})
    assert response.status_code == 400
    assert time.monotonic() - started < 5
    assert "does not match" in response.json()["message"]
    assert make_item(client, api_key, input={"code": "aaa"})["input"] == {"code": "aaa"}

    keyed = {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}
    make_dataset(client, api_key, "keyed", inputSchema=keyed)
    assert make_item(client, api_key, "keyed", input={"x-a": 1})["input"] == {"x-a": 1}
    wrong = post(client, api_key, ITEMS, {"datasetName": "keyed", "input": {"x-a": "one", "other": 1}})
    assert wrong.status_code == 400

    for schema in (
        {"type": "string", "pattern": "(a)\\1"},
        {"type": "string", "pattern": "^(?=a)"},
        {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
    ):
        refused = post(client, api_key, DATASETS, {"name": "bad", "inputSchema": schema})
        assert refused.status_code == 400, schema
        assert "is not a valid JSON Schema" in refused.json()["message"]


def test_a_dataset_holding_an_integer_beyond_64_bits_lists_and_reads(client, api_key):
    """Found by the fuzz suite: JSON accepts any integer, orjson writes at most 64 bits; the list answered 500."""
    import json

    big = 2**70
    body = json.dumps({"name": "big-numbers", "metadata": {"n": big}})
    created = client.post("/api/public/v2/datasets", data=body, content_type="application/json",
                          HTTP_AUTHORIZATION=api_key.basic)
    assert created.status_code == 200, created.content
    listed = client.get("/api/public/v2/datasets", HTTP_AUTHORIZATION=api_key.basic)
    assert listed.status_code == 200
    [dataset] = [d for d in json.loads(listed.content)["data"] if d["name"] == "big-numbers"]
    # Beyond 64 bits the body parser reads the number as a float (orjson), as every JSON API would.
    assert dataset["metadata"]["n"] == pytest.approx(big, rel=1e-15)
    one = client.get("/api/public/v2/datasets/big-numbers", HTTP_AUTHORIZATION=api_key.basic)
    assert one.status_code == 200 and json.loads(one.content)["metadata"]["n"] == pytest.approx(big, rel=1e-15)
