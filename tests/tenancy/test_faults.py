"""Fault injection against a real server: no stalled or dying dependency may hang a request.

gunicorn (as in production: pooled connections, gthread) runs against a PostgreSQL and a Redis of
its own, which the test freezes (SIGSTOP), thaws, kills and restarts while clients keep sending
Langfuse batches and OTLP exports and a prober keeps asking for health. Afterwards:

- every 2xx answer's events are in the database (nothing acknowledged was lost);
- every other answer is a 503 with Retry-After, and every answer came within 5 s;
- health (with the database check) answered within 2 s throughout.

Loopback only; about 30-40 s.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from config.devstack import EmbeddedPostgres, free_port
from tests.faults import FreezableRedis

ROOT = Path(__file__).resolve().parents[2]
# Thousands of request lines would bury the report of a failure.
logging.getLogger("httpx").setLevel(logging.WARNING)
REQUEST_DEADLINE = 5.0
HEALTH_DEADLINE = 2.0


@dataclass
class Record:
    kind: str
    started: float
    elapsed: float
    status: int | None = None
    retry_after: str | None = None
    stored_ids: list[str] = field(default_factory=list)
    problem: str = ""


class Postgres:
    """A PostgreSQL cluster of the test's own, in its own process group so it can be frozen whole."""

    def __init__(self):
        self.port = free_port()
        self.cluster = EmbeddedPostgres(
            Path(tempfile.mkdtemp(prefix="lookglass-fault-pg-")) / "pg", self.port, durable=False
        )

    def start(self) -> None:
        base = self.cluster.start()
        self.url = f"{base}/lookglass"

    def setup(self) -> None:
        self.cluster.ensure_database("lookglass")
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            # The cluster runs without fsync (a throw-away); commits must still reach the OS before
            # they are acknowledged, or killing the server would lose acknowledged events.
            conn.execute("ALTER DATABASE lookglass SET synchronous_commit = on")

    def conninfo(self, dbname="lookglass") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _signal_all(self, sig: int) -> None:
        # Postgres puts every child (backends, walwriter, …) in a session of its own, so the
        # process group holds only the postmaster: signal it first (no new children), then them.
        postmaster = self.cluster.service.proc.pid
        os.kill(postmaster, sig)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                # /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after ")".
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == postmaster:
                try:
                    os.kill(int(entry.name), sig)
                except ProcessLookupError:
                    pass

    def freeze(self) -> None:
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def kill(self) -> None:
        self._signal_all(signal.SIGKILL)
        self._signal_all(signal.SIGCONT)
        self.cluster.service.proc.wait()
        time.sleep(0.2)

    def stop(self) -> None:
        if self.cluster.service and self.cluster.service.proc.poll() is None:
            self.thaw()
        self.cluster.stop()
        import shutil

        shutil.rmtree(self.cluster.datadir.parent, ignore_errors=True)


def server_environment(pg: Postgres, redis: FreezableRedis) -> dict:
    env = {
        k: v for k, v in os.environ.items()
        if k not in {"DATA_REGIONS", "DEFAULT_REGION", "DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false", SECRET_KEY="fault-test-secret",
        API_KEY_PEPPER="fault-test-pepper", DATABASE_URL=pg.url, REDIS_URL=redis.url, DB_POOL="true",
        ALLOWED_HOSTS="127.0.0.1", SECURE_COOKIES="false", LOG_LEVEL="WARNING",
    )
    return env


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def langfuse_batch(client: httpx.Client, base: str, auth) -> Record:
    trace_ids = [uuid.uuid4().hex for _ in range(3)]
    batch = [
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z",
         "body": {"id": trace_id, "name": "fault", "input": {"q": "hello"}}}
        for trace_id in trace_ids
    ]
    record = _send(client, "langfuse", f"{base}/api/public/ingestion", auth, json={"batch": batch})
    if record.status == 207:
        body = record.stored_ids  # the raw response, replaced below
        by_event = {event["id"]: event["body"]["id"] for event in batch}
        successes = [s["id"] for s in body.get("successes", [])]
        if body.get("errors"):
            record.problem = f"207 with errors: {body['errors']}"
        record.stored_ids = [by_event[s] for s in successes]
    return record


def otlp_export(client: httpx.Client, base: str, auth) -> Record:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    now = time.time_ns()
    document = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "fault"}, "spans": [
        {"traceId": trace_id, "spanId": span_id, "name": "fault", "kind": 1,
         "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now)}
    ]}]}]}
    record = _send(client, "otlp", f"{base}/v1/traces", auth, json=document)
    if record.status == 200:
        body = record.stored_ids
        if body.get("partialSuccess", {}).get("rejectedSpans"):
            record.problem = f"partial success: {body}"
        record.stored_ids = [trace_id]
    return record


def _send(client: httpx.Client, kind: str, url: str, auth, *, json) -> Record:
    started = time.monotonic()
    try:
        response = client.post(url, json=json, auth=auth)
    except httpx.HTTPError as exc:
        return Record(kind, started, time.monotonic() - started, problem=f"{type(exc).__name__}: {exc}")
    record = Record(kind, started, time.monotonic() - started, response.status_code, response.headers.get("Retry-After"))
    if 200 <= response.status_code < 300:
        record.stored_ids = response.json()
    return record


