"""Exports: a project's data (all, a time range, or one end user's) as gzip JSONL, written by a worker
of the project's region into that region's storage, and read back through an expiring signed link.

Each line is `{"table": "<model label>", "row": {column: value}}` with every column of the row as
PostgreSQL's `row_to_json` renders it (JSON columns stay JSON, times are ISO 8601, numbers exact as
text digits), so a row can be restored field for field (tests/privacy/test_exports.py).
Per trace: the trace, then its observations, scores, feedback events and eval results (run items)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core import signing
from django.core.files.storage import FileSystemStorage
from django.db import connections

from tenancy.regions import region_database

TRACE_BATCH = 500
SIGNING_SALT = "lookglass.privacy.export"
CHILDREN = (
    ("traces.Observation", "trace_id"),
    ("scores.Score", "trace_id"),
    ("feedback.FeedbackEvent", "trace_id"),
    ("evals.DatasetRunItem", "trace_id"),
)


def storage_for(region: str) -> FileSystemStorage:
    """The region's own export storage: a directory per region (each region's workers and web nodes
    mount their region's volume; nothing of one region is written where another region reads)."""
    return FileSystemStorage(location=Path(settings.EXPORT_ROOT) / region)


def _table(label: str) -> str:
    return apps.get_model(label)._meta.db_table


def write_export(*, project, path: str, since=None, until=None, user_id: str | None = None) -> dict[str, int]:
    """Write the export to `path` (a local file) and return the rows per table."""
    database = region_database(project.region)
    pid = str(project.id)
    where, params = ["TRUE"], []
    if since is not None:
        where.append('"timestamp" >= %s')
        params.append(since)
    if until is not None:
        where.append('"timestamp" < %s')
        params.append(until)
    if user_id is not None:
        where.append('"user_id" = %s')
        params.append(user_id)
    counts: dict[str, int] = {}
    trace_table = _table("traces.Trace")
    last = None
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out, connections[database].cursor() as cursor:
        def emit(label: str, rows) -> None:
            for (row,) in rows:
                out.write('{"table":"%s","row":%s}\n' % (label, row))
                counts[label] = counts.get(label, 0) + 1

        while True:
            keyset = ' AND "id" > %s' if last is not None else ""
            cursor.execute(
                f'SELECT "id", row_to_json(t)::text FROM "{trace_table}" AS t WHERE "project_id" = %s::uuid '
                f'AND {" AND ".join(where)}{keyset} ORDER BY "id" LIMIT %s',
                [pid, *params, *([last] if last is not None else []), TRACE_BATCH],
            )
            batch = cursor.fetchall()
            if not batch:
                break
            ids = [trace_id for trace_id, _ in batch]
            emit("traces.Trace", [(row,) for _, row in batch])
            for label, column in CHILDREN:
                table = _table(label)
                cursor.execute(
                    f'SELECT row_to_json(t)::text FROM "{table}" AS t WHERE "project_id" = %s::uuid '
                    f'AND "{column}" = ANY(%s) ORDER BY "{column}", "id"',
                    [pid, ids],
                )
                emit(label, cursor.fetchall())
            last = ids[-1]
            if len(batch) < TRACE_BATCH:
                break
    return counts


def build(*, export) -> None:
    """Build the export's file in its region's storage and fill in its name, size and counts."""
    from privacy.models import ErasureTarget

    project = export.project
    user_id = None
    if export.user_hash:
        target = ErasureTarget.objects.for_project(project).filter(id=export.id).first()
        if target is None:
            raise RuntimeError("the end user of this export is no longer known (erased, or the export expired)")
        user_id = target.subjects[0]
    storage = storage_for(export.region)
    name = f"{project.id}/{export.id}.jsonl.gz"
    os.makedirs(os.path.dirname(storage.path(name)), exist_ok=True)
    temporary = storage.path(name) + ".part"
    counts = write_export(project=project, path=temporary, since=export.since, until=export.until, user_id=user_id)
    os.replace(temporary, storage.path(name))  # readers never see a half-written file
    export.file_name = name
    export.size = storage.size(name)
    export.counts = counts


def download_token(export) -> str:
    return signing.TimestampSigner(salt=SIGNING_SALT).sign(f"{export.project_id}:{export.id}")


def export_from_token(token: str):
    """The (project id, export id) a token names, or None when it is forged or older than the link
    lifetime (EXPORT_LINK_SECONDS)."""
    try:
        value = signing.TimestampSigner(salt=SIGNING_SALT).unsign(token, max_age=settings.EXPORT_LINK_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    project_id, _, export_id = value.partition(":")
    return project_id, export_id


def delete_file(export) -> bool:
    if not export.file_name:
        return False
    storage = storage_for(export.region)
    if storage.exists(export.file_name):
        storage.delete(export.file_name)
        return True
    return False
