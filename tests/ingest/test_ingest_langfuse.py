"""`POST /api/public/ingestion`: Langfuse v2 batches, stored field by field."""

import gzip
import zlib
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import orjson
import pytest
from django.db import OperationalError, connections

from ingest import rollups, writer
from ingest.stages import price as costs
from scores.models import Score
from traces.models import Observation, Trace

URL = "/api/public/ingestion"
TRACE = "dd7456ea-3707-4da3-8637-fd751b0f8c5d"
SPAN = "51aa85be-8847-4dc7-adba-aa8af2bdf3a6"
GEN = "52911869-ae8a-4b63-a683-93ce01bbc7c5"
GEN2 = "8c8bc559-a41a-4a22-b1fc-6c78b70e8218"
EVENT = "d6ac0f11-1f0b-4d0e-9a52-8d1f0c7b3e11"


def ts(micro: int) -> str:
    return f"2026-11-26T19:42:27.{micro:06d}Z"


def at(micro: int) -> datetime:
    return datetime(2026, 11, 26, 19, 42, 27, micro, tzinfo=dt_timezone.utc)


def event(env_id, type_, body, micro=500000):
    return {"id": env_id, "type": type_, "timestamp": ts(micro), "body": body}


def v2_batch():
    """The batch the v2 SDK sent in captures/bodies_v2.txt (ids and times kept)."""
    return {
        "batch": [
            event(
                "3e42",
                "trace-create",
                {
                    "id": TRACE,
                    "timestamp": ts(474744),
                    "name": "my-trace",
                    "userId": "user-42",
                    "input": {"q": "hi"},
                    "sessionId": "sess-7",
                    "release": "rel-1.2.3",
                    "version": "v9",
                    "metadata": {"tenant": "acme"},
                    "tags": ["t1"],
                    "environment": "staging",
                    "public": True,
                },
                475337,
            ),
            event(
                "03b3",
                "span-create",
                {
                    "traceId": TRACE,
                    "name": "retrieval",
                    "startTime": ts(475563),
                    "metadata": {"k": "v"},
                    "input": {"query": "x"},
                    "level": "DEBUG",
                    "environment": "staging",
                    "id": SPAN,
                },
                477291,
            ),
            event(
                "e00e",
                "span-update",
                {"traceId": TRACE, "output": {"docs": ["a"]}, "id": SPAN, "endTime": ts(477330)},
                477445,
            ),
            event(
                "e4ec",
                "generation-create",
                {
                    "traceId": TRACE,
                    "name": "llm-call",
                    "startTime": ts(477494),
                    "input": [{"role": "user", "content": "hi"}],
                    "parentObservationId": SPAN,
                    "environment": "staging",
                    "id": GEN,
                    "completionStartTime": ts(477476),
                    "model": "gpt-4o-mini",
                    "modelParameters": {"temperature": "0.7", "max_tokens": 100},
                    "promptName": "greeting",
                    "promptVersion": 3,
                },
                478886,
            ),
            event(
                "5de4",
                "generation-update",
                {
                    "traceId": TRACE,
                    "output": "hello",
                    "id": GEN,
                    "endTime": ts(478920),
                    "usage": {"input": 10, "output": 5, "unit": "TOKENS"},
                },
                480715,
            ),
            event(
                "e510",
                "generation-create",
                {
                    "traceId": TRACE,
                    "name": "llm-call-2",
                    "startTime": ts(480771),
                    "environment": "staging",
                    "id": GEN2,
                    "model": "claude-3-5-sonnet",
                    "usageDetails": {"input": 10, "output": 5, "cache_read_input_tokens": 3},
                    "costDetails": {"input": 0.01},
                },
                481000,
            ),
            event(
                "58bd",
                "generation-update",
                {
                    "traceId": TRACE,
                    "output": "x",
                    "level": "ERROR",
                    "statusMessage": "rate limited",
                    "id": GEN2,
                },
                482000,
            ),
            event(
                "9690",
                "event-create",
                {
                    "traceId": TRACE,
                    "name": "my-event",
                    "startTime": ts(483000),
                    "input": "e-in",
                    "output": "e-out",
                    "environment": "staging",
                    "id": EVENT,
                },
                483100,
            ),
            event(
                "0bae",
                "score-create",
                {
                    "id": "2ef5",
                    "traceId": TRACE,
                    "name": "quality",
                    "environment": "staging",
                    "value": 0.9,
                    "comment": "good",
                },
                484000,
            ),
            event(
                "7dac",
                "score-create",
                {
                    "id": "b619",
                    "traceId": TRACE,
                    "name": "thumbs",
                    "value": "up",
                    "dataType": "CATEGORICAL",
                    "environment": "staging",
                },
                484100,
            ),
            event(
                "045e",
                "score-create",
                {
                    "id": "be57",
                    "traceId": TRACE,
                    "observationId": GEN,
                    "name": "correct",
                    "value": 1.0,
                    "dataType": "BOOLEAN",
                    "environment": "staging",
                },
                484200,
            ),
            event("2992", "trace-create", {"id": TRACE, "output": {"a": "done"}}, 485000),
        ],
        "metadata": {
            "batch_size": 12,
            "sdk_integration": "default",
            "sdk_name": "python",
            "sdk_version": "2.60.10",
            "public_key": "pk-lf-test",
        },
    }


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


