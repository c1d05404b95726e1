"""HTTP doors of the evaluation API; the logic is in `evals.eval_handlers`.

Public, key-authenticated (Langfuse-compatible; SDK 5.2 manages evaluators and rules through them):
    /api/public/v2/evaluators[/{id}[/versions]]        GET POST | GET PATCH DELETE | GET
    /api/public/v2/evaluation-rules[/{id}]             GET POST | GET PATCH DELETE
    /api/public/unstable/…                             the same (server 4.16's paths)
    /api/public/llm-connections                        GET PUT (upsert by provider)
    /api/public/lookglass/judge                        POST: score one item with a named evaluator
    /api/public/lookglass/evaluator-templates          GET: the template library
Management (people, or keys), under /api/v1/organizations/{org}/projects/{project}/evals/…: the same
operations plus jobs, backfill, resume and results (see `EvalsViewSet`).
"""

from __future__ import annotations

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from evals import eval_handlers as h
from evals import judging
from prompts.views import json_body, json_response, langfuse_endpoint
from tenancy.api.base import ProjectScopedViewSet
from tenancy.http.errors import HttpError
from tenancy.models import Role


def _public(call, request=None):
    """Run a handler for a public route: errors in Langfuse's shape."""
    try:
        if request is not None:
            h.check_params(request.GET)
        status, payload = call()
    except judging.DefinitionError as exc:
        raise HttpError(getattr(exc, "status", 400), exc.message) from None
    except h.NotFoundHere as exc:
        raise HttpError(404, exc.message) from None
    return json_response(payload, status)


def _params(request) -> QueryDict:
    return request.GET


@langfuse_endpoint("GET", "POST")
def evaluators_root(request, principal):
    project = principal.project
    if request.method == "POST":
        return _public(lambda: h.evaluator_create(project, json_body(request), None), request)
    return _public(lambda: h.evaluators_list(project, _params(request)), request)


@langfuse_endpoint("GET", "PATCH", "DELETE")
def evaluator_detail(request, principal, evaluator_id: str):
    project = principal.project
    if request.method == "PATCH":
        return _public(lambda: h.evaluator_update(project, evaluator_id, json_body(request), None), request)
    if request.method == "DELETE":
        return _public(lambda: h.evaluator_delete(project, evaluator_id), request)
    return _public(lambda: h.evaluator_get(project, evaluator_id), request)


@langfuse_endpoint("GET")
def evaluator_versions(request, principal, evaluator_id: str):
    return _public(lambda: h.evaluator_versions(principal.project, evaluator_id, _params(request)), request)


@langfuse_endpoint("GET", "POST")
def rules_root(request, principal):
    project = principal.project
    if request.method == "POST":
        return _public(lambda: h.rule_create(project, json_body(request), None), request)
    return _public(lambda: h.rules_list(project, _params(request)), request)


@langfuse_endpoint("GET", "PATCH", "DELETE")
def rule_detail(request, principal, rule_id: str):
    project = principal.project
    if request.method == "PATCH":
        return _public(lambda: h.rule_update(project, rule_id, json_body(request)), request)
    if request.method == "DELETE":
        return _public(lambda: h.rule_delete(project, rule_id), request)
    return _public(lambda: h.rule_get(project, rule_id), request)


@langfuse_endpoint("GET", "PUT")
def llm_connections(request, principal):
    project = principal.project
    if request.method == "PUT":
        return _public(lambda: h.connection_upsert(project, json_body(request)), request)
    return _public(lambda: h.connections_list(project, _params(request)), request)


@langfuse_endpoint("POST")
def judge(request, principal):
    return _public(lambda: h.judge(principal.project, json_body(request)), request)


@langfuse_endpoint("GET")
def evaluator_templates(request, principal):
    return _public(h.templates_list, request)


# --- /api/v1 management ------------------------------------------------------------------------------

PROJECT_PARAMS = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]
ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid body or parameters (`detail`, `code`)"),
    404: OpenApiResponse(OpenApiTypes.OBJECT, description="No such project or object (another tenant's answers 404 too)"),
}
PAGE = [OpenApiParameter("limit", OpenApiTypes.INT), OpenApiParameter("cursor", OpenApiTypes.STR)]


