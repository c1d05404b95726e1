"""THE one audited path that deletes personal data from the data plane: erasure requests and
retention (whole traces with everything attached, and the emptying of expired payloads).

Why not `ingest.writer`: the writer stores what the pipeline accepted (validation, redaction, score
configs, pricing, rollups), and nothing of that applies to rows that are going away. This module sits
in the privacy layer, below every app whose tables it deletes from, so it names them through the app
registry (as the project purge in `tenancy/tasks.py` does) and writes plain SQL; `config/lint_writes.py`
lists it as the one other module allowed to delete telemetry rows, and every job it runs leaves a
record (`ErasureRequest` / `RetentionRun`, and the per-batch counts in `DeletionBatch`).

How it never blocks ingestion:
- every statement deletes at most `chunk` rows, chosen by primary key order (`ORDER BY … LIMIT …
  FOR UPDATE`, the writer's lock order within a table) and commits at once: a concurrent ingest
  request waits at most for one small batch, never for the whole job;
- children go before their trace (run items, dataset items, feedback events, scores, observations,
  then the trace), one table per transaction, so a job never holds locks on two tables at once;
- the count of a batch is inserted into `privacy_deletionbatch` in the same transaction as its
  DELETE: a worker killed mid-way loses the uncommitted batch and its count together, and the job run
  again counts only what it deletes itself (exact, never twice).
The append-only feedback history refuses UPDATE only (feedback migration 0004): its rows are deleted
here and nowhere else in the application.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.db import connections, transaction
from django.utils import timezone

from tenancy.regions import region_database

CHUNK = 2000  # rows per DELETE statement (one short transaction)
TRACE_BATCH = 500  # traces whose children are deleted together
# The monitoring rollups cut dimension values (the user id of the per-user rollup) to this length.
USER_ROLLUP_CHARS = 200


class Incomplete(Exception):
    """The job's time budget ran out; run it again to continue (what is deleted stays counted)."""


def _table(label: str) -> str:
    return apps.get_model(label)._meta.db_table


def _key(label: str) -> tuple[str, ...]:
    """Primary key columns after project_id."""
    model = apps.get_model(label)
    return tuple(f.column for f in model._meta.pk_fields if f.column != "project_id")


