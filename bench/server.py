"""What the benchmarks share: the server started as in production, and the latency arithmetic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from config.devstack import free_port, load_or_create_secrets

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["free_port", "percentile", "prepare_environment", "start_gunicorn", "wait_ready"]


def prepare_environment() -> None:
    """Production settings, with the same secrets `make run` uses so its keys stay valid."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    load_or_create_secrets(os.environ)
    os.environ["DEBUG"] = "false"
    os.environ["DB_POOL"] = "true"
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("SECURE_COOKIES", "false")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")


def start_gunicorn(
    port: int, *, workers: str, threads: str, stderr=None, access_log: bool = False, config: str | None = None
) -> subprocess.Popen:
    """gunicorn gthread as `make run` starts it, in its own process group (so it can be killed whole)."""
    argv = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
        "--workers", workers, "--threads", threads,
        "--graceful-timeout", "10", "--timeout", "60",
    ]
    argv += ["--access-logfile", "-"] if access_log else ["--log-level", "warning"]
    if config:  # a benchmark's own hooks (a python module path), e.g. bench.gunicorn_rollups_ab
        argv += ["--config", f"python:{config}"]
    return subprocess.Popen(
        argv, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL if access_log else None,
        stderr=stderr, start_new_session=True,
    )


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base}/api/public/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not become ready within {timeout:.0f} s")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]
