"""Request bodies on every endpoint that reads one: chunked transfer (no Content-Length), the shared
reader's limits on prompts, and deep nesting on the DRF API.

Django's test client always sends a Content-Length, so chunked requests are built here as the WSGI
environ gunicorn hands over (`wsgi.input` de-chunked, no CONTENT_LENGTH, `wsgi.input_terminated`),
and proven once more against a real gunicorn in tests/tenancy/test_chunked_gunicorn.py.
"""

import gzip
import io
import json

import orjson
import pytest

from ingest.adapters.otel.testing import TRACE_ID, make_request, make_span, to_otlp_json
from scores.models import Score, ScoreConfig
from tenancy.models import Project
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(databases="__all__")


class Trickle(io.BytesIO):
    """A WSGI input returning fewer bytes than asked, as PEP 3333 allows."""

    def read(self, size=-1):
        return super().read(7 if size is None or size < 0 else min(size, 7))


def chunked(client, path, body: bytes, *, method="POST", terminated=True, content_type="application/json",
            stream=io.BytesIO, **headers):
    """The request as gunicorn passes a `Transfer-Encoding: chunked` body to the application."""
    environ = client._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD=method,
        CONTENT_TYPE=content_type,
        HTTP_TRANSFER_ENCODING="chunked",
        **headers,
    )
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = stream(body)
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.handler(environ)


def _batch(trace_id="t-chunked"):
    return orjson.dumps(
        {
            "batch": [
                {
                    "id": f"ev-{trace_id}",
                    "type": "trace-create",
                    "timestamp": "2026-01-01T00:00:00Z",
                    "body": {"id": trace_id, "name": "chunked", "timestamp": "2026-01-01T00:00:00Z"},
                }
            ]
        }
    )


def _otlp_json():
    return orjson.dumps(to_otlp_json(make_request([make_span(name="chunked-span")])))


# --- chunked bodies, crafted environ ------------------------------------------------------------


