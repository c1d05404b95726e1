"""Langfuse-compatible public read API: traces, observations (v1 and v2), sessions.

Shapes are checked two ways: the v2 observations endpoint through the real langfuse v5 SDK client
(its own pydantic models, over WSGI), and the v1 endpoints against `Lf*` contract models below,
which restate what the langfuse SDKs' models require (field names, required keys, types; the
stricter of SDK v2 and v4 wherever they differ), since SDK v5 no longer ships those models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import httpx
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from langfuse.api.client import LangfuseAPI
from langfuse.api.core.api_error import ApiError
from pydantic import BaseModel, ConfigDict, Field

from scores.models import Score
from tenancy.regions import region_database
from tests.tenancy.test_http_kit import DEEP_TOKEN
from traces.models import Observation, Trace

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# --- contract models (facts from langfuse's TraceWithDetails, ObservationsView, ScoreV1, Session) ---


class _Lf(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


MapValue = str | int | float | bool | list[str] | None


class LfUsage(_Lf):
    input: int
    output: int
    total: int
    unit: Literal["CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS"] | None = None
    inputCost: float | None = None
    outputCost: float | None = None
    totalCost: float | None = None


class LfTrace(_Lf):
    id: str
    timestamp: datetime
    name: str | None = None
    input: Any = None
    output: Any = None
    sessionId: str | None = None
    release: str | None = None
    version: str | None = None
    userId: str | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str]
    public: bool
    environment: str


class LfTraceWithDetails(LfTrace):
    htmlPath: str
    latency: float
    totalCost: float
    observations: list[str]
    scores: list[str]


class LfObservationsView(_Lf):
    id: str
    traceId: str | None = None
    type: str
    name: str | None = None
    startTime: datetime
    endTime: datetime | None = None
    completionStartTime: datetime | None = None
    model: str | None = None
    modelParameters: dict[str, MapValue] | None
    input: Any
    output: Any
    version: str | None = None
    metadata: dict[str, Any] | None = None
    usage: LfUsage
    level: Literal["DEBUG", "DEFAULT", "WARNING", "ERROR"]
    statusMessage: str | None = None
    parentObservationId: str | None = None
    promptId: str | None = None
    usageDetails: dict[str, int]
    costDetails: dict[str, float]
    environment: str
    promptName: str | None = None
    promptVersion: int | None = None
    modelId: str | None = None
    inputPrice: float | None = None
    outputPrice: float | None = None
    totalPrice: float | None = None
    calculatedInputCost: float | None = None
    calculatedOutputCost: float | None = None
    calculatedTotalCost: float | None = None
    latency: float | None = None
    timeToFirstToken: float | None = None


class _LfScoreBase(_Lf):
    id: str
    traceId: str
    name: str
    source: Literal["API", "EVAL", "ANNOTATION"]
    observationId: str | None = None
    timestamp: datetime
    createdAt: datetime
    updatedAt: datetime
    authorUserId: str | None = None
    comment: str | None = None
    metadata: dict[str, Any] | None = None
    configId: str | None = None
    queueId: str | None = None
    environment: str


class LfNumericScore(_LfScoreBase):
    dataType: Literal["NUMERIC"]
    value: float


class LfStringScore(_LfScoreBase):
    dataType: Literal["CATEGORICAL", "BOOLEAN"]
    value: float
    stringValue: str


class LfTextScore(_LfScoreBase):
    dataType: Literal["TEXT"]
    stringValue: str


LfScore = Annotated[LfNumericScore | LfStringScore | LfTextScore, Field(discriminator="dataType")]


class LfTraceWithFullDetails(LfTrace):
    htmlPath: str
    latency: float
    totalCost: float
    observations: list[LfObservationsView]
    scores: list[LfScore]


class LfMeta(_Lf):
    page: int
    limit: int
    totalItems: int
    totalPages: int


class LfTraces(_Lf):
    data: list[LfTraceWithDetails]
    meta: LfMeta


class LfObservationsViews(_Lf):
    data: list[LfObservationsView]
    meta: LfMeta


class LfSession(_Lf):
    id: str
    createdAt: datetime
    projectId: str
    environment: str


class LfPaginatedSessions(_Lf):
    data: list[LfSession]
    meta: LfMeta


class LfSessionWithTraces(LfSession):
    traces: list[LfTrace]


# --- data ------------------------------------------------------------------------------------------


def _traces(project, *rows):
    Trace.objects.for_project(project).bulk_create(list(rows))
    _trace_costs(project)


def _observations(project, *rows):
    Observation.objects.for_project(project).bulk_create(list(rows))
    _trace_costs(project)


def _trace_costs(project):
    """Rows stored here skip the writer, which keeps each trace's cost (`Trace.cost`, read by the
    `minCost` filter): recompute it as `manage.py rebuild_trace_costs` does for rows stored so."""
    from ingest.rollups import rebuild_trace_costs

    rebuild_trace_costs(project=project)


def _scores(project, *rows):
    Score.objects.for_project(project).bulk_create(list(rows))


@pytest.fixture
def world(project, other_project):
    """Three traces in our project; a look-alike in the other tenant's project, in the same region."""
    s = timedelta(seconds=1)
    _traces(
        project,
        Trace(
            id="t-chat",
            name="chat",
            timestamp=T0,
            user_id="u1",
            session_id="s1",
            environment="production",
            release="r1",
            version="v1",
            tags=["prod", "chat"],
            metadata={"team": "support", "tier": 3},
            input={"q": "hi"},
            output="hello",
            public=True,
        ),
        Trace(
            id="t-refused",
            name="chat",
            timestamp=T0 + timedelta(hours=1),
            user_id="u2",
            session_id="s1",
            environment="staging",
            release="r2",
            version="v2",
            tags=["prod"],
        ),
        Trace(id="t-empty", name="ping", timestamp=T0 + timedelta(hours=2), environment="default"),
    )
    _observations(
        project,
        Observation(
            id="o-root",
            trace_id="t-chat",
            type="SPAN",
            name="handle",
            start_time=T0,
            end_time=T0 + 2 * s,
            environment="production",
            input="raw text",
            output={"answer": 42},
        ),
        Observation(
            id="o-gen",
            trace_id="t-chat",
            parent_observation_id="o-root",
            type="GENERATION",
            name="llm",
            start_time=T0 + s / 10,
            end_time=T0 + 1.6 * s,
            completion_start_time=T0 + 0.4 * s,
            environment="production",
            model="gpt-4o",
            response_model="gpt-4o-2024-08-06",
            model_parameters={"temperature": 0.2, "stop": ["\n"], "response_format": {"type": "json"}},
            input=[{"role": "user", "content": "hi"}],
            output={"role": "assistant", "content": "hello"},
            metadata={"route": "a", "score": "7", "long": "x" * 300},
            usage_details={
                "prompt_tokens": 120,
                "completion_tokens": 50,
                "images": 2,
                "prompt_tokens_details": {"cached_tokens": 20},
            },
            input_tokens=100,
            cached_input_tokens=20,
            output_tokens=50,
            reasoning_tokens=5,
            total_tokens=175,
            input_cost=Decimal("0.001"),
            output_cost=Decimal("0.002"),
            total_cost=Decimal("0.003"),
            cost_details={"input": 0.001, "output": 0.002, "total": 0.003},
            cost_source="catalog",
            prompt_name="support",
            prompt_version=3,
            finish_reason="stop",
            tool_calls=[{"id": "c1", "name": "lookup", "arguments": {"q": "x"}}],
        ),
        Observation(
            id="o-tool",
            trace_id="t-chat",
            parent_observation_id="o-root",
            type="TOOL",
            name="lookup",
            start_time=T0 + 1.7 * s,
            end_time=T0 + 1.8 * s,
            environment="production",
            level="ERROR",
            status="error",
            status_message="boom",
            tool_name="lookup",
            tool_call_id="c1",
            error_type="TimeoutError",
            error_message="took too long",
            version="v1",
        ),
        Observation(
            id="o-refused",
            trace_id="t-refused",
            type="GENERATION",
            name="llm",
            start_time=T0 + timedelta(hours=1),
            end_time=T0 + timedelta(hours=1, milliseconds=300),
            environment="staging",
            model="claude-x",
            status="refused",
            total_cost=Decimal("0.0005"),
            input_tokens=10,
            output_tokens=0,
            total_tokens=10,
        ),
    )
    _scores(
        project,
        Score(id="sc-num", trace_id="t-chat", name="quality", value=0.9, timestamp=T0 + 3 * s),
        Score(
            id="sc-cat",
            trace_id="t-chat",
            observation_id="o-gen",
            name="label",
            data_type="CATEGORICAL",
            string_value="good",
            timestamp=T0 + 4 * s,
            comment="nice",
        ),
        Score(
            id="sc-bool",
            trace_id="t-chat",
            name="thumbs",
            data_type="BOOLEAN",
            value=1,
            source="USER",
            timestamp=T0 + 5 * s,
        ),
        Score(
            id="sc-text",
            trace_id="t-chat",
            name="note",
            data_type="TEXT",
            string_value="too terse",
            timestamp=T0 + 6 * s,
        ),
        # Langfuse's v1 score model has no CORRECTION variant, so v1 trace reads leave it out.
        Score(
            id="sc-fix",
            trace_id="t-chat",
            name="correction",
            data_type="CORRECTION",
            string_value="hello there",
            timestamp=T0 + 7 * s,
        ),
    )
    # The other tenant reuses our ids on purpose: scoping must come from the key, never from the id.
    _traces(
        other_project,
        Trace(id="t-chat", name="globex", timestamp=T0, session_id="s1", user_id="u1"),
        Trace(id="t-globex", name="globex-only", timestamp=T0, session_id="s-globex"),
    )
    _observations(
        other_project,
        Observation(
            id="o-gen",
            trace_id="t-chat",
            name="globex-llm",
            start_time=T0,
            model="gpt-4o",
            total_cost=Decimal(9),
        ),
        Observation(id="o-globex", trace_id="t-globex", start_time=T0),
    )
    _scores(other_project, Score(id="sc-globex", trace_id="t-chat", name="quality", value=0.1))


