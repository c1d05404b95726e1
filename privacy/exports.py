"""Exports: a project's data (all, a time range, or one end user's) as gzip JSONL, written by a worker
of the project's region into that region's storage, and read back through an expiring signed link.

Each line is `{"table": "<model label>", "row": {column: value}}` with every column of the row as
PostgreSQL's `row_to_json` renders it (JSON columns stay JSON, times are ISO 8601, numbers exact as
text digits), so a row can be restored field for field (tests/privacy/test_exports.py).
Per trace: the trace, then its observations, scores, feedback events and eval results (run items)."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import time

from django.apps import apps
from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import connections

from tenancy.regions import RegionNotServed, region_database, served_regions

TRACE_BATCH = 500
SIGNING_SALT = "lookglass.privacy.export"
CHILDREN = (
    ("traces.Observation", "trace_id"),
    ("scores.Score", "trace_id"),
    ("feedback.FeedbackEvent", "trace_id"),
    ("evals.DatasetRunItem", "trace_id"),
)


def storage_for(region: str) -> Storage:
    """The region's own export storage, the STORAGES entry `exports-<region>`: a directory per region
    by default (each region's workers and web nodes mount their region's volume), or the region's
    S3-compatible bucket (config/export_storage.py). Nothing of one region is written where another
    region reads."""
    if region not in served_regions():
        # A node pinned to other regions never reads or writes this region's files or bucket; the
        # region routing answers the request with the right region's URL (the signed link carries over).
        raise RegionNotServed(region)
    # The alias config/export_storage.py gives each region (config sits above this layer).
    return storages[f"exports-{region}"]


def is_local(storage: Storage) -> bool:
    """Whether the storage is a local directory (it has paths); else an object store."""
    try:
        storage.path("x")
    except NotImplementedError:
        return False
    return True


def _table(label: str) -> str:
    return apps.get_model(label)._meta.db_table


def write_export(*, project, path: str, since=None, until=None, user_id: str | None = None,
                 on_progress=None) -> dict[str, int]:
    """Write the export to `path` (a local file) and return the rows per table. `on_progress(done,
    total)` hears the traces written after each batch (total: those matched when it started)."""
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
    done = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out, connections[database].cursor() as cursor:
        total = None
        if on_progress is not None:
            cursor.execute(
                f'SELECT count(*) FROM "{trace_table}" WHERE "project_id" = %s::uuid AND {" AND ".join(where)}',
                [pid, *params],
            )
            total = cursor.fetchone()[0]
            on_progress(0, total)

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
            done += len(ids)
            if on_progress is not None:
                on_progress(done, total)
            if len(batch) < TRACE_BATCH:
                break
    return counts


def build(*, export, on_progress=None) -> None:
    """Build the export's file in its region's storage and fill in its name, size and counts
    (`on_progress`: see `write_export`)."""
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
    if is_local(storage):
        os.makedirs(os.path.dirname(storage.path(name)), exist_ok=True)
        temporary = storage.path(name) + ".part"
        counts = write_export(project=project, path=temporary, since=export.since, until=export.until,
                              user_id=user_id, on_progress=on_progress)
        os.replace(temporary, storage.path(name))  # readers never see a half-written file
    else:
        # An object store: written to a local temporary file first (the gzip stream needs a seekable
        # file), then uploaded in one piece (multipart for large files); the object appears whole.
        with tempfile.NamedTemporaryFile(suffix=".jsonl.gz") as temporary:
            counts = write_export(project=project, path=temporary.name, since=export.since, until=export.until,
                                  user_id=user_id, on_progress=on_progress)
            with open(temporary.name, "rb") as data:
                saved = storage.save(name, File(data, name=name))
        if saved != name:  # the storage must overwrite (a rebuild); a suffixed copy would leak a file
            raise RuntimeError(f"the export storage stored {saved!r} instead of {name!r}")
    export.file_name = name
    export.size = storage.size(name)
    export.counts = counts


def download_token(export) -> str:
    return signing.TimestampSigner(salt=SIGNING_SALT).sign(f"{export.project_id}:{export.id}")


def download_url(request, export) -> str | None:
    """A fresh signed link to a finished export's file (valid EXPORT_LINK_SECONDS from now), on the
    host the request came to (the project's region); None while there is nothing to download. The
    public API, /api/v1 and the console all hand out this one link: it is the audited way in."""
    from django.urls import reverse

    from privacy.models import JobStatus

    if export.status != JobStatus.DONE or export.erased_at is not None:
        return None
    path = reverse("public-export-download", kwargs={"export_id": export.id})
    return request.build_absolute_uri(f"{path}?token={download_token(export)}")


def export_from_token(token: str):
    """The (project id, export id, seconds the link has left) a token names, or None when it is forged
    or older than the link lifetime (EXPORT_LINK_SECONDS)."""
    signer = signing.TimestampSigner(salt=SIGNING_SALT)
    try:
        value = signer.unsign(token, max_age=settings.EXPORT_LINK_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    # The signature checked out, so the timestamp between value and signature is the signer's own.
    signed_at = signing.b62_decode(token.rsplit(signer.sep, 2)[1])
    left = settings.EXPORT_LINK_SECONDS - (time.time() - signed_at)
    project_id, _, export_id = value.partition(":")
    return project_id, export_id, left


def presigned_url(export, *, seconds: float) -> str:
    """An object store's own link to the export's file, valid `seconds` (the signed link's remaining
    life, so the redirect never outlives the link that was audited), saved under a readable name."""
    return storage_for(export.region).url(
        export.file_name, expire=max(1, int(seconds)),
        parameters={"ResponseContentDisposition": f'attachment; filename="lookglass-export-{export.id}.jsonl.gz"'},
    )


def delete_project_files(*, project_id: str, region: str) -> dict[str, int]:
    """Every export file of a deleted project in its region (the purge's hook: the project's export
    rows went with it, so the files are found by their folder, `<project id>/`)."""
    if region not in served_regions():
        return {}  # the purge runs on the region's own queue; a node of other regions has nothing here
    storage = storage_for(region)
    folder = str(project_id)
    try:
        _, names = storage.listdir(folder)
    except FileNotFoundError:
        return {"privacy.ExportFile": 0}
    for name in names:
        storage.delete(f"{folder}/{name}")
    if is_local(storage):
        with contextlib.suppress(OSError):
            os.rmdir(storage.path(folder))
    return {"privacy.ExportFile": len(names)}


def delete_file(export) -> bool:
    if not export.file_name:
        return False
    storage = storage_for(export.region)
    if storage.exists(export.file_name):
        storage.delete(export.file_name)
        return True
    return False
