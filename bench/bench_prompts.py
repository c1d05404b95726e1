"""Prompt fetch latency as the SDKs see it: `make bench-prompts`.

Runs against the server as production runs it: `make bench-prompts` starts the embedded stack
(`python -m config.devstack exec -- …`), this script migrates it, creates a bench project, key and a
prompt with `production`/`staging` labels and a few versions, starts gunicorn exactly like
`make run` (WEB_CONCURRENCY workers × WEB_THREADS threads, production settings, connection pool),
then hits `GET /api/public/v2/prompts/{name}` from BENCH_CLIENTS concurrent clients (one process
each, one kept-alive connection, closed loop) for BENCH_SECONDS. The requests mix the SDKs' three
forms: default label (70 %), `?label=staging` (20 %), `?version=N` (10 %).

Two phases, each with its own server: **cached** (the production settings: the in-process LRU and
Redis answer almost every request, so this is a cache-hit figure) and **cold cache** (both tiers
switched off with PROMPT_CACHE_LOCAL_TTL_SECONDS=0 and PROMPT_CACHE_TTL_SECONDS=0: every request reads
the generation key from Redis, then the database, as a first fetch after a deploy or a label move does).

Prints p50/p90/p99/max latency and requests per second per phase. Every response must be a 200 with
the expected version, or the run fails. BENCH_PORT chooses the port (default: a free one).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import free_port, percentile, prepare_environment, start_gunicorn, wait_ready  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS") or min(8, 2 * (os.cpu_count() or 1)))
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "2"))
WORKERS = os.environ.get("WEB_CONCURRENCY", "2")
THREADS = os.environ.get("WEB_THREADS", "4")
PROMPT_NAME = "bench/support/greeting"


def seed() -> tuple[str, str, dict[str, int]]:
    """A fresh key for the bench project and a prompt whose labels we know. Returns (pk, sk, expected)."""
    import django

    django.setup()
    from prompts.payloads import parse_create
    from prompts.selectors import prompt_by_name
    from prompts.services import prompt_create_version, prompt_version_add_labels
    from tenancy.services import project_bootstrap

    project, api_key, secret = project_bootstrap(
        organization_name="Lookglass bench", project_name="prompt-bench", note="make bench-prompts"
    )
    if prompt_by_name(project=project, name=PROMPT_NAME) is None:
        for text in ("Hello {{name}}!", "Hi {{name}}, welcome to {{place}}.", "Hey {{name}}."):
            prompt_create_version(
                project=project,
                data=parse_create(
                    {
                        "name": PROMPT_NAME,
                        "prompt": text,
                        "config": {"model": "gpt-4o-mini", "temperature": 0.2},
                        "tags": ["bench"],
                    }
                ),
                actor=None,
            )
        prompt_version_add_labels(
            project=project, name=PROMPT_NAME, version=2, labels=["production"], actor=None
        )
        prompt_version_add_labels(
            project=project, name=PROMPT_NAME, version=3, labels=["staging"], actor=None
        )
    from prompts.models import PromptLabel

    prompt = prompt_by_name(project=project, name=PROMPT_NAME)
    labels = dict(
        PromptLabel.objects.for_project(project).filter(prompt_id=prompt.id).values_list("label", "version")
    )
    from django.db import connections

    connections.close_all()
    return api_key.public_key, secret, labels


def revoke(public_key: str) -> None:
    """Each run issues a key; it is revoked afterwards so the bench project does not collect live keys."""
    from tenancy.models import ApiKey
    from tenancy.services import api_key_revoke

    api_key_revoke(api_key=ApiKey.objects.get(public_key=public_key))


def _requests(labels: dict[str, int]):
    """(query params, expected version) in the SDK mix."""
    return (
        [({}, labels["production"])] * 7
        + [({"label": "staging"}, labels["staging"])] * 2
        + [({"version": "1"}, 1)]
    )


def client_loop(args) -> tuple[list[float], int]:
    base, auth, labels, start_at, stop_at, seed_value = args
    import httpx

    rng = random.Random(seed_value)
    mix = _requests(labels)
    url = f"{base}/api/public/v2/prompts/{PROMPT_NAME.replace('/', '%2F')}"
    latencies: list[float] = []
    errors = 0
    with httpx.Client(auth=auth, timeout=10) as client:
        while time.time() < stop_at:
            params, expected = rng.choice(mix)
            began = time.perf_counter()
            response = client.get(url, params=params)
            elapsed = time.perf_counter() - began
            ok = response.status_code == 200 and response.json()["version"] == expected
            if time.time() >= start_at:  # warm-up requests are not counted
                latencies.append(elapsed)
                errors += 0 if ok else 1
            elif not ok:
                errors += 1
    return latencies, errors


def main() -> int:
    prepare_environment()
    code = subprocess.call(
        [sys.executable, "manage.py", "migrate_all"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    if code != 0:
        print("migrate_all failed", file=sys.stderr)
        return code
    public, secret, labels = seed()
    errors = 0
    try:
        errors += measure("cached", {}, public, secret, labels)
        errors += measure(
            "cold cache", {"PROMPT_CACHE_LOCAL_TTL_SECONDS": "0", "PROMPT_CACHE_TTL_SECONDS": "0"},
            public, secret, labels,
        )
    finally:
        revoke(public)
    return 0 if errors == 0 else 1


def measure(label: str, env: dict, public: str, secret: str, labels: dict) -> int:
    """One phase against a fresh server started with `env` on top of the production settings."""
    port = int(os.environ.get("BENCH_PORT") or free_port())
    base = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        server = start_gunicorn(port, workers=WORKERS, threads=THREADS)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        wait_ready(base, server)
        start_at = time.time() + WARMUP_SECONDS
        stop_at = start_at + SECONDS
        jobs = [(base, (public, secret), labels, start_at, stop_at, i) for i in range(CLIENTS)]
        with multiprocessing.get_context("spawn").Pool(CLIENTS) as pool:
            results = pool.map(client_loop, jobs)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    if not latencies:
        print(f"[{label}] no requests completed", file=sys.stderr)
        return 1
    ms = [x * 1000 for x in latencies]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"[{label}] GET /api/public/v2/prompts/{{name}}: {CLIENTS} clients × {SECONDS:.0f} s, "
        f"gunicorn {WORKERS} workers × {THREADS} threads, {os.cpu_count()} CPUs (load average {load}; "
        "the clients share them)"
    )
    print(f"[{label}] requests {len(ms)}  errors {errors}  throughput {len(ms) / SECONDS:.0f} req/s")
    print(
        f"[{label}] latency ms  p50 {percentile(ms, 0.50):.2f}  p90 {percentile(ms, 0.90):.2f}  "
        f"p99 {percentile(ms, 0.99):.2f}  max {ms[-1]:.2f}  mean {statistics.fmean(ms):.2f}"
    )
    return errors


if __name__ == "__main__":
    sys.exit(main())
