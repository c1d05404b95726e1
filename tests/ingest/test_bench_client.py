"""`make bench-ingest`'s raw keep-alive sender (BENCH_CLIENT=raw): it must send exactly the request and
read every answer shape gunicorn can give, or the benchmark's figures would count failed requests."""

from __future__ import annotations

import asyncio

from bench import bench_ingest


def _serve(answers: list[bytes], received: list[bytes], *, close_after: set[int] = frozenset()):
    """A loopback server giving `answers` in order, one per request, recording each request's bytes;
    it closes the connection after the requests whose index is in `close_after`."""
    served = {"count": 0, "connections": 0}

    async def handle(reader, writer):
        served["connections"] += 1
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            received.append(head + await reader.readexactly(length))
            index = served["count"]
            served["count"] += 1
            writer.write(answers[index])
            await writer.drain()
            if index in close_after:
                writer.close()
                return

    return handle, served


def _run(answers, *, close_after=frozenset(), pause_before: dict[int, float] | None = None):
    received: list[bytes] = []
    handle, served = _serve(answers, received, close_after=close_after)

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = bench_ingest._RawConnection("127.0.0.1", port)
        out = []
        for index in range(len(answers)):
            await asyncio.sleep((pause_before or {}).get(index, 0))
            head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n".encode()
            out.append(await connection.post(head, f"body{index}".encode()))
        connection.close()
        server.close()
        await server.wait_closed()
        return out

    return asyncio.run(main()), received, served


def test_it_reads_content_length_and_chunked_answers_on_one_connection():
    answers = [
        b"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
        b'{"successes": []}',
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    ]
    out, received, served = _run(answers)
    assert [(a.status_code, a.content) for a in out] == [
        (207, b'{"successes": []}'), (200, b"abcde"), (503, b""),
    ]
    assert out[0].json() == {"successes": []}
    assert received == [
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nbody{i}".encode() for i in range(3)
    ]
    assert served["connections"] == 1  # kept alive


def test_it_reopens_after_connection_close_and_after_the_server_drops_an_idle_connection():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    # Request 0 is answered with `Connection: close`; the server drops the connection after request 1
    # without saying so (gunicorn's keep-alive timeout), and request 2 comes after a pause.
    out, received, served = _run([closing, ok, ok], close_after={0, 1}, pause_before={2: 0.2})
    assert [a.status_code for a in out] == [200, 200, 200]
    assert len(received) == 3
    assert served["connections"] == 3
