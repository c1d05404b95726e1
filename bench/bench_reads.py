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

An existing project instead of the seed-volume one: `--project NAME` or id (or BENCH_PROJECT=NAME), e.g. the
10M console seed `console-sql-10000000` (`make bench-console ARGS="--observations 10000000"`). The
values the requests filter on (a trace name, tag, user, session, model, observation name, score name,
prompt, a trace and one of its observations, the window's end) are read from that project with a few
indexed SELECTs, and one API key is issued for it on the first run and kept in
`.data/bench-reads-keys.json` (the only write: a control-plane key row).

Knobs: BENCH_READS_RUNS (20), BENCH_PROJECT, --base URL (a running server; no access-log timing then,
the client round trip is shown instead), --only SUBSTRING (endpoints whose label contains it).
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
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed_volume import STATE_FILE  # noqa: E402
from bench.server import free_port, percentile, prepare_environment, wait_ready  # noqa: E402

RUNS = int(os.environ.get("BENCH_READS_RUNS", "20"))
TARGET_P95_MS = 200
KEYS_FILE = ROOT / ".data" / "bench-reads-keys.json"

# The filter values of the seed-volume project (bench/seed_volume.py); an existing project's are read
# from its rows (`existing_project_state`).
SEED_VOLUME_VALUES = {
    "trace_name": "translate-reply", "tag": "vip", "user": "user-00000", "session": "session-000123",
    "model": "gpt-4o", "response_model": "o3-mini-2025-01-31", "observation_name": "chat-final",
    "score_name": "helpfulness", "prompt": "support-system",
}


def endpoints(state: dict, end: datetime) -> list[tuple[str, str, dict]]:
    """(label, path, query) of every read to time. Values exist in the volume (seed_volume.py)."""
    week = {"fromTimestamp": (end - timedelta(days=7)).isoformat()}
    day_obs = {"fromStartTime": (end - timedelta(days=1)).isoformat()}
    trace_id, observation_id = state["sample_trace"], state["sample_observation"]
    v = {**SEED_VOLUME_VALUES, **state.get("values", {})}
    prompt_window = {"from": (end - timedelta(days=7)).isoformat(), "to": end.isoformat()}
    return [
        ("traces page 1", "/api/public/traces", {}),
        ("traces page 201 (deepest)", "/api/public/traces", {"page": 201}),
        ("traces page 2000 (400)", "/api/public/traces", {"page": 2000}),
        ("traces name=", "/api/public/traces", {"name": v["trace_name"]}),
        ("traces tags=", "/api/public/traces", {"tags": v["tag"]}),
        ("traces userId=", "/api/public/traces", {"userId": v["user"]}),
        ("traces sessionId=", "/api/public/traces", {"sessionId": v["session"]}),
        ("traces fromTimestamp 7d", "/api/public/traces", week),
        ("traces status=error", "/api/public/traces", {"status": "error"}),
        ("traces status=refused", "/api/public/traces", {"status": "refused"}),
        ("traces status=success", "/api/public/traces", {"status": "success"}),
        ("traces model=common", "/api/public/traces", {"model": v["model"]}),
        ("traces model=response model", "/api/public/traces", {"model": v["response_model"]}),
        ("traces model=unknown", "/api/public/traces", {"model": "no-such-model"}),
        ("trace detail", f"/api/public/traces/{trace_id}", {}),
        ("observations page 1", "/api/public/observations", {}),
        ("observations page 201 (deepest)", "/api/public/observations", {"page": 201}),
        ("observations page 2000 (400)", "/api/public/observations", {"page": 2000}),
        ("observations type=GENERATION", "/api/public/observations", {"type": "GENERATION"}),
        ("observations model=response", "/api/public/observations", {"model": v["response_model"]}),
        ("observations name=", "/api/public/observations", {"name": v["observation_name"]}),
        ("observations userId=", "/api/public/observations", {"userId": v["user"]}),
        ("observation detail", f"/api/public/observations/{observation_id}", {}),
        ("v2 observations", "/api/public/v2/observations", {}),
        ("v2 observations 1d GENERATION", "/api/public/v2/observations", {**day_obs, "type": "GENERATION"}),
        ("sessions page 1", "/api/public/sessions", {}),
        ("sessions page 100", "/api/public/sessions", {"page": 100}),
        ("session detail", f"/api/public/sessions/{v['session']}", {}),
        ("scores page 1", "/api/public/v2/scores", {}),
        ("scores name=", "/api/public/v2/scores", {"name": v["score_name"]}),
        ("scores fromTimestamp 7d", "/api/public/v2/scores", week),
        ("scores userId=", "/api/public/v2/scores", {"userId": v["user"]}),
        ("prompt metrics 7d", f"/api/public/v2/prompts/{v['prompt']}/metrics", prompt_window),
    ]


def console_filters(state: dict) -> list[tuple[str, dict]]:
    v = {**SEED_VOLUME_VALUES, **state.get("values", {})}
    return [
        ("console list", {}),
        ("console list status=error", {"status": "error"}),
        ("console list status=success", {"status": "success"}),
        ("console list model=unknown", {"model": "no-such-model"}),
        ("console list model=response", {"model": v["response_model"]}),
        ("console list user", {"user_id": v["user"]}),
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


def existing_project_state(name: str) -> dict:
    """The state `make seed-volume` would have written, for an existing project: its filter values read
    from its newest rows (indexed reads only), and an API key (issued once, kept in KEYS_FILE)."""
    import django

    django.setup()
    from prompts.models import Prompt
    from scores.models import Score
    from tenancy.models import Project
    from tenancy.services import api_key_create
    from traces.models import Observation, Trace

    try:
        project = Project.objects.filter(pk=uuid.UUID(name)).first()
    except ValueError:  # a name (the oldest project of that name)
        project = Project.objects.filter(name=name).order_by("created_at").first()
    if project is None:
        raise SystemExit(f"no project named {name!r}")
    traces = Trace.objects.for_project(project)
    newest = traces.order_by("-timestamp").first()
    if newest is None:
        raise SystemExit(f"project {name!r} has no traces")
    in_session = traces.exclude(session_id="").order_by("-timestamp").first()
    with_user = traces.exclude(user_id="").order_by("-timestamp").first()
    with_tags = traces.exclude(tags=[]).order_by("-timestamp").first()
    calls = Observation.objects.for_project(project).filter(type="GENERATION").order_by("-start_time")
    call = calls.exclude(model="").first()
    # The answered-model index in its own order (a seed without answered models has none to walk).
    answered = (Observation.objects.for_project(project).filter(response_model__gt="")
                .exclude(response_model=call.model if call else "").order_by("response_model").first())
    # The commonest name among the newest scores (the newest one alone may be a rare evaluation's).
    score_names = Counter(Score.objects.for_project(project).order_by("-timestamp").values_list("name", flat=True)[:1000])
    prompt = Prompt.objects.for_project(project).order_by("name").first()
    values = {
        "trace_name": newest.name, "tag": with_tags.tags[0] if with_tags else "no-such-tag",
        "user": with_user.user_id if with_user else "no-such-user",
        "session": in_session.session_id if in_session else "no-such-session",
        "model": call.model if call else "no-such-model",
        # A seed without answered models: a second requested model stands in for the narrow filter.
        "response_model": answered.response_model if answered else (
            calls.exclude(model__in=["", call.model if call else ""]).values_list("model", flat=True).first()
            or "no-such-model"),
        "observation_name": call.name if call else "no-such-name",
        "score_name": score_names.most_common(1)[0][0] if score_names else "no-such-score",
        "prompt": prompt.name if prompt else "no-such-prompt",
    }
    keys = json.loads(KEYS_FILE.read_text()) if KEYS_FILE.exists() else {}
    if str(project.id) not in keys:
        api_key, secret = api_key_create(project=project, note="make bench-reads (BENCH_PROJECT)")
        keys[str(project.id)] = {"public_key": api_key.public_key, "secret_key": secret}
        KEYS_FILE.parent.mkdir(parents=True, exist_ok=True)
        KEYS_FILE.write_text(json.dumps(keys, indent=2))
        KEYS_FILE.chmod(0o600)
    from tenancy.dataplane import data_connection

    with data_connection(project).cursor() as cursor:  # the planner's row count: no scan of a big table
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [Trace._meta.db_table])
        estimate = cursor.fetchone()[0]
    return {
        **keys[str(project.id)], "project_id": str(project.id), "label": f"{name}, ~{max(estimate, 0):,} traces in the table",
        # Just after the newest trace, so "the last 7 days" are the seed's last 7 days.
        "end": (newest.timestamp + timedelta(seconds=1)).isoformat(), "values": values,
        "sample_session": values["session"],
    }


def sample_ids(state: dict) -> None:
    import django

    django.setup()
    from tenancy.models import Project
    from traces.models import Observation, Trace

    project = Project.objects.get(pk=state["project_id"])
    session = state.get("sample_session", SEED_VOLUME_VALUES["session"])
    trace = Trace.objects.for_project(project).filter(session_id=session).order_by("timestamp").first()
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
    for label, filters in console_filters(state):
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
    parser.add_argument("--project", default=os.environ.get("BENCH_PROJECT") or None,
                        help="an existing project's name or id instead of the seed-volume project")
    args = parser.parse_args()
    prepare_environment()
    if args.project:
        state = existing_project_state(args.project)
        print(f"bench-reads: filter values of {args.project}: {state['values']}", file=sys.stderr)
    else:
        if not STATE_FILE.exists():
            raise SystemExit(f"{STATE_FILE} is missing: run `make seed-volume` first")
        state = json.loads(STATE_FILE.read_text())
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
                        expected = 400 if label.endswith("(400)") else 200  # both sides since main has the limit
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
    label = state.get("label") or f"scale {state['scale']}, {state['traces']:,} traces"
    print(f"\nbench-reads: project {state['project_id']} ({label}), "
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
