"""Langfuse-compatible public read API: traces, observations (v1 pages and v2 cursors), sessions.

Thin views: parse the query (400 on anything malformed), call `traces.selectors`, render with
`traces.public.render`. Every read is scoped to the API key's project; another project's id answers
the same 404 as a missing one.
"""

from __future__ import annotations

import math

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from privacy.api import erasure_public
from privacy.detectors import DETECTORS
from scores.models import ScoreDataType
from tenancy.http.errors import HttpError
from traces import selectors
from traces.models import Level, ObservationType, Status
from traces.public import render
from traces.public.http import NotFound, PublicReadView, error_response
from traces.public.params import MAX_DURATION_SECONDS, InvalidParams

TRACE_GROUPS = ("core", "io", "scores", "observations", "metrics")
TYPES = frozenset(ObservationType.values)
LEVELS = frozenset(Level.values)
STATUSES = frozenset(Status.values)


def _q(name, description, type_=OpenApiTypes.STR, many=False):
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, many=many)


PAGE_PARAMS = [
    _q("page", "Page number, from 1.", OpenApiTypes.INT),
    _q("limit", "Items per page, 1–100 (default 50).", OpenApiTypes.INT),
]
LOOKGLASS_PARAMS = [
    _q("status", "Lookglass: success, error or refused. A trace takes its worst observation's status."),
    _q("model", "Lookglass: only items with an observation whose requested or answering model is this."),
    _q(
        "minCost",
        "Lookglass: total cost in USD at least this (traces: summed over observations).",
        OpenApiTypes.NUMBER,
    ),
    _q("minLatencyMs", "Lookglass: latency in milliseconds at least this.", OpenApiTypes.NUMBER),
    _q(
        "redacted",
        "Lookglass: true = PII redaction removed something before storage (traces: from the trace or any "
        "of its observations); false = nothing.",
        OpenApiTypes.BOOL,
    ),
    _q(
        "redactedKind",
        "Lookglass: redaction removed this kind: a detector (email, phone, credit_card, openai_key, …) or "
        "custom:LABEL. With redacted=false: nothing of this kind.",
    ),
]


def _filter_param(columns) -> OpenApiParameter:
    return _q(
        "filter",
        "JSON array of Langfuse filter conditions ({type, column, operator, value, key}), combined with the "
        "other parameters by AND (in Langfuse it replaces them). Columns supported here: "
        f"{', '.join(sorted(columns))}. Not supported: the `matches` operator, input/output, score and "
        "bookmark columns, and (on traces) the aggregated metric and level-count columns.",
    )


def _score_types(request) -> tuple[str, ...]:
    """Score types the caller's SDK can parse in a trace: Python SDK v2 predates TEXT scores."""
    name = request.headers.get("X-Langfuse-Sdk-Name", "").lower()
    major = request.headers.get("X-Langfuse-Sdk-Version", "").split(".")[0]
    if name == "python" and major.isdigit() and int(major) < 3:
        return tuple(t for t in selectors.V1_SCORE_TYPES if t != ScoreDataType.TEXT)
    return selectors.V1_SCORE_TYPES


def _meta(page: int, limit: int, total: int) -> dict:
    return {"page": page, "limit": limit, "totalItems": total, "totalPages": math.ceil(total / limit)}


def _lookglass_filters(params) -> dict:
    return {
        "status": params.choice("status", STATUSES, normalize=str.lower),
        "model": params.string("model"),
        "min_cost": params.decimal("minCost"),
        "min_latency_ms": params.number("minLatencyMs", maximum=MAX_DURATION_SECONDS * 1000),
        "redacted": params.boolean("redacted"),
        "redacted_kind": _redacted_kind(params),
    }


def _redacted_kind(params) -> str | None:
    kind = params.string("redactedKind")
    if kind is None:
        return None
    kind = kind.strip()
    if not selectors.is_redaction_kind(kind):
        raise InvalidParams(
            f"redactedKind must be a detector ({', '.join(sorted(DETECTORS))}) or custom:LABEL, got {kind!r}"
        )
    return kind


def _order_by(params) -> tuple[str, str]:
    raw = params.string("orderBy")
    if raw is None:
        return ("timestamp", "desc")
    field_name, _, direction = raw.partition(".")
    direction = direction or "desc"
    if field_name not in selectors.TRACE_ORDER_FIELDS or direction not in ("asc", "desc"):
        raise InvalidParams(
            f"orderBy must look like field.asc or field.desc with field one of "
            f"{', '.join(selectors.TRACE_ORDER_FIELDS)}; got {raw!r}"
        )
    return field_name, direction


