"""The embedded stack and settings fail with one clear line, never a traceback."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def run(args, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_unreachable_database_url_is_a_clear_error():
    result = run(["-m", "config.devstack", "exec", "--", "true"],
                 DATABASE_URL="postgres://nobody:pw@127.0.0.1:1/nothing", REDIS_URL=settings.REDIS_URL)
    assert result.returncode == 1
    assert "cannot reach the database" in result.stderr
    assert "pw@" not in result.stdout + result.stderr  # the password is masked
    assert "Traceback" not in result.stdout + result.stderr


def test_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(["-m", "config.devstack", "run"], DATABASE_URL=os.environ["DATABASE_URL"],
                     REDIS_URL=settings.REDIS_URL, PORT=str(port))
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_stack_status_lines_leave_stdout_to_the_command(capsys):
    """`make manage ARGS="create_project … --json" | jq` needs stdout to be the JSON alone: every status
    line of the embedded stack (servers started, errors) goes to stderr."""
    from config import devstack

    devstack.say("embedded PostgreSQL on 127.0.0.1:1")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "embedded PostgreSQL" in captured.err


def test_production_without_secrets_refuses_to_start():
    env = {"DEBUG": "false", "SECRET_KEY": "", "API_KEY_PEPPER": "", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = run(["-c", "import django; django.setup()"], **env)
    assert result.returncode != 0
    assert "SECRET_KEY and API_KEY_PEPPER must be set in production" in result.stderr


def test_every_setting_read_from_the_environment_is_documented():
    names = set()
    for path in [ROOT / "config" / "settings.py"]:
        names |= set(re.findall(r"\benv\.\w+\(\s*\"([A-Z0-9_]+)\"", path.read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    documented |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text()))
    assert names, "expected settings read through env"
    assert sorted(names - documented) == []


def test_security_settings_are_on_outside_debug():
    assert settings.DEBUG is False
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SECURE_CONTENT_TYPE_NOSNIFF is True
    assert settings.X_FRAME_OPTIONS == "DENY"
    assert "django.middleware.security.SecurityMiddleware" in settings.MIDDLEWARE


def test_a_command_beside_a_running_stack_finds_its_servers_on_the_ports_they_run_on(tmp_path):
    """`make manage` beside a `make run` started with other EMBEDDED_*_PORT values: the cluster and the
    Redis of the data directory are used where they run, not looked for on this command's ports."""
    from urllib.parse import urlsplit

    from config.devstack import EmbeddedPostgres, EmbeddedRedis

    pgdir = tmp_path / "pg"
    pgdir.mkdir()
    # postmaster.pid as PostgreSQL writes it: pid, data directory, start time, port, …; a live pid.
    (pgdir / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdir}\n1765000000\n55611\n/tmp\n127.0.0.1\n")
    assert EmbeddedPostgres(pgdir, 54329, durable=True, reuse=True).start() == "postgres://postgres@127.0.0.1:55611"

    running = urlsplit(settings.REDIS_URL).port  # this test run's Redis stands in for the running stack's
    redisdir = tmp_path / "redis"
    redisdir.mkdir()
    (redisdir / EmbeddedRedis.PORT_FILE).write_text(str(running))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert EmbeddedRedis(redisdir, free, reuse=True).start() == f"redis://127.0.0.1:{running}/0"
    # A port file left by a stopped server is not trusted.
    (redisdir / EmbeddedRedis.PORT_FILE).write_text(str(free))
    assert EmbeddedRedis(redisdir, free, reuse=True)._running_port() is None
