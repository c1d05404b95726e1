"""Experiments sent as spans (Langfuse v4/v5 `run_experiment`: no dataset-run-items call, only
`langfuse.experiment.*` span attributes) become dataset runs: the adapter's mapping of the attributes
(the spans as SDK 5.0.4 sent them, captures/bodies_v5.txt), the stable experiment id against a value
computed here by hand, and the OTLP endpoint → follower → run items path (merge by run name, replays,
another project's ids, a missing dataset), and the follower's message: the task spans' ids only, the
experiment read back from the stored spans."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

import pytest

from config.celery import app as celery_app
from evals.experiments import record_experiment_spans
from evals.models import Dataset, DatasetItem, DatasetRun, DatasetRunItem
from evals.services import record_experiment_items, stable_experiment_id
from ingest.adapters.otel.mapping import map_request
from ingest.adapters.otel.testing import make_request, make_span
from privacy.services import redaction_policy_update
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

OTLP = "/api/public/otel/v1/traces"
TRACE = "c2f50eed6486e6dc278c54567121f47e"
ROOT, TASK = "f9157a902a2e19d3", "37181d50895e60e6"
RUN_NAME = "baseline - 2026-11-26T19:41:58.802194Z"


@pytest.fixture(autouse=True)
def _eager_tasks():
    # The follower publishes on commit to the region queue; run the task in-process.
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def experiment_attributes(*, experiment_id="026fd2010c1ca621", dataset_id="ds-1", item_id="item-1", task=TASK,
                          run_name=RUN_NAME) -> dict:
    """The attributes SDK 5.0.4 set on both the item's root span and its task span (bodies_v5.txt)."""
    return {
        "langfuse.environment": "sdk-experiment",
        "langfuse.experiment.item.expected_output": "4",
        "langfuse.experiment.id": experiment_id,
        "langfuse.experiment.name": run_name,
        "langfuse.experiment.dataset.id": dataset_id,
        "langfuse.experiment.item.id": item_id,
        "langfuse.experiment.item.root_observation_id": task,
        "langfuse.observation.type": "span",
        "langfuse.observation.input": '{"q": "2+2?"}',
        "langfuse.observation.output": "4",
        "langfuse.observation.metadata.experiment_name": '"baseline"',
        "langfuse.observation.metadata.experiment_run_name": json.dumps(run_name),
        "langfuse.observation.metadata.dataset_id": json.dumps(dataset_id),
        "langfuse.observation.metadata.dataset_item_id": json.dumps(item_id),
    }


def item_spans(*, trace=TRACE, root=ROOT, task=TASK, extra: dict | None = None, **attributes):
    attrs = {**experiment_attributes(task=task, **attributes), **(extra or {})}
    return [
        make_span(trace_id=trace, span_id=task, parent_span_id=root, name="experiment-item-task", attributes=attrs),
        make_span(trace_id=trace, span_id=root, name="experiment-item-run",
                  attributes={**attrs, "langfuse.internal.is_app_root": True}),
    ]


def v5_request(spans):
    return make_request(spans, scope_name="langfuse-sdk", scope_version="5.0.4",
                        resource={"service.name": "unknown_service:python"})


# --- the adapter: attributes → the link on the task span ------------------------------------------


def test_the_captured_v5_spans_link_the_task_span_once_and_keep_every_attribute():
    mapped = map_request(v5_request(item_spans()))
    assert list(mapped.experiments) == [TASK]  # the root span carries the attributes too, but links nothing
    link = mapped.experiments[TASK]
    assert (link.experiment_id, link.run_name, link.trace_id, link.observation_id) == (
        "026fd2010c1ca621", RUN_NAME, TRACE, TASK)
    assert (link.dataset_id, link.item_id, link.description, link.metadata) == ("ds-1", "item-1", None, None)
    by_id = {o["id"]: o for o in mapped.observations}
    for span_id in (ROOT, TASK):
        metadata = by_id[span_id]["metadata"]
        # Consumed into metadata["experiment"], not left as raw attributes.
        assert metadata["experiment"] == {
            "id": "026fd2010c1ca621", "name": RUN_NAME, "dataset_id": "ds-1", "item_id": "item-1",
            "root_observation_id": TASK, "expected_output": 4,
        }
        assert not [k for k in metadata["otel"].get("attributes", {}) if k.startswith("langfuse.experiment")]
        assert by_id[span_id]["environment"] == "sdk-experiment"
    # `langfuse.experiment.name` is the RUN name; the experiment's own name is only in the metadata.
    assert by_id[TASK]["metadata"]["experiment_name"] == "baseline"


