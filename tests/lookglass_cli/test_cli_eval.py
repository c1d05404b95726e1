"""`lookglass eval run` in a subprocess against a live server: every exit status (0 passed,
1 threshold failed, 2 inconclusive, 3 error), the JUnit report, the run recorded as an experiment
(traces, run items, EVAL scores) and regressions against a baseline run."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from evals.models import Dataset, DatasetItem, DatasetRun, DatasetRunItem
from scores.models import Score
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

BOT = '''
import asyncio
from lookglass import TargetResult

ANSWERS = {"capital of France": "It is Paris.", "2+2": "4", "color of the sky": "The sky is blue."}

def good(input):
    return ANSWERS[input["q"]]

def worse(input):
    return "I do not know" if input["q"] == "2+2" else ANSWERS[input["q"]]

def broken(input):
    raise RuntimeError("provider answered 404")

def half_broken(input):
    if input["q"] == "color of the sky":
        raise RuntimeError("timeout")
    return ANSWERS[input["q"]]

class Answer:
    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text

def objects(input):
    return {"answer": Answer(ANSWERS[input["q"]]), "confidence": float("nan")}

async def good_async(input, item):
    await asyncio.sleep(0.01)
    return TargetResult(ANSWERS[input["q"]], cost=0.002 if item["id"] != "sky" else 0.05)
'''


@pytest.fixture
def dataset(project):
    dataset = Dataset.objects.for_project(project).create(name="ci/regression")
    for item_id, question, expected in (
        ("france", "capital of France", "Paris"),
        ("math", "2+2", "4"),
        ("sky", "color of the sky", "blue"),
    ):
        DatasetItem.objects.for_project(project).create(
            id=item_id, dataset_id=dataset.id, input={"q": question}, expected_output=expected
        )
    return dataset


@pytest.fixture
def cli(live_server, api_key, tmp_path):
    (tmp_path / "bot.py").write_text(BOT)

    def run(*args, key=api_key, env_prefix="LOOKGLASS"):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "LOOKGLASS_", "DJANGO_"))}
        env.update(
            {
                f"{env_prefix}_PUBLIC_KEY": key.public,
                f"{env_prefix}_SECRET_KEY": key.secret,
                f"{env_prefix}_HOST": live_server.url,
                "COLUMNS": "200",
            }
        )
        return subprocess.run(
            [sys.executable, "-m", "lookglass", "eval", "run", "--dataset", "ci/regression", *args],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )

    return run


def junit(path):
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    return root, {case.get("name"): case for case in suite.iter("testcase")}


def test_a_passing_run_exits_0_and_is_recorded_as_an_experiment(cli, dataset, project, tmp_path):
    proc = cli(
        "--target", "bot:good", "--evaluator", "contains", "--evaluator", "max_latency=5000",
        "--run-name", "pr-1", "--junit", "out/report.xml",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout and "3 items, 0 errored" in proc.stdout

    root, cases = junit(tmp_path / "out" / "report.xml")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "0", "0")
    assert set(cases) == {"contains: every item passes", "max_latency: every item passes", "france", "math", "sky"}
    assert "contains: PASS 1 — output contains 'Paris'" in cases["france"].find("system-out").text

    run = DatasetRun.objects.for_project(project).get(dataset_id=dataset.id, name="pr-1")
    run_items = DatasetRunItem.objects.for_project(project).filter(run_id=run.id)
    assert sorted(r.dataset_item_id for r in run_items) == ["france", "math", "sky"]
    for run_item in run_items:
        trace = Trace.objects.for_project(project).get(id=run_item.trace_id)
        assert trace.environment == "sdk-experiment"
        assert trace.metadata["dataset_item_id"] == run_item.dataset_item_id
        task = Observation.objects.for_project(project).get(id=run_item.observation_id)
        assert task.name == "experiment-item-task" and task.trace_id == trace.id
        scores = {s.name: s for s in Score.objects.for_project(project).filter(trace_id=trace.id)}
        assert set(scores) == {"contains", "max_latency"}
        assert scores["contains"].source == "EVAL" and scores["contains"].value == 1.0
        assert scores["contains"].comment.startswith("output contains")
        assert scores["contains"].observation_id == run_item.observation_id


def test_a_failed_threshold_exits_1_and_reports_regressions_against_the_baseline(cli, dataset, project, tmp_path):
    assert cli("--target", "bot:good", "--run-name", "main").returncode == 0
    proc = cli(
        "--target", "bot:worse", "--evaluator", "contains", "--evaluator", "similarity",
        "--threshold", "contains=0.9", "--threshold", "similarity=0.1",
        "--baseline", "latest", "--run-name", "pr-2", "--junit", "report.xml",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and "baseline 'main'" in proc.stdout
    assert "regressions (passed in the baseline, fail now)" in proc.stdout
    assert "math" in proc.stdout and "output does not contain '4'" in proc.stdout

    root, cases = junit(tmp_path / "report.xml")
    assert (root.get("failures"), root.get("errors")) == ("1", "0")
    failure = cases["contains: mean ≥ 0.9"].find("failure")
    assert failure is not None and "2/3 passed" in failure.get("message")
    assert "regression math: baseline 1: output contains '4'" in failure.text
    # The baseline had no similarity score: a threshold met, nothing to compare.
    assert cases["similarity: mean ≥ 0.1"].find("failure") is None
    # An explicit baseline by name gives the same regression; the baseline run is untouched.
    again = cli("--target", "bot:worse", "--baseline", "main", "--run-name", "pr-3")
    assert again.returncode == 1 and "output does not contain '4'" in again.stdout
    assert DatasetRun.objects.for_project(project).filter(dataset_id=dataset.id).count() == 3


def test_every_item_erroring_is_inconclusive_exit_2_with_junit_errors(cli, dataset, tmp_path):
    proc = cli("--target", "bot:broken", "--threshold", "contains=0.5", "--junit", "report.xml")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "INCONCLUSIVE" in proc.stdout and "RuntimeError: provider answered 404" in proc.stdout
    root, cases = junit(tmp_path / "report.xml")
    assert (root.get("failures"), root.get("errors")) == ("0", "3")
    error = cases["sky"].find("error")
    assert error.get("type") == "RuntimeError" and "Traceback" in error.text


def test_some_items_erroring_is_not_inconclusive_and_errors_are_reported(cli, dataset, tmp_path):
    proc = cli("--target", "bot:half_broken", "--junit", "report.xml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 items, 1 errored" in proc.stdout
    root, cases = junit(tmp_path / "report.xml")
    assert (root.get("failures"), root.get("errors")) == ("0", "1")
    assert cases["sky"].find("error").get("message") == "RuntimeError: timeout"


def test_an_async_target_with_its_item_and_cost_under_langfuse_variables(cli, dataset, project, tmp_path):
    proc = cli(
        "--target", "bot.py:good_async", "--evaluator", "max_cost=0.01", "--evaluator",
        'contains:{"name": "mentions-answer"}', "--concurrency", "3", "--run-name", "async",
        env_prefix="LANGFUSE",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the sky item cost $0.05
    assert "$0.05 > $0.01" not in proc.stdout  # reasons of failed items are in JUnit, not the table
    run = DatasetRun.objects.for_project(project).get(name="async")
    trace_ids = list(DatasetRunItem.objects.for_project(project).filter(run_id=run.id).values_list("trace_id", flat=True))
    costs = sorted(
        o.total_cost for o in Observation.objects.for_project(project).filter(trace_id__in=trace_ids)
    )
    assert [float(c) for c in costs] == [0.002, 0.002, 0.05]
    names = set(Score.objects.for_project(project).filter(trace_id__in=trace_ids).values_list("name", flat=True))
    assert names == {"max_cost", "mentions-answer"}


@pytest.mark.parametrize(
    "args, message",
    [
        (("--target", "bot:good", "--evaluator", "regex=(a)\\1"), "backreferences"),
        (("--target", "bot:good", "--evaluator", "contain"), "unknown evaluator 'contain'"),
        (("--target", "bot:good", "--threshold", "exact_match=1"), "--threshold names no evaluator: exact_match"),
        (("--target", "bot:nope"), "bot has no nope"),
        (("--target", "bot:good", "--baseline", "nope"), "has no run 'nope'"),
        (("--target", "bot:good", "--concurrency"), "expected one argument"),
    ],
)
def test_configuration_errors_exit_3_with_a_reason(cli, dataset, args, message):
    proc = cli(*args)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert message in " ".join(proc.stderr.split())


def test_another_tenants_dataset_is_not_found(cli, dataset, other_api_key, far_api_key):
    for key in (other_api_key, far_api_key):
        proc = cli("--target", "bot:good", key=key)
        assert proc.returncode == 3
        assert "no dataset named 'ci/regression'" in " ".join(proc.stderr.split())


def test_the_json_schema_evaluator_reads_a_schema_file(cli, dataset, tmp_path):
    (tmp_path / "schema.json").write_text('{"type": "object"}')
    proc = cli("--target", "bot:good", "--evaluator", "json_schema=@schema.json", "--junit", "r.xml")
    assert proc.returncode == 1
    _, cases = junit(tmp_path / "r.xml")
    assert "json_schema: FAIL 0 — output is not valid JSON" in cases["france"].find("system-out").text


def test_a_judge_on_the_server_scores_through_a_fake_openai_compatible_model(cli, dataset, project, settings, tmp_path):
    """`--evaluator judge:NAME`: the server judges each item with its LLM connection (here a fake
    OpenAI-compatible server on loopback answering 0.75), the CLI gates on the verdicts and records
    them once (the judge endpoint writes no score of its own unless asked)."""
    from evals import eval_services
    from evals.fakejudge import FakeJudge

    settings.OUTBOUND_ALLOW_PRIVATE = True
    with FakeJudge() as judge:
        eval_services.connection_upsert(project=project, provider="openai", adapter="openai", secret_key="sk-fake-12345678",
                                        base_url=judge.url, default_model="judge", max_retries=0)
        eval_services.evaluator_create(project=project, data={"name": "correctness", "template": "correctness"})
        passed = cli("--target", "bot:good", "--evaluator", "judge:correctness", "--threshold", "correctness=0.7")
        assert passed.returncode == 0, passed.stdout + passed.stderr
        failed = cli("--target", "bot:good", "--evaluator", "judge:correctness", "--threshold", "correctness=0.9")
        assert failed.returncode == 1, failed.stdout + failed.stderr
    assert len(judge.requests) == 6
    assert all("Paris" in r["messages"][0]["content"] or "4" in r["messages"][0]["content"] or "blue" in r["messages"][0]["content"]
               for r in judge.requests)
    run = DatasetRun.objects.for_project(project).order_by("created_at").first()
    trace_ids = list(DatasetRunItem.objects.for_project(project).filter(run_id=run.id).values_list("trace_id", flat=True))
    scores = Score.objects.for_project(project).filter(trace_id__in=trace_ids, name="correctness")
    assert sorted(scores.values_list("value", flat=True)) == [0.75, 0.75, 0.75]

def test_a_server_without_the_judge_endpoint_is_a_clear_error(cli, dataset, settings):
    settings.ROOT_URLCONF = "tests.lookglass_cli.urls_without_judge"
    proc = cli("--target", "bot:good", "--evaluator", "judge:correctness")
    assert proc.returncode == 3
    assert "the server has no judge endpoint" in " ".join(proc.stderr.split())


def test_judges_score_through_the_server_and_gate_with_the_rules(cli, dataset, project, settings, tmp_path):
    settings.ROOT_URLCONF = "tests.lookglass_cli.urls_fake_judge"
    assert cli("--target", "bot:good", "--evaluator", "judge:nope").returncode == 3
    proc = cli(
        "--target", "bot:worse", "--evaluator", "judge:correctness", "--evaluator", "judge:hallucination",
        "--threshold", "correctness=0.6", "--run-name", "judged", "--junit", "j.xml",
    )
    # correctness: 2/3 ≥ 0.6 passes; hallucination (higher is worse, no threshold) fails on math.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _, cases = junit(tmp_path / "j.xml")
    assert cases["correctness: mean ≥ 0.6"].find("failure") is None
    assert "hallucination: FAIL 1 — expected '4' missing" in cases["math"].find("system-out").text
    assert cases["hallucination: every item passes"].find("failure") is not None
    run = DatasetRun.objects.for_project(project).get(name="judged")
    trace_ids = DatasetRunItem.objects.for_project(project).filter(run_id=run.id).values_list("trace_id", flat=True)
    judged = Score.objects.for_project(project).filter(trace_id__in=list(trace_ids), name="correctness")
    assert sorted(s.value for s in judged) == [0.0, 1.0, 1.0]
    assert {s.source for s in judged} == {"EVAL"}


def test_an_evaluator_that_errors_on_every_item_fails_its_gate(cli, project, tmp_path):
    dataset = Dataset.objects.for_project(project).create(name="ci/no-expected")
    DatasetItem.objects.for_project(project).create(id="open", dataset_id=dataset.id, input={"q": "2+2"})
    proc = cli("--dataset", "ci/no-expected", "--target", "bot:good", "--evaluator", "contains", "--junit", "r.xml")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _, cases = junit(tmp_path / "r.xml")
    assert cases["contains: no item scored"].find("failure") is not None
    assert "contains: ERROR — contains: no `value` configured" in cases["open"].find("system-out").text


def test_outputs_that_are_not_json_are_recorded_by_their_string_form(cli, dataset, project):
    proc = cli("--target", "bot:objects", "--run-name", "objects")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = DatasetRun.objects.for_project(project).get(name="objects")
    run_item = DatasetRunItem.objects.for_project(project).get(run_id=run.id, dataset_item_id="france")
    trace = Trace.objects.for_project(project).get(id=run_item.trace_id)
    assert trace.output == {"answer": "It is Paris.", "confidence": None}