def post(client, payload, auth, **extra):
    data = payload if isinstance(payload, (bytes, str)) else orjson.dumps(payload)
    return client.post(URL, data=data, content_type="application/json", HTTP_AUTHORIZATION=auth, **extra)


def obs(project, obs_id):
    return Observation.objects.for_project(project).get(id=obs_id)


def test_a_v2_batch_answers_207_with_every_event_a_success(client, project, api_key):
    response = post(client, v2_batch(), api_key.basic)
    assert response.status_code == 207
    body = response.json()
    assert body["errors"] == []
    assert sorted(s["id"] for s in body["successes"]) == sorted(e["id"] for e in v2_batch()["batch"])
    assert all(s["status"] == 201 for s in body["successes"])


def test_the_trace_is_stored_field_by_field(client, project, api_key):
    post(client, v2_batch(), api_key.basic)
    trace = Trace.objects.for_project(project).get(id=TRACE)
    assert trace.name == "my-trace"
    assert trace.timestamp == at(474744)
    assert (trace.user_id, trace.session_id, trace.release, trace.version) == (
        "user-42",
        "sess-7",
        "rel-1.2.3",
        "v9",
    )
    assert trace.input == {"q": "hi"}
    assert trace.output == {"a": "done"}  # the second trace-create merged in
    assert trace.metadata == {"tenant": "acme"}
    assert trace.tags == ["t1"]
    assert trace.environment == "staging"
    assert trace.public is True


def test_span_create_and_update_are_merged(client, project, api_key):
    post(client, v2_batch(), api_key.basic)
    span = obs(project, SPAN)
    assert (span.type, span.trace_id, span.name, span.level, span.environment) == (
        "SPAN",
        TRACE,
        "retrieval",
        "DEBUG",
        "staging",
    )
    assert span.start_time == at(475563)
    assert span.end_time == at(477330)
    assert span.input == {"query": "x"}
    assert span.output == {"docs": ["a"]}
    assert span.metadata == {"k": "v"}
    assert span.status == "success"


def test_generation_fields_are_stored(client, project, api_key):
    post(client, v2_batch(), api_key.basic)
    gen = obs(project, GEN)
    assert (gen.type, gen.name, gen.model, gen.parent_observation_id) == (
        "GENERATION",
        "llm-call",
        "gpt-4o-mini",
        SPAN,
    )
    assert gen.start_time == at(477494)
    assert gen.end_time == at(478920)
    assert gen.completion_start_time == at(477476)
    assert gen.model_parameters == {"temperature": "0.7", "max_tokens": 100}
    assert (gen.prompt_name, gen.prompt_version) == ("greeting", 3)
    assert gen.input == [{"role": "user", "content": "hi"}]
    assert gen.output == "hello"
    assert (gen.input_tokens, gen.output_tokens, gen.total_tokens) == (10, 5, 15)
    assert gen.usage_details == {"input": 10, "output": 5, "unit": "TOKENS"}
    assert gen.cost_source == "none"


