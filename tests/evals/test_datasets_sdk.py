"""The real Langfuse SDKs manage datasets against a live server: the latest (installed here) creates
datasets and items and fetches them page by page; v2 (in its own cached virtualenv, through
tests/clients.py) also links a trace to an item in a dataset run (`item.link`) and reads the run."""

from __future__ import annotations

import json

import httpx
import pytest

from evals.models import DatasetItem, DatasetRun, DatasetRunItem
from tests.clients import SdkUnavailable, run_sdk_script, sdk_python
from traces.models import Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _sdk(live_server, key):
    from langfuse import Langfuse

    # Our own HTTP client, closed after the test: a kept-alive socket would pin a live-server thread.
    http = httpx.Client()
    client = Langfuse(
        public_key=key.public,
        secret_key=key.secret,
        base_url=live_server.url,
        tracing_enabled=False,
        httpx_client=http,
    )
    return client, http


@pytest.fixture
def langfuse(live_server, api_key):
    client, http = _sdk(live_server, api_key)
    yield client
    client.shutdown()
    http.close()


SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}


def test_the_latest_sdk_creates_a_dataset_and_items_and_fetches_every_page(langfuse, project):
    created = langfuse.create_dataset(
        name="sdk/qa", description="support questions", metadata={"owner": "ada"}, input_schema=SCHEMA
    )
    assert (created.name, created.description, created.input_schema) == ("sdk/qa", "support questions", SCHEMA)
    assert created.project_id == str(project.id)

    for index in range(7):
        item = langfuse.create_dataset_item(
            dataset_name="sdk/qa",
            id=f"case-{index}",
            input={"question": f"q{index}"},
            expected_output=f"a{index}",
            metadata={"index": index},
            source_trace_id=f"trace-{index}",
        )
        assert (item.id, item.dataset_name, item.media_references) == (f"case-{index}", "sdk/qa", [])
    # Upsert by id: a partial update keeps what was not sent.
    updated = langfuse.create_dataset_item(dataset_name="sdk/qa", id="case-0", expected_output="A0")
    assert (updated.input, updated.expected_output, updated.metadata) == ({"question": "q0"}, "A0", {"index": 0})
    langfuse.create_dataset_item(dataset_name="sdk/qa", id="case-6", status="ARCHIVED")

    # Pages of 3 over 6 ACTIVE items: the SDK stops on totalPages, so a wrong count would cut it short.
    dataset = langfuse.get_dataset("sdk/qa", fetch_items_page_size=3)
    assert dataset.name == "sdk/qa"
    assert sorted(item.id for item in dataset.items) == [f"case-{i}" for i in range(6)]
    by_id = {item.id: item for item in dataset.items}
    assert (by_id["case-3"].input, by_id["case-3"].expected_output) == ({"question": "q3"}, "a3")
    assert by_id["case-3"].source_trace_id == "trace-3"

    fetched = langfuse.api.dataset_items.get(id="case-6")
    assert fetched.status == "ARCHIVED"
    listed = langfuse.api.dataset_items.list(source_trace_id="trace-1")
    assert [i.id for i in listed.data] == ["case-1"]
    page = langfuse.api.datasets.list(page=1, limit=10)
    assert [d.name for d in page.data] == ["sdk/qa"] and page.meta.total_pages == 1
    assert DatasetItem.objects.for_project(project).count() == 7


def test_the_latest_sdk_gets_a_clear_error_for_an_item_outside_the_schema(langfuse):
    from langfuse.api.core.api_error import ApiError

    langfuse.create_dataset(name="strict", input_schema=SCHEMA)
    with pytest.raises(ApiError) as raised:
        langfuse.create_dataset_item(dataset_name="strict", input={"question": 42})
    assert raised.value.status_code == 400
    assert raised.value.body["message"] == (
        "Dataset item validation failed: input does not match the dataset's input schema at $.question: "
        "42 is not of type 'string'"
    )


def test_the_latest_sdk_cannot_see_another_projects_dataset(langfuse, live_server, other_api_key):
    from langfuse.api import NotFoundError

    other, http = _sdk(live_server, other_api_key)
    try:
        other.create_dataset(name="neighbour")
        other.create_dataset_item(dataset_name="neighbour", id="their-item", input="secret")
        with pytest.raises(NotFoundError):
            langfuse.get_dataset("neighbour")
        with pytest.raises(NotFoundError):
            langfuse.api.dataset_items.get(id="their-item")
    finally:
        other.shutdown()
        http.close()


V2_SCRIPT = """
import json, os
from langfuse import Langfuse

lf = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
lf.create_dataset(name="v2/qa", description="from v2")
lf.create_dataset_item(dataset_name="v2/qa", id="v2-item-1", input={"q": "2+2"}, expected_output="4")
lf.create_dataset_item(dataset_name="v2/qa", id="v2-item-2", input={"q": "3+3"}, expected_output="6")
dataset = lf.get_dataset("v2/qa")
out = {"items": sorted(item.id for item in dataset.items)}
for item in dataset.items:
    trace = lf.trace(id="v2-trace-" + item.id, name="answer", input=item.input)
    generation = trace.generation(id="v2-gen-" + item.id, name="llm", input=item.input, output="4")
    if item.id == "v2-item-1":
        item.link(trace, "v2-run", run_description="first run", run_metadata={"model": "m"})
    else:
        item.link(generation, "v2-run")
lf.flush()
run = lf.get_dataset_run("v2/qa", "v2-run")
out["run"] = {"name": run.name, "description": run.description, "metadata": run.metadata,
              "links": sorted([ri.dataset_item_id, ri.trace_id, ri.observation_id] for ri in run.dataset_run_items)}
out["runs"] = [r.name for r in lf.get_dataset_runs("v2/qa").data]
lf.shutdown()
print(json.dumps(out))
"""


def test_the_v2_sdk_links_traces_to_items_in_a_run(live_server, api_key, project):
    try:
        python = sdk_python("langfuse-v2", "langfuse==2.60.*")
    except SdkUnavailable as exc:
        pytest.skip(f"langfuse v2 could not be installed: {exc}")
    out = run_sdk_script(
        python, V2_SCRIPT, env={"PK": api_key.public, "SK": api_key.secret, "HOST": live_server.url}
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {
        "items": ["v2-item-1", "v2-item-2"],
        "run": {
            "name": "v2-run",
            "description": "first run",
            "metadata": {"model": "m"},
            "links": [
                ["v2-item-1", "v2-trace-v2-item-1", None],
                ["v2-item-2", "v2-trace-v2-item-2", "v2-gen-v2-item-2"],
            ],
        },
        "runs": ["v2-run"],
    }
    run = DatasetRun.objects.for_project(project).get(name="v2-run")
    links = DatasetRunItem.objects.for_project(project).filter(run_id=run.id)
    # The linked traces arrived through ingestion in the same project.
    assert set(Trace.objects.for_project(project).values_list("id", flat=True)) >= {ri.trace_id for ri in links}
