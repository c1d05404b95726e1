"""Langfuse-compatible datasets API (`/api/public/v2/datasets…`, `/api/public/dataset-items…`,
`/api/public/dataset-run-items`, `/api/public/datasets/{name}/runs…`) and the management "add to
dataset" from a trace or an observation.

The public views share the prompt API's plumbing (`prompts.views.langfuse_endpoint`: key auth,
method check, Langfuse-shaped errors); parsing is in `evals.payloads`, writes in `evals.services`,
reads in `evals.selectors`.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from evals import selectors, services
from evals.models import DatasetItemStatus
from evals.payloads import parse_dataset, parse_datetime, parse_item, parse_run_item
from prompts.errors import ApiError, InvalidRequest, NotFound
from prompts.views import int_param, json_body, json_response, langfuse_endpoint
from tenancy.api.base import ProjectScopedViewSet
from tenancy.models import Role

MAX_PAGE = 1_000_000
MAX_LIMIT = 100  # Langfuse's paginationLimitZod


class MethodNotAllowed(ApiError):
    status = 405
    kind = "MethodNotAllowedError"


def _paging(request) -> tuple[int, int]:
    return (
        int_param(request, "page", default=1, maximum=MAX_PAGE),
        int_param(request, "limit", default=50, maximum=MAX_LIMIT),
    )


def _string_param(request, name: str) -> str | None:
    value = request.GET.get(name)
    if value in (None, ""):
        return None
    if "\x00" in value:
        raise InvalidRequest(f"`{name}` must not contain NUL characters.")
    return value


def _dataset(project, name: str):
    dataset = selectors.dataset_by_name(project=project, name=name)
    if dataset is None:
        raise NotFound(services.DATASET_NOT_FOUND)
    return dataset


# --- /api/public/v2/datasets --------------------------------------------------------------------


@langfuse_endpoint("GET", "POST")
def datasets_root(request, principal):
    project = principal.project
    if request.method == "POST":
        dataset = services.dataset_upsert(project=project, fields=parse_dataset(json_body(request)), actor=principal)
        return json_response(selectors.dataset_payload(dataset))
    page, limit = _paging(request)
    datasets, total = selectors.dataset_page(project=project, page=page, limit=limit)
    return json_response(
        {
            "data": [selectors.dataset_payload(d) for d in datasets],
            "meta": selectors.page_meta(page=page, limit=limit, total=total),
        }
    )


@langfuse_endpoint("GET")
def dataset_detail(request, principal, name: str):
    return json_response(selectors.dataset_payload(_dataset(principal.project, name)))


# --- /api/public/dataset-items ------------------------------------------------------------------


@langfuse_endpoint("GET", "POST")
def dataset_items_root(request, principal):
    project = principal.project
    if request.method == "POST":
        dataset_name, item_id, fields = parse_item(json_body(request))
        item, dataset = services.dataset_item_upsert(
            project=project, dataset_name=dataset_name, item_id=item_id, fields=fields
        )
        return json_response(selectors.item_payload(item, dataset_name=dataset.name))
    page, limit = _paging(request)
    dataset_name = _string_param(request, "datasetName")
    version = parse_datetime(request.GET.get("version"), "version")
    if version is not None and dataset_name is None:
        raise InvalidRequest("`version` requires `datasetName`.")
    dataset = _dataset(project, dataset_name) if dataset_name is not None else None
    items, total = selectors.dataset_item_page(
        project=project,
        dataset=dataset,
        source_trace_id=_string_param(request, "sourceTraceId"),
        source_observation_id=_string_param(request, "sourceObservationId"),
        created_before=version,
        page=page,
        limit=limit,
    )
    names = selectors.dataset_names_by_id(project=project, ids={i.dataset_id for i in items})
    return json_response(
        {
            "data": [selectors.item_payload(i, dataset_name=names.get(i.dataset_id, "")) for i in items],
            "meta": selectors.page_meta(page=page, limit=limit, total=total),
        }
    )


@langfuse_endpoint("GET", "DELETE")
def dataset_item_detail(request, principal, item_id: str):
    project = principal.project
    if "\x00" in item_id:
        raise NotFound(services.ITEM_NOT_FOUND)
    if request.method == "DELETE":
        if not services.dataset_item_delete(project=project, item_id=item_id):
            raise NotFound(services.ITEM_NOT_FOUND)
        return json_response({"message": "Dataset item successfully deleted"})
    item = selectors.dataset_item_get(project=project, item_id=item_id)
    if item is None:
        raise NotFound(services.ITEM_NOT_FOUND)
    names = selectors.dataset_names_by_id(project=project, ids={item.dataset_id})
    return json_response(selectors.item_payload(item, dataset_name=names[item.dataset_id]))


# --- /api/public/dataset-run-items --------------------------------------------------------------


@langfuse_endpoint("GET", "POST")
def dataset_run_items(request, principal):
    project = principal.project
    if request.method == "POST":
        run_item, run = services.run_item_create(project=project, **parse_run_item(json_body(request)))
        return json_response(selectors.run_item_payload(run_item, run_name=run.name))
    # The deprecated list: one run's items, by dataset id and run name.
    dataset_id, run_name = _string_param(request, "datasetId"), _string_param(request, "runName")
    if dataset_id is None or run_name is None:
        raise InvalidRequest("`datasetId` and `runName` are required.")
    dataset = selectors.dataset_by_id(project=project, dataset_id=dataset_id)
    if dataset is None:
        raise NotFound(services.DATASET_NOT_FOUND)
    run = selectors.run_by_name(project=project, dataset=dataset, name=run_name)
    if run is None:
        raise NotFound(services.RUN_NOT_FOUND)
    page, limit = _paging(request)
    run_items, total = selectors.run_item_page(project=project, run=run, page=page, limit=limit)
    return json_response(
        {
            "data": [selectors.run_item_payload(ri, run_name=run.name) for ri in run_items],
            "meta": selectors.page_meta(page=page, limit=limit, total=total),
        }
    )


# --- /api/public/datasets/{name}[/runs[/{runName}]] (deprecated in Langfuse v4, still called) ---


def _split_runs_path(project, rest: str):
    """(dataset, run name or None) for `{name}/runs` or `{name}/runs/{run}`, or None for a bare
    `{name}`. Dataset and run names may both contain `/` (the SDKs percent-encode it, but the WSGI
    server decodes the path before routing), so every `/runs` in the path is a candidate split and
    the first one that names an existing dataset wins."""
    candidates = []
    start = 0
    while (index := rest.find("/runs", start)) != -1:
        tail = rest[index + len("/runs") :]
        if tail == "":
            candidates.append((rest[:index], None))
        elif tail.startswith("/") and len(tail) > 1:
            candidates.append((rest[:index], tail[1:]))
        start = index + 1
    for name, run_name in candidates:
        dataset = selectors.dataset_by_name(project=project, name=name)
        if dataset is not None:
            return dataset, run_name, True
    if candidates and selectors.dataset_by_name(project=project, name=rest) is None:
        raise NotFound(services.DATASET_NOT_FOUND)
    return None, None, False


@langfuse_endpoint("GET", "DELETE")
def datasets_v1(request, principal, rest: str):
    """`GET /datasets/{name}/runs`, `GET|DELETE /datasets/{name}/runs/{run}`, and the legacy
    `GET /datasets/{name}` (the dataset with its ACTIVE items and its run names)."""
    project = principal.project
    dataset, run_name, is_runs = _split_runs_path(project, rest)
    if not is_runs:
        if request.method != "GET":
            raise MethodNotAllowed(f"Method {request.method} not allowed here; use GET")
        dataset = _dataset(project, rest)
        items = selectors.dataset_items_of(project=project, dataset=dataset, active_only=True)
        runs, _ = selectors.run_page(project=project, dataset=dataset, page=1, limit=MAX_PAGE)
        return json_response(
            {
                **selectors.dataset_payload(dataset),
                "items": [selectors.item_payload(i, dataset_name=dataset.name) for i in items],
                "runs": [r.name for r in runs],
            }
        )
    if run_name is None:
        if request.method != "GET":
            raise MethodNotAllowed(f"Method {request.method} not allowed here; use GET")
        page, limit = _paging(request)
        runs, total = selectors.run_page(project=project, dataset=dataset, page=page, limit=limit)
        return json_response(
            {
                "data": [selectors.run_payload(r, dataset_name=dataset.name) for r in runs],
                "meta": selectors.page_meta(page=page, limit=limit, total=total),
            }
        )
    if request.method == "DELETE":
        if not services.run_delete(project=project, dataset=dataset, name=run_name):
            raise NotFound(services.RUN_NOT_FOUND)
        return json_response({"message": "Dataset run successfully deleted"})
    run = selectors.run_by_name(project=project, dataset=dataset, name=run_name)
    if run is None:
        raise NotFound(services.RUN_NOT_FOUND)
    return json_response(
        {
            **selectors.run_payload(run, dataset_name=dataset.name),
            "datasetRunItems": [
                selectors.run_item_payload(ri, run_name=run.name)
                for ri in selectors.run_items_of(project=project, run=run)
            ],
        }
    )


# --- /api/v1/…/dataset-items/from-trace (management API) ----------------------------------------


class FromTraceSerializer(serializers.Serializer):
    dataset_name = serializers.CharField(max_length=255)
    trace_id = serializers.CharField(max_length=200)
    observation_id = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)


class FromTraceItemSerializer(serializers.Serializer):
    """The item created, as `management_item_payload` shapes it (documents the answer)."""

    id = serializers.CharField()
    dataset_id = serializers.UUIDField()
    dataset_name = serializers.CharField()
    status = serializers.ChoiceField(choices=DatasetItemStatus.choices)
    input = serializers.JSONField(allow_null=True)
    expected_output = serializers.JSONField(allow_null=True)
    metadata = serializers.JSONField(allow_null=True)
    source_trace_id = serializers.CharField(allow_null=True)
    source_observation_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class FromTraceErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def management_item_payload(item, *, dataset_name: str) -> dict:
    return {
        "id": item.id,
        "dataset_id": str(item.dataset_id),
        "dataset_name": dataset_name,
        "status": item.status,
        "input": item.input,
        "expected_output": item.expected_output,
        "metadata": item.metadata,
        "source_trace_id": item.source_trace_id,
        "source_observation_id": item.source_observation_id,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


class DatasetItemFromTraceViewSet(ProjectScopedViewSet):
    """Add a production trace, or one of its observations, to a dataset (member and above)."""

    write_role = Role.MEMBER

    @extend_schema(
        summary="Add a trace or an observation to a dataset: its input and output become the item's "
        "input and expected output (409 if that source is already in the dataset)",
        tags=["datasets"],
        parameters=[
            OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
        ],
        request=FromTraceSerializer,
        responses={
            201: FromTraceItemSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Invalid body (messages by field), or the source does not match the dataset's "
                "schemas (`detail`)",
            ),
            403: OpenApiResponse(FromTraceErrorSerializer, description="Below the member role"),
            404: OpenApiResponse(FromTraceErrorSerializer, description="No such project, dataset, trace or observation"),
            409: OpenApiResponse(FromTraceErrorSerializer, description="That trace or observation is already in the dataset"),
        },
    )
    def create(self, request, *args, **kwargs):
        payload = FromTraceSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            item, dataset = services.dataset_item_from_production(
                project=self.project,
                dataset_name=data["dataset_name"],
                trace_id=data["trace_id"],
                observation_id=data.get("observation_id") or None,
            )
        except ApiError as exc:
            return Response({"detail": exc.message}, status=exc.status)
        return Response(management_item_payload(item, dataset_name=dataset.name), status=status.HTTP_201_CREATED)