def test_usage_details_cost_details_and_error_level(client, project, api_key):
    post(client, v2_batch(), api_key.basic)
    gen = obs(project, GEN2)
    assert gen.usage_details == {"input": 10, "output": 5, "cache_read_input_tokens": 3}
    assert (gen.input_tokens, gen.cached_input_tokens, gen.output_tokens, gen.total_tokens) == (10, 3, 5, 18)
    assert gen.cost_details == {"input": 0.01}
    assert (gen.cost_source, gen.input_cost, gen.total_cost) == ("client", Decimal("0.01"), Decimal("0.01"))
    assert (gen.level, gen.status_message, gen.status) == ("ERROR", "rate limited", "error")
    assert gen.error_message == "rate limited"
    assert gen.output == "x"


def test_event_is_a_point_in_time(client, project, api_key):
    post(client, v2_batch(), api_key.basic)
    ev = obs(project, EVENT)
    assert (ev.type, ev.name, ev.input, ev.output) == ("EVENT", "my-event", "e-in", "e-out")
    assert ev.start_time == ev.end_time == at(483000)


def test_scores_in_the_batch_keep_langfuse_values(client, project, api_key):
    post(client, v2_batch(), api_key.basic)
    scores = {s.name: s for s in Score.objects.for_project(project)}
    assert (scores["quality"].value, scores["quality"].data_type, scores["quality"].comment) == (
        0.9,
        "NUMERIC",
        "good",
    )
    assert (scores["quality"].source, scores["quality"].environment, scores["quality"].trace_id) == (
        "API",
        "staging",
        TRACE,
    )
    assert (scores["thumbs"].data_type, scores["thumbs"].string_value, scores["thumbs"].value) == (
        "CATEGORICAL",
        "up",
        None,
    )
    assert (scores["correct"].data_type, scores["correct"].value, scores["correct"].string_value) == (
        "BOOLEAN",
        1.0,
        "True",
    )
    assert scores["correct"].observation_id == GEN


def test_update_sent_in_a_later_request_merges(client, project, api_key):
    batch = v2_batch()
    first, later = batch["batch"][:4], batch["batch"][4:]
    assert post(client, {"batch": first}, api_key.basic).status_code == 207
    assert obs(project, GEN).output is None
    assert post(client, {"batch": later}, api_key.basic).status_code == 207
    gen = obs(project, GEN)
    assert (gen.output, gen.total_tokens, gen.model, gen.prompt_name) == (
        "hello",
        15,
        "gpt-4o-mini",
        "greeting",
    )


def test_an_update_arriving_before_its_create_is_not_lost(client, project, api_key):
    batch = v2_batch()["batch"]
    update, create = batch[4], batch[3]
    post(client, {"batch": [update]}, api_key.basic)
    post(client, {"batch": [create]}, api_key.basic)
    gen = obs(project, GEN)
    assert (gen.output, gen.input_tokens, gen.name, gen.model) == ("hello", 10, "llm-call", "gpt-4o-mini")
    assert gen.start_time == at(477494)


def test_replaying_a_batch_changes_nothing(client, project, api_key):
    post(client, v2_batch(), api_key.basic)
    before = list(Observation.objects.for_project(project).order_by("id").values())
    post(client, v2_batch(), api_key.basic)
    after = list(Observation.objects.for_project(project).order_by("id").values())
    for row in before + after:
        row.pop("updated_at")
    assert before == after
    assert Trace.objects.for_project(project).count() == 1
    assert Score.objects.for_project(project).count() == 3


