"""Exports over the public API (secret key): `POST /api/public/exports` asks for a project's data
(optionally a time range, or one end user's), `GET /api/public/exports/{id}` reports the build and,
once done, a signed download link valid EXPORT_LINK_SECONDS; `GET /api/public/exports/{id}/download?token=`
serves the file from the region's storage to whoever holds a valid link (audited). From a filesystem
storage the file is streamed; from an S3-compatible bucket the answer is a 302 to a presigned URL that
expires when the signed link does (the web node never carries the file)."""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError
from django.http import FileResponse, HttpResponseRedirect
from django.views.decorators.csrf import csrf_exempt

from privacy import exports, services
from privacy.models import ExportJob, JobStatus
from tenancy.http.endpoint import endpoint, read_json
from tenancy.http.errors import HttpError, json_response, unavailable
from tenancy.http.params import parse_iso_datetime

logger = logging.getLogger(__name__)


def _time(data: dict, name: str):
    value = data.get(name)
    if value is None:
        return None
    parsed = parse_iso_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise HttpError(400, f"{name} must be an ISO 8601 time with a time zone")
    return parsed


def representation(request, export: ExportJob) -> dict:
    body = {
        "id": str(export.id), "projectId": str(export.project_id), "status": export.status,
        "fromTimestamp": export.since, "toTimestamp": export.until, "userHash": export.user_hash or None,
        "counts": export.counts, "size": export.size, "createdAt": export.created_at,
        "finishedAt": export.finished_at, "erasedAt": export.erased_at, "error": export.error,
        "progress": {"tracesDone": export.traces_done, "tracesTotal": export.traces_total,
                     "percent": export.percent},
        "downloadUrl": exports.download_url(request, export),
    }
    return body


@endpoint("POST")
def export_requests(request, principal):
    data = read_json(request, limit=64 * 1024, empty={})
    if not isinstance(data, dict):
        raise HttpError(400, "send an object: {fromTimestamp?, toTimestamp?, userId?}")
    user_id = data.get("userId")
    if user_id is not None and (not isinstance(user_id, str) or not user_id):
        raise HttpError(400, "userId must be a non-empty string")
    try:
        export = services.export_create(
            project=principal.project, since=_time(data, "fromTimestamp"), until=_time(data, "toTimestamp"),
            user_id=user_id, api_key=principal.api_key,
        )
    except ValidationError as exc:
        raise HttpError(400, "; ".join(m for ms in exc.message_dict.values() for m in ms)) from None
    except (OperationalError, InterfaceError) as exc:
        raise unavailable() from exc
    return json_response(representation(request, export), status=202, utc_z=True)


def _export_of(project, export_id):
    try:
        export_id = uuid.UUID(str(export_id))
    except ValueError:
        return None
    return ExportJob.objects.filter(project=project, id=export_id).first()


@endpoint("GET")
def export_detail(request, principal, export_id: str):
    export = _export_of(principal.project, export_id)
    if export is None:
        raise HttpError(404, "export not found")
    return json_response(representation(request, export), utc_z=True)


@csrf_exempt
def export_download(request, export_id: str):
    if request.method != "GET":
        return HttpError(405, "Method not allowed", headers={"Allow": "GET"}).response()
    token = request.GET.get("token", "")
    if not token:  # the signed link is the credential (keys do not open it): without one, unauthenticated
        return HttpError(401, "open the downloadUrl of the export, with its token").response()
    named = exports.export_from_token(token)
    if named is None or named[1] != str(export_id):
        return HttpError(404, "this download link is unknown or has expired; ask for a new one").response()
    project_id, export_id, seconds_left = named
    export = ExportJob.objects.select_related("project__organization").filter(
        id=export_id, project_id=project_id).first()
    if export is None or export.status != JobStatus.DONE or export.erased_at is not None:
        return HttpError(404, "this export is not available").response()
    storage = exports.storage_for(export.region)
    try:
        present = storage.exists(export.file_name)
    except Exception:  # noqa: BLE001 - the region's object store is unreachable or refuses us: retry later
        logger.exception("export storage of region %s failed", export.region)
        return unavailable("the export storage is unavailable; retry later").response()
    if not present:
        return HttpError(404, "this export is not available").response()
    services.export_downloaded(export=export, client=request.META.get("REMOTE_ADDR", ""))
    if not exports.is_local(storage):
        # An object store serves the file itself: a redirect to its presigned URL, which expires when
        # this link does, so large exports never pass through (and never tie up) a web worker.
        response = HttpResponseRedirect(exports.presigned_url(export, seconds=seconds_left))
        response["Cache-Control"] = "no-store"
        return response
    return FileResponse(storage.open(export.file_name, "rb"), as_attachment=True,
                        filename=f"lookglass-export-{export.id}.jsonl.gz", content_type="application/gzip")