def test_v4_flattened_metadata_and_a_json_metadata_string_are_both_read():
    flat = {**experiment_attributes(), "langfuse.experiment.metadata.model": "m1",
            "langfuse.experiment.item.metadata.topic": "math", "langfuse.experiment.description": "nightly"}
    whole = {**experiment_attributes(), "langfuse.experiment.metadata": '{"model": "m1"}'}
    [v4] = map_request(make_request([make_span(span_id=TASK, parent_span_id=ROOT, attributes=flat)],
                                    scope_name="langfuse-sdk", scope_version="4.18.0")).experiments.values()
    [v5] = map_request(v5_request([make_span(span_id=TASK, parent_span_id=ROOT, attributes=whole)])).experiments.values()
    assert (v4.metadata, v4.description) == ({"model": "m1"}, "nightly")
    assert v5.metadata == {"model": "m1"}


def test_spans_without_an_experiment_id_or_run_name_link_nothing():
    attrs = experiment_attributes()
    del attrs["langfuse.experiment.id"]
    mapped = map_request(v5_request([make_span(span_id=TASK, parent_span_id=ROOT, attributes=attrs)]))
    assert mapped.experiments == {}
    assert mapped.observations[0]["metadata"]["experiment"]["name"] == RUN_NAME  # still kept


# --- the stable id ----------------------------------------------------------------------------------


def test_the_stable_experiment_id_is_the_sdks_hash():
    project_id, dataset_id = "7d1f6c3a-2b4e-4f5a-9c8d-0e1f2a3b4c5d", "0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
    # JSON.stringify of the array, written out by hand (no spaces, non-ASCII kept as UTF-8).
    for run_name, literal in (
        ("nightly", '["langfuse-experiment-v1","%s","%s","nightly"]' % (project_id, dataset_id)),
        ('café "v2"', '["langfuse-experiment-v1","%s","%s","café \\"v2\\""]' % (project_id, dataset_id)),
    ):
        expected = hashlib.sha256(literal.encode("utf-8")).hexdigest()[:16]
        assert stable_experiment_id(project_id=uuid.UUID(project_id), dataset_id=dataset_id, run_name=run_name) == expected
    # A value fixed once: a change in the derivation would split every re-run from its experiment.
    assert stable_experiment_id(project_id=project_id, dataset_id=dataset_id, run_name="nightly") == hashlib.sha256(
        b'["langfuse-experiment-v1","7d1f6c3a-2b4e-4f5a-9c8d-0e1f2a3b4c5d","0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d","nightly"]'
    ).hexdigest()[:16]


def test_the_installed_sdk_derives_the_same_id():
    from langfuse import Langfuse

    project_id, dataset_id = str(uuid.uuid4()), str(uuid.uuid4())
    sdk = Langfuse._create_experiment_id(object.__new__(Langfuse), project_id=project_id, dataset_id=dataset_id,
                                         run_name="run é 1")
    assert sdk == stable_experiment_id(project_id=project_id, dataset_id=dataset_id, run_name="run é 1")


# --- through the OTLP endpoint ---------------------------------------------------------------------


@pytest.fixture
def qa(project):
    dataset = Dataset.objects.for_project(project).create(name="qa")
    for index in (1, 2):
        DatasetItem.objects.for_project(project).create(id=f"item-{index}", dataset_id=dataset.id, input={"q": index})
    return dataset