def get(client, key, path, params=None):
    return client.get(path, params or {}, HTTP_AUTHORIZATION=key.basic)


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def ids(body) -> list[str]:
    return [item["id"] for item in body["data"]]


def bad_request(response, fragment: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "InvalidRequestError"
    assert fragment in body["message"]


# --- auth, methods, errors -------------------------------------------------------------------------

ROUTES = [
    "/api/public/traces",
    "/api/public/traces/t-chat",
    "/api/public/observations",
    "/api/public/observations/o-gen",
    "/api/public/v2/observations",
    "/api/public/sessions",
    "/api/public/sessions/s1",
]


@pytest.mark.parametrize("path", ROUTES)
def test_it_accepts_basic_and_bearer_secret_and_refuses_everything_else(client, world, api_key, path):
    assert client.get(path, HTTP_AUTHORIZATION=api_key.basic).status_code == 200
    assert client.get(path, HTTP_AUTHORIZATION=api_key.bearer).status_code == 200
    for header in (None, f"Bearer {api_key.public}", "Basic bm9wZTpub3Bl", "Token abc"):
        response = client.get(path, **({"HTTP_AUTHORIZATION": header} if header else {}))
        assert response.status_code == 401, (header, response.content)
        assert response.json()["error"] == "UnauthorizedError"
        assert response.json()["message"]
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get(path).json()["message"].startswith("No credentials")
    refused = client.get(path, HTTP_AUTHORIZATION=f"Bearer {api_key.public}").json()["message"]
    assert refused.startswith("A public key alone only authorizes browser feedback")


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_it_answers_other_methods_with_a_json_405(client, api_key, path, method):
    # Langfuse's trace deletion answers DELETE on the two trace routes (tests/privacy/test_erasure.py).
    deletable = path.startswith("/api/public/traces")
    if deletable and method == "delete":
        pytest.skip("DELETE on traces is Langfuse's deletion endpoint")
    response = getattr(client, method)(path, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 405
    assert response.headers["Allow"] == ("GET, DELETE" if deletable else "GET")
    assert response.json()["error"] == "MethodNotAllowedError"


def test_routes_have_no_trailing_slash(client, world, api_key):
    assert get(client, api_key, "/api/public/traces/").status_code == 404
    assert get(client, api_key, "/api/public/traces").status_code == 200


def test_it_answers_json_whatever_the_accept_header(client, world, api_key):
    response = client.get("/api/public/traces", HTTP_AUTHORIZATION=api_key.basic, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "path,params,fragment",
    [
        ("/api/public/traces", {"limit": "101"}, "limit must be between 1 and 100"),
        ("/api/public/traces", {"limit": "0"}, "limit must be between 1 and 100"),
        ("/api/public/traces", {"limit": "ten"}, "limit must be an integer"),
        ("/api/public/traces", {"page": "0"}, "page must be at least 1"),
        ("/api/public/traces", {"fromTimestamp": "yesterday"}, "fromTimestamp must be an ISO 8601 datetime"),
        ("/api/public/traces", {"toTimestamp": "2024-13-01"}, "toTimestamp must be an ISO 8601 datetime"),
        ("/api/public/traces", {"orderBy": "cost.desc"}, "orderBy must look like field.asc"),
        ("/api/public/traces", {"orderBy": "timestamp.sideways"}, "orderBy must look like field.asc"),
        ("/api/public/traces", {"status": "fine"}, "status must be one of error, refused, success"),
        ("/api/public/traces", {"minCost": "cheap"}, "minCost must be a number"),
        ("/api/public/traces", {"minCost": "-1"}, "minCost must be a finite number >= 0"),
        ("/api/public/traces", {"minCost": "NaN"}, "minCost must be a finite number >= 0"),
        ("/api/public/traces", {"minLatencyMs": "inf"}, "minLatencyMs must be a finite number >= 0"),
        ("/api/public/traces", {"minLatencyMs": "1e300"}, "minLatencyMs must be at most 1e+12"),
        ("/api/public/observations", {"minCost": "1e999999"}, "minCost must be at most 1e+15"),
        ("/api/public/traces", {"fields": "core,everything"}, "unknown field group(s) everything"),
        ("/api/public/traces", {"filter": "{not json"}, "filter must be a JSON array"),
        ("/api/public/traces", {"filter": '{"column": "name"}'}, "filter must be a JSON array of conditions"),
        ("/api/public/traces/t-chat", {"fields": "nope"}, "unknown field group(s) nope"),
        ("/api/public/observations", {"type": "BANANA"}, "type must be one of"),
        ("/api/public/observations", {"level": "LOUD"}, "level must be one of"),
        ("/api/public/observations", {"fromStartTime": "1st of May"}, "fromStartTime must be an ISO 8601"),
        ("/api/public/observations", {"limit": "1000"}, "limit must be between 1 and 100"),
        ("/api/public/v2/observations", {"limit": "1001"}, "limit must be between 1 and 1000"),
        ("/api/public/v2/observations", {"cursor": "garbage!!"}, "cursor is not one this server returned"),
        ("/api/public/v2/observations", {"cursor": DEEP_TOKEN}, "cursor is not one this server returned"),
        ("/api/public/traces", {"filter": "[" * 2000}, "filter must be a JSON array"),
        ("/api/public/v2/observations", {"fields": "core,secrets"}, "unknown field group(s) secrets"),
        (
            "/api/public/v2/observations",
            {"isRootObservation": "maybe"},
            "isRootObservation must be true or false",
        ),
        ("/api/public/sessions", {"toTimestamp": "soon"}, "toTimestamp must be an ISO 8601"),
        ("/api/public/sessions", {"limit": "-5"}, "limit must be between 1 and 100"),
    ],
)
def test_it_rejects_malformed_query_parameters_with_a_clear_400(
    client, world, api_key, path, params, fragment
):
    bad_request(get(client, api_key, path, params), fragment)


@pytest.mark.parametrize(
    "condition,fragment",
    [
        (
            {"type": "string", "column": "secret", "operator": "=", "value": "x"},
            "unsupported column 'secret'",
        ),
        ({"type": "number", "column": "name", "operator": "=", "value": 1}, "type 'number' does not apply"),
        ({"type": "string", "column": "name", "operator": "~", "value": "x"}, "operator '~' is not valid"),
        ({"type": "string", "column": "name", "operator": "=", "value": 3}, "need a string value"),
        ({"type": "datetime", "column": "startTime", "operator": ">", "value": "noon"}, "ISO 8601"),
        ({"type": "number", "column": "latency", "operator": ">", "value": True}, "finite numeric value"),
        ({"type": "number", "column": "latency", "operator": ">", "value": 1e300}, "value must be between"),
        (
            {"type": "numberObject", "column": "metadata", "key": "k", "operator": ">", "value": 1e16},
            "between",
        ),
        (
            {"type": "stringObject", "column": "metadata", "operator": "=", "value": "a"},
            "needs a non-empty string",
        ),
        (
            {"type": "arrayOptions", "column": "tags", "operator": "any of", "value": "prod"},
            "list of strings",
        ),
        (
            {"type": "boolean", "column": "isRootObservation", "operator": "=", "value": "yes"},
            "true or false",
        ),
        ("not-an-object", "each condition must be an object"),
    ],
)
def test_it_rejects_bad_filter_conditions_naming_the_condition(client, world, api_key, condition, fragment):
    response = get(client, api_key, "/api/public/v2/observations", {"filter": json.dumps([condition])})
    bad_request(response, "filter[0]: ")
    assert fragment in response.json()["message"]


def test_a_page_far_past_the_end_is_empty_not_an_error(client, world, api_key):
    for path in ("/api/public/traces", "/api/public/observations", "/api/public/sessions"):
        body = ok(get(client, api_key, path, {"page": "99999999999999999999"}))
        assert body["data"] == [] and body["meta"]["totalItems"] > 0


def test_nul_characters_get_a_404_in_ids_and_a_400_in_filters(client, world, api_key):
    for path in ("/api/public/traces/a%00b", "/api/public/observations/a%00", "/api/public/sessions/%00"):
        response = get(client, api_key, path)
        assert response.status_code == 404 and response.json()["error"] == "LangfuseNotFoundError"
    bad_request(get(client, api_key, "/api/public/traces", {"name": "a\x00b"}), "name must not contain NUL")
    condition = {"type": "string", "column": "name", "operator": "=", "value": "a\x00"}
    response = get(client, api_key, "/api/public/v2/observations", {"filter": json.dumps([condition])})
    bad_request(response, "filter[0]: values must not contain NUL characters")


def test_unknown_ids_answer_langfuse_not_found(client, world, api_key):
    for path, noun in [
        ("/api/public/traces/nope", "Trace"),
        ("/api/public/observations/nope", "Observation"),
        ("/api/public/sessions/nope", "Session"),
    ]:
        response = get(client, api_key, path)
        assert response.status_code == 404
        body = response.json()
        assert body["error"] == "LangfuseNotFoundError"
        assert body["message"].startswith(f"{noun} nope not found")


# --- isolation (two tenants, two regions) ----------------------------------------------------------


def test_another_projects_objects_answer_the_same_404(client, world, api_key, other_api_key):
    for path in (
        "/api/public/traces/t-globex",
        "/api/public/observations/o-globex",
        "/api/public/sessions/s-globex",
    ):
        assert get(client, api_key, path).status_code == 404
    for path in (
        "/api/public/traces/t-empty",
        "/api/public/observations/o-root",
        "/api/public/observations/o-tool",
    ):
        assert get(client, other_api_key, path).status_code == 404


def test_another_projects_trace_cannot_be_deleted_or_found_through_a_filter(
    client, world, project, other_project, api_key
):
    from privacy.models import ErasureRequest

    missing = client.delete("/api/public/traces/t-nowhere", HTTP_AUTHORIZATION=api_key.basic)
    theirs = client.delete("/api/public/traces/t-globex", HTTP_AUTHORIZATION=api_key.basic)
    assert theirs.status_code == missing.status_code == 404
    assert "globex" not in theirs.content.decode().replace("t-globex", "")
    assert Trace.objects.for_project(other_project).filter(id="t-globex").exists()
    assert not ErasureRequest.objects.filter(project__in=[project, other_project]).exists()
    for path, params in (
        ("/api/public/traces", {"sessionId": "s-globex"}),
        ("/api/public/observations", {"traceId": "t-globex"}),
        ("/api/public/v2/observations", {"traceId": "t-globex"}),
    ):
        assert ok(get(client, api_key, path, params))["data"] == [], (path, params)


def test_a_shared_id_resolves_to_the_callers_own_object(client, world, api_key, other_api_key):
    ours = ok(get(client, api_key, "/api/public/traces/t-chat"))
    theirs = ok(get(client, other_api_key, "/api/public/traces/t-chat"))
    assert ours["name"] == "chat" and theirs["name"] == "globex"
    assert {o["id"] for o in ours["observations"]} == {"o-root", "o-gen", "o-tool"}
    assert [s["id"] for s in ours["scores"]] == ["sc-num", "sc-cat", "sc-bool", "sc-text"]
    assert [o["name"] for o in theirs["observations"]] == ["globex-llm"]
    assert [s["id"] for s in theirs["scores"]] == ["sc-globex"]
    assert ok(get(client, api_key, "/api/public/observations/o-gen"))["name"] == "llm"
    assert ok(get(client, other_api_key, "/api/public/observations/o-gen"))["name"] == "globex-llm"
    assert len(ok(get(client, api_key, "/api/public/sessions/s1"))["traces"]) == 2
    assert [t["id"] for t in ok(get(client, other_api_key, "/api/public/sessions/s1"))["traces"]] == [
        "t-chat"
    ]


def test_lists_only_show_the_callers_project_in_either_region(
    client, world, api_key, other_api_key, project, other_project
):
    # Same region, one database: only the project filter keeps the two tenants apart.
    assert project.region == other_project.region
    assert sorted(ids(ok(get(client, api_key, "/api/public/traces")))) == ["t-chat", "t-empty", "t-refused"]
    assert sorted(ids(ok(get(client, other_api_key, "/api/public/traces")))) == ["t-chat", "t-globex"]
    assert sorted(ids(ok(get(client, api_key, "/api/public/observations")))) == [
        "o-gen",
        "o-refused",
        "o-root",
        "o-tool",
    ]
    assert sorted(ids(ok(get(client, other_api_key, "/api/public/observations")))) == ["o-gen", "o-globex"]
    assert sorted(ids(ok(get(client, other_api_key, "/api/public/v2/observations")))) == ["o-gen", "o-globex"]
    assert ids(ok(get(client, api_key, "/api/public/sessions"))) == ["s1"]
    assert sorted(ids(ok(get(client, other_api_key, "/api/public/sessions")))) == ["s-globex", "s1"]
    # Aggregates never mix tenants either: their o-gen costs 9 USD, ours 0.003.
    chat = next(t for t in ok(get(client, api_key, "/api/public/traces"))["data"] if t["id"] == "t-chat")
    assert chat["totalCost"] == pytest.approx(0.003)
    assert chat["scores"] == ["sc-num", "sc-cat", "sc-bool", "sc-text"]


# --- traces ----------------------------------------------------------------------------------------


def test_trace_list_matches_langfuse_shape_with_aggregates(client, world, api_key, project):
    body = ok(get(client, api_key, "/api/public/traces"))
    LfTraces.model_validate_json(json.dumps(body))
    assert ids(body) == ["t-empty", "t-refused", "t-chat"]  # timestamp.desc by default
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}
    chat = body["data"][2]
    assert chat["htmlPath"] == f"/project/{project.id}/traces/t-chat"
    assert chat["latency"] == pytest.approx(2.0)
    assert chat["observations"] == ["o-root", "o-gen", "o-tool"]  # by start time
    assert chat["scores"] == ["sc-num", "sc-cat", "sc-bool", "sc-text"]
    assert chat["status"] == "error"
    assert chat["models"] == ["gpt-4o"]
    assert chat["usage"] == {
        "input": 100,
        "cachedInput": 20,
        "cacheWrite": 0,
        "output": 50,
        "reasoning": 5,
        "total": 175,
    }
    assert (chat["inputCost"], chat["outputCost"]) == (pytest.approx(0.001), pytest.approx(0.002))
    assert chat["observationCount"] == 3
    assert (chat["input"], chat["output"], chat["metadata"]) == (
        {"q": "hi"},
        "hello",
        {"team": "support", "tier": 3},
    )
    assert (chat["sessionId"], chat["userId"], chat["release"], chat["version"]) == ("s1", "u1", "r1", "v1")
    assert (chat["tags"], chat["public"], chat["environment"]) == (["prod", "chat"], True, "production")
    refused, empty = body["data"][1], body["data"][0]
    assert (refused["status"], refused["latency"], refused["totalCost"]) == (
        "refused",
        pytest.approx(0.3),
        pytest.approx(0.0005),
    )
    # No observations: the SDKs need numbers, Langfuse answers 0.
    assert (
        empty["status"],
        empty["latency"],
        empty["totalCost"],
        empty["observations"],
        empty["scores"],
    ) == ("success", 0.0, 0.0, [], [])
    assert (empty["sessionId"], empty["userId"], empty["release"]) == (None, None, None)


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"userId": "u1"}, ["t-chat"]),
        ({"name": "chat"}, ["t-refused", "t-chat"]),
        ({"sessionId": "s1"}, ["t-refused", "t-chat"]),
        ({"fromTimestamp": "2026-01-10T13:00:00Z"}, ["t-empty", "t-refused"]),
        ({"toTimestamp": "2026-01-10T13:00:00Z"}, ["t-chat"]),  # exclusive upper bound
        ({"fromTimestamp": "2026-01-10T12:30:00+00:00", "toTimestamp": "2026-01-10T13:30:00"}, ["t-refused"]),
        ({"fromTimestamp": "2026-01-10T13:00:00 00:00"}, ["t-empty", "t-refused"]),  # unencoded '+'
        ({"tags": ["prod"]}, ["t-refused", "t-chat"]),
        ({"tags": ["prod", "chat"]}, ["t-chat"]),  # all of the tags
        ({"version": "v2"}, ["t-refused"]),
        ({"release": "r1"}, ["t-chat"]),
        ({"environment": ["production", "staging"]}, ["t-refused", "t-chat"]),
        ({"environment": "default"}, ["t-empty"]),
        ({"status": "error"}, ["t-chat"]),
        ({"status": "refused"}, ["t-refused"]),
        ({"status": "success"}, ["t-empty"]),
        ({"model": "gpt-4o"}, ["t-chat"]),
        ({"model": "gpt-4o-2024-08-06"}, ["t-chat"]),  # the answering model counts too
        ({"minCost": "0.001"}, ["t-chat"]),
        ({"minCost": "0.0005"}, ["t-refused", "t-chat"]),
        ({"minCost": "0"}, ["t-empty", "t-refused", "t-chat"]),
        ({"minLatencyMs": "1000"}, ["t-chat"]),
        ({"minLatencyMs": "300"}, ["t-refused", "t-chat"]),
        ({"orderBy": "timestamp.asc"}, ["t-chat", "t-refused", "t-empty"]),
        ({"orderBy": "name.asc"}, ["t-chat", "t-refused", "t-empty"]),
        ({"orderBy": "id.desc"}, ["t-refused", "t-empty", "t-chat"]),
        ({"orderBy": "userId.asc", "name": "chat"}, ["t-chat", "t-refused"]),
        ({"userId": "u1", "status": "refused"}, []),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "stringObject",
                            "column": "metadata",
                            "key": "team",
                            "operator": "=",
                            "value": "support",
                        }
                    ]
                )
            },
            ["t-chat"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "numberObject",
                            "column": "metadata",
                            "key": "tier",
                            "operator": ">=",
                            "value": 3,
                        }
                    ]
                )
            },
            ["t-chat"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "arrayOptions", "column": "tags", "operator": "none of", "value": ["chat"]}]
                )
            },
            ["t-empty", "t-refused"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "datetime",
                            "column": "timestamp",
                            "operator": ">",
                            "value": "2026-01-10T12:00:00Z",
                        }
                    ]
                ),
                "name": "chat",
            },
            ["t-refused"],
        ),
        (
            {"filter": json.dumps([{"type": "null", "column": "sessionId", "operator": "is null"}])},
            ["t-empty"],
        ),
    ],
)
def test_trace_list_filters(client, world, api_key, params, expected):
    assert ids(ok(get(client, api_key, "/api/public/traces", params))) == expected


