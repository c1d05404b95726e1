"""Bounded waits on PostgreSQL.

`statement_timeout` and `lock_timeout` (set per connection in settings) bound queries on a server
that runs. They do nothing against a server that does not run at all — frozen (SIGSTOP, a VM
paused, a hung disk) or cut off behind a silent network: the kernel keeps accepting and ACKing
bytes, libpq waits for a reply forever, and so does the request.

`DeadlineConnection` (the pool's connection class) registers every wait on the server with one
watchdog thread per process. A wait longer than DB_STALL_SECONDS makes the watchdog ask the server
whether it is alive at all — an 8-byte SSLRequest on a fresh socket, which a live postmaster
answers at once whatever its load — and only when that goes unanswered for DB_PROBE_TIMEOUT_SECONDS
are the stalled connections shut down. The waiting query then fails with an OperationalError (503
+ Retry-After in the middleware) instead of hanging. A slow query on a live server is left alone
for the server's own statement_timeout to end.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import struct
import threading
import time

import psycopg

logger = logging.getLogger(__name__)

# A live postmaster answers this with one byte ('S' or 'N') before any authentication.
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
TICK_SECONDS = 0.25
# Once a server has failed a probe, waits on it are cut after this long without probing again.
KNOWN_DOWN_STALL_SECONDS = 0.5
PROBE_RESULT_SECONDS = 1.0


def _settings() -> tuple[float, float]:
    from django.conf import settings

    return (
        float(getattr(settings, "DB_STALL_SECONDS", 1.0)),
        float(getattr(settings, "DB_PROBE_TIMEOUT_SECONDS", 0.75)),
    )


def server_answers(host: str, port: int, timeout: float) -> bool:
    """Whether the PostgreSQL server at host:port answers an SSLRequest within `timeout` seconds."""
    try:
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(os.path.join(host, f".s.PGSQL.{port}"))
        else:
            sock = socket.create_connection((host or "localhost", port), timeout=timeout)
    except OSError:
        return False
    with sock:
        try:
            sock.settimeout(timeout)
            sock.sendall(_SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
        except OSError:
            return False


class _Watchdog:
    def __init__(self):
        self._lock = threading.Lock()
        self._waits: dict[int, tuple[float, DeadlineConnection]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = None
        # (host, port) -> (checked_at, alive)
        self._probes: dict[tuple[str, int], tuple[float, bool]] = {}

    def start_wait(self, conn: DeadlineConnection) -> int:
        key = next(self._ids)
        with self._lock:
            self._waits[key] = (time.monotonic(), conn)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # Also after a fork: threads do not survive it.
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
        return key

    def end_wait(self, key: int) -> None:
        with self._lock:
            self._waits.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(TICK_SECONDS)
            try:
                self._scan()
            except Exception:  # noqa: BLE001 - the watchdog must outlive any one bad scan
                logger.exception("database watchdog scan failed")

    def _alive(self, address: tuple[str, int], now: float, probe_timeout: float) -> bool:
        checked = self._probes.get(address)
        if checked is not None and now - checked[0] < PROBE_RESULT_SECONDS:
            return checked[1]
        alive = server_answers(address[0], address[1], probe_timeout)
        self._probes[address] = (time.monotonic(), alive)
        return alive

    def _scan(self) -> None:
        stall, probe_timeout = _settings()
        now = time.monotonic()
        with self._lock:
            waits = list(self._waits.items())
        by_server: dict[tuple[str, int], list[tuple[int, float]]] = {}
        for key, (started, conn) in waits:
            waited = now - started
            address = conn.server_address
            known_down = self._probes.get(address, (0.0, True))
            recently_down = not known_down[1] and now - known_down[0] < 2 * PROBE_RESULT_SECONDS
            if waited >= stall or (recently_down and waited >= KNOWN_DOWN_STALL_SECONDS):
                by_server.setdefault(address, []).append((key, waited))
        for address, stalled in by_server.items():
            if self._alive(address, now, probe_timeout):
                continue
            for key, waited in stalled:
                self._sever(key, address, waited)

    def _sever(self, key: int, address: tuple[str, int], waited: float) -> None:
        # Under the lock, and only while the wait is still registered: the waiting thread is then
        # still inside wait(), so the socket cannot have been closed and its number reused.
        with self._lock:
            entry = self._waits.get(key)
            if entry is None:
                return
            conn = entry[1]
            try:
                fd = conn.pgconn.socket
                sock = socket.socket(fileno=os.dup(fd))
            except (OSError, psycopg.Error):
                return
            with sock:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    return
        logger.warning(
            "database %s:%s does not answer; cut a connection that waited %.1f s", *address, waited
        )


watchdog = _Watchdog()


class DeadlineConnection(psycopg.Connection):
    """A psycopg connection whose waits on the server end when the server stops answering."""

    _server_address: tuple[str, int] | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        if self._server_address is None:
            info = self.info
            self._server_address = (info.host, int(info.port))
        return self._server_address

    def wait(self, gen, interval=0.1, timeout=None):
        key = watchdog.start_wait(self)
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        finally:
            watchdog.end_wait(key)


# --- Longer limits for background workers -------------------------------------------------
_worker_timeouts = {"on": False}


def use_worker_timeouts() -> None:
    """From now on, connections this process opens get the workers' statement and lock timeouts
    (purges and backfills run longer than any web request may)."""
    from django.db.backends.signals import connection_created

    _worker_timeouts["on"] = True
    connection_created.connect(_set_worker_timeouts, dispatch_uid="lookglass-worker-timeouts")


def _set_worker_timeouts(sender, connection, **kwargs):
    from django.conf import settings

    if connection.vendor != "postgresql" or not _worker_timeouts["on"]:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
            [f"{settings.DB_WORKER_STATEMENT_TIMEOUT_MS}ms", f"{settings.DB_WORKER_LOCK_TIMEOUT_MS}ms"],
        )