def export(client, key, spans):
    response = client.post(OTLP, data=v5_request(spans).SerializeToString(), content_type="application/x-protobuf",
                           HTTP_AUTHORIZATION=key.basic)
    assert response.status_code == 200, response.content
    return response


def run_items(project):
    return sorted(
        DatasetRunItem.objects.for_project(project).values_list("run_id", "dataset_item_id", "trace_id", "observation_id")
    )


def test_exported_items_become_one_run_that_re_runs_merge_into_and_replays_do_not_double(client, project, api_key, qa):
    run_id = stable_experiment_id(project_id=project.id, dataset_id=qa.id, run_name="nightly")
    first = [
        *item_spans(trace="a" * 32, root="a1" * 8, task="a2" * 8, experiment_id=run_id, dataset_id=str(qa.id),
                    item_id="item-1", run_name="nightly"),
        *item_spans(trace="b" * 32, root="b1" * 8, task="b2" * 8, experiment_id=run_id, dataset_id=str(qa.id),
                    item_id="item-2", run_name="nightly"),
    ]
    export(client, api_key, first)
    export(client, api_key, first)  # the SDK retried the export: nothing doubles
    run = DatasetRun.objects.for_project(project).get()
    assert (run.id, run.name, run.dataset_id) == (run_id, "nightly", qa.id)
    assert run_items(project) == [(run_id, "item-1", "a" * 32, "a2" * 8), (run_id, "item-2", "b" * 32, "b2" * 8)]
    assert Observation.objects.for_project(project).count() == 4

    # The same run name again (a re-run): the same experiment, two more items.
    export(client, api_key, item_spans(trace="c" * 32, root="c1" * 8, task="c2" * 8, experiment_id=run_id,
                                       dataset_id=str(qa.id), item_id="item-1", run_name="nightly"))
    assert DatasetRun.objects.for_project(project).count() == 1
    assert len(run_items(project)) == 3

    # The dataset-runs endpoint and the v4 experiments endpoint show it under the SDK's id.
    runs = client.get("/api/public/datasets/qa/runs", HTTP_AUTHORIZATION=api_key.basic).json()
    assert [(r["id"], r["name"]) for r in runs["data"]] == [(run_id, "nightly")]
    detail = client.get("/api/public/datasets/qa/runs/nightly", HTTP_AUTHORIZATION=api_key.basic).json()
    assert sorted((i["datasetItemId"], i["traceId"], i["datasetRunId"]) for i in detail["datasetRunItems"]) == [
        ("item-1", "a" * 32, run_id), ("item-1", "c" * 32, run_id), ("item-2", "b" * 32, run_id)]
    experiments = client.get("/api/public/experiments", {"fromStartTime": "2020-01-01T00:00:00Z", "id": run_id},
                             HTTP_AUTHORIZATION=api_key.basic).json()["data"]
    assert [(e["id"], e["itemCount"]) for e in experiments] == [(run_id, 3)]


def test_another_projects_ids_and_a_missing_dataset_link_nothing_but_the_spans_are_stored(
    client, project, api_key, qa, other_project, other_api_key
):
    theirs = Dataset.objects.for_project(other_project).create(name="qa")
    DatasetItem.objects.for_project(other_project).create(id="their-item", dataset_id=theirs.id, input="secret")
    spans = [
        # their dataset and item ids, sent with our key
        *item_spans(trace="d" * 32, root="d1" * 8, task="d2" * 8, dataset_id=str(theirs.id), item_id="their-item"),
        # our dataset, their item
        *item_spans(trace="e" * 32, root="e1" * 8, task="e2" * 8, dataset_id=str(qa.id), item_id="their-item"),
        # a dataset that does not exist, and one that is no id at all
        *item_spans(trace="f" * 32, root="f1" * 8, task="f2" * 8, dataset_id=str(uuid.uuid4()), item_id="item-1"),
        *item_spans(trace="9" * 32, root="91" * 8, task="92" * 8, dataset_id="ds-1", item_id="item-1"),
        # and one good item in the same export
        *item_spans(trace="7" * 32, root="71" * 8, task="72" * 8, dataset_id=str(qa.id), item_id="item-2",
                    experiment_id="0123456789abcdef"),
    ]
    response = export(client, api_key, spans)
    assert response.content == b""  # a full success: every span stored
    assert Trace.objects.for_project(project).count() == 5 and Observation.objects.for_project(project).count() == 10
    assert run_items(project) == [("0123456789abcdef", "item-2", "7" * 32, "72" * 8)]
    assert not DatasetRun.objects.for_project(other_project).exists()
    assert not DatasetRunItem.objects.for_project(other_project).exists()


