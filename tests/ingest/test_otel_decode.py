"""OTLP bodies → SpanData: both encodings, OTLP/JSON quirks, invalid spans set aside."""

import base64
import copy

import orjson
import pytest

from ingest.adapters.otel.decode import DecodeError, decode_json, decode_protobuf
from ingest.adapters.otel.testing import T0_NANOS, TRACE_ID, make_request, make_span, to_otlp_json

CHILD = "0011223344556677"


def _request():
    return make_request(
        [
            make_span(
                name="root",
                attributes={
                    "s": "x",
                    "i": 7,
                    "f": 1.5,
                    "b": True,
                    "arr": ["a", 1],
                    "kv": {"k": "v", "n": [1, 2]},
                    "raw": b"\x00\x01",
                },
                events=[("evt", T0_NANOS + 5, {"e": 1})],
                status=(2, "boom"),
                links=[("ab" * 16, "cd" * 8, {"l": "x"})],
            ),
            make_span(span_id=CHILD, parent_span_id="eee19b7ec3c1b174", name="child", kind=3),
        ],
        resource={"service.name": "svc", "deployment.environment.name": "prod"},
        scope_name="my-scope",
        scope_version="2.1",
        scope_attributes={"public_key": "pk-lg-x"},
    )


def _assert_decoded(batch):
    assert batch.rejected == []
    root, child = batch.spans
    assert root.trace_id == TRACE_ID and len(root.trace_id) == 32
    assert root.span_id == "eee19b7ec3c1b174"
    assert root.parent_span_id == ""
    assert child.parent_span_id == "eee19b7ec3c1b174"
    assert child.kind == 3
    assert root.start_time_unix_nano == T0_NANOS
    assert root.attributes == {
        "s": "x",
        "i": 7,
        "f": 1.5,
        "b": True,
        "arr": ["a", 1],
        "kv": {"k": "v", "n": [1, 2]},
        "raw": base64.b64encode(b"\x00\x01").decode(),
    }
    assert root.status_code == 2 and root.status_message == "boom"
    assert root.events[0].name == "evt" and root.events[0].time_unix_nano == T0_NANOS + 5
    assert root.events[0].attributes == {"e": 1}
    assert root.links == [{"trace_id": "ab" * 16, "span_id": "cd" * 8, "attributes": {"l": "x"}}]
    assert root.resource == {"service.name": "svc", "deployment.environment.name": "prod"}
    assert (root.scope.name, root.scope.version, root.scope.attributes) == (
        "my-scope",
        "2.1",
        {"public_key": "pk-lg-x"},
    )


def test_it_decodes_protobuf():
    _assert_decoded(decode_protobuf(_request().SerializeToString()))


def test_it_decodes_otlp_json_with_hex_ids_and_string_int64():
    document = to_otlp_json(_request())
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_ID  # hex on the wire, as the OTLP spec requires
    assert span["startTimeUnixNano"] == str(T0_NANOS)
    _assert_decoded(decode_json(orjson.dumps(document)))


def test_it_accepts_enum_names_numbers_for_int64_and_uppercase_hex():
    document = to_otlp_json(_request())
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["traceId"] = TRACE_ID.upper()
    spans[0]["status"]["code"] = "STATUS_CODE_ERROR"
    spans[1]["kind"] = "SPAN_KIND_CLIENT"
    spans[0]["startTimeUnixNano"] = T0_NANOS  # a number instead of a string
    for attribute in spans[0]["attributes"]:
        if attribute["key"] == "i":
            attribute["value"] = {"intValue": 7}
    _assert_decoded(decode_json(orjson.dumps(document)))


def test_it_accepts_base64_ids_from_generic_protobuf_json_encoders():
    from google.protobuf import json_format

    document = json_format.MessageToDict(_request())  # base64 ids, enum names: what the captures hold
    _assert_decoded(decode_json(orjson.dumps(document)))


def test_it_ignores_unknown_fields_in_json():
    document = to_otlp_json(_request())
    document["futureField"] = {"x": 1}
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["someNewThing"] = 3
    _assert_decoded(decode_json(orjson.dumps(document)))


def test_an_empty_body_is_an_empty_batch():
    assert decode_protobuf(b"").spans == []
    assert decode_json(b"").spans == []
    assert decode_json(b"{}").spans == []


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda s: s.update(traceId="xyz"), "traceId"),
        (lambda s: s.update(traceId="00" * 16), "all zeros"),
        (lambda s: s.update(spanId="abcd"), "spanId"),
        (lambda s: s.pop("spanId"), "spanId is missing"),
        (lambda s: s.update(parentSpanId="12"), "parentSpanId"),
        (lambda s: s.update(startTimeUnixNano="soon"), "startTimeUnixNano"),
        (lambda s: s.update(endTimeUnixNano=str(10**30)), "out of range"),
        (lambda s: s.update(attributes={"not": "a list"}), "attributes"),
        (lambda s: s.update(attributes=[{"key": "x", "value": {"intValue": "seven"}}]), "intValue"),
        (lambda s: s.update(kind="SIDEWAYS"), "kind"),
    ],
)
def test_it_rejects_an_invalid_json_span_and_keeps_the_others(mutate, reason):
    document = to_otlp_json(_request())
    bad = copy.deepcopy(document["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
    mutate(bad)
    document["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    batch = decode_json(orjson.dumps(document))
    assert len(batch.spans) == 2
    assert len(batch.rejected) == 1 and reason in batch.rejected[0]


def test_it_rejects_protobuf_spans_with_wrong_id_lengths():
    good = make_span()
    bad = make_span(span_id=CHILD)
    bad.trace_id = b"\x01\x02\x03"
    no_span_id = make_span(span_id=CHILD)
    no_span_id.span_id = b""
    batch = decode_protobuf(make_request([good, bad, no_span_id]).SerializeToString())
    assert [s.span_id for s in batch.spans] == ["eee19b7ec3c1b174"]
    assert "trace_id must be 16 bytes, got 3" in batch.rejected[0]
    assert "span_id is missing" in batch.rejected[1]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"resourceSpans": {"a": 1}}',
        b'{"resourceSpans": [7]}',
        b'{"resourceSpans": [{"scopeSpans": "x"}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": 5}]}]}',
    ],
)
def test_it_refuses_json_that_is_not_an_export_request(body):
    with pytest.raises(DecodeError):
        decode_json(body)


def test_it_refuses_bytes_that_are_not_protobuf():
    with pytest.raises(DecodeError):
        decode_protobuf(b"\xff\xff\xff\xff garbage")


def test_non_finite_doubles_are_kept_readable():
    document = to_otlp_json(make_request([make_span()]))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = [
        {"key": "x", "value": {"doubleValue": "NaN"}},
        {"key": "y", "value": {"doubleValue": "Infinity"}},
    ]
    span = decode_json(orjson.dumps(document)).spans[0]
    assert span.attributes == {"x": "nan", "y": "inf"}
