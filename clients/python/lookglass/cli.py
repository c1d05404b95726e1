"""The `lookglass` command.

    lookglass eval run --dataset NAME --target module:function [--evaluator SPEC]... \
        [--threshold NAME=MIN]... [--baseline latest|RUN] [--junit PATH] [--concurrency N] \
        [--run-name NAME] [--run-description TEXT] [--host URL]

Exit status: 0 the gate passed, 1 a threshold failed, 2 inconclusive (every item errored, or the
dataset has no items), 3 a usage, configuration or server error. The evaluator and threshold
syntax is in `lookglass.specs`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lookglass import junit, specs
from lookglass.api import Api, ApiError, ConfigError, Settings
from lookglass.run import EXIT_ERROR, Report, RunConfig, Runner, default_run_name, load_target

EPILOG = """\
evaluators (--evaluator, repeatable; default: contains):
  KIND             contains, exact_match, json_valid, not_refused, similarity (defaults)
  KIND=VALUE       contains=TEXT  regex=PATTERN  exact_match=TEXT  json_schema=@schema.json
                   max_latency=MS  max_cost=USD  similarity=MIN
  KIND:{JSON}      all parameters, e.g. 'similarity:{"min":0.9,"method":"token_set_ratio"}'
  judge:NAME       an LLM judge configured on the server
thresholds (--threshold NAME=MIN): the mean of score NAME must be >= MIN (for pass/fail
  evaluators, the pass rate); an evaluator without one must pass on every item.
exit status: 0 passed, 1 a threshold failed, 2 inconclusive (every item errored), 3 error.
keys: LOOKGLASS_PUBLIC_KEY, LOOKGLASS_SECRET_KEY, LOOKGLASS_HOST (or the LANGFUSE_* names).
"""


class _Parser(argparse.ArgumentParser):
    # argparse exits 2 on a usage error, which here means "inconclusive": use 3 like other errors.
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="lookglass", description="Lookglass client.")
    commands = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    evals = commands.add_parser("eval", help="evaluations")
    eval_commands = evals.add_subparsers(dest="eval_command", required=True, parser_class=_Parser)
    run = eval_commands.add_parser(
        "run",
        help="run a target over a dataset and gate on the scores",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--dataset", required=True, help="dataset name")
    run.add_argument("--target", required=True, help="module:function or path/to/file.py:function")
    run.add_argument("--evaluator", action="append", default=[], metavar="SPEC")
    run.add_argument("--threshold", action="append", default=[], metavar="NAME=MIN")
    run.add_argument("--baseline", help="'latest' or a run name: report regressions against it")
    run.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    run.add_argument("--concurrency", type=int, default=4, metavar="N", help="items run at once (default 4)")
    run.add_argument("--run-name", help="the run's name (default: 'lookglass <UTC time to the microsecond> [<GITHUB_SHA>]': a run name is one experiment)")
    run.add_argument("--run-description")
    run.add_argument("--host", help="server URL (default: LOOKGLASS_HOST or LANGFUSE_HOST)")
    return root


def _progress(console: Console):
    return Progress(
        TextColumn("[bold]evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def print_report(report: Report, console: Console) -> None:
    title = escape(f"{report.dataset} · run {report.run_name!r}" + (f" · baseline {report.baseline!r}" if report.baseline else ""))
    table = Table(title=title)
    for column in ("score", "scored", "passed", "mean", "gate", "result", "regressions", "errors"):
        table.add_column(column, justify="left" if column in ("score", "gate") else "right")
    for gate in report.gates:
        table.add_row(
            escape(gate.name),
            str(gate.scored),
            str(gate.passed),
            "–" if gate.mean is None else f"{gate.mean:.3f}",
            gate.rule,
            "[green]PASS[/]" if gate.ok else "[red]FAIL[/]",
            str(len(gate.regressions)),
            str(gate.errors),
        )
    console.print(table)
    regressions = [r for g in report.gates for r in g.regressions]
    if regressions:
        listing = Table(title="regressions (passed in the baseline, fail now)")
        for column in ("item", "score", "baseline", "now"):
            listing.add_column(column, overflow="fold")
        for r in regressions:
            listing.add_row(escape(r.item_id), escape(r.name), escape(r.baseline), escape(r.now))
        console.print(listing)
    errored = [o for o in report.outcomes if o.error is not None]
    for outcome in errored[:10]:
        console.print(f"[red]error[/] item {escape(outcome.item_id)}: {escape(outcome.error)}")
    if len(errored) > 10:
        console.print(f"[red]…and {len(errored) - 10} more item errors[/]")
    for warning in report.warnings[:20]:
        console.print(f"[yellow]warning[/] {escape(warning)}")
    verdict = {0: "[green]PASSED[/]", 1: "[red]FAILED[/] (a threshold failed)",
               2: "[yellow]INCONCLUSIVE[/] (every item errored)"}[report.exit_code]
    console.print(
        f"{len(report.outcomes)} items, {report.errored} errored, {report.seconds:.1f}s — {verdict}"
    )


async def _run(args, console: Console, err: Console) -> int:
    settings = Settings.from_env(args.host)
    evaluators = [specs.parse_evaluator(s) for s in (args.evaluator or ["contains"])]
    thresholds = dict(specs.parse_threshold(t) for t in args.threshold)
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    target = load_target(args.target)
    config = RunConfig(
        dataset=args.dataset,
        target=target,
        evaluators=evaluators,
        thresholds=thresholds,
        run_name=args.run_name or default_run_name(args.dataset),
        run_description=args.run_description,
        baseline=args.baseline,
        concurrency=args.concurrency,
        metadata={"source": "lookglass-cli", "target": args.target},
    )
    progress = _progress(err)
    with progress:
        task = progress.add_task("items", total=None)
        async with Api(settings, max_connections=max(10, args.concurrency * 2)) as api:
            runner = Runner(
                api,
                config,
                progress=lambda _outcome: progress.advance(task),
                on_items=lambda total: progress.update(task, total=total),
            )
            report = await runner.run()
    print_report(report, console)
    if args.junit:
        junit.write(report, args.junit)
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console, err = Console(), Console(stderr=True)
    try:
        return asyncio.run(_run(args, console, err))
    except (ConfigError, specs.SpecError) as exc:
        err.print(f"lookglass: {exc}", style="red", markup=False, highlight=False)
        return EXIT_ERROR
    except ApiError as exc:
        err.print(f"lookglass: server error: {exc}", style="red", markup=False, highlight=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a crash must not exit 1, which means "a threshold failed"
        err.print_exception()
        err.print(f"lookglass: internal error: {type(exc).__name__}: {exc}", style="red", markup=False)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
