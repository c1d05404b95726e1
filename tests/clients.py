"""Real Langfuse SDKs in cached, separate virtualenvs, for end-to-end tests against `live_server`.

Each SDK version gets its own venv under `.data/venvs/<name>` (outside the app's venv, so its
dependencies never leak into ours). It is created and pip-installed once, then reused; a marker file
records the exact requirement so changing the pin rebuilds it. A lock file makes parallel test runs
wait for each other instead of installing twice.

    python = sdk_python("langfuse-v2", "langfuse==2.60.*")
    result = run_sdk_script(python, SCRIPT, env={...})
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".data" / "venvs"


class SdkUnavailable(RuntimeError):
    """The SDK could not be installed (e.g. no network to PyPI)."""


def sdk_python(name: str, requirement: str, *, extra: tuple[str, ...] = ()) -> Path:
    """Path to the python of a venv that has `requirement` installed; builds the venv once."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / ".lookglass-requirement"
    wanted = "\n".join((requirement, *extra))
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and marker.exists() and marker.read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", None) or sys.executable
        steps = [
            [base, "-m", "venv", str(venv)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                requirement,
                *extra,
            ],
        ]
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise SdkUnavailable(
                    f"{' '.join(step[:4])} … failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
                )
        marker.write_text(wanted)
        return python


def run_sdk_script(python: Path, script: str, *, env: dict[str, str], timeout: float = 120) -> str:
    """Run `script` with the SDK venv's python; returns stdout, raises with both streams on failure."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "DJANGO_", "VIRTUAL_ENV"))
    }
    full_env.update(env)
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise AssertionError(f"SDK script failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout
