"""A loopback HTTP receiver for alert deliveries: records every request and verifies the signature
as a customer's receiver would (`monitoring.alerts_delivery.verify`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monitoring.alerts_delivery import SIGNATURE_HEADER, verify


class Receiver:
    def __init__(self):
        self.requests: list[dict] = []
        self.secret = ""
        self.statuses: list[int] = []  # answered in order, then 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({
                    "path": self.path,
                    "headers": dict(self.headers),
                    "raw": raw,
                    "json": json.loads(raw),
                    "signed": bool(receiver.secret)
                    and verify(receiver.secret, raw, self.headers.get(SIGNATURE_HEADER, "")),
                })
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def kinds(self) -> list[str]:
        return [r["json"].get("payload", {}).get("kind") for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