def test_trace_list_pages_and_reports_totals(client, world, api_key):
    pages = [ok(get(client, api_key, "/api/public/traces", {"limit": 2, "page": n})) for n in (1, 2, 3)]
    assert [ids(p) for p in pages] == [["t-empty", "t-refused"], ["t-chat"], []]
    assert [p["meta"] for p in pages] == [
        {"page": n, "limit": 2, "totalItems": 3, "totalPages": 2} for n in (1, 2, 3)
    ]
    empty = ok(get(client, api_key, "/api/public/traces", {"userId": "nobody"}))
    assert empty == {"data": [], "meta": {"page": 1, "limit": 50, "totalItems": 0, "totalPages": 0}}


def test_trace_fields_leave_out_groups_the_way_langfuse_does(client, world, api_key):
    body = ok(get(client, api_key, "/api/public/traces", {"fields": "core", "userId": "u1"}))
    LfTraces.model_validate_json(json.dumps(body))
    chat = body["data"][0]
    assert (chat["input"], chat["output"], chat["metadata"]) == (None, None, None)
    assert (chat["observations"], chat["scores"], chat["latency"], chat["totalCost"]) == ([], [], -1, -1)
    assert "status" not in chat
    chat = ok(get(client, api_key, "/api/public/traces", {"fields": "scores,io", "userId": "u1"}))["data"][0]
    assert chat["scores"] == ["sc-num", "sc-cat", "sc-bool", "sc-text"] and chat["input"] == {"q": "hi"}
    detail = ok(get(client, api_key, "/api/public/traces/t-chat", {"fields": "core,metrics"}))
    assert (detail["observations"], detail["scores"], detail["latency"]) == ([], [], pytest.approx(2.0))