def test_a_chunked_ingestion_batch_is_read_and_stored(client, project, api_key):
    response = chunked(client, "/api/public/ingestion", _batch(), HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 207, response.content
    assert orjson.loads(response.content)["successes"] == [{"id": "ev-t-chunked", "status": 201}]
    assert Trace.objects.for_project(project).get(id="t-chunked").name == "chunked"


def test_a_chunked_body_arriving_in_short_reads_is_read_whole(client, project, api_key):
    response = chunked(client, "/api/public/ingestion", _batch(), stream=Trickle, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 207, response.content
    assert Trace.objects.for_project(project).filter(id="t-chunked").exists()


def test_a_gzipped_chunked_ingestion_batch_is_read_and_stored(client, project, api_key):
    response = chunked(
        client, "/api/public/ingestion", gzip.compress(_batch()), HTTP_AUTHORIZATION=api_key.basic,
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 207, response.content
    assert Trace.objects.for_project(project).filter(id="t-chunked").exists()


@pytest.mark.parametrize("path", ["/v1/traces", "/api/public/otel/v1/traces"])
def test_a_chunked_otlp_export_is_stored_not_acknowledged_and_dropped(client, project, api_key, path):
    response = chunked(client, path, _otlp_json(), HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    assert Observation.objects.for_project(project).filter(trace_id=TRACE_ID, name="chunked-span").exists()


def test_a_chunked_protobuf_export_is_stored(client, project, api_key):
    body = gzip.compress(make_request([make_span(name="pb-span")]).SerializeToString())
    response = chunked(
        client, "/v1/traces", body, content_type="application/x-protobuf", HTTP_AUTHORIZATION=api_key.basic,
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200, response.content
    assert Observation.objects.for_project(project).filter(name="pb-span").exists()


def test_chunked_bodies_keep_the_decompressed_size_limit(client, project, api_key, settings):
    settings.INGEST_MAX_BODY_BYTES = 10_000
    bomb = gzip.compress(b" " * 1_000_000)
    response = chunked(
        client, "/api/public/ingestion", bomb, HTTP_AUTHORIZATION=api_key.basic, HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413
    response = chunked(client, "/api/public/ingestion", b" " * 10_001, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 413
    assert orjson.loads(response.content)["error"] == "PayloadTooLargeError"


def test_a_chunked_score_and_score_config_are_stored(client, project, api_key):
    response = chunked(
        client, "/api/public/score-configs",
        orjson.dumps({"name": "chunky", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}),
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 200, response.content
    assert ScoreConfig.objects.filter(project=project, name="chunky").exists()
    response = chunked(
        client, "/api/public/scores", orjson.dumps({"traceId": "t-1", "name": "chunky", "value": 0.5}),
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 200, response.content
    assert Score.objects.for_project(project).filter(name="chunky", value=0.5).exists()


def test_a_chunked_prompt_and_redaction_preview_are_read(client, project, api_key):
    response = chunked(
        client, "/api/public/v2/prompts", orjson.dumps({"name": "chunked", "prompt": "Hi {{x}}", "type": "text"}),
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code in (200, 201), response.content
    assert orjson.loads(response.content)["name"] == "chunked"
    response = chunked(client, "/api/public/redact", orjson.dumps({"text": "hello"}),
                       HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    assert orjson.loads(response.content)["text"] == "hello"


def test_a_chunked_feedback_is_read(client, project, api_key):
    Trace.objects.for_project(project).create(id="t-fb", name="x")
    response = chunked(
        client, "/api/v1/feedback", orjson.dumps({"trace_id": "t-fb", "user_id": "u-1", "rating": "up"}),
        HTTP_AUTHORIZATION=api_key.bearer,
    )
    assert response.status_code == 201, response.content  # created (200 is an update)
    assert Score.objects.for_project(project).filter(trace_id="t-fb").exists()


def test_a_chunked_drf_patch_is_applied_not_silently_ignored(client, project, owner):
    client.force_login(owner)
    path = f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/"
    response = chunked(client, path, json.dumps({"name": "renamed"}).encode(), method="PATCH")
    assert response.status_code == 200, response.content
    project.refresh_from_db()
    assert project.name == "renamed"


def test_a_chunked_drf_body_over_the_limit_is_a_json_413(client, project, owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(owner)
    path = f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/"
    response = chunked(client, path, json.dumps({"name": "x" * 2000}).encode(), method="PATCH")
    assert response.status_code == 413
    assert orjson.loads(response.content)["error"] == "PayloadTooLargeError"
    assert Project.objects.get(id=project.id).name == project.name


@pytest.mark.parametrize("path", ["/api/public/ingestion", "/v1/traces", "/api/v1/me"])
def test_a_chunked_body_the_server_did_not_bound_is_411_never_success(client, api_key, path):
    """Without `wsgi.input_terminated` (Django's runserver) the body cannot be read safely."""
    response = chunked(client, path, _batch(), terminated=False, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 411, response.content


# --- prompts go through the shared reader ----------------------------------------------------------


def test_a_prompt_body_over_the_limit_is_a_json_413(client, api_key):
    body = orjson.dumps({"name": "huge", "prompt": "x" * (6 * 1024 * 1024), "type": "text"})
    response = client.post(
        "/api/public/v2/prompts", data=body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content)["error"] == "PayloadTooLargeError"


def test_a_gzipped_prompt_is_decompressed(client, api_key):
    body = gzip.compress(orjson.dumps({"name": "zipped", "prompt": "Hello", "type": "text"}))
    response = client.post(
        "/api/public/v2/prompts", data=body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic,
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code in (200, 201), response.content
    assert orjson.loads(response.content)["prompt"] == "Hello"


# --- DRF: deep nesting -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 1500 + b"]" * 1500])
def test_deeply_nested_json_on_the_drf_api_is_a_json_400(client, project, owner, body):
    client.force_login(owner)
    for method, path in (
        ("PATCH", f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/"),
        ("POST", f"/api/v1/organizations/{project.organization_id}/projects/"),
        ("POST", "/api/v1/organizations/"),
    ):
        response = client.generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code, response.content[:200])
        assert "JSON parse error" in orjson.loads(response.content)["detail"]


def test_the_drf_api_still_parses_ordinary_json(client, project, owner):
    client.force_login(owner)
    path = f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/"
    response = client.patch(path, data=json.dumps({"name": "still-works"}), content_type="application/json")
    assert response.status_code == 200, response.content
    response = client.patch(path, data="{nope", content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("deep", ["[" * 1000 + "1" + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000])
def test_values_nested_within_the_parsers_limit_are_a_400_too(client, project, owner, deep):
    """1000 levels are within orjson's limit, but beyond the parser's own (MAX_BODY_DEPTH): a 400 on
    every interpreter. (It used to rest on the standard library running out of stack where DRF
    re-encodes JSONField values: a 400 on CPython 3.11, a 200 on 3.13.)"""
    client.force_login(owner)
    base = f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/"
    for method, path, body in (
        ("POST", base + "redact", '{"value": %s}' % deep),
        ("PATCH", base + "redaction-policy", '{"detector_modes": %s}' % deep),
        ("PATCH", base, '{"name": %s}' % deep),
        ("POST", "/api/v1/organizations/", '{"name": %s}' % deep),
    ):
        response = client.generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code, response.content[:200])


@pytest.mark.parametrize("shape", ["list", "object"])
def test_the_body_depth_limit_is_exact(client, project, owner, shape):
    """A body nested exactly MAX_BODY_DEPTH levels is redacted and answered; one level more is a 400
    that says why, whatever the interpreter's stack."""
    from tenancy.http.body import MAX_BODY_DEPTH

    def nested(levels: int) -> str:  # the value alone; the body's object is one more level
        opening, closing = ("[", "]") if shape == "list" else ('{"a":', "}")
        return opening * levels + '"call 415-555-0134"' + closing * levels

    client.force_login(owner)
    path = f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/redact"
    response = client.post(path, '{"value": %s}' % nested(MAX_BODY_DEPTH - 1), content_type="application/json")
    assert response.status_code == 200, response.content[:200]
    assert b"415-555-0134" not in response.content  # redacted all the way down
    response = client.post(path, '{"value": %s}' % nested(MAX_BODY_DEPTH), content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert f"deeper than {MAX_BODY_DEPTH} levels" in orjson.loads(response.content)["detail"]


@pytest.mark.parametrize("shape", ["list", "object"])
def test_public_endpoints_taking_one_object_refuse_a_body_nested_too_deep(client, api_key, shape):
    """The public endpoints whose body is one object share the limit (`read_json`, and the redaction
    preview's own parse). A value nested 1000 levels was a 500 on two of them (the stack ran out where
    a serializer re-encodes it); a batch keeps its per-item checks instead (next test)."""
    from tenancy.http.body import MAX_BODY_DEPTH

    opening, closing = ("[", "]") if shape == "list" else ('{"a":', "}")
    deep = opening * 1000 + "1" + closing * 1000
    for path, body in (
        ("/api/public/redact", '{"value": %s}' % deep),
        ("/api/public/v2/prompts", '{"name": "p", "type": "text", "prompt": "hi", "config": %s}' % deep),
        ("/api/public/exports", '{"filters": %s}' % deep),
    ):
        response = client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 400, (path, response.status_code, response.content[:200])
        assert f"nests deeper than {MAX_BODY_DEPTH} levels" in response.content.decode(), path


def test_a_batch_keeps_refusing_only_the_event_nested_too_deep(client, api_key, project):
    """No limit for a batch's body as a whole: its one deep event is refused alone, the other stored."""
    deep = "[" * 1000 + "1" + "]" * 1000
    events = [
        {"id": "e-deep", "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z", "body": {"id": "t-deep", "input": "X"}},
        {"id": "e-fine", "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z", "body": {"id": "t-fine", "input": "hi"}},
    ]
    body = orjson.dumps({"batch": events}).decode().replace('"X"', deep)
    response = client.post("/api/public/ingestion", body, content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 207, response.content[:300]
    answer = orjson.loads(response.content)
    assert [s["id"] for s in answer["successes"]] == ["e-fine"]
    assert [e["id"] for e in answer["errors"]] == ["e-deep"] and answer["errors"][0]["status"] == 400


# --- the decompressed-size bound itself, and the exact limit ----------------------------------------

GIB = 1 << 30


def _bomb(encoding: str, inflated: int = GIB) -> bytes:
    """A valid gzip/deflate body of `inflated` zero bytes (~1 MB for 1 GiB), built in milliseconds:
    after a full flush deflate restarts from scratch, so every further 1 MiB block compresses to
    the same bytes and can be repeated; only the trailer checksum covers the whole."""
    import struct
    import zlib

    block = bytes(1 << 20)
    assert inflated % len(block) == 0
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)  # with the header
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH) == repeated
    trailer_size = 8 if encoding == "gzip" else 4
    last_block = compressor.flush()[:-trailer_size]  # the empty final block, without the trailer
    blocks = inflated // len(block)
    if encoding == "gzip":
        crc = 0
        for _ in range(blocks):
            crc = zlib.crc32(block, crc)
        trailer = struct.pack("<II", crc, inflated & 0xFFFFFFFF)
    else:
        adler = 1
        for _ in range(blocks):
            adler = zlib.adler32(block, adler)
        trailer = struct.pack(">I", adler)
    return first + repeated * (blocks - 1) + last_block + trailer


def test_the_bomb_helper_builds_a_valid_body():
    import zlib

    for encoding, wbits in (("gzip", 31), ("deflate", 15)):
        body = _bomb(encoding, inflated=8 << 20)
        assert zlib.decompress(body, wbits) == bytes(8 << 20)
    assert len(_bomb("gzip")) < 1_100_000


def _peak_bytes_during(call):
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        response = call()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return response, peak


@pytest.mark.parametrize(
    "path, encoding, send",
    [
        ("/api/public/ingestion", "gzip", "content-length"),
        ("/api/public/ingestion", "gzip", "chunked"),
        ("/v1/traces", "deflate", "content-length"),
    ],
)
def test_a_1_gib_bomb_is_refused_without_inflating_past_the_limit(client, api_key, settings, path, encoding, send):
    """The 413 alone would also come from inflating everything and then measuring it: the bound is
    that no more than about `limit` bytes are ever inflated (here 1 MiB out of 1 GiB)."""
    limit = 1 << 20
    settings.INGEST_MAX_BODY_BYTES = settings.OTLP_MAX_BODY_BYTES = limit
    headers = {"HTTP_AUTHORIZATION": api_key.basic, "HTTP_CONTENT_ENCODING": encoding}

    def send_body(body):
        if send == "chunked":
            return chunked(client, path, body, **headers)
        return client.post(path, data=body, content_type="application/json", **headers)

    # A small bomb first, so one-time work (URL conf, imports, key cache) is not counted below.
    assert send_body(_bomb(encoding, inflated=2 * limit)).status_code == 413
    bomb = _bomb(encoding)
    response, peak = _peak_bytes_during(lambda: send_body(bomb))
    assert response.status_code == 413, response.content[:300]
    # The request itself holds the ~1 MB compressed body (twice, in the test client), the inflated
    # buffer holds at most limit + 1 bytes and zlib's window is 32 KiB: far below what one more
    # 64 KiB compressed chunk would inflate to (64 MiB).
    assert peak < 8 * limit, f"peak {peak / limit:.1f} MiB while refusing a bomb over a 1 MiB limit"


def _padded_batch(size: int) -> bytes:
    body = _batch("t-exact")
    assert len(body) <= size
    return body + b" " * (size - len(body))  # trailing whitespace is valid JSON


@pytest.mark.parametrize("send", ["content-length", "chunked"])
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(
    client, project, api_key, settings, send, encoding
):
    limit = settings.INGEST_MAX_BODY_BYTES = 10_000

    def post(size):
        body = _padded_batch(size)
        headers = {"HTTP_AUTHORIZATION": api_key.basic}
        if encoding == "gzip":
            body = gzip.compress(body)
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
        if send == "chunked":
            return chunked(client, "/api/public/ingestion", body, **headers)
        return client.post("/api/public/ingestion", data=body, content_type="application/json", **headers)

    response = post(limit)
    assert response.status_code == 207, response.content[:300]
    assert Trace.objects.for_project(project).filter(id="t-exact").exists()
    response = post(limit + 1)
    assert response.status_code == 413, response.content[:300]
    assert orjson.loads(response.content)["error"] == "PayloadTooLargeError"


def test_the_management_api_reads_json_as_the_public_api_does(client, project, owner, other_project):
    """One reader (`loads_json`) behind both: a lone surrogate escape becomes U+FFFD (it was a 400 on
    /api/v1 only), NaN and a number beyond a double are not JSON."""
    client.force_login(owner)
    path = f"/api/v1/organizations/{project.organization_id}/projects/{project.id}/"
    response = client.patch(path, data='{"name": "odd \\ud800 name"}', content_type="application/json")
    assert response.status_code == 200, response.content
    project.refresh_from_db()
    assert project.name == "odd \ufffd name"
    for body in ('{"name": NaN}', '{"name": 1e400}'):
        response = client.patch(path, data=body, content_type="application/json")
        assert response.status_code == 400 and "JSON parse error" in response.json()["detail"], body
    other_project.refresh_from_db()
    assert "\ufffd" not in other_project.name


@pytest.mark.parametrize("body", ['{"value": NaN}', '{"value": 1e400}', '{"value": -Infinity}'])
def test_the_public_redaction_preview_refuses_what_is_not_json(client, api_key, body):
    """Its own reader fell back to the standard library, which takes NaN and 1e400 (as infinity)."""
    response = client.post("/api/public/redact", body, content_type="application/json",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 400, response.content
    assert "not valid JSON" in response.json()["message"]


def test_the_public_redaction_preview_reads_a_lone_surrogate_as_the_replacement_character(client, api_key):
    response = client.post("/api/public/redact", '{"text": "mail a@example.com \\udc00"}',
                           content_type="application/json", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    assert response.json()["text"] == "mail [EMAIL] \ufffd"
