"""`lookglass eval run`: run a target over a dataset, score it, record it, gate on thresholds.

For each ACTIVE item of the dataset (bounded concurrency):
1. call the target with the item's input (in a thread when it is synchronous) and time it;
2. score the output with the rule evaluators here, and with judges through the server;
3. record it as an experiment item: one trace (environment `sdk-experiment`, as the Langfuse v5
   SDK's experiments) with a task span, the scores (source EVAL, the reason as comment, ids derived
   from the trace and the score name so a retry updates instead of duplicating), and the dataset run
   item that links the trace to the item in run `--run-name`.
Then the gates: each threshold against the mean score, regressions against the baseline run (items
whose score passed there and fails now), and the exit status: 0 passed, 1 a threshold failed,
2 inconclusive (every item errored, or no items), 3 configuration or server error.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import inspect
import math
import os
import sys
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lookglass.api import Api, ApiError, ConfigError
from lookglass.evaluators import DataType, Evaluator, EvaluatorError, Result
from lookglass.specs import Judge
from lookglass.target import TargetResult

EXIT_PASSED, EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_ERROR = 0, 1, 2, 3
ENVIRONMENT = "sdk-experiment"
SCORE_NAMESPACE = uuid.UUID("5b0c3f0e-8f0a-4c55-9a7e-6c6f6f6b676c")


# --- the target ---------------------------------------------------------------------------------


def load_target(spec: str):
    """`package.module:function` (imported with the working directory on the path) or
    `path/to/file.py:function`; dotted attributes after the colon are followed."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"--target {spec!r}: write module:function or path/to/file.py:function")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name).resolve()
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or not path.exists():
                raise ConfigError(f"--target {spec!r}: no file {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[path.stem] = module
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any import-time error of the user's module is reported as such
        raise ConfigError(f"--target {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    target = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"--target {spec!r}: {module_name} has no {attribute}")
    if not callable(target):
        raise ConfigError(f"--target {spec!r}: {attribute} is not callable")
    return target


def _wants_item(target) -> bool:
    try:
        return "item" in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


# --- outcomes -----------------------------------------------------------------------------------


@dataclass
class ItemOutcome:
    item: dict
    trace_id: str
    output: Any = None
    error: str | None = None  # the target raised: "Type: message"
    error_detail: str = ""
    latency_ms: float | None = None
    cost: float | None = None
    status: str | None = None
    metadata: dict = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)
    eval_errors: dict[str, str] = field(default_factory=dict)
    record_errors: list[str] = field(default_factory=list)

    @property
    def item_id(self) -> str:
        return self.item["id"]


@dataclass
class Regression:
    item_id: str
    name: str
    baseline: str
    now: str


@dataclass
class Gate:
    name: str
    data_type: DataType
    scored: int
    passed: int
    mean: float | None
    threshold: float | None
    errors: int
    regressions: list[Regression] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.scored == 0:
            # Nothing to judge by: an evaluator that errored on every item must not pass the gate
            # (a run where every target errored is inconclusive instead: Report.exit_code).
            return self.errors == 0
        if self.threshold is None:
            return self.passed == self.scored
        return self.mean is not None and self.mean >= self.threshold

    @property
    def rule(self) -> str:
        if self.scored == 0 and self.errors:
            return "no item scored"
        return f"mean ≥ {self.threshold:g}" if self.threshold is not None else "every item passes"


@dataclass
class Report:
    dataset: str
    run_name: str
    baseline: str | None
    outcomes: list[ItemOutcome]
    gates: list[Gate]
    started_at: datetime
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def errored(self) -> int:
        return sum(1 for o in self.outcomes if o.error is not None)

    @property
    def inconclusive(self) -> bool:
        return not self.outcomes or self.errored == len(self.outcomes)

    @property
    def exit_code(self) -> int:
        if self.inconclusive:
            return EXIT_INCONCLUSIVE
        return EXIT_PASSED if all(g.ok for g in self.gates) else EXIT_FAILED


# --- the run ------------------------------------------------------------------------------------


@dataclass
class RunConfig:
    dataset: str
    target: Any
    evaluators: list[Evaluator | Judge]
    thresholds: dict[str, float]
    run_name: str
    run_description: str | None = None
    baseline: str | None = None  # "latest", a run name, or None
    concurrency: int = 4
    metadata: dict = field(default_factory=dict)


def jsonable(value):
    """The value as JSON can carry it: a target may return objects (a pydantic model, a dataclass),
    recorded by their string form, and NaN or infinity, recorded as null, rather than failing the
    item's recording."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def score_names(evaluators) -> list[str]:
    return [e.name for e in evaluators]


class Runner:
    def __init__(self, api: Api, config: RunConfig, *, progress=None, on_items=None):
        self.api, self.config, self.progress, self.on_items = api, config, progress, on_items
        self.is_async = inspect.iscoroutinefunction(config.target)
        self.wants_item = _wants_item(config.target)
        self.executor = ThreadPoolExecutor(max_workers=max(1, config.concurrency), thread_name_prefix="lookglass-target")
        self.warnings: list[str] = []

    async def run(self) -> Report:
        config = self.config
        names = score_names(config.evaluators)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"two evaluators write the score {', '.join(duplicates)}; give one a `name`")
        unknown = sorted(set(config.thresholds) - set(names))
        if unknown:
            raise ConfigError(f"--threshold names no evaluator: {', '.join(unknown)} (scores: {', '.join(names)})")
        try:
            dataset = await self.api.dataset(config.dataset)
            items = await self.api.dataset_items(config.dataset)
            baseline_name, baseline = await self._baseline(names)
            await self._judge_preflight()
        except ApiError as exc:
            if exc.status == 404 and "Dataset" in str(exc):
                raise ConfigError(f"no dataset named {config.dataset!r} in this project") from None
            raise
        if self.on_items is not None:
            self.on_items(len(items))
        started_at, clock = datetime.now(UTC), time.perf_counter()
        semaphore = asyncio.Semaphore(max(1, config.concurrency))

        async def one(item):
            async with semaphore:
                outcome = await self._item(dataset, item)
            if self.progress is not None:
                self.progress(outcome)
            return outcome

        try:
            outcomes = await asyncio.gather(*(one(item) for item in items))
        finally:
            self.executor.shutdown(wait=False, cancel_futures=True)
        gates = self._gates(outcomes, baseline)
        for outcome in outcomes:
            self.warnings.extend(f"item {outcome.item_id}: not recorded: {e}" for e in outcome.record_errors)
        return Report(
            config.dataset, config.run_name, baseline_name, outcomes, gates, started_at,
            time.perf_counter() - clock, self.warnings,
        )

    # --- baseline -------------------------------------------------------------------------------

    async def _baseline(self, names: list[str]) -> tuple[str | None, dict[tuple[str, str], dict]]:
        """(run name, {(item id, score name): score}) of the baseline run, or (None, {})."""
        wanted = self.config.baseline
        if not wanted:
            return None, {}
        if wanted == "latest":
            runs = [r for r in await self.api.runs(self.config.dataset) if r["name"] != self.config.run_name]
            if not runs:
                self.warnings.append("no earlier run to compare with (--baseline latest)")
                return None, {}
            wanted = runs[0]["name"]
        try:
            run = await self.api.run(self.config.dataset, wanted)
        except ApiError as exc:
            if exc.status == 404:
                raise ConfigError(f"--baseline: dataset {self.config.dataset!r} has no run {wanted!r}") from None
            raise
        semaphore = asyncio.Semaphore(8)

        async def scores_of(run_item):
            async with semaphore:
                return run_item["datasetItemId"], await self.api.trace_scores(run_item["traceId"])

        found: dict[tuple[str, str], dict] = {}
        # Newest run item first: when an item was run twice under one name, its last attempt counts.
        run_items = sorted(run["datasetRunItems"], key=lambda r: r["createdAt"], reverse=True)
        seen = set()
        unique = [r for r in run_items if not (r["datasetItemId"] in seen or seen.add(r["datasetItemId"]))]
        for item_id, scores in await asyncio.gather(*(scores_of(r) for r in unique)):
            for score in scores:
                if score["name"] in names:
                    found.setdefault((item_id, score["name"]), score)
        return wanted, found

    async def _judge_preflight(self) -> None:
        """Before any target runs: the server has the judge endpoint (an empty request is a 400
        there, a 404/405 on a server without it) and every judge named exists."""
        judges = [e for e in self.config.evaluators if isinstance(e, Judge)]
        if not judges:
            return
        try:
            await self.api.judge({})
        except ApiError as exc:
            if exc.status in (404, 405):
                raise ConfigError(
                    f"judge:{judges[0].name}: the server has no judge endpoint (POST /api/public/lookglass/judge "
                    f"answered {exc.status}); run rule evaluators only, or upgrade the server"
                ) from None
            if exc.status != 400:
                raise
        else:
            raise ConfigError("the server's judge endpoint accepted an empty request; refusing to guess its contract")
        known = await self.api.evaluator_names()
        if known is not None:
            missing = [j.name for j in judges if j.name not in known]
            if missing:
                raise ConfigError(
                    f"no evaluator named {', '.join(missing)} on the server (known: {', '.join(sorted(known)) or 'none'})"
                )

    # --- one item -------------------------------------------------------------------------------

    async def _call_target(self, item: dict):
        target = self.config.target
        args = (item.get("input"),)
        kwargs = {"item": item} if self.wants_item else {}
        if self.is_async:
            return await target(*args, **kwargs)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.executor, functools.partial(target, *args, **kwargs))
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _item(self, dataset: dict, item: dict) -> ItemOutcome:
        outcome = ItemOutcome(item=item, trace_id=uuid.uuid4().hex)
        start = datetime.now(UTC)
        clock = time.perf_counter()
        try:
            result = await self._call_target(item)
        except Exception as exc:  # noqa: BLE001 - the user's code: any failure is this item's error
            outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.error_detail = "".join(traceback.format_exception(exc))
        else:
            if isinstance(result, TargetResult):
                outcome.output, outcome.cost, outcome.status = result.output, result.cost, result.status
                outcome.metadata = dict(result.metadata)
            else:
                outcome.output = result
        outcome.latency_ms = (time.perf_counter() - clock) * 1000
        end = datetime.now(UTC)
        if outcome.error is None:
            await self._score(outcome, item)
        await self._record(dataset, outcome, start, end)
        return outcome

    async def _score(self, outcome: ItemOutcome, item: dict) -> None:
        for evaluator in self.config.evaluators:
            try:
                if isinstance(evaluator, Judge):
                    result = await self._judge(evaluator, outcome, item)
                else:
                    result = evaluator(
                        output=outcome.output,
                        expected=item.get("expectedOutput"),
                        input=item.get("input"),
                        latency_ms=outcome.latency_ms,
                        cost=outcome.cost,
                        status=outcome.status,
                    )
            except EvaluatorError as exc:
                outcome.eval_errors[evaluator.name] = str(exc)
            except ApiError as exc:
                outcome.eval_errors[evaluator.name] = f"judge: {exc}"
            except Exception as exc:  # noqa: BLE001 - an evaluator bug must not abort the other items
                outcome.eval_errors[evaluator.name] = f"{type(exc).__name__}: {exc}"
            else:
                outcome.results[result.name] = result

    async def _judge(self, judge: Judge, outcome: ItemOutcome, item: dict) -> Result:
        # No traceId: the server would write the score itself, and the trace is recorded after
        # scoring; the CLI writes the judge's score with the others.
        answer = await self.api.judge(
            {
                "evaluator": judge.name,
                "input": item.get("input"),
                "output": outcome.output,
                "expectedOutput": item.get("expectedOutput"),
                "metadata": item.get("metadata"),
                "latencyMs": outcome.latency_ms,
                "cost": outcome.cost,
            }
        )
        value = answer.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EvaluatorError(f"the judge answered no numeric value (a categorical judge cannot gate): {answer!r:.200}")
        data_type = DataType.BOOLEAN if answer.get("dataType") == "BOOLEAN" else DataType.NUMERIC
        higher_is_better = answer.get("higherIsBetter") is not False
        good = value >= 1 if data_type == DataType.BOOLEAN else value >= 0.5
        if not higher_is_better:  # e.g. hallucination: 1 = hallucinated
            good = value <= 0 if data_type == DataType.BOOLEAN else value < 0.5
        reason = str(answer.get("reasoning") or "")
        return Result(judge.name, float(value), good, reason, data_type)

    async def _record(self, dataset: dict, outcome: ItemOutcome, start: datetime, end: datetime) -> None:
        config, item = self.config, outcome.item
        observation_id = uuid.uuid4().hex[:16]
        failed = outcome.error is not None
        output = f"Error: {outcome.error}" if failed else jsonable(outcome.output)
        shared = {
            "experiment_run_name": config.run_name,
            "dataset_id": dataset["id"],
            "dataset_item_id": item["id"],
            "source": "lookglass-cli",
        }
        span = {
            "id": observation_id,
            "traceId": outcome.trace_id,
            "name": "experiment-item-task",
            "startTime": _iso(start),
            "endTime": _iso(end),
            "input": item.get("input"),
            "output": output,
            "environment": ENVIRONMENT,
            "metadata": jsonable({**shared, **outcome.metadata}),
        }
        if failed:
            span.update(level="ERROR", statusMessage=outcome.error[:1000])
        span_type = "span-create"
        if outcome.cost is not None:
            span_type, span["costDetails"] = "generation-create", {"total": outcome.cost}
        events = [
            {
                "id": uuid.uuid4().hex,
                "type": "trace-create",
                "timestamp": _iso(end),
                "body": {
                    "id": outcome.trace_id,
                    "name": f"lookglass eval: {config.dataset}",
                    "timestamp": _iso(start),
                    "input": item.get("input"),
                    "output": output,
                    "environment": ENVIRONMENT,
                    "metadata": {**shared, "latency_ms": round(outcome.latency_ms or 0, 3)},
                    "tags": ["lookglass-eval"],
                },
            },
            {"id": uuid.uuid4().hex, "type": span_type, "timestamp": _iso(end), "body": span},
        ]
        for result in outcome.results.values():
            events.append(
                {
                    "id": uuid.uuid4().hex,
                    "type": "score-create",
                    "timestamp": _iso(end),
                    "body": {
                        "id": str(uuid.uuid5(SCORE_NAMESPACE, f"{outcome.trace_id}\0{result.name}")),
                        "traceId": outcome.trace_id,
                        "observationId": observation_id,
                        "name": result.name,
                        "value": result.value,
                        "dataType": str(result.data_type),
                        "source": "EVAL",
                        "comment": result.reason,
                        "environment": ENVIRONMENT,
                        "metadata": {"passed": result.passed, "run_name": config.run_name},
                    },
                }
            )
        try:
            outcome.record_errors.extend(await self.api.ingest(events))
            await self.api.run_item(
                {
                    "runName": config.run_name,
                    "runDescription": config.run_description,
                    "metadata": config.metadata or None,
                    "datasetItemId": item["id"],
                    "traceId": outcome.trace_id,
                    "observationId": observation_id,
                }
            )
        except ApiError as exc:
            outcome.record_errors.append(str(exc))

    # --- gates ----------------------------------------------------------------------------------

    def _gates(self, outcomes: list[ItemOutcome], baseline: dict) -> list[Gate]:
        gates = []
        for evaluator in self.config.evaluators:
            name = evaluator.name
            results = [(o, o.results[name]) for o in outcomes if name in o.results]
            values = [r.value for _, r in results]
            data_type = results[0][1].data_type if results else getattr(evaluator, "data_type", DataType.NUMERIC)
            gate = Gate(
                name=name,
                data_type=data_type,
                scored=len(results),
                passed=sum(1 for _, r in results if r.passed),
                mean=sum(values) / len(values) if values else None,
                threshold=self.config.thresholds.get(name),
                errors=sum(1 for o in outcomes if name in o.eval_errors),
            )
            for outcome, result in results:
                before = baseline.get((outcome.item_id, name))
                if before is not None and not result.passed and _passed(before, evaluator):
                    gate.regressions.append(
                        Regression(outcome.item_id, name, _describe(before), f"{result.value:g}: {result.reason}")
                    )
            gates.append(gate)
        return gates


def _passed(score: dict, evaluator) -> bool:
    """Whether a baseline score passed: as its recorder said (metadata `passed`), else a BOOLEAN 1,
    else a numeric value at least the evaluator's `min`."""
    metadata = score.get("metadata") if isinstance(score.get("metadata"), dict) else {}
    if isinstance(metadata.get("passed"), bool):
        return metadata["passed"]
    value = score.get("value")
    if not isinstance(value, (int, float)):
        return False
    if score.get("dataType") == "BOOLEAN":
        return value >= 1
    minimum = getattr(evaluator, "params", {}).get("min")
    return isinstance(minimum, (int, float)) and value >= minimum


def _describe(score: dict) -> str:
    comment = score.get("comment") or ""
    return f"{score.get('value'):g}" + (f": {comment}" if comment else "")


def default_run_name(dataset: str) -> str:
    sha = os.environ.get("GITHUB_SHA", "")[:7]
    # To the microsecond: a run name is an experiment (the server derives the experiment id from the
    # dataset and the name, as Langfuse does), so two runs started in the same second must not merge.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"lookglass {stamp}" + (f" {sha}" if sha else "")