def test_metadata_is_deep_merged_and_tags_unioned_across_requests(client, project, api_key):
    post(
        client,
        {"batch": [event("a", "trace-create", {"id": "t", "metadata": {"a": {"x": 1}}, "tags": ["b"]})]},
        api_key.basic,
    )
    post(
        client,
        {"batch": [event("b", "trace-create", {"id": "t", "metadata": {"a": {"y": 2}}, "tags": ["a", "b"]})]},
        api_key.basic,
    )
    trace = Trace.objects.for_project(project).get(id="t")
    assert trace.metadata == {"a": {"x": 1, "y": 2}}
    assert trace.tags == ["a", "b"]


def test_bad_events_are_reported_and_good_ones_stored(client, project, api_key):
    payload = {
        "batch": [
            event("good-1", "trace-create", {"id": "t-good", "name": "ok"}),
            event("bad-level", "span-create", {"id": "s1", "traceId": "t-good", "level": "LOUD"}),
            event("bad-prompt", "generation-create", {"id": "g1", "traceId": "t-good", "promptName": "p"}),
            event("bad-type", "unknown-create", {"id": "x"}),
            {"id": "no-body", "type": "trace-create", "timestamp": ts(1)},
            "not-an-object",
            event(
                "bad-score",
                "score-create",
                {"id": "sc", "traceId": "t-good", "name": "n", "value": 2, "dataType": "BOOLEAN"},
            ),
            event("good-2", "span-create", {"id": "s2", "traceId": "t-good", "name": "fine"}),
        ]
    }
    response = post(client, payload, api_key.basic)
    assert response.status_code == 207
    body = response.json()
    assert sorted(s["id"] for s in body["successes"]) == ["good-1", "good-2"]
    errors = {e["id"]: e for e in body["errors"]}
    assert set(errors) == {"bad-level", "bad-prompt", "bad-type", "no-body", "unknown", "bad-score"}
    assert all(e["status"] == 400 and e["message"] == "Invalid request data" for e in errors.values())
    assert "level" in errors["bad-level"]["error"]
    assert "promptVersion" in errors["bad-prompt"]["error"]
    assert Trace.objects.for_project(project).get(id="t-good").name == "ok"
    assert obs(project, "s2").name == "fine"
    assert not Observation.objects.for_project(project).filter(id__in=["s1", "g1"]).exists()


def test_every_observation_event_type_maps_to_its_type(client, project, api_key):
    kinds = ["agent", "tool", "chain", "retriever", "embedding", "evaluator", "guardrail"]
    batch = [event(k, f"{k}-create", {"id": f"o-{k}", "traceId": "t", "name": k}) for k in kinds]
    batch.append(
        event("legacy", "observation-create", {"id": "o-legacy", "traceId": "t", "type": "GENERATION"})
    )
    batch.append(event("log", "sdk-log", {"log": {"msg": "hello"}}))
    response = post(client, {"batch": batch}, api_key.basic)
    assert response.json()["errors"] == []
    types = dict(Observation.objects.for_project(project).values_list("id", "type"))
    assert types == {**{f"o-{k}": k.upper() for k in kinds}, "o-legacy": "GENERATION"}
    assert obs(project, "o-tool").tool_name == "tool"


def test_unknown_body_fields_are_kept_in_metadata(client, project, api_key):
    post(
        client,
        {
            "batch": [
                event(
                    "a",
                    "trace-create",
                    {
                        "id": "t",
                        "name": "main",
                        "start_time": ts(1),
                        "metadata": {"own": 1},
                        "externalId": "ext",
                    },
                )
            ]
        },
        api_key.basic,
    )
    assert Trace.objects.for_project(project).get(id="t").metadata == {
        "own": 1,
        "start_time": ts(1),
        "externalId": "ext",
    }