def test_the_links_skipped_are_counted(project, qa):
    link = {"experiment_id": "0123456789abcdef", "run_name": "r", "trace_id": "t", "observation_id": "o",
            "dataset_id": str(qa.id), "item_id": "item-1"}
    local = {**link, "experiment_id": "fedcba9876543210", "dataset_id": None, "item_id": "5e1f00d5e1f00d00",
             "observation_id": "o2"}
    counts = record_experiment_items(project=project, links=[
        link, link,
        local,
        {**link, "item_id": "nope"},
        {**link, "dataset_id": str(uuid.uuid4())},
        {**link, "experiment_id": "x" * 65},
        {**link, "experiment_id": "fedcba9876543210", "observation_id": "o3"},  # the local run's id, with a dataset
    ])
    assert counts == {"linked": 1, "exists": 1, "linked_local": 1, "no_item": 1, "no_dataset": 1,
                      "bad_experiment_id": 1, "experiment_of_another_dataset": 1}
    # Local data: a run in no dataset, its item keeping the SDK's item id.
    local_run = DatasetRun.objects.for_project(project).get(id="fedcba9876543210")
    assert local_run.dataset_id is None
    [item] = DatasetRunItem.objects.for_project(project).filter(run_id=local_run.id)
    assert (item.dataset_item_id, item.local_item_id, item.item_key) == (None, "5e1f00d5e1f00d00", "5e1f00d5e1f00d00")