@dataclass
class Deleter:
    """Deletes one project's rows in its region, in small key-ordered batches, counting each batch in
    its own transaction under `job_id`."""

    project: object
    job_id: uuid.UUID
    chunk: int = CHUNK
    deadline: float | None = None  # time.monotonic() after which `Incomplete` is raised between batches
    # Test seam: called inside each batch's transaction after its DELETE and count (a crash there
    # loses both; see tests/privacy/test_erasure.py).
    on_batch: Callable[[str, int], None] | None = None
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return region_database(self.project.region)

    @property
    def pid(self) -> str:
        return str(self.project.id)

    def _check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Incomplete()

    def _record(self, cursor, label: str, rows: int) -> None:
        cursor.execute(
            f'INSERT INTO "{_table("privacy.DeletionBatch")}" ("project_id", "id", "job_id", "table", "rows", '
            f'"created_at") VALUES (%s::uuid, %s, %s, %s, %s, %s)',
            [self.pid, uuid.uuid4(), self.job_id, label, rows, timezone.now()],
        )
        self.deleted[label] = self.deleted.get(label, 0) + rows

    def delete(self, label: str, where: str, params: list) -> int:
        """Delete every row of `label` in the project matching `where` (SQL over the table's columns),
        `chunk` rows per transaction; returns how many."""
        table, key = _table(label), ", ".join(f'"{c}"' for c in _key(label))
        sql = (
            f'DELETE FROM "{table}" WHERE "project_id" = %s::uuid AND ({key}) IN ('
            f'SELECT {key} FROM "{table}" WHERE "project_id" = %s::uuid AND ({where}) '
            f"ORDER BY {key} LIMIT {int(self.chunk)} FOR UPDATE)"
        )
        total = 0
        while True:
            self._check_time()
            with transaction.atomic(using=self.database), connections[self.database].cursor() as cursor:
                cursor.execute(sql, [self.pid, self.pid, *params])
                rows = cursor.rowcount
                if rows:
                    self._record(cursor, label, rows)
                if self.on_batch is not None:
                    self.on_batch(label, rows)
            total += rows
            if rows < self.chunk:
                return total

    def empty_payloads(self, label: str, time_column: str, cutoff, columns: dict[str, str]) -> int:
        """Set `columns` (name -> SQL value) on the project's rows of `label` older than `cutoff` that
        still hold something, `chunk` rows per transaction (retention of payloads; rows stay)."""
        table, key = _table(label), ", ".join(f'"{c}"' for c in _key(label))
        holding = " OR ".join(f'"{c}" IS DISTINCT FROM {v}' for c, v in columns.items())
        assign = ", ".join(f'"{c}" = {v}' for c, v in columns.items())
        sql = (
            f'UPDATE "{table}" SET {assign} WHERE "project_id" = %s::uuid AND ({key}) IN ('
            f'SELECT {key} FROM "{table}" WHERE "project_id" = %s::uuid AND "{time_column}" < %s AND ({holding}) '
            f"ORDER BY {key} LIMIT {int(self.chunk)} FOR UPDATE)"
        )
        total = 0
        while True:
            self._check_time()
            with transaction.atomic(using=self.database), connections[self.database].cursor() as cursor:
                cursor.execute(sql, [self.pid, self.pid, cutoff])
                rows = cursor.rowcount
                if rows:
                    self._record(cursor, f"{label}.payload", rows)
                if self.on_batch is not None:
                    self.on_batch(f"{label}.payload", rows)
            total += rows
            if rows < self.chunk:
                return total

    def delete_traces(self, trace_ids: list[str], *, with_dataset_items: bool) -> None:
        """The traces and everything attached to them, children first."""
        ids = sorted(set(trace_ids))
        if not ids:
            return
        if with_dataset_items:
            # Items copied from these traces (and the run results that use them), then the items.
            items = f'SELECT "id" FROM "{_table("evals.DatasetItem")}" WHERE "project_id" = %s::uuid AND "source_trace_id" = ANY(%s)'
            self.delete("evals.DatasetRunItem", f'"dataset_item_id" IN ({items})', [self.pid, ids])
            self.delete("evals.DatasetItem", '"source_trace_id" = ANY(%s)', [ids])
        self.delete("evals.DatasetRunItem", '"trace_id" = ANY(%s)', [ids])
        self.delete("feedback.FeedbackEvent", '"trace_id" = ANY(%s)', [ids])
        self.delete("scores.Score", '"trace_id" = ANY(%s)', [ids])
        self.delete("traces.Observation", '"trace_id" = ANY(%s)', [ids])
        self.delete("traces.Trace", '"id" = ANY(%s)', [ids])

    def delete_traces_where(
        self, where: str, params: list, *, with_dataset_items: bool, with_sessions: bool = False,
        batch: int = TRACE_BATCH,
    ) -> None:
        """Every trace of the project matching `where`, `batch` traces at a time in id order.
        `with_sessions`: also the session-level scores (no trace) of their sessions."""
        table = _table("traces.Trace")
        while True:
            self._check_time()
            with connections[self.database].cursor() as cursor:
                cursor.execute(
                    f'SELECT "id", "session_id" FROM "{table}" WHERE "project_id" = %s::uuid AND ({where}) '
                    f'ORDER BY "id" LIMIT %s',
                    [self.pid, *params, batch],
                )
                rows = cursor.fetchall()
            if not rows:
                return
            sessions = sorted({session for _, session in rows if session})
            if with_sessions and sessions:
                self.delete("scores.Score", '"trace_id" = \'\' AND "session_id" = ANY(%s)', [sessions])
            self.delete_traces([trace_id for trace_id, _ in rows], with_dataset_items=with_dataset_items)

    def count(self, label: str, where: str, params: list) -> int:
        with connections[self.database].cursor() as cursor:
            cursor.execute(
                f'SELECT count(*) FROM "{_table(label)}" WHERE "project_id" = %s::uuid AND ({where})',
                [self.pid, *params],
            )
            return cursor.fetchone()[0]


def job_counts(project, job_id) -> dict[str, int]:
    """Rows a job deleted, per table, summed from its batches (exact after any number of restarts)."""
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute(
            f'SELECT "table", sum("rows") FROM "{_table("privacy.DeletionBatch")}" '
            f'WHERE "project_id" = %s::uuid AND "job_id" = %s GROUP BY "table" ORDER BY "table"',
            [str(project.id), job_id],
        )
        return {label: int(total) for label, total in cursor.fetchall()}


# --- erasure of one subject ------------------------------------------------------------------------