def test_openai_usage_is_normalised_and_tool_calls_extracted(client, project, api_key):
    output = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 30},
        "completion_tokens_details": {"reasoning_tokens": 10},
    }
    post(
        client,
        {
            "batch": [
                event(
                    "g",
                    "generation-create",
                    {"id": "g", "traceId": "t", "model": "gpt-4o", "output": output, "usageDetails": usage},
                )
            ]
        },
        api_key.basic,
    )
    gen = obs(project, "g")
    assert gen.usage_details == {
        "input": 70,
        "input_cached_tokens": 30,
        "output": 30,
        "output_reasoning_tokens": 10,
        "total": 140,
    }
    assert (
        gen.input_tokens,
        gen.cached_input_tokens,
        gen.output_tokens,
        gen.reasoning_tokens,
        gen.total_tokens,
    ) == (70, 30, 30, 10, 140)
    assert gen.tool_calls == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]


def test_anthropic_tool_use_blocks_and_refusals(client, project, api_key):
    output = {
        "role": "assistant",
        "stop_reason": "tool_use",
        "content": [
            {"type": "text", "text": "Checking"},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
        ],
    }
    post(
        client,
        {
            "batch": [
                event("a", "generation-create", {"id": "g1", "traceId": "t", "output": output}),
                event(
                    "b",
                    "generation-create",
                    {"id": "g2", "traceId": "t", "output": {"finish_reason": "content_filter"}},
                ),
            ]
        },
        api_key.basic,
    )
    assert obs(project, "g1").tool_calls == [{"id": "toolu_1", "name": "lookup", "arguments": {"q": "x"}}]
    assert obs(project, "g1").finish_reason == "tool_use"
    assert obs(project, "g2").status == "refused"


def test_exception_metadata_fills_the_error_fields(client, project, api_key):
    post(
        client,
        {
            "batch": [
                event(
                    "a",
                    "span-create",
                    {
                        "id": "s",
                        "traceId": "t",
                        "level": "ERROR",
                        "statusMessage": "failed",
                        "metadata": {
                            "exception.type": "ValueError",
                            "exception.message": "bad value",
                            "exception.stacktrace": "Traceback…",
                        },
                    },
                )
            ]
        },
        api_key.basic,
    )
    span = obs(project, "s")
    assert (span.error_type, span.error_message, span.error_stack, span.status) == (
        "ValueError",
        "bad value",
        "Traceback…",
        "error",
    )


def test_legacy_usage_costs_become_client_costs(client, project, api_key):
    post(
        client,
        {
            "batch": [
                event(
                    "a",
                    "generation-create",
                    {
                        "id": "g",
                        "traceId": "t",
                        "model": "m",
                        "usage": {
                            "promptTokens": 7,
                            "completionTokens": 3,
                            "totalTokens": 10,
                            "inputCost": 0.1,
                            "outputCost": 0.2,
                        },
                    },
                )
            ]
        },
        api_key.basic,
    )
    gen = obs(project, "g")
    assert (gen.input_tokens, gen.output_tokens, gen.total_tokens) == (7, 3, 10)
    assert (gen.cost_source, gen.input_cost, gen.output_cost, gen.total_cost) == (
        "client",
        Decimal("0.1"),
        Decimal("0.2"),
        Decimal("0.3"),
    )


def test_environment_is_normalised_like_langfuse(client, project, api_key):
    post(
        client,
        {
            "batch": [
                event("a", "trace-create", {"id": "t1", "environment": "Production"}),
                event("b", "trace-create", {"id": "t2", "environment": "langfuse-internal"}),
                event("c", "trace-create", {"id": "t3", "environment": "has spaces"}),
            ]
        },
        api_key.basic,
    )
    envs = dict(Trace.objects.for_project(project).values_list("id", "environment"))
    assert envs == {"t1": "production", "t2": "internal", "t3": "default"}