def _count_queries(django_assert_max_num_queries, project, limit):
    """Queries on the control plane (auth) and on the project's region, each bounded."""
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(django_assert_max_num_queries(limit, connection=connections["default"]))
    stack.enter_context(
        django_assert_max_num_queries(limit, connection=connections[region_database(project.region)])
    )
    return stack


def _bulk_world(project, n):
    _traces(
        project,
        *[
            Trace(id=f"bulk-{i}", name="bulk", timestamp=T0 + timedelta(minutes=i), session_id=f"bs{i}")
            for i in range(n)
        ],
    )
    _observations(
        project,
        *[
            Observation(
                id=f"bulk-{i}-{j}",
                trace_id=f"bulk-{i}",
                start_time=T0 + timedelta(minutes=i, seconds=j),
                end_time=T0 + timedelta(minutes=i, seconds=j + 1),
                model=f"m{j}",
                total_cost=Decimal("0.1"),
            )
            for i in range(n)
            for j in range(3)
        ],
    )
    _scores(project, *[Score(id=f"bulk-s-{i}", trace_id=f"bulk-{i}", name="q", value=1) for i in range(n)])


@pytest.mark.parametrize("n", [1, 40])
def test_list_endpoints_use_a_bounded_number_of_queries(
    client, api_key, project, django_assert_max_num_queries, n
):
    _bulk_world(project, n)
    get(client, api_key, "/api/public/traces")  # first use of the key records last_used_at once
    for path, params in [
        ("/api/public/traces", {"limit": 100, "minCost": "0.01", "status": "success"}),
        ("/api/public/observations", {"limit": 100}),
        ("/api/public/v2/observations", {"limit": 200, "fields": "core,basic,trace_context,usage"}),
        ("/api/public/sessions", {"limit": 100}),
    ]:
        with _count_queries(django_assert_max_num_queries, project, 4):
            body = ok(get(client, api_key, path, params))
        assert len(body["data"]) == {
            "/api/public/observations": min(3 * n, 100),
            "/api/public/v2/observations": 3 * n,
        }.get(path, n)
    with _count_queries(django_assert_max_num_queries, project, 4):
        detail = ok(get(client, api_key, "/api/public/traces/bulk-0"))
    assert len(detail["observations"]) == 3 and len(detail["scores"]) == 1


