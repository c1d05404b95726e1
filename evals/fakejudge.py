"""A fake OpenAI-compatible judge server on loopback, for tests and `make bench-evals`.

`FakeJudge(latency=0.3, mode="ok")` serves `POST /v1/chat/completions` (and Anthropic's
`/v1/messages`) on 127.0.0.1 with a thread per request, answering a JSON verdict that fits the
`response_format` schema it was sent. `mode`: ok | malformed | garbage (a 200 whose body is not
JSON) | auth | billing | rate_limited | server_error. A request without a `response_format` (the
console's playground and replay) is answered `reply` as a plain chat message. Every request body is
kept in `requests` (the bench and tests check what was sent).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _verdict(schema: dict) -> dict:
    score = (schema.get("properties") or {}).get("score") or {}
    kind = score.get("type")
    if kind == "boolean":
        value = True
    elif kind == "array":
        value = [score["items"]["enum"][0]]
    elif "enum" in score:
        value = score["enum"][0]
    else:
        value = 0.75
    return {"reasoning": "The answer matches the reference on the main fact.", "score": value}


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: 64 judge calls connecting at once overflowed it.
    request_queue_size = 512


class FakeJudge:
    def __init__(self, *, latency: float = 0.0, mode: str = "ok", reply: str = "A fake answer."):
        self.latency = latency
        self.mode = mode
        self.reply = reply
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                judge.requests.append(body)
                judge.headers.append({k.lower(): v for k, v in self.headers.items()})
                if judge.latency:
                    time.sleep(judge.latency)
                status, payload = judge.answer(self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, body: dict) -> tuple[int, dict | bytes]:
        errors = {
            "auth": (401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
            "billing": (429, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
            "rate_limited": (429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
            "server_error": (500, {"error": {"message": "boom", "type": "server_error"}}),
        }
        if self.mode in errors:
            return errors[self.mode]
        if self.mode == "garbage":
            return 200, b"<html>upstream proxy error</html>"
        if path.endswith("/messages") and "tools" not in body:  # Anthropic, a plain chat (playground)
            return 200, {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"),
                "content": [{"type": "text", "text": self.reply}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 42, "output_tokens": 7},
            }
        if path.endswith("/messages"):  # Anthropic
            schema = body["tools"][0]["input_schema"]
            return 200, {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"),
                "content": [{"type": "tool_use", "id": "toolu_1", "name": body["tools"][0]["name"], "input": _verdict(schema)}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 120, "output_tokens": 30},
            }
        if "response_format" not in body:
            return 200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
            }
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        content = json.dumps(_verdict(schema)) if self.mode == "ok" else '{"reasoning": "cut off'
        return 200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        }