def test_a_run_created_over_rest_gets_the_stable_id_and_spans_with_that_name_join_it(client, project, api_key, qa):
    response = client.post("/api/public/dataset-run-items", data=json.dumps(
        {"runName": "v4 run", "datasetItemId": "item-1", "traceId": "rest-trace"}), content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200
    run_id = stable_experiment_id(project_id=project.id, dataset_id=qa.id, run_name="v4 run")
    assert response.json()["datasetRunId"] == run_id
    export(client, api_key, item_spans(trace="8" * 32, root="81" * 8, task="82" * 8, experiment_id=run_id,
                                       dataset_id=str(qa.id), item_id="item-2", run_name="v4 run"))
    assert [r[:2] for r in run_items(project)] == [(run_id, "item-1"), (run_id, "item-2")]


# --- the experiment links the SDKs print ------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["other", "far"])
def test_the_sdk_experiment_links_open_the_run_for_its_project_only(client, request, project, owner, qa, tenant):
    run = DatasetRun.objects.for_project(project).create(id="0123456789abcdef", dataset_id=qa.id, name="nightly")
    admin_page = f"/admin/evals/evaluations/?project={project.id}"
    client.force_login(owner)
    console_run = f"/console/p/{project.id}/datasets/{qa.id}/runs/{run.id}/"
    v5 = client.get(f"/project/{project.id}/experiments/results", {"baseline": run.id})
    assert (v5.status_code, v5["Location"]) == (302, console_run)
    v4 = client.get(f"/project/{project.id}/datasets/{qa.id}/runs/{run.id}")
    assert (v4.status_code, v4["Location"]) == (302, console_run)
    assert client.get(console_run).status_code == 200
    # An experiment on local data has no dataset, hence no console run page: the evaluations page.
    local = DatasetRun.objects.for_project(project).create(id="fedcba9876543210", dataset_id=None, name="local")
    v5 = client.get(f"/project/{project.id}/experiments/results", {"baseline": local.id})
    assert (v5.status_code, v5["Location"]) == (302, f"{admin_page}&run={local.id}")
    # A run id this project does not have: the project's evaluations, no run.
    unknown = client.get(f"/project/{project.id}/experiments/results", {"baseline": "feedfacefeedface"})
    assert unknown["Location"] == admin_page
    client.logout()
    anonymous = client.get(f"/project/{project.id}/experiments/results", {"baseline": run.id})
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    client.force_login(request.getfixturevalue(f"{tenant}_owner"))
    assert client.get(f"/project/{project.id}/experiments/results", {"baseline": run.id}).status_code == 404
    assert client.get(f"/project/{project.id}/datasets/{qa.id}/runs/{run.id}").status_code == 404


def test_sdk_v4_posts_the_run_item_and_sends_the_spans_one_item_is_recorded(client, project, api_key, qa):
    # v4's run_experiment posts dataset-run-items (trace + task span) and then exports the spans.
    response = client.post("/api/public/dataset-run-items", data=json.dumps(
        {"runName": "v4", "datasetItemId": "item-1", "traceId": "6" * 32, "observationId": "62" * 8}),
        content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)
    run_id = response.json()["datasetRunId"]
    export(client, api_key, item_spans(trace="6" * 32, root="61" * 8, task="62" * 8, experiment_id=run_id,
                                       dataset_id=str(qa.id), item_id="item-1", run_name="v4"))
    assert run_items(project) == [(run_id, "item-1", "6" * 32, "62" * 8)]


# --- the message: the task spans' ids, never the experiment's content ---------------------------------


@pytest.fixture
def messages(monkeypatch):
    """The follower's messages, captured (still after commit) instead of run: a test delivers them."""
    sent: list[tuple[str, dict, str]] = []
    monkeypatch.setattr("tenancy.tasks.publish",
                        lambda task, *, kwargs, queue: sent.append((task.name, kwargs, queue)) or True)
    return sent


DESCRIBED = {
    "langfuse.experiment.description": "weekly regression, ask alice@example.com",
    "langfuse.experiment.metadata": '{"model": "m1", "owner": "alice@example.com"}',
}


def described_spans(qa, *, trace="5" * 32, root="51" * 8, task="52" * 8, run_id="0123456789abcdef",
                    item_id="item-1"):
    return item_spans(trace=trace, root=root, task=task, experiment_id=run_id, dataset_id=str(qa.id),
                      item_id=item_id, run_name="weekly", extra=DESCRIBED)


def written(project):
    """Every run and run item of the project, all columns: a second delivery must leave them as they are."""
    return (list(DatasetRun.objects.for_project(project).order_by("id").values()),
            list(DatasetRunItem.objects.for_project(project).order_by("id").values()))


def test_the_message_holds_the_task_spans_ids_and_no_experiment_content(client, project, api_key, qa, messages):
    export(client, api_key, described_spans(qa))
    task_span = {"observation_id": "52" * 8, "trace_id": "5" * 32, "experiment_id": "0123456789abcdef",
                 "dataset_id": str(qa.id), "item_id": "item-1"}
    assert messages == [("evals.record_experiment_spans", {"project_id": str(project.id), "task_spans": [task_span]},
                         "region.eu")]
    raw = json.dumps(messages)
    for content in ("weekly", "regression", "alice@example.com", "m1", "owner"):
        assert content not in raw
    assert written(project) == ([], [])  # nothing is recorded until the message is delivered


def test_delivered_it_records_what_the_spans_said_and_again_changes_nothing(client, project, api_key, qa, messages):
    spans = described_spans(qa)
    # What the message used to carry: the adapter's link, content and all.
    [link] = map_request(v5_request(spans)).experiments.values()
    export(client, api_key, spans)
    [(_, kwargs, _)] = messages
    assert record_experiment_spans(**kwargs) == {"linked": 1}
    run = DatasetRun.objects.for_project(project).get()
    assert (run.id, run.name, run.dataset_id, run.description, run.metadata) == (
        link.experiment_id, link.run_name, qa.id, link.description, link.metadata)
    assert run.description == DESCRIBED["langfuse.experiment.description"]
    assert run_items(project) == [(link.experiment_id, "item-1", "5" * 32, "52" * 8)]

    before = written(project)
    assert record_experiment_spans(**kwargs) == {"exists": 1}  # redelivered
    export(client, api_key, spans)  # the SDK re-sent the export: a second message for the same span
    assert record_experiment_spans(**messages[-1][1]) == {"exists": 1}
    assert written(project) == before


def test_another_projects_ids_record_nothing(
    client, project, api_key, qa, other_project, other_api_key, far_project, messages
):
    export(client, api_key, described_spans(qa))
    [(_, ours, _)] = messages
    theirs = Dataset.objects.for_project(other_project).create(name="qa")
    DatasetItem.objects.for_project(other_project).create(id="item-1", dataset_id=theirs.id, input="theirs")
    export(client, other_api_key, described_spans(theirs, trace="4" * 32, root="41" * 8, task="42" * 8))
    [_, (_, their_message, _)] = messages

    # Our span ids under another project (same region or not), theirs under ours, and a project that is gone.
    for project_id in (other_project.id, far_project.id):
        assert record_experiment_spans(project_id=str(project_id), task_spans=ours["task_spans"]) == {"not_stored": 1}
    assert record_experiment_spans(project_id=str(project.id), task_spans=their_message["task_spans"]) == {
        "not_stored": 1}
    assert record_experiment_spans(project_id=str(uuid.uuid4()), task_spans=ours["task_spans"]) == {}
    for tenant in (project, other_project, far_project):
        assert written(tenant) == ([], [])


def test_the_run_keeps_the_redacted_description_and_metadata_as_stored(client, project, api_key, qa, messages):
    redaction_policy_update(project=project, actor=None)  # every detector masks, email included
    # An item id that looks like an address: an id of our dataset item, which the message carries as is.
    DatasetItem.objects.for_project(project).create(id="bob@example.com", dataset_id=qa.id, input={"q": 3})
    export(client, api_key, described_spans(qa, item_id="bob@example.com"))
    [(_, kwargs, _)] = messages
    assert record_experiment_spans(**kwargs) == {"linked": 1}
    run = DatasetRun.objects.for_project(project).get()
    assert run.name == "weekly" and run.description.startswith("weekly regression, ask ")
    assert run.metadata["model"] == "m1"
    assert "alice@example.com" not in json.dumps([run.description, run.metadata])
    assert run_items(project) == [("0123456789abcdef", "bob@example.com", "5" * 32, "52" * 8)]


def test_a_message_queued_with_links_records_only_what_the_stored_spans_say(client, project, api_key, qa, messages):
    # Queued before the messages held ids only, it carries the adapter's links, content and all: only
    # their ids are read (the content here differs from the stored span's, to tell which is used).
    spans = described_spans(qa)
    [link] = map_request(v5_request(spans)).experiments.values()
    export(client, api_key, spans)
    legacy = {**dataclasses.asdict(link), "run_name": "other name", "description": "queued",
              "metadata": {"model": "queued"}}
    assert record_experiment_spans(project_id=str(project.id), links=[legacy]) == {"linked": 1}
    run = DatasetRun.objects.for_project(project).get()
    assert (run.name, run.description, run.metadata) == (
        "weekly", DESCRIBED["langfuse.experiment.description"], {"model": "m1", "owner": "alice@example.com"})
    assert run_items(project) == [("0123456789abcdef", "item-1", "5" * 32, "52" * 8)]