def test_trace_detail_has_full_observations_and_scores(client, world, api_key):
    body = ok(get(client, api_key, "/api/public/traces/t-chat"))
    LfTraceWithFullDetails.model_validate_json(json.dumps(body))
    assert (body["latency"], body["totalCost"], body["status"]) == (
        pytest.approx(2.0),
        pytest.approx(0.003),
        "error",
    )
    assert [o["id"] for o in body["observations"]] == ["o-root", "o-gen", "o-tool"]
    gen = body["observations"][1]
    assert gen["parentObservationId"] == "o-root" and gen["model"] == "gpt-4o"
    num, cat, boolean, text = body["scores"]
    assert (text["dataType"], text["stringValue"], "value" in text) == ("TEXT", "too terse", False)
    assert (num["dataType"], num["value"], num["source"]) == ("NUMERIC", 0.9, "API")
    assert "stringValue" not in num
    assert (cat["dataType"], cat["stringValue"], cat["value"], cat["observationId"], cat["comment"]) == (
        "CATEGORICAL",
        "good",
        0.0,
        "o-gen",
        "nice",
    )
    # End-user feedback reports as Langfuse's API source, flagged as ours.
    assert (boolean["stringValue"], boolean["value"], boolean["source"], boolean["endUserFeedback"]) == (
        "True",
        1.0,
        "API",
        True,
    )