def test_catalog_cost_applies_when_no_cost_was_sent(client, project, api_key, monkeypatch):
    class Pricing:
        # The catalog's batch call (`pricing.pricing.compute_costs`), one result per (model, usage, at).
        @staticmethod
        def compute_costs(items, *, project_id):
            assert project_id == project.id
            return [
                {
                    "input_cost": Decimal("0.001") * usage["input"],
                    "output_cost": Decimal("0.002") * usage["output"],
                    "total_cost": Decimal("0.001") * usage["input"] + Decimal("0.002") * usage["output"],
                }
                for _model, usage, _at in items
            ]

    monkeypatch.setattr(costs, "_pricing", lambda: Pricing)
    post(client, v2_batch(), api_key.basic)
    gen = obs(project, GEN)
    assert (gen.cost_source, gen.input_cost, gen.output_cost, gen.total_cost) == (
        "catalog",
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.02"),
    )
    assert obs(project, GEN2).cost_source == "client"  # it sent costDetails


# --- request-level errors ------------------------------------------------------------------


def test_wrong_key_revoked_key_and_public_key_bearer_get_401(client, project, api_key):
    wrong = "Basic " + __import__("base64").b64encode(f"{api_key.public}:sk-lg-wrong".encode()).decode()
    for auth in (wrong, f"Bearer {api_key.public}", "", "Basic !!!"):
        response = post(client, v2_batch(), auth)
        assert response.status_code == 401, auth
        assert response.json()["error"] == "UnauthorizedError"
        assert response.json()["message"]
    api_key.key.revoked_at = api_key.key.created_at
    api_key.key.save()
    response = post(client, v2_batch(), api_key.basic)
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]
    assert not Trace.objects.for_project(project).exists()


def test_bearer_secret_key_is_accepted(client, project, api_key):
    assert post(client, v2_batch(), api_key.bearer).status_code == 207


def test_malformed_json_and_bad_envelopes_get_400(client, api_key):
    response = post(client, b'{"batch": [', api_key.basic)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]
    for payload in ({"batch": {"id": 1}}, [1, 2], {"nobatch": []}):
        response = post(client, payload, api_key.basic)
        assert response.status_code == 400
        assert response.json()["message"] == "Invalid request data"
    assert post(client, b"", api_key.basic).status_code == 400


def test_an_empty_batch_answers_207_with_empty_lists(client, api_key):
    response = post(client, {"batch": []}, api_key.basic)
    assert (response.status_code, response.json()) == (207, {"successes": [], "errors": []})


def test_oversized_bodies_get_413(client, api_key, settings):
    settings.INGEST_MAX_BODY_BYTES = 10_000
    big = {"batch": [event("a", "trace-create", {"id": "t", "input": "x" * 20_000})]}
    response = post(client, big, api_key.basic)
    assert response.status_code == 413
    assert "exceeds" in response.json()["message"]