def _doc(summary: str, op: str, methods=("get",), *, request=None, params=(), ok=200):
    """extend_schema once per method, each with its own operationId (one action serves several)."""
    def decorate(view):
        for method in methods:
            view = extend_schema(
                methods=[method.upper()], operation_id=f"evals_{op}_{method}", summary=summary, tags=["evals"],
                parameters=[*PROJECT_PARAMS, *params], request=request if method != "get" else None,
                responses={ok if method != "get" else 200: OpenApiTypes.OBJECT, **ERRORS},
            )(view)
        return view
    return decorate


class EvalsViewSet(ProjectScopedViewSet):
    """Evaluations of a project: LLM connections (admins write them: they hold secrets), evaluators,
    rules (members write them), jobs and results (viewers read). Bodies and answers use the same
    camelCase shapes as the Langfuse v2 evaluator API. For people (session), like all of /api/v1; keys
    use the public routes."""

    write_role = Role.MEMBER
    action_roles = {"connections": Role.VIEWER, "connection_delete": Role.ADMIN}

    def required_role(self) -> str:
        if self.action == "connections" and self.request.method != "GET":
            return Role.ADMIN
        return super().required_role()

    def _answer(self, call):
        try:
            h.check_params(self.request.query_params)
            status, payload = call()
        except judging.DefinitionError as exc:
            return Response({"detail": exc.message, "code": exc.code}, status=getattr(exc, "status", 400))
        except h.NotFoundHere as exc:
            return Response({"detail": exc.message}, status=404)
        return Response(payload, status=status)

    def _actor(self):
        return None if self.principal is not None else self.request.user

    @_doc("List LLM connections (secret keys masked) / create or replace one by provider (admin)", "connections", ('get', 'put',),
          request=OpenApiTypes.OBJECT, params=PAGE)
    @action(detail=False, methods=["get", "put"], url_path="llm-connections")
    def connections(self, request, *args, **kwargs):
        if request.method == "PUT":
            return self._answer(lambda: h.connection_upsert(self.project, request.data))
        return self._answer(lambda: h.connections_list(self.project, request.query_params))

    @_doc("Delete an LLM connection (admin)", "connection_delete", ('delete',))
    @action(detail=False, methods=["delete"], url_path=r"llm-connections/(?P<connection_id>[^/]+)")
    def connection_delete(self, request, connection_id=None, *args, **kwargs):
        return self._answer(lambda: h.connection_delete(self.project, connection_id))

    @_doc("The library of ready judge templates (each says whether higher is better)", "templates", ('get',))
    @action(detail=False, methods=["get"], url_path="evaluator-templates")
    def templates(self, request, *args, **kwargs):
        return self._answer(h.templates_list)

    @_doc("List evaluators / create one (an LLM judge from a prompt or a library `template`, or a rule evaluator)", "evaluators", ('get', 'post',),
          request=OpenApiTypes.OBJECT, params=PAGE)
    @action(detail=False, methods=["get", "post"], url_path="evaluators")
    def evaluators(self, request, *args, **kwargs):
        if request.method == "POST":
            return self._answer(lambda: h.evaluator_create(self.project, request.data, self._actor()))
        return self._answer(lambda: h.evaluators_list(self.project, request.query_params))

    @_doc("Get, update (a definition change makes a new version) or delete an evaluator", "evaluator", ('get', 'patch', 'delete',), request=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get", "patch", "delete"], url_path=r"evaluators/(?P<evaluator_id>[^/]+)")
    def evaluator(self, request, evaluator_id=None, *args, **kwargs):
        if request.method == "PATCH":
            return self._answer(lambda: h.evaluator_update(self.project, evaluator_id, request.data, self._actor()))
        if request.method == "DELETE":
            return self._answer(lambda: h.evaluator_delete(self.project, evaluator_id))
        return self._answer(lambda: h.evaluator_get(self.project, evaluator_id))

    @_doc("An evaluator's versions, newest first", "evaluator_versions", ('get',), params=PAGE)
    @action(detail=False, methods=["get"], url_path=r"evaluators/(?P<evaluator_id>[^/]+)/versions")
    def evaluator_versions(self, request, evaluator_id=None, *args, **kwargs):
        return self._answer(lambda: h.evaluator_versions(self.project, evaluator_id, request.query_params))

    @_doc("Resume an evaluator paused by an auth or billing failure (and the rules it paused)", "evaluator_resume", ('post',))
    @action(detail=False, methods=["post"], url_path=r"evaluators/(?P<evaluator_id>[^/]+)/resume")
    def evaluator_resume(self, request, evaluator_id=None, *args, **kwargs):
        return self._answer(lambda: h.evaluator_resume(self.project, evaluator_id))

    @_doc("List evaluation rules / create one", "rules", ('get', 'post',), request=OpenApiTypes.OBJECT, params=PAGE)
    @action(detail=False, methods=["get", "post"], url_path="evaluation-rules")
    def rules(self, request, *args, **kwargs):
        if request.method == "POST":
            return self._answer(lambda: h.rule_create(self.project, request.data, self._actor()))
        return self._answer(lambda: h.rules_list(self.project, request.query_params))

    @_doc("Get, partially update or delete an evaluation rule", "rule", ('get', 'patch', 'delete',), request=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get", "patch", "delete"], url_path=r"evaluation-rules/(?P<rule_id>[^/]+)")
    def rule(self, request, rule_id=None, *args, **kwargs):
        if request.method == "PATCH":
            return self._answer(lambda: h.rule_update(self.project, rule_id, request.data))
        if request.method == "DELETE":
            return self._answer(lambda: h.rule_delete(self.project, rule_id))
        return self._answer(lambda: h.rule_get(self.project, rule_id))

    @_doc("Evaluate the rule's targets of a past time range `{from, to}` (at most 31 days) in the background", "rule_backfill", ('post',),
          request=OpenApiTypes.OBJECT, ok=202)
    @action(detail=False, methods=["post"], url_path=r"evaluation-rules/(?P<rule_id>[^/]+)/backfill")
    def rule_backfill(self, request, rule_id=None, *args, **kwargs):
        return self._answer(lambda: h.rule_backfill(self.project, rule_id, request.data))

    @_doc("Evaluation jobs, newest first, with counts by state (pending, delayed, completed, error)", "jobs", ('get',),
          params=[*PAGE, OpenApiParameter("status", OpenApiTypes.STR), OpenApiParameter("ruleId", OpenApiTypes.UUID)])
    @action(detail=False, methods=["get"], url_path="eval-jobs")
    def jobs(self, request, *args, **kwargs):
        return self._answer(lambda: h.jobs_list(self.project, request.query_params))

    @_doc("One evaluation job", "job", ('get',))
    @action(detail=False, methods=["get"], url_path=r"eval-jobs/(?P<job_id>[^/]+)")
    def job(self, request, job_id=None, *args, **kwargs):
        return self._answer(lambda: h.job_get(self.project, job_id))

    @_doc("Score one item now with a named evaluator (`{evaluator, input, output, expectedOutput, traceId?}`)", "judge", ('post',),
          request=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["post"], url_path="judge")
    def judge(self, request, *args, **kwargs):
        return self._answer(lambda: h.judge(self.project, request.data))

    @_doc("A dataset run's summary: per evaluator count, average, min, max, pass rate", "run_summary", ('get',),
          params=[OpenApiParameter("threshold", OpenApiTypes.NUMBER)])
    @action(detail=False, methods=["get"], url_path=r"eval-results/runs/(?P<run_id>[^/]+)")
    def run_summary(self, request, run_id=None, *args, **kwargs):
        return self._answer(lambda: h.run_summary(self.project, run_id, request.query_params))

    @_doc("Two runs side by side: per-evaluator averages, per-item differences, regressions", "run_compare", ('get',),
          params=[OpenApiParameter("baseline", OpenApiTypes.STR, required=True),
                  OpenApiParameter("candidate", OpenApiTypes.STR, required=True),
                  OpenApiParameter("threshold", OpenApiTypes.NUMBER)])
    @action(detail=False, methods=["get"], url_path="eval-results/compare")
    def run_compare(self, request, *args, **kwargs):
        return self._answer(lambda: h.run_compare(self.project, request.query_params))

    @_doc("Daily average and count of each eval score on production", "trend", ('get',),
          params=[OpenApiParameter("days", OpenApiTypes.INT), OpenApiParameter("name", OpenApiTypes.STR)])
    @action(detail=False, methods=["get"], url_path="eval-results/trend")
    def trend(self, request, *args, **kwargs):
        return self._answer(lambda: h.trend(self.project, request.query_params))
