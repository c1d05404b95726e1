"""Datasets, runs and scores for the console's Judge tests: a dataset of three items run twice,
where the candidate run fails item i1 on `accuracy` that the baseline passed (a regression)."""

from __future__ import annotations

from evals.models import Dataset, DatasetItem
from evals.services import run_item_create
from ingest.services import create_scores
from tests.console.support import llm_call

BASELINE = {"i0": 1.0, "i1": 0.9, "i2": 0.2}
CANDIDATE = {"i0": 1.0, "i1": 0.1, "i2": 0.8}


def seed_runs(project):
    dataset = Dataset.objects.for_project(project).create(name="qa-set", description="questions with answers")
    for item, _ in BASELINE.items():
        DatasetItem.objects.for_project(project).create(id=item, dataset_id=dataset.id, input={"q": f"question {item}"},
                                                        expected_output=f"answer {item}")
    runs = {}
    for run_name, values in (("baseline", BASELINE), ("candidate", CANDIDATE)):
        for item, value in values.items():
            trace_id = f"{run_name}-{item}"
            llm_call(project, trace_id, question=f"question {item}", answer="an answer")
            _, runs[run_name] = run_item_create(project=project, run_name=run_name, run_description=None,
                                                metadata=None, dataset_item_id=item, trace_id=trace_id,
                                                observation_id=None)
            result = create_scores(project=project, bodies=[{"traceId": trace_id, "name": "accuracy", "value": value,
                                                              "dataType": "NUMERIC"}], public_only=True)
            assert not result.errors, result.errors
    return dataset, runs
