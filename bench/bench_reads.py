"""Read latency over the `make seed-volume` project: `make bench-reads`.

For every read endpoint of issue 13's list (Langfuse-compatible traces, observations v1/v2, sessions,
scores, prompt version metrics) and the console trace list, the script sends the same requests
BENCH_READS_RUNS times (after two warm-up rounds) from one client, one request at a time, and prints
p50/p95 of the *server* time: gunicorn's access log `%(D)s` (microseconds from the request being read
to the response being written; no client or loopback time). The console trace list is timed
in this process around `traces.admin.trace_page` (its queries and row building, not template
rendering), on the same database, and so is the monitoring cost-by-feature answer
(`monitoring.selectors.cost_breakdown`, from the rollups).

A/B: `--compare DIR` starts a second gunicorn from another checkout (e.g. `git archive main | tar -x
-C /tmp/old`) on the same database and alternates the two servers request by request, so machine load
hits both alike; the table then shows both and the ratio. The console list is timed for this
checkout only.

Knobs: BENCH_READS_RUNS (20), --base URL (a running server; no access-log timing then, the client
round trip is shown instead), --only SUBSTRING (endpoints whose label contains it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed_volume import STATE_FILE  # noqa: E402
from bench.server import free_port, percentile, prepare_environment, wait_ready  # noqa: E402

RUNS = int(os.environ.get("BENCH_READS_RUNS", "20"))
TARGET_P95_MS = 200


def endpoints(state: dict, end: datetime) -> list[tuple[str, str, dict]]:
    """(label, path, query) of every read to time. Values exist in the volume (seed_volume.py)."""
    week = {"fromTimestamp": (end - timedelta(days=7)).isoformat()}
    day_obs = {"fromStartTime": (end - timedelta(days=1)).isoformat()}
    trace_id, observation_id = state["sample_trace"], state["sample_observation"]
    prompt_window = {"from": (end - timedelta(days=7)).isoformat(), "to": end.isoformat()}
    return [
        ("traces page 1", "/api/public/traces", {}),
        ("traces page 201 (deepest)", "/api/public/traces", {"page": 201}),
        ("traces page 2000 (400)", "/api/public/traces", {"page": 2000}),
        ("traces name=", "/api/public/traces", {"name": "translate-reply"}),
        ("traces tags=vip", "/api/public/traces", {"tags": "vip"}),
        ("traces userId=", "/api/public/traces", {"userId": "user-00000"}),
        ("traces sessionId=", "/api/public/traces", {"sessionId": "session-000123"}),
        ("traces fromTimestamp 7d", "/api/public/traces", week),
        ("traces status=error", "/api/public/traces", {"status": "error"}),
        ("traces status=refused", "/api/public/traces", {"status": "refused"}),
        ("traces status=success", "/api/public/traces", {"status": "success"}),
        ("traces model=gpt-4o", "/api/public/traces", {"model": "gpt-4o"}),
        ("traces model=response model", "/api/public/traces", {"model": "o3-mini-2025-01-31"}),
        ("traces model=unknown", "/api/public/traces", {"model": "no-such-model"}),
        ("trace detail", f"/api/public/traces/{trace_id}", {}),
        ("observations page 1", "/api/public/observations", {}),
        ("observations page 201 (deepest)", "/api/public/observations", {"page": 201}),
        ("observations page 2000 (400)", "/api/public/observations", {"page": 2000}),
        ("observations type=GENERATION", "/api/public/observations", {"type": "GENERATION"}),
        ("observations model=response", "/api/public/observations", {"model": "o3-mini-2025-01-31"}),
        ("observations name=", "/api/public/observations", {"name": "chat-final"}),
        ("observations userId=", "/api/public/observations", {"userId": "user-00000"}),
        ("observation detail", f"/api/public/observations/{observation_id}", {}),
        ("v2 observations", "/api/public/v2/observations", {}),
        ("v2 observations 1d GENERATION", "/api/public/v2/observations", {**day_obs, "type": "GENERATION"}),
        ("sessions page 1", "/api/public/sessions", {}),
        ("sessions page 100", "/api/public/sessions", {"page": 100}),
        ("session detail", "/api/public/sessions/session-000123", {}),
        ("scores page 1", "/api/public/v2/scores", {}),
        ("scores name=", "/api/public/v2/scores", {"name": "helpfulness"}),
        ("scores fromTimestamp 7d", "/api/public/v2/scores", week),
        ("scores userId=", "/api/public/v2/scores", {"userId": "user-00000"}),
        ("prompt metrics 7d", "/api/public/v2/prompts/support-system/metrics", prompt_window),
    ]


CONSOLE_FILTERS = [
    ("console list", {}),
    ("console list status=error", {"status": "error"}),
    ("console list status=success", {"status": "success"}),
    ("console list model=unknown", {"model": "no-such-model"}),
    ("console list model=response", {"model": "o3-mini-2025-01-31"}),
    ("console list user", {"user_id": "user-00000"}),
]


def start_server(port: int, cwd: Path, log: Path) -> subprocess.Popen:
    argv = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--timeout", "120",
        "--access-logfile", str(log), "--access-logformat", "%(D)s %(s)s %(U)s",
    ]
    env = os.environ.copy()
    env["PYTHONPATH"] = str(cwd)
    return subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def _log_lines(log: Path, seen: int) -> tuple[list[tuple[float, int]], int]:
    lines = log.read_text().splitlines() if log.exists() else []
    out = []
    for line in lines[seen:]:
        micros, status, _ = line.split(" ", 2)
        out.append((int(micros) / 1000, int(status)))
    return out, len(lines)


def sample_ids(state: dict) -> None:
    import django

    django.setup()
    from tenancy.models import Project
    from traces.models import Observation, Trace

    project = Project.objects.get(pk=state["project_id"])
    trace = Trace.objects.for_project(project).filter(session_id="session-000123").order_by("timestamp").first()
    if trace is None:
        raise SystemExit("the seed-volume project has no traces: run `make seed-volume` first")
    state["sample_trace"] = trace.id
    state["sample_observation"] = (
        Observation.objects.for_project(project).filter(trace_id=trace.id).order_by("start_time").last().id
    )


def time_console(state: dict, runs: int, only: str | None) -> dict[str, list[float]]:
    from django.db import connections

    from tenancy.models import Project
    from traces.admin import trace_page

    project = Project.objects.get(pk=state["project_id"])
    out: dict[str, list[float]] = {}
    for label, filters in CONSOLE_FILTERS:
        if only and only not in label:
            continue
        times = []
        for run in range(runs + 2):
            t0 = time.perf_counter()
            trace_page(projects=[project], filters=filters)
            if run >= 2:
                times.append((time.perf_counter() - t0) * 1000)
        out[label] = times
    # The seed's cost-by-feature question, answered from the monitoring rollups (not raw rows).
    from monitoring.selectors import cost_breakdown

    if not only or only in "cost by feature 7d":
        times = []
        for run in range(runs + 2):
            t0 = time.perf_counter()
            cost_breakdown(project=project, by="feature", days=7)
            if run >= 2:
                times.append((time.perf_counter() - t0) * 1000)
        out["cost by feature 7d"] = times
    for connection in connections.all():
        connection.close()
    return out


def main() -> int:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=None, help="a running server (client round trip is timed)")
    parser.add_argument("--compare", default=None, help="another checkout to run side by side (A/B)")
    parser.add_argument("--only", default=None, help="only endpoints whose label contains this")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    if not STATE_FILE.exists():
        raise SystemExit(f"{STATE_FILE} is missing: run `make seed-volume` first")
    state = json.loads(STATE_FILE.read_text())
    prepare_environment()
    sample_ids(state)
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the settings log every request at INFO
    end = datetime.fromisoformat(state["end"]).astimezone(UTC)
    import base64

    import httpx

    auth = "Basic " + base64.b64encode(f"{state['public_key']}:{state['secret_key']}".encode()).decode()
    servers: list[tuple[str, str, Path | None, subprocess.Popen | None]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    try:
        if args.base:
            servers.append(("this", args.base, None, None))
        else:
            for name, cwd in (("this", ROOT), ("compare", Path(args.compare) if args.compare else None)):
                if cwd is None:
                    continue
                port, log = free_port(), tmp / f"{name}.log"
                proc = start_server(port, cwd, log)
                servers.append((name, f"http://127.0.0.1:{port}", log, proc))
            for _, base, _, proc in servers:
                wait_ready(base, proc)
        results: dict[tuple[str, str], list[float]] = {}
        failures: list[str] = []
        seen = {name: 0 for name, *_ in servers}
        with httpx.Client(timeout=120, headers={"Authorization": auth}) as client:
            for label, path, query in endpoints(state, end):
                if args.only and args.only not in label:
                    continue
                for run in range(args.runs + 2):
                    for name, base, log, _ in servers:
                        t0 = time.perf_counter()
                        response = client.get(base + path, params=query)
                        client_ms = (time.perf_counter() - t0) * 1000
                        expected = 400 if label.endswith("(400)") and name == "this" else 200
                        if response.status_code != expected:
                            failures.append(f"{name} {label}: HTTP {response.status_code} {response.text[:200]}")
                        server_ms = client_ms
                        if log is not None:
                            for _ in range(50):  # the access log line is written after the response
                                lines, count = _log_lines(log, seen[name])
                                if lines:
                                    break
                                time.sleep(0.01)
                            seen[name] = count
                            server_ms = lines[-1][0] if lines else client_ms
                        if run >= 2:
                            results.setdefault((label, name), []).append(server_ms)
                print(f"  {label}", file=sys.stderr, flush=True)
        console = time_console(state, args.runs, args.only)
    finally:
        for _, _, _, proc in servers:
            if proc is not None:
                stop(proc)

    names = [name for name, *_ in servers]
    print(f"\nbench-reads: project {state['project_id']} (scale {state['scale']}, {state['traces']:,} traces), "
          f"{args.runs} runs each, {'server time from the access log' if not args.base else 'client round trip'}, "
          f"ms; load average {os.getloadavg()[0]:.1f}")
    header = f"{'endpoint':34}" + "".join(f"{n + ' p50':>13}{n + ' p95':>13}" for n in names)
    if len(names) == 2:
        header += f"{'p95 ratio':>11}"
    print(header)
    over = []
    for label in dict.fromkeys(label for label, _ in results):
        line = f"{label:34}"
        p95s = []
        for name in names:
            values = sorted(results.get((label, name), []))
            p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
            p95s.append(p95)
            line += f"{p50:13.1f}{p95:13.1f}"
        if len(names) == 2 and p95s[0] > 0:
            line += f"{p95s[1] / p95s[0]:10.1f}x"
        if p95s[0] > TARGET_P95_MS:
            over.append(label)
        print(line)
    for label, values in console.items():
        values.sort()
        p95 = percentile(values, 0.95)
        print(f"{label + ' (in-process)':34}{percentile(values, 0.5):13.1f}{p95:13.1f}")
        if p95 > TARGET_P95_MS:
            over.append(label)
    print(f"over {TARGET_P95_MS} ms p95 ({names[0]}): {', '.join(over) if over else 'none'}")
    for failure in failures[:20]:
        print("FAILED", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