def _erase_traces(request, trace_ids: list[str], message: str) -> Response:
    """Langfuse's trace deletion, as an erasure request of those trace ids (privacy app): the answer
    carries its id, so the caller can poll `GET /api/public/erasure-requests/{id}` until it is done."""
    try:
        erasure = erasure_public.create_for_key(
            request.user, kind="traces", subjects=trace_ids, grace_days=0, via="langfuse-delete"
        )
    except HttpError as exc:
        return error_response(exc.status, exc.message, exc.error, headers=exc.headers)
    return Response({"message": message, "erasureId": str(erasure.id), "status": erasure.status})


class TraceListView(PublicReadView):
    http_method_names = ["get", "delete"]

    @extend_schema(
        operation_id="public_traces_delete",
        tags=["public: traces"],
        request={"application/json": {"type": "object", "properties": {
            "traceIds": {"type": "array", "items": {"type": "string"}, "minItems": 1}}, "required": ["traceIds"]}},
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `DELETE /api/public/traces` (`{traceIds}`): the traces and everything attached "
        "are erased in the background (an erasure request); `erasureId` names it.",
    )
    def delete(self, request):
        trace_ids = request.data.get("traceIds") if isinstance(request.data, dict) else None
        if not isinstance(trace_ids, list) or not trace_ids or not all(isinstance(t, str) and t for t in trace_ids):
            raise InvalidParams("traceIds must be a non-empty array of trace ids (strings)")
        return _erase_traces(request, trace_ids, "Traces deleted successfully")

    @extend_schema(
        operation_id="public_traces_list",
        tags=["public: traces"],
        parameters=[
            *PAGE_PARAMS,
            _q("userId", "Exact user id."),
            _q("name", "Exact trace name."),
            _q("sessionId", "Exact session id."),
            _q("fromTimestamp", "Traces at or after this ISO 8601 time.", OpenApiTypes.DATETIME),
            _q("toTimestamp", "Traces before this ISO 8601 time.", OpenApiTypes.DATETIME),
            _q(
                "orderBy",
                "field.asc|desc; field: id, timestamp, name, userId, release, version, public, sessionId.",
            ),
            _q("tags", "Repeatable; traces carrying all of these tags.", many=True),
            _q("version", "Exact version."),
            _q("release", "Exact release."),
            _q("environment", "Repeatable; any of these environments.", many=True),
            _q("fields", "Comma-separated groups: core, io, scores, observations, metrics (default all)."),
            _filter_param(selectors.TRACE_COLUMNS),
            *LOOKGLASS_PARAMS,
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `GET /api/public/traces`: TraceWithDetails items plus Lookglass's status, "
        "models, usage (tokens by kind), inputCost, outputCost, observationCount, and unpricedObservations / "
        "unpricedModels: calls with a model and tokens but no price, which totalCost leaves out.",
    )
    def get(self, request):
        params = self.params()
        page, limit = params.page(), params.limit()
        groups = params.field_groups("fields", TRACE_GROUPS, default=TRACE_GROUPS) | {"core"}
        filters = selectors.TraceFilters(
            user_id=params.string("userId"),
            name=params.string("name"),
            session_id=params.string("sessionId"),
            from_timestamp=params.datetime("fromTimestamp"),
            to_timestamp=params.datetime("toTimestamp"),
            tags=params.strings("tags"),
            version=params.string("version"),
            release=params.string("release"),
            environments=params.strings("environment"),
            conditions=params.conditions("filter", selectors.TRACE_COLUMNS),
            **_lookglass_filters(params),
        )
        order_by = _order_by(params)
        traces, total = selectors.trace_page(
            project=self.project, filters=filters, order_by=order_by, page=page, limit=limit
        )
        ids = [t.id for t in traces]
        summaries = (
            selectors.trace_summaries(project=self.project, trace_ids=ids, with_ids="observations" in groups)
            if groups & {"metrics", "observations"}
            else {}
        )
        score_ids = (
            selectors.trace_score_ids(project=self.project, trace_ids=ids, data_types=_score_types(request))
            if "scores" in groups
            else {}
        )
        data = [
            render.trace_with_details(
                t, summary=summaries.get(t.id), score_ids=score_ids.get(t.id, []), groups=groups
            )
            for t in traces
        ]
        return Response({"data": data, "meta": _meta(page, limit, total)})


class TraceDetailView(PublicReadView):
    http_method_names = ["get", "delete"]

    @extend_schema(
        operation_id="public_traces_destroy",
        tags=["public: traces"],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `DELETE /api/public/traces/{traceId}`: the trace and everything attached are "
        "erased in the background (an erasure request); `erasureId` names it. Another project's trace: 404.",
    )
    def delete(self, request, trace_id: str):
        if selectors.trace_get(project=self.project, trace_id=trace_id) is None:
            raise NotFound(f"Trace {trace_id} not found within authorized project")
        return _erase_traces(request, [trace_id], "Trace deleted successfully")

    @extend_schema(
        operation_id="public_traces_retrieve",
        tags=["public: traces"],
        parameters=[
            _q("fields", "Comma-separated groups: core, io, scores, observations, metrics (default all).")
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `GET /api/public/traces/{traceId}`: TraceWithFullDetails, observations and "
        "scores as full objects; unpricedObservations / unpricedModels as in the list.",
    )
    def get(self, request, trace_id: str):
        groups = self.params().field_groups("fields", TRACE_GROUPS, default=TRACE_GROUPS) | {"core"}
        trace = selectors.trace_get(project=self.project, trace_id=trace_id)
        if trace is None:
            raise NotFound(f"Trace {trace_id} not found within authorized project")
        # Loaded whenever metrics are wanted too: the summary is computed from them, not re-queried.
        observations = (
            selectors.trace_observations(project=self.project, trace_id=trace_id)
            if groups & {"observations", "metrics"}
            else []
        )
        scores = (
            selectors.trace_scores(project=self.project, trace_id=trace_id, data_types=_score_types(request))
            if "scores" in groups
            else []
        )
        return Response(
            render.trace_with_full_details(
                trace,
                observations=observations,
                scores=scores,
                summary=selectors.summarize_observations(observations),
                groups=groups,
            )
        )


def _observation_filters(params, *, v2: bool) -> selectors.ObservationFilters:
    parent = params.raw("parentObservationId")
    if parent == "" and not v2:
        parent = None  # v1 ignores an empty value; v2 reads it as "no parent"
    return selectors.ObservationFilters(
        name=params.string("name"),
        user_id=params.string("userId"),
        session_id=params.string("sessionId"),
        type=params.choice("type", TYPES),
        trace_id=params.string("traceId"),
        level=params.choice("level", LEVELS),
        parent_observation_id=parent,
        is_root=params.boolean("isRootObservation") if v2 else None,
        environments=params.strings("environment"),
        from_start_time=params.datetime("fromStartTime"),
        to_start_time=params.datetime("toStartTime"),
        version=params.string("version"),
        conditions=params.conditions("filter", selectors.OBSERVATION_COLUMNS),
        **_lookglass_filters(params),
    )


OBSERVATION_FILTER_PARAMS = [
    _q("name", "Exact observation name."),
    _q("userId", "User id of the observation's trace."),
    _q("type", "SPAN, GENERATION, EVENT, AGENT, TOOL, CHAIN, RETRIEVER, EMBEDDING, EVALUATOR or GUARDRAIL."),
    _q("traceId", "Exact trace id."),
    _q("level", "DEBUG, DEFAULT, WARNING or ERROR."),
    _q("parentObservationId", "Exact parent observation id."),
    _q("environment", "Repeatable; any of these environments.", many=True),
    _q("fromStartTime", "Started at or after this ISO 8601 time.", OpenApiTypes.DATETIME),
    _q("toStartTime", "Started before this ISO 8601 time.", OpenApiTypes.DATETIME),
    _q("version", "Exact version."),
    _filter_param(selectors.OBSERVATION_COLUMNS),
    *LOOKGLASS_PARAMS,
]


class ObservationListView(PublicReadView):
    @extend_schema(
        operation_id="public_observations_list",
        tags=["public: observations"],
        parameters=[
            *PAGE_PARAMS,
            _q("sessionId", "Session id of the observation's trace."),
            *OBSERVATION_FILTER_PARAMS,
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `GET /api/public/observations` (v1, page-based), newest first: "
        "ObservationsView "
        "items plus Lookglass's status, token kinds, tool calls, error fields and costSource.",
    )
    def get(self, request):
        params = self.params()
        page, limit = params.page(), params.limit()
        filters = _observation_filters(params, v2=False)
        rows, total = selectors.observation_page(
            project=self.project, filters=filters, page=page, limit=limit
        )
        return Response(
            {"data": [render.observation_view(o) for o in rows], "meta": _meta(page, limit, total)}
        )


class ObservationDetailView(PublicReadView):
    @extend_schema(
        operation_id="public_observations_retrieve",
        tags=["public: observations"],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `GET /api/public/observations/{observationId}`.",
    )
    def get(self, request, observation_id: str):
        observation = selectors.observation_get(project=self.project, observation_id=observation_id)
        if observation is None:
            raise NotFound(f"Observation {observation_id} not found within authorized project")
        return Response(render.observation_view(observation))


class ObservationV2ListView(PublicReadView):
    @extend_schema(
        operation_id="public_observations_v2_list",
        tags=["public: observations"],
        parameters=[
            _q("limit", "Items per page, 1–1000 (default 50).", OpenApiTypes.INT),
            _q("cursor", "meta.cursor of the previous page."),
            _q(
                "fields",
                "Comma-separated groups: core (always), basic, time, io, metadata, model, usage, "
                "prompt, metrics, trace_context, and Lookglass's tools and error. Default core,basic.",
            ),
            _q(
                "expandMetadata",
                "Comma-separated metadata keys to return untruncated (others stop at 200 characters).",
            ),
            _q(
                "parseIoAsJson",
                "Lookglass: true returns input/output as JSON values instead of text.",
                OpenApiTypes.BOOL,
            ),
            _q("sessionId", "Session id of the observation's trace."),
            _q("isRootObservation", "true: only observations without a parent.", OpenApiTypes.BOOL),
            *OBSERVATION_FILTER_PARAMS,
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `GET /api/public/v2/observations` (SDK v4/v5): newest first, cursor-paginated, "
        "field groups. An empty parentObservationId matches observations without a parent. No time range "
        "is required.",
    )
    def get(self, request):
        params = self.params()
        limit = params.limit(default=50, maximum=1000)
        groups = params.field_groups("fields", render.V2_GROUPS, default=render.V2_DEFAULT_GROUPS) | {"core"}
        expand = frozenset(k.strip() for k in (params.string("expandMetadata") or "").split(",") if k.strip())
        io_as_json = bool(params.boolean("parseIoAsJson"))
        filters = _observation_filters(params, v2=True)
        try:
            rows, cursor = selectors.observation_cursor_page(
                project=self.project, filters=filters, cursor=params.string("cursor"), limit=limit
            )
        except selectors.InvalidCursor as exc:
            raise InvalidParams(str(exc)) from None
        traces = (
            selectors.traces_by_id(project=self.project, trace_ids=[o.trace_id for o in rows])
            if groups & {"basic", "trace_context"}
            else {}
        )
        data = [
            render.observation_v2(
                o,
                project_id=self.project.id,
                trace=traces.get(o.trace_id),
                groups=groups,
                expand_metadata=expand,
                io_as_json=io_as_json,
            )
            for o in rows
        ]
        meta = {"cursor": cursor} if cursor else {}
        return Response({"data": data, "meta": meta})


class SessionListView(PublicReadView):
    @extend_schema(
        operation_id="public_sessions_list",
        tags=["public: sessions"],
        parameters=[
            *PAGE_PARAMS,
            _q("fromTimestamp", "Sessions created at or after this ISO 8601 time.", OpenApiTypes.DATETIME),
            _q("toTimestamp", "Sessions created before this ISO 8601 time.", OpenApiTypes.DATETIME),
            _q("environment", "Repeatable; only traces of these environments count.", many=True),
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `GET /api/public/sessions`, newest first; createdAt is the first trace's time.",
    )
    def get(self, request):
        params = self.params()
        page, limit = params.page(), params.limit()
        rows, total = selectors.session_page(
            project=self.project,
            from_timestamp=params.datetime("fromTimestamp"),
            to_timestamp=params.datetime("toTimestamp"),
            environments=params.strings("environment"),
            page=page,
            limit=limit,
        )
        data = [render.session(row, project_id=self.project.id) for row in rows]
        return Response({"data": data, "meta": _meta(page, limit, total)})


class SessionDetailView(PublicReadView):
    @extend_schema(
        operation_id="public_sessions_retrieve",
        tags=["public: sessions"],
        responses={200: OpenApiTypes.OBJECT},
        description="Langfuse `GET /api/public/sessions/{sessionId}`: the session with its traces, "
        "oldest first.",
    )
    def get(self, request, session_id: str):
        traces = selectors.session_traces(project=self.project, session_id=session_id)
        if not traces:
            raise NotFound(f"Session {session_id} not found within authorized project")
        first = traces[0]
        row = selectors.SessionRow(id=session_id, created_at=first.timestamp, environment=first.environment)
        data = render.session(row, project_id=self.project.id)
        data["traces"] = [render.trace_core(t) for t in traces]
        return Response(data)