def _cut_users(subjects: list[str]) -> list[str]:
    return sorted({s[:USER_ROLLUP_CHARS] for s in subjects})


def erase_subject(deleter: Deleter, *, kind: str, subjects: list[str]) -> None:
    """Delete everything the subject matches (raises `Incomplete` when the budget runs out)."""
    if kind == "user":
        # Their sessions' own scores too: a session belongs to the user whose traces it groups.
        deleter.delete_traces_where('"user_id" = ANY(%s)', [subjects], with_dataset_items=True, with_sessions=True)
        # Feedback this end user gave on traces that are not theirs, and their per-user rollups.
        deleter.delete("feedback.FeedbackEvent", '"user_id" = ANY(%s)', [subjects])
        deleter.delete("monitoring.DailyUserRollup", '"user_id" = ANY(%s)', [_cut_users(subjects)])
        deleter.delete("monitoring.DailyUserScoreRollup", '"user_id" = ANY(%s)', [_cut_users(subjects)])
    elif kind == "session":
        deleter.delete_traces_where('"session_id" = ANY(%s)', [subjects], with_dataset_items=True)
        deleter.delete("scores.Score", '"session_id" = ANY(%s)', [subjects])
    elif kind == "traces":
        # By id, also for rows whose trace row is missing (a score sent for a trace never created).
        for start in range(0, len(subjects), TRACE_BATCH):
            deleter.delete_traces(subjects[start:start + TRACE_BATCH], with_dataset_items=True)
    else:
        raise ValueError(f"unknown erasure kind {kind!r}")


def verify_subject(deleter: Deleter, *, kind: str, subjects: list[str]) -> dict[str, int]:
    """The verification query of the receipt: rows still matching the subject, per table (all 0)."""
    if kind == "user":
        checks = [
            ("traces.Trace", '"user_id" = ANY(%s)', [subjects]),
            ("feedback.FeedbackEvent", '"user_id" = ANY(%s)', [subjects]),
            ("monitoring.DailyUserRollup", '"user_id" = ANY(%s)', [_cut_users(subjects)]),
            ("monitoring.DailyUserScoreRollup", '"user_id" = ANY(%s)', [_cut_users(subjects)]),
        ]
    elif kind == "session":
        checks = [
            ("traces.Trace", '"session_id" = ANY(%s)', [subjects]),
            ("scores.Score", '"session_id" = ANY(%s)', [subjects]),
        ]
    else:
        checks = [
            ("traces.Trace", '"id" = ANY(%s)', [subjects]),
            ("traces.Observation", '"trace_id" = ANY(%s)', [subjects]),
            ("scores.Score", '"trace_id" = ANY(%s)', [subjects]),
            ("feedback.FeedbackEvent", '"trace_id" = ANY(%s)', [subjects]),
            ("evals.DatasetItem", '"source_trace_id" = ANY(%s)', [subjects]),
            ("evals.DatasetRunItem", '"trace_id" = ANY(%s)', [subjects]),
        ]
    return {label: deleter.count(label, where, params) for label, where, params in checks}


# --- retention -----------------------------------------------------------------------------------

# What "payload" means for payload retention: the content columns; ids, times, tokens, costs, models
# and statuses stay, so traces keep their shape and the rollups their inputs.
TRACE_PAYLOAD = {"input": "NULL", "output": "NULL", "metadata": "'{}'::jsonb"}
OBSERVATION_PAYLOAD = {
    "input": "NULL", "output": "NULL", "metadata": "'{}'::jsonb", "tool_calls": "'[]'::jsonb",
}


def enforce_retention(deleter: Deleter, *, cutoff, payload_cutoff) -> None:
    """Delete traces older than `cutoff` with everything attached (dataset items copied from them
    stay: they belong to their dataset), and scores and feedback not attached to a trace that are
    older; then empty the payloads of what is older than `payload_cutoff`."""
    if cutoff is not None:
        deleter.delete_traces_where('"timestamp" < %s', [cutoff], with_dataset_items=False)
        # Session scores (no trace) by their own time.
        deleter.delete("scores.Score", '"trace_id" = \'\' AND "timestamp" < %s', [cutoff])
    if payload_cutoff is not None:
        deleter.empty_payloads("traces.Observation", "start_time", payload_cutoff, OBSERVATION_PAYLOAD)
        deleter.empty_payloads("traces.Trace", "timestamp", payload_cutoff, TRACE_PAYLOAD)
