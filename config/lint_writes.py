"""`make lint`: only the ingest package writes the telemetry tables (traces, observations, scores,
monitoring rollups).

Every write — SDK batch, OTLP, REST scores, browser feedback, eval results — must pass the same
pipeline stages (validation, redaction, score configs, pricing, and the rollups and metering that hook
into the write), so a module outside `ingest/` that inserts, updates or deletes those rows would skip
them. This walks the source (not tests or migrations) and reports:

- ORM writes (`create`, `bulk_create`, `update`, `delete`, `get_or_create`, `update_or_create`,
  `save` on a queryset chain) on the Trace, Observation or Score models;
- SQL text that inserts into, updates or deletes from their tables.

Whole-project deletion and erasure are the deliberate exceptions, listed in ALLOWED with the reason.
Exit code 1 and one line per finding when anything else writes.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The monitoring rollups are telemetry too: only `ingest.rollups`, inside the writer's transaction,
# keeps them equal to the raw rows.
TELEMETRY_MODELS = {
    "Trace", "Observation", "Score", "HourlyRollup", "DailyRollup", "DailyUserRollup", "HourlyScoreRollup",
    "DailyUserScoreRollup",
}
TELEMETRY_TABLES = (
    "traces_trace", "traces_observation", "feedback_score", "monitoring_hourlyrollup", "monitoring_dailyuserrollup",
    "monitoring_dailyrollup", "monitoring_hourlyscorerollup", "monitoring_dailyuserscorerollup",
)
WRITE_METHODS = {"create", "bulk_create", "bulk_update", "update", "delete", "get_or_create", "update_or_create"}
SQL_WRITE = re.compile(
    r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(%s)\b" % "|".join(TELEMETRY_TABLES), re.IGNORECASE
)
# Packages that may write, and single modules with the reason they may.
WRITERS = ("ingest/",)
ALLOWED = {
    # Deleting a project removes every data-plane row of it, telemetry included (no pipeline stage
    # applies to rows that are going away).
    "tenancy/tasks.py",
    # THE one audited erasure path: erasure requests and retention delete a subject's or an expired
    # trace's rows (and empty expired payloads) in small batches, each counted in its own transaction
    # and recorded in a receipt or retention run. It sits in the privacy layer, below the apps it
    # deletes from, so it cannot call ingest.writer; no pipeline stage applies to rows going away.
    "privacy/erasure.py",
}
SKIP_PARTS = {"tests", "migrations", ".venv", ".data", "bench", "node_modules", "staticfiles"}


def _chain_names(node: ast.AST) -> set[str]:
    names = set()
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Name):
            names.add(node.id)
            return names
        else:
            return names


def findings_in(path: Path, source: str) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    out = []
    tree = ast.parse(source, filename=rel)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITE_METHODS
            and "objects" in ast.dump(node.func.value)
        ):
            models = _chain_names(node.func.value) & TELEMETRY_MODELS
            if models:
                out.append(f"{rel}:{node.lineno}: {'/'.join(sorted(models))}.….{node.func.attr}() outside ingest/")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_WRITE.search(node.value)
            if match:
                out.append(f"{rel}:{node.lineno}: SQL `{match.group(0)}` outside ingest/")
    return out


def main() -> int:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if SKIP_PARTS & set(rel.parts) or rel.as_posix().startswith(WRITERS) or rel.as_posix() in ALLOWED:
            continue
        problems += findings_in(path, path.read_text())
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} telemetry write(s) outside the ingest package", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