@pytest.fixture
def fault_stack():
    pg, redis = Postgres(), FreezableRedis()
    server = None
    log = tempfile.NamedTemporaryFile(prefix="lookglass-fault-gunicorn-", suffix=".log", delete=False)
    try:
        pg.start()
        pg.setup()
        redis.start()
        env = server_environment(pg, redis)
        manage(env, "migrate_all", "--verbosity", "0")
        keys = json.loads(manage(env, "create_project", "--org", "Faults", "--project", "faulty", "--json"))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--timeout", "60",
             "--graceful-timeout", "5", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, Path(log.name).read_text()[-3000:]
            try:
                if httpx.get(f"{base}/api/public/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield {"pg": pg, "redis": redis, "base": base, "keys": keys, "log": log.name}
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        redis.stop()
        pg.stop()
        Path(log.name).unlink(missing_ok=True)


def test_no_request_hangs_and_nothing_acknowledged_is_lost(fault_stack):
    base, keys, pg, redis = fault_stack["base"], fault_stack["keys"], fault_stack["pg"], fault_stack["redis"]
    auth = (keys["public_key"], keys["secret_key"])
    records: list[Record] = []
    health: list[Record] = []
    stop = threading.Event()
    lock = threading.Lock()

    def sender(send):
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                record = send(client, base, auth)
                with lock:
                    records.append(record)
                time.sleep(0.05)

    def prober():
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(f"{base}/api/public/health?failIfDatabaseUnavailable=true")
                    health.append(Record("health", started, time.monotonic() - started, response.status_code))
                except httpx.HTTPError as exc:
                    health.append(Record("health", started, time.monotonic() - started, problem=str(exc)))
                time.sleep(0.2)

    # Three senders on keep-alive connections against 2 workers × 4 threads: a request stuck on the
    # frozen database holds its thread for up to the request deadline, and with four senders all four
    # could land on the prober's worker and leave health queued behind them (3.47 s once in CI). The
    # promise tested is that health answers within 2 s whenever a thread is free to run it; with at
    # most three stuck requests per worker, one always is.
    threads = [threading.Thread(target=sender, args=(send,), daemon=True)
               for send in (langfuse_batch, otlp_export, langfuse_batch)]
    threads.append(threading.Thread(target=prober, daemon=True))
    for thread in threads:
        thread.start()
    phases = []

    def phase(name, seconds):
        phases.append((name, time.monotonic()))
        time.sleep(seconds)

    try:
        phase("warm", 1.5)
        pg.freeze()
        phase("postgres frozen", 6)
        pg.thaw()
        phase("postgres thawed", 2)
        redis.freeze()
        phase("redis frozen", 4)
        redis.thaw()
        phase("redis thawed", 1.5)
        pg.kill()
        phase("postgres killed", 1)
        pg.start()
        phase("postgres restarted", 2.5)
        redis.kill()
        phase("redis killed", 1)
        redis.start()
        phase("redis restarted", 2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=35)
        pg.thaw()
        redis.thaw() if redis.proc and redis.proc.poll() is None else None

    def when(record):
        name = [n for n, t in phases if t <= record.started]
        return name[-1] if name else "before"

    problems = []
    for record in records:
        label = f"{record.kind} during {when(record)!r} after {record.elapsed:.2f}s"
        if record.problem:
            problems.append(f"{label}: {record.problem}")
        elif not 200 <= record.status < 300 and (record.status != 503 or not record.retry_after):
            problems.append(f"{label}: status {record.status}, Retry-After {record.retry_after!r}")
        if record.elapsed > REQUEST_DEADLINE:
            problems.append(f"{label}: took longer than {REQUEST_DEADLINE} s (status {record.status})")
    for record in health:
        label = f"health during {when(record)!r}"
        if record.problem or record.elapsed > HEALTH_DEADLINE:
            problems.append(f"{label}: {record.problem or f'took {record.elapsed:.2f}s'}")

    acknowledged = {i for record in records if record.status and 200 <= record.status < 300 for i in record.stored_ids}
    with psycopg.connect(pg.conninfo(), connect_timeout=5) as conn:
        stored = {row[0] for row in conn.execute(
            "SELECT id FROM traces_trace WHERE project_id = %s", [keys["project_id"]]
        )}
    lost = acknowledged - stored
    if lost:
        problems.append(f"{len(lost)} acknowledged traces not stored, e.g. {sorted(lost)[:3]}")

    statuses = {}
    for record in records:
        statuses.setdefault(when(record), {}).setdefault(record.status, 0)
        statuses[when(record)][record.status] += 1
    summary = f"responses by phase: {statuses}; health checks: {len(health)}"
    print(summary)
    assert not problems, "\n".join(problems[:40]) + "\n" + summary + "\n" + Path(fault_stack["log"]).read_text()[-4000:]
    # The test proved something only if requests were refused during outages and accepted around them.
    assert sum(1 for r in records if r.status == 503) > 0, summary
    assert len(acknowledged) > 20, summary
    assert any(r.status and r.status < 300 and when(r) == "redis restarted" for r in records), summary