def test_trace_ids_with_reserved_characters_round_trip(client, project, api_key):
    _traces(project, Trace(id="a b:c%d", timestamp=T0))
    body = ok(get(client, api_key, "/api/public/traces/a%20b%3Ac%25d"))
    assert body["id"] == "a b:c%d"
    assert body["htmlPath"].endswith("/traces/a%20b%3Ac%25d")


# --- observations v1 -------------------------------------------------------------------------------


def test_observation_matches_langfuse_shape_with_our_fields(client, world, api_key):
    body = ok(get(client, api_key, "/api/public/observations/o-gen"))
    LfObservationsView.model_validate_json(json.dumps(body))
    assert body["usage"] == {
        "input": 100,
        "output": 50,
        "total": 175,
        "unit": "TOKENS",
        "inputCost": 0.001,
        "outputCost": 0.002,
        "totalCost": 0.003,
    }
    # Normalised counts under Langfuse's keys; provider aliases are not repeated; unknown units kept.
    assert body["usageDetails"] == {
        "input": 100,
        "output": 50,
        "total": 175,
        "input_cached_tokens": 20,
        "output_reasoning_tokens": 5,
        "images": 2,
    }
    assert body["costDetails"] == {"input": 0.001, "output": 0.002, "total": 0.003}
    assert (body["calculatedInputCost"], body["calculatedOutputCost"], body["calculatedTotalCost"]) == (
        0.001,
        0.002,
        0.003,
    )
    assert body["latency"] == pytest.approx(1.5)
    assert body["timeToFirstToken"] == pytest.approx(0.3)
    assert (body["promptName"], body["promptVersion"]) == ("support", 3)
    # Nested parameter values become JSON text (Langfuse v1 types them as scalars or [str]).
    assert body["modelParameters"] == {
        "temperature": 0.2,
        "stop": ["\n"],
        "response_format": '{"type":"json"}',
    }
    assert body["input"] == [{"role": "user", "content": "hi"}]
    assert body["metadata"]["long"] == "x" * 300  # v1 never truncates
    assert (body["status"], body["responseModel"], body["finishReason"], body["costSource"]) == (
        "success",
        "gpt-4o-2024-08-06",
        "stop",
        "catalog",
    )
    assert (body["cachedInputTokens"], body["reasoningTokens"], body["cacheWriteTokens"]) == (20, 5, None)
    assert body["toolCalls"] == [{"id": "c1", "name": "lookup", "arguments": {"q": "x"}}]
    tool = ok(get(client, api_key, "/api/public/observations/o-tool"))
    assert (
        tool["status"],
        tool["level"],
        tool["statusMessage"],
        tool["errorType"],
        tool["errorMessage"],
    ) == ("error", "ERROR", "boom", "TimeoutError", "took too long")
    assert (tool["toolName"], tool["toolCallId"], tool["usage"]["unit"], tool["usageDetails"]) == (
        "lookup",
        "c1",
        None,
        {},
    )


@pytest.mark.parametrize(
    "params,expected",
    [
        ({}, ["o-refused", "o-tool", "o-gen", "o-root"]),  # newest first
        ({"name": "llm"}, ["o-refused", "o-gen"]),
        ({"userId": "u1"}, ["o-tool", "o-gen", "o-root"]),
        ({"sessionId": "s1", "type": "GENERATION"}, ["o-refused", "o-gen"]),
        ({"type": "tool"}, ["o-tool"]),
        ({"traceId": "t-refused"}, ["o-refused"]),
        ({"level": "ERROR"}, ["o-tool"]),
        ({"parentObservationId": "o-root"}, ["o-tool", "o-gen"]),
        ({"environment": ["staging"]}, ["o-refused"]),
        ({"environment": ["staging", "production"], "type": "SPAN"}, ["o-root"]),
        ({"fromStartTime": "2026-01-10T12:00:01Z"}, ["o-refused", "o-tool"]),
        ({"toStartTime": "2026-01-10T12:00:00.100000Z"}, ["o-root"]),  # exclusive upper bound
        ({"version": "v1"}, ["o-tool"]),
        ({"status": "error"}, ["o-tool"]),
        ({"status": "refused"}, ["o-refused"]),
        ({"status": "success", "traceId": "t-chat"}, ["o-gen", "o-root"]),
        ({"model": "claude-x"}, ["o-refused"]),
        ({"minCost": "0.001"}, ["o-gen"]),
        ({"minLatencyMs": "1500"}, ["o-gen", "o-root"]),
        ({"minLatencyMs": "200", "type": "GENERATION"}, ["o-refused", "o-gen"]),
        (
            {
                "filter": json.dumps(
                    [{"type": "number", "column": "totalTokens", "operator": ">", "value": 50}]
                )
            },
            ["o-gen"],
        ),
    ],
)
def test_observation_list_filters(client, world, api_key, params, expected):
    body = ok(get(client, api_key, "/api/public/observations", params))
    LfObservationsViews.model_validate_json(json.dumps(body))
    assert ids(body) == expected


def test_observation_list_pages(client, world, api_key):
    pages = [ok(get(client, api_key, "/api/public/observations", {"limit": 3, "page": n})) for n in (1, 2)]
    assert [ids(p) for p in pages] == [["o-refused", "o-tool", "o-gen"], ["o-root"]]
    assert pages[1]["meta"] == {"page": 2, "limit": 3, "totalItems": 4, "totalPages": 2}


# --- observations v2 (through the langfuse v5 SDK) ----------------------------------------------


class _TestTransactionWSGI:
    """Django's WSGI app without the end-of-request connection cleanup, which would close (and so
    break) the test's open transaction; Django's own test client skips it the same way."""

    def __init__(self):
        self.handler = WSGIHandler()

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            try:
                body = b"".join(response)
            finally:
                response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]


def _langfuse_api(key) -> LangfuseAPI:
    """The langfuse v5 API client, talking WSGI to this Django app inside the test transaction."""
    http = httpx.Client(
        transport=httpx.WSGITransport(app=_TestTransactionWSGI()), base_url="http://testserver"
    )
    return LangfuseAPI(
        base_url="http://testserver", username=key.public, password=key.secret, httpx_client=http
    )


