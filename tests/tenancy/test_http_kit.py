"""The HTTP kit of the Langfuse-compatible layer (`tenancy/http/`): one body reader, one endpoint
decorator, one error shape — on the prompt endpoints, which used to read `request.body` directly and
had no answer for a control-plane outage."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from django.db import OperationalError

from tenancy.http import endpoint
from tenancy.http.params import (
    InvalidParams,
    decode_token,
    encode_token,
    parse_iso_datetime,
    query_datetime,
    query_int,
)

PROMPTS = "/api/public/v2/prompts"
PROMPT = {"name": "greeting", "prompt": "Hello {{name}}", "type": "text", "labels": ["production"]}


@pytest.fixture(autouse=True)
def _fresh_prompt_cache():
    from prompts import cache

    cache.local.clear()
    yield
    cache.local.clear()


def test_a_gzip_compressed_prompt_body_is_read_like_any_other(client, api_key):
    response = client.post(
        PROMPTS,
        data=gzip.compress(json.dumps(PROMPT).encode()),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 201, response.content
    assert response.json()["prompt"] == "Hello {{name}}"


def test_a_prompt_body_over_the_limit_is_a_413_after_decompression(client, api_key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024  # the prompt endpoints' body limit
    body = {**PROMPT, "prompt": "x" * 4096}
    response = client.post(
        PROMPTS,
        data=gzip.compress(json.dumps(body).encode()),  # ~100 bytes on the wire
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code == 413
    assert response.json()["error"] == "PayloadTooLargeError"


def test_a_control_plane_outage_on_a_prompt_endpoint_is_503_not_500(client, api_key, monkeypatch):
    def down(header, allow_public_only=False):
        raise OperationalError("connection refused")

    monkeypatch.setattr(endpoint, "authenticate_header", down)
    response = client.get(f"{PROMPTS}/greeting", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["error"] == "ServiceUnavailableError"


def test_wrong_methods_are_refused_before_credentials_in_langfuse_shape(client):
    response = client.delete(PROMPTS)
    assert response.status_code == 405 and response["Allow"] == "GET, POST"
    assert response.json()["error"] == "MethodNotAllowedError"


def test_one_datetime_reader_for_query_strings_and_bodies():
    assert parse_iso_datetime("2026-01-02T03:04:05Z").isoformat() == "2026-01-02T03:04:05+00:00"
    assert parse_iso_datetime("2026-01-02T03:04:05").isoformat() == "2026-01-02T03:04:05+00:00"
    # An unencoded `+` in a hand-written URL arrives as a space.
    assert parse_iso_datetime("2026-01-02T03:04:05 02:00").isoformat() == "2026-01-02T03:04:05+02:00"
    assert parse_iso_datetime("yesterday") is None
    with pytest.raises(InvalidParams, match="`from` is not an ISO-8601 datetime"):
        query_datetime({"from": "yesterday"}, "from")
    with pytest.raises(InvalidParams, match="`limit` must be between 1 and 100"):
        query_int({"limit": "500"}, "limit", 50, low=1, high=100)


# A cursor a client forged: valid base64url of JSON nested 2,000 levels (2,668 characters, within a
# request line). The standard library's JSON reader ran out of stack on it: a RecursionError, a 500.
DEEP_TOKEN = base64.urlsafe_b64encode(b"[" * 2000).decode()


def test_page_cursors_round_trip_and_anything_else_is_a_value_error():
    value = {"v": 1, "t": "2026-12-07T10:00:00+00:00", "id": "o-1"}
    assert decode_token(encode_token(value)) == value
    legacy = "eyJ2IjogMSwgIm8iOiA1MH0"  # what the standard library's encoder made: {"v": 1, "o": 50}
    assert decode_token(legacy) == {"v": 1, "o": 50}
    for bad in ("garbage!!", "a\u0000b", "é", "AAAA", DEEP_TOKEN):
        with pytest.raises(ValueError):
            decode_token(bad)
