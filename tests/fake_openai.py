"""A tiny OpenAI-compatible server for end-to-end tests of instrumented clients.

`POST /v1/chat/completions` answers with the next scripted `Reply`, as one JSON completion or, when
the request says `"stream": true`, as server-sent `chat.completion.chunk` events (content split
into several deltas, tool calls streamed as id/name first and arguments in pieces, usage in a last
chunk with no choices when `stream_options.include_usage` is set, then `data: [DONE]`). A `Reply`
with `status` >= 400 answers with OpenAI's error body instead. Every request body is recorded, so a
test can compare what was stored with what was actually sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

CREATED = 1_750_000_000


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the API sends it


@dataclass
class Reply:
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    refusal: str | None = None
    finish_reason: str = "stop"
    model: str = "gpt-4o-mini-2024-07-18"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    status: int = 200
    error_message: str = ""
    error_type: str = "server_error"
    # Pause before the chunks after the first, so a stream's first token and its end are apart.
    stream_pause: float = 0.02
    id: str = "chatcmpl-fake"

    def usage(self) -> dict:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens, "audio_tokens": 0}
        if self.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage

    def message(self) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": self.refusal}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message

    def completion(self) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": CREATED,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "message": self.message(), "logprobs": None, "finish_reason": self.finish_reason}
            ],
            "usage": self.usage(),
        }

    def _chunk(self, delta: dict | None, finish_reason: str | None = None, usage: dict | None = None) -> dict:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk

    def chunks(self, *, include_usage: bool) -> list[dict]:
        chunks = [self._chunk({"role": "assistant", "content": ""})]
        if self.content:
            words = self.content.split(" ")
            chunks += [self._chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        if self.refusal:
            chunks.append(self._chunk({"refusal": self.refusal}))
        for index, call in enumerate(self.tool_calls):
            chunks.append(
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            half = len(call.arguments) // 2
            for piece in (call.arguments[:half], call.arguments[half:]):
                chunks.append(
                    self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        chunks.append(self._chunk({}, self.finish_reason))
        if include_usage:
            chunks.append(self._chunk(None, usage=self.usage()))
        return chunks


class FakeOpenAI:
    """`with FakeOpenAI() as server:` → `server.base_url` for `openai.OpenAI(base_url=...)`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _next(self, body: dict) -> Reply | None:
        with self._lock:
            self.requests.append(body)
            return self._replies.popleft() if self._replies else None

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep pytest output clean
                pass

            def _send_json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send_json(
                        400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}
                    )
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                reply = fake._next(body)
                if reply is None:
                    self._send_json(
                        500, {"error": {"message": "no scripted reply left", "type": "fake_error"}}
                    )
                elif reply.status >= 400:
                    error = {
                        "message": reply.error_message,
                        "type": reply.error_type,
                        "param": None,
                        "code": None,
                    }
                    self._send_json(reply.status, {"error": error})
                elif body.get("stream"):
                    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                    self._stream(reply.chunks(include_usage=include_usage), reply.stream_pause)
                else:
                    self._send_json(200, reply.completion())

            def _stream(self, chunks: list[dict], pause: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for index, chunk in enumerate(chunks):
                    if index == 1 and pause:
                        time.sleep(pause)
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
