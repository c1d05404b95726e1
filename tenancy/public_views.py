"""Public operational endpoints and the Langfuse auth check (`GET /api/public/projects`)."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from tenancy.authentication import AuthenticationFailed, authenticate_header

_shutting_down = False


def _mark_shutting_down(signum, frame):  # pragma: no cover - exercised by process managers
    global _shutting_down
    _shutting_down = True
    if callable(_previous_sigterm):
        _previous_sigterm(signum, frame)


try:
    _previous_sigterm = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _mark_shutting_down)
except ValueError:  # not the main thread (e.g. a threaded test server): readiness stays OK
    _previous_sigterm = None


_probe_lock = threading.Lock()
_probe: dict = {"future": None, "executor": None, "pid": None}


def _select_one() -> bool:
    """SELECT 1 on a connection of its own: the pool may be exhausted by requests stuck on the very
    outage the health check exists to report."""
    import psycopg

    from config.db import DeadlineConnection

    params = connections["default"].get_connection_params()
    try:
        with DeadlineConnection.connect(**params, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except (psycopg.Error, DatabaseError):
        return False


def _database_ok() -> bool:
    """Answers within HEALTH_DATABASE_TIMEOUT_SECONDS even on a frozen database (then False).

    The probe runs in a thread of its own; concurrent health checks share the one in flight, so
    a frozen database never piles up more than one stuck probe per process."""
    with _probe_lock:
        if _probe["executor"] is None or _probe["pid"] != os.getpid():
            _probe["executor"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-db")
            _probe["pid"], _probe["future"] = os.getpid(), None
        future = _probe["future"]
        if future is None or future.done():
            future = _probe["future"] = _probe["executor"].submit(_select_one)
    try:
        return future.result(timeout=settings.HEALTH_DATABASE_TIMEOUT_SECONDS)
    except FutureTimeout:
        return False


@csrf_exempt
@require_GET
def health(request):
    if request.GET.get("failIfDatabaseUnavailable", "").lower() == "true" and not _database_ok():
        return JsonResponse({"status": "Database not available", "version": settings.VERSION}, status=503)
    return JsonResponse({"status": "OK", "version": settings.VERSION})


@csrf_exempt
@require_GET
def ready(request):
    if _shutting_down:
        return JsonResponse({"status": "Shutting down", "version": settings.VERSION}, status=503)
    return JsonResponse({"status": "OK", "version": settings.VERSION})


@csrf_exempt
@require_GET
def projects(request):
    """What every Langfuse SDK calls as its auth check; an empty list would count as failure."""
    try:
        principal = authenticate_header(request.META.get("HTTP_AUTHORIZATION"))
    except AuthenticationFailed as exc:
        return JsonResponse({"error": "UnauthorizedError", "message": exc.message}, status=401)
    project = principal.project
    return JsonResponse(
        {
            "data": [
                {
                    "id": str(project.id),
                    "name": project.name,
                    "organization": {"id": str(project.organization_id), "name": project.organization.name},
                    "metadata": {"region": project.region},
                }
            ]
        }
    )


@csrf_exempt
def not_implemented(request):
    """Any /api/public route we do not serve: 404 in Langfuse's error shape, whatever the method."""
    return JsonResponse(
        {
            "message": f"{request.method} {request.path} is not implemented by this Lookglass server",
            "error": "LangfuseNotFoundError",
        },
        status=404,
    )