def test_a_gzip_bomb_is_stopped_at_the_limit(client, api_key, settings):
    settings.INGEST_MAX_BODY_BYTES = 64 * 1024
    bomb = gzip.compress(b"0" * (1024 * 1024))
    assert len(bomb) < 10_000
    response = post(client, bomb, api_key.basic, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413


def test_gzip_and_deflate_bodies_are_accepted(client, project, api_key):
    raw = orjson.dumps({"batch": [event("a", "trace-create", {"id": "gz", "name": "zipped"})]})
    assert post(client, gzip.compress(raw), api_key.basic, HTTP_CONTENT_ENCODING="gzip").status_code == 207
    raw = orjson.dumps({"batch": [event("b", "trace-create", {"id": "df", "name": "deflated"})]})
    assert post(client, zlib.compress(raw), api_key.basic, HTTP_CONTENT_ENCODING="deflate").status_code == 207
    assert set(Trace.objects.for_project(project).values_list("name", flat=True)) == {"zipped", "deflated"}


def test_an_unknown_content_encoding_gets_415(client, api_key):
    response = post(client, b"{}", api_key.basic, HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415
    assert "Content-Encoding" in response.json()["message"]


def test_get_is_not_allowed(client, api_key):
    response = client.get(URL, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 405


def test_a_database_outage_answers_503_with_retry_after(client, project, api_key, monkeypatch):
    class DeadConnection:
        def cursor(self):
            raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(writer, "data_connection", lambda project: DeadConnection())
    response = post(client, v2_batch(), api_key.basic)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["message"]


# --- isolation ------------------------------------------------------------------------------


def test_a_key_writes_only_its_own_project_and_region(client, project, api_key, other_project, other_api_key):
    post(client, v2_batch(), api_key.basic)
    other = v2_batch()
    other["batch"] = [event("x", "trace-create", {"id": TRACE, "name": "globex-trace"})]
    post(client, other, other_api_key.basic)
    assert Trace.objects.for_project(project).get(id=TRACE).name == "my-trace"
    assert Trace.objects.for_project(other_project).get(id=TRACE).name == "globex-trace"
    assert not Observation.objects.for_project(other_project).exists()
    assert not Score.objects.for_project(other_project).exists()
    counts = {}
    for alias in ("region_eu", "region_us"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT project_id::text, count(*) FROM traces_observation GROUP BY 1")
            counts[alias] = dict(cursor.fetchall())
    assert counts == {"region_eu": {str(project.id): 4}, "region_us": {}}


def test_a_100_event_batch_takes_a_constant_number_of_queries(client, project, api_key, queries_everywhere):
    def batch(n):
        events = []
        for i in range(n):
            events.append(event(f"t{i}", "trace-create", {"id": f"t{i}", "name": "n"}))
            events.append(
                event(
                    f"g{i}",
                    "generation-create",
                    {"id": f"g{i}", "traceId": f"t{i}", "model": "m", "usage": {"input": 1, "output": 2}},
                )
            )
            events.append(
                event(f"u{i}", "generation-update", {"id": f"g{i}", "traceId": f"t{i}", "output": "o"})
            )
            events.append(
                event(f"s{i}", "score-create", {"id": f"s{i}", "traceId": f"t{i}", "name": "q", "value": 1})
            )
        return {"batch": events}

    post(client, batch(5), api_key.basic)  # some rows exist already: the update path runs too
    with queries_everywhere() as small:
        post(client, batch(4), api_key.basic)
    with queries_everywhere() as large:
        response = post(client, batch(25), api_key.basic)
    # Counted in every database, the region's writes included: savepoint + insert/update per table +
    # release (the key is cached; its last-used touch is due at most once a minute); plus the
    # monitoring rollups' constant number of statements (`ingest.rollups.MAX_STATEMENTS`, and
    # `MAX_SCORE_STATEMENTS` for the batch's scores). A replayed batch moves no rollup, so the small
    # batch (all replays) may take fewer than the large one.
    bound = 12 + rollups.MAX_STATEMENTS + rollups.MAX_SCORE_STATEMENTS
    assert len(small) <= bound and len(large) <= bound
    assert response.status_code == 207
    assert len(response.json()["successes"]) == 100
    assert Observation.objects.for_project(project).count() == 25


def test_a_control_plane_outage_during_authentication_answers_503(client, api_key, monkeypatch):
    from tenancy.http import endpoint

    def down(header, allow_public_only=False):
        raise OperationalError("connection refused")

    monkeypatch.setattr(endpoint, "authenticate_header", down)
    response = post(client, v2_batch(), api_key.basic)
    assert response.status_code == 503
    assert response["Retry-After"]


def test_v3_and_v4_scores_through_ingestion(client, project, api_key):
    """The body SDK v3/v4 send (captures/bodies_v3.txt): 16-hex ids, no sdk_integration."""
    payload = {
        "batch": [
            {"id": "bf6099fd2c7b1209ca37494af51b70bf", "type": "score-create",
             "timestamp": "2026-11-26T19:42:12.997073Z",
             "body": {"id": "3e7168c083f586d2", "traceId": "1df0e574f679e59ae6b41bbea91d9135",
                      "observationId": "1628162d45ca133d", "name": "quality", "environment": "staging",
                      "value": 0.9}},
            {"id": "59e337fd0c7e99a90f0478ec9fba154d", "type": "score-create",
             "timestamp": "2026-11-26T19:42:12.997469Z",
             "body": {"id": "495a1d6634604617", "traceId": "1df0e574f679e59ae6b41bbea91d9135",
                      "name": "thumbs", "environment": "staging", "value": "up", "dataType": "CATEGORICAL"}},
        ],
        "metadata": {"batch_size": 2, "sdk_name": "python", "sdk_version": "3.15.0",
                     "public_key": "pk-lf-test"},
    }
    response = post(client, payload, api_key.basic)
    assert response.status_code == 207
    assert len(response.json()["successes"]) == 2
    scores = {s.id: s for s in Score.objects.for_project(project)}
    quality = scores["3e7168c083f586d2"]
    assert (quality.observation_id, quality.value) == ("1628162d45ca133d", 0.9)
    assert scores["495a1d6634604617"].string_value == "up"
    # Scores never invent traces: only observations create placeholder traces.
    assert not Trace.objects.for_project(project).exists()


def test_a_trace_without_its_own_timestamp_takes_the_event_timestamp(client, project, api_key):
    response = post(client, {"batch": [event("e1", "trace-create", {"id": "t-no-ts", "name": "x"}, micro=123456)]},
                    api_key.basic)
    assert response.status_code == 207 and response.json()["errors"] == []
    assert Trace.objects.for_project(project).get(id="t-no-ts").timestamp == at(123456)


def test_each_call_is_priced_at_the_price_in_force_at_its_own_start_time(client, project, api_key, monkeypatch):
    """The real catalog with a price change between two calls, both ingested now (after the change):
    each call costs what the model cost when it was made, on create and when usage arrives later."""
    from pricing import pricing
    from pricing.models import ModelPrice, PriceSource

    monkeypatch.setattr(costs, "_pricing", lambda: pricing)  # this module's default is no catalog

    change = datetime(2026, 11, 1, tzinfo=dt_timezone.utc)
    for effective_from, input_price, output_price in ((datetime(2026, 1, 1, tzinfo=dt_timezone.utc), 1, 2),
                                                      (change, 10, 20)):
        ModelPrice.objects.create(
            provider="openai", model_name="timed-model", match_pattern=r"^timed-model$",
            effective_from=effective_from, input_price=Decimal(input_price), output_price=Decimal(output_price),
            source=PriceSource.CATALOG,
        )
    usage = {"input": 1_000_000, "output": 1_000_000, "unit": "TOKENS"}

    def generation(gen_id, start, **extra):
        return event(f"ev-{gen_id}", "generation-create", {
            "id": gen_id, "traceId": "t-timed", "model": "timed-model", "startTime": start, **extra})

    before, after = "2026-10-31T23:59:59.000000Z", "2026-11-01T00:00:01.000000Z"
    response = post(client, {"batch": [
        generation("g-before", before, usage=usage),
        generation("g-after", after, usage=usage),
        generation("g-before-late-usage", before),
        generation("g-after-late-usage", after),
    ]}, api_key.basic)
    assert response.status_code == 207 and not response.json()["errors"], response.content
    # Usage in a later request: the stored row is re-priced at its own start time, not at "now".
    response = post(client, {"batch": [
        event(f"ev-u-{gen_id}", "generation-update", {"id": gen_id, "traceId": "t-timed", "usage": usage})
        for gen_id in ("g-before-late-usage", "g-after-late-usage")
    ]}, api_key.basic)
    assert response.status_code == 207 and not response.json()["errors"], response.content

    costs_by_id = dict(
        Observation.objects.for_project(project).filter(trace_id="t-timed").values_list("id", "total_cost")
    )
    assert costs_by_id == {
        "g-before": Decimal(3),  # $1 + $2 per million tokens, the price before the change
        "g-after": Decimal(30),  # $10 + $20, the price from the change on
        "g-before-late-usage": Decimal(3),
        "g-after-late-usage": Decimal(30),
    }