@pytest.fixture
def sdk(api_key):
    return _langfuse_api(api_key)


def test_sdk_v5_reads_v2_observations_with_every_field_group(world, sdk, project):
    groups = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context,tools,error"
    page = sdk.observations.get_many(fields=groups, trace_id="t-chat", expand_metadata="route")
    assert [o.id for o in page.data] == ["o-tool", "o-gen", "o-root"]
    assert page.meta.cursor is None
    gen = page.data[1]
    assert gen.project_id == str(project.id)
    assert (gen.user_id, gen.session_id, gen.public, gen.is_root_observation) == ("u1", "s1", True, False)
    assert (gen.trace_name, gen.tags, gen.release) == ("chat", ["prod", "chat"], "r1")
    assert gen.usage_details["input_cached_tokens"] == 20 and gen.total_cost == pytest.approx(0.003)
    assert (gen.prompt_name, gen.prompt_version) == ("support", 3)
    assert gen.latency == pytest.approx(1.5) and gen.time_to_first_token == pytest.approx(0.3)
    assert gen.model_parameters["response_format"] == {"type": "json"}  # v2 keeps structure
    assert gen.start_time == T0 + timedelta(milliseconds=100) and gen.updated_at is not None
    # Langfuse v2 hands input/output over as text; metadata values are cut at 200 characters unless expanded.
    assert json.loads(gen.input) == [{"role": "user", "content": "hi"}]
    assert page.data[2].input == "raw text"
    assert gen.metadata["long"] == "x" * 200 + "..." and gen.metadata["route"] == "a"
    extras = gen.model_extra
    assert (extras["status"], extras["cachedInputTokens"], extras["toolCalls"][0]["name"]) == (
        "success",
        20,
        "lookup",
    )
    assert page.data[0].model_extra["errorType"] == "TimeoutError"


def test_sdk_v5_default_groups_are_core_and_basic(world, sdk):
    page = sdk.observations.get_many(trace_id="t-refused")
    (obs,) = page.data
    assert (obs.name, obs.level, obs.environment, obs.user_id) == ("llm", "DEFAULT", "staging", "u2")
    assert obs.input is None and obs.usage_details is None and obs.model is None
    assert obs.model_extra["status"] == "refused"


def test_sdk_v5_follows_cursors_through_every_observation(project, sdk):
    _traces(project, Trace(id="t", timestamp=T0))
    # Equal start times on purpose: the cursor breaks ties by id, so nothing repeats or goes missing.
    _observations(
        project,
        *[
            Observation(id=f"o{i:02d}", trace_id="t", start_time=T0 + timedelta(seconds=i // 3))
            for i in range(25)
        ],
    )
    seen, cursor, pages = [], None, 0
    while True:
        page = sdk.observations.get_many(limit=4, cursor=cursor)
        seen += [o.id for o in page.data]
        pages += 1
        cursor = page.meta.cursor
        if cursor is None:
            break
    assert pages == 7
    assert seen == sorted((f"o{i:02d}" for i in range(25)), key=lambda x: (int(x[1:]) // 3, x), reverse=True)


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"name": "llm"}, ["o-refused", "o-gen"]),
        ({"user_id": "u2"}, ["o-refused"]),
        ({"session_id": "s1", "type": "TOOL"}, ["o-tool"]),
        ({"level": "ERROR"}, ["o-tool"]),
        ({"parent_observation_id": "o-root"}, ["o-tool", "o-gen"]),
        ({"is_root_observation": True}, ["o-refused", "o-root"]),
        ({"is_root_observation": False}, ["o-tool", "o-gen"]),
        ({"environment": ["staging", "production"], "type": "GENERATION"}, ["o-refused", "o-gen"]),
        ({"from_start_time": T0 + timedelta(seconds=1)}, ["o-refused", "o-tool"]),
        ({"to_start_time": T0 + timedelta(seconds=1)}, ["o-gen", "o-root"]),
        ({"version": "v1"}, ["o-tool"]),
        (
            {
                "filter": json.dumps(
                    [
                        {"type": "string", "column": "type", "operator": "=", "value": "GENERATION"},
                        {"type": "number", "column": "latency", "operator": ">=", "value": 1},
                    ]
                )
            },
            ["o-gen"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "datetime",
                            "column": "startTime",
                            "operator": "<=",
                            "value": "2026-01-10T12:00:00.100Z",
                        }
                    ]
                )
            },
            ["o-gen", "o-root"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "stringObject",
                            "column": "metadata",
                            "key": "route",
                            "operator": "=",
                            "value": "a",
                        }
                    ]
                )
            },
            ["o-gen"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "numberObject",
                            "column": "metadata",
                            "key": "score",
                            "operator": ">",
                            "value": 5,
                        }
                    ]
                )
            },
            ["o-gen"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "stringObject", "column": "metadata", "key": "route", "operator": "is not set"}]
                )
            },
            ["o-refused", "o-tool", "o-root"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "categoryOptions",
                            "column": "metadata",
                            "key": "route",
                            "operator": "any of",
                            "value": ["a", "b"],
                        }
                    ]
                )
            },
            ["o-gen"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "boolean", "column": "isRootObservation", "operator": "=", "value": True}]
                )
            },
            ["o-refused", "o-root"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "stringOptions", "column": "userId", "operator": "none of", "value": ["u1"]}]
                )
            },
            ["o-refused"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "arrayOptions",
                            "column": "traceTags",
                            "operator": "all of",
                            "value": ["prod", "chat"],
                        }
                    ]
                )
            },
            ["o-tool", "o-gen", "o-root"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "string", "column": "traceName", "operator": "starts with", "value": "CH"}]
                ),
                "type": "SPAN",
            },
            ["o-root"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "string", "column": "name", "operator": "does not contain", "value": "LL"}]
                )
            },
            ["o-tool", "o-root"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {"type": "null", "column": "endTime", "operator": "is not null"},
                        {"type": "number", "column": "totalCost", "operator": "<", "value": 0.001},
                    ]
                )
            },
            ["o-refused"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "string", "column": "status", "operator": "=", "value": "error"}]
                )
            },
            ["o-tool"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "number", "column": "timeToFirstToken", "operator": "<", "value": 0.5}]
                )
            },
            ["o-gen"],
        ),
    ],
)
def test_sdk_v5_v2_observation_filters(world, sdk, kwargs, expected):
    assert [o.id for o in sdk.observations.get_many(**kwargs).data] == expected


def test_v2_empty_parent_id_means_roots_only(client, world, api_key):
    body = ok(get(client, api_key, "/api/public/v2/observations", {"parentObservationId": ""}))
    assert ids(body) == ["o-refused", "o-root"]


def test_v2_parse_io_as_json_returns_values(client, world, api_key):
    body = ok(
        get(
            client,
            api_key,
            "/api/public/v2/observations",
            {"fields": "io", "traceId": "t-chat", "parseIoAsJson": "true"},
        )
    )
    assert body["data"][1]["output"] == {"role": "assistant", "content": "hello"}
    assert body["data"][2]["input"] == "raw text"


def test_sdk_v5_surfaces_our_400s_and_404s_as_api_errors(world, sdk):
    with pytest.raises(ApiError) as excinfo:
        sdk.observations.get_many(fields="core,nonsense")
    assert excinfo.value.status_code == 400
    assert "nonsense" in excinfo.value.body["message"]


def test_sdk_v5_with_another_projects_key_sees_only_that_project(world, other_api_key):
    api = _langfuse_api(other_api_key)
    assert sorted(o.id for o in api.observations.get_many(fields="core,basic").data) == ["o-gen", "o-globex"]
    assert api.observations.get_many(trace_id="t-refused").data == []


# --- sessions --------------------------------------------------------------------------------------


def test_sessions_list_and_detail(client, world, api_key, project):
    _traces(
        project, Trace(id="t-late", timestamp=T0 + timedelta(days=1), session_id="s2", environment="staging")
    )
    body = ok(get(client, api_key, "/api/public/sessions"))
    LfPaginatedSessions.model_validate_json(json.dumps(body))
    assert body["data"] == [
        {
            "id": "s2",
            "createdAt": "2026-01-11T12:00:00Z",
            "projectId": str(project.id),
            "environment": "staging",
        },
        {
            "id": "s1",
            "createdAt": "2026-01-10T12:00:00Z",
            "projectId": str(project.id),
            "environment": "production",
        },
    ]
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}
    detail = ok(get(client, api_key, "/api/public/sessions/s1"))
    LfSessionWithTraces.model_validate_json(json.dumps(detail))
    assert [t["id"] for t in detail["traces"]] == ["t-chat", "t-refused"]
    assert detail["createdAt"] == "2026-01-10T12:00:00Z"


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"fromTimestamp": "2026-01-10T12:00:01Z"}, ["s2"]),
        ({"toTimestamp": "2026-01-11T00:00:00Z"}, ["s1"]),
        ({"environment": "staging"}, ["s2", "s1"]),
        ({"environment": "production"}, ["s1"]),
        ({"environment": ["production", "default"]}, ["s1"]),
        ({"limit": 1, "page": 2}, ["s1"]),
    ],
)
def test_sessions_filters(client, world, api_key, project, params, expected):
    _traces(
        project, Trace(id="t-late", timestamp=T0 + timedelta(days=1), session_id="s2", environment="staging")
    )
    body = ok(get(client, api_key, "/api/public/sessions", params))
    assert ids(body) == expected
    if "limit" in params:
        assert body["meta"] == {"page": 2, "limit": 1, "totalItems": 2, "totalPages": 2}


def test_session_created_at_follows_the_environment_filter(client, world, api_key):
    # s1's first staging trace is an hour after its first production one.
    body = ok(get(client, api_key, "/api/public/sessions", {"environment": "staging"}))
    assert body["data"][0]["createdAt"] == "2026-01-10T13:00:00Z"


def test_python_sdk_v2_callers_get_no_text_scores_which_their_models_cannot_parse(client, world, api_key):
    headers = {
        "HTTP_AUTHORIZATION": api_key.basic,
        "HTTP_X_LANGFUSE_SDK_NAME": "python",
        "HTTP_X_LANGFUSE_SDK_VERSION": "2.60.10",
    }
    detail = ok(client.get("/api/public/traces/t-chat", **headers))
    assert [s["id"] for s in detail["scores"]] == ["sc-num", "sc-cat", "sc-bool"]
    listed = ok(client.get("/api/public/traces", {"userId": "u1"}, **headers))
    assert listed["data"][0]["scores"] == ["sc-num", "sc-cat", "sc-bool"]
    headers["HTTP_X_LANGFUSE_SDK_VERSION"] = "3.15.0"
    assert [s["id"] for s in ok(client.get("/api/public/traces/t-chat", **headers))["scores"]][
        -1
    ] == "sc-text"


def test_json_beyond_64_bit_integers_is_still_served(client, project, api_key):
    _traces(project, Trace(id="big", timestamp=T0, input={"n": 2**70}))
    assert ok(get(client, api_key, "/api/public/traces/big"))["input"] == {"n": 2**70}


def test_rows_stored_by_the_ingest_writer_read_back_in_langfuse_shape(client, project, api_key, sdk):
    from ingest.writer import write_records

    write_records(
        project=project,
        traces=[
            {
                "id": "w-trace",
                "name": "written",
                "timestamp": T0,
                "user_id": "u9",
                "session_id": "w-s",
                "tags": ["w"],
                "metadata": {"k": "v"},
            }
        ],
        observations=[
            {
                "id": "w-gen",
                "trace_id": "w-trace",
                "type": "GENERATION",
                "name": "llm",
                "start_time": T0,
                "end_time": T0 + timedelta(seconds=2),
                "model": "gpt-4o",
                "input_tokens": 80,
                "cached_input_tokens": 20,
                "output_tokens": 30,
                "usage_details": {"input": 100, "output": 30},
                "cost_details": {"input": 0.0002, "output": 0.0003},
                "level": "DEFAULT",
            },
            {
                "id": "w-err",
                "trace_id": "w-trace",
                "parent_observation_id": "w-gen",
                "type": "SPAN",
                "start_time": T0 + timedelta(seconds=1),
                "level": "ERROR",
                "status_message": "failed",
            },
        ],
        scores=[{"id": "w-score", "trace_id": "w-trace", "name": "q", "value": 1.0, "timestamp": T0}],
    )
    trace = ok(get(client, api_key, "/api/public/traces/w-trace"))
    LfTraceWithFullDetails.model_validate_json(json.dumps(trace))
    assert trace["status"] == "error"  # the writer derives status from the ERROR level
    assert trace["usage"]["total"] == 130 and trace["latency"] == pytest.approx(2.0)
    gen = next(o for o in trace["observations"] if o["id"] == "w-gen")
    assert gen["usageDetails"]["input_cached_tokens"] == 20 and gen["usage"]["total"] == 130
    LfTraces.model_validate_json(json.dumps(ok(get(client, api_key, "/api/public/traces"))))
    LfObservationsViews.model_validate_json(json.dumps(ok(get(client, api_key, "/api/public/observations"))))
    page = sdk.observations.get_many(fields="core,basic,usage,io,metadata,model,metrics", trace_id="w-trace")
    assert [o.id for o in page.data] == ["w-err", "w-gen"]
