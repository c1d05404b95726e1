"""The OpenAPI schema documents the management API, and generating it raises no warnings for it."""

from __future__ import annotations

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

MANAGEMENT_PATHS = {
    "/api/v1/me": {"get"},
    "/api/v1/invitations/accept": {"post"},
    "/api/v1/organizations/": {"get", "post"},
    "/api/v1/organizations/{organization_id}/": {"get", "patch", "delete"},
    "/api/v1/organizations/{organization_id}/members/": {"get"},
    "/api/v1/organizations/{organization_id}/members/{user_id}/": {"get", "patch", "delete"},
    "/api/v1/organizations/{organization_id}/invitations/": {"get", "post"},
    "/api/v1/organizations/{organization_id}/invitations/{invitation_id}/": {"get", "delete"},
    "/api/v1/organizations/{organization_id}/projects/": {"get", "post"},
    "/api/v1/organizations/{organization_id}/projects/{project_id}/": {"get", "patch", "delete"},
    "/api/v1/organizations/{organization_id}/projects/{project_id}/api-keys/": {"get", "post"},
    "/api/v1/organizations/{organization_id}/projects/{project_id}/api-keys/{api_key_id}/": {"get", "delete"},
    "/api/v1/organizations/{organization_id}/projects/{project_id}/api-keys/{api_key_id}/revoke": {"post"},
    "/api/v1/organizations/{organization_id}/audit-log/": {"get"},
    "/api/v1/organizations/{organization_id}/projects/{project_id}/feedback/settings": {"get", "put", "patch"},
    "/api/v1/organizations/{organization_id}/projects/{project_id}/score-configs/": {"get", "post"},
    "/api/v1/organizations/{organization_id}/projects/{project_id}/score-configs/{config_id}/": {"get", "patch"},
}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def test_the_schema_endpoint_lists_the_management_api(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    for path, methods in MANAGEMENT_PATHS.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) & HTTP_METHODS == methods, path
        for operation in (schema["paths"][path][m] for m in methods):
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["schema"] == {"type": "string", "format": "uuid"}, (path, parameter)


def test_the_schema_never_describes_a_secret_except_on_key_creation(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    assert "secret_key" in components["ApiKeyCreated"]["properties"]
    for name in ("ApiKey", "Invitation", "Member", "Me", "Project", "Organization"):
        properties = set(components[name]["properties"])
        assert not properties & {"secret_key", "secret_hash", "token", "token_hash", "password"}, name
    create = schema["paths"]["/api/v1/organizations/{organization_id}/projects/{project_id}/api-keys/"][
        "post"
    ]
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ApiKeyCreated"
    )


def test_management_endpoints_are_documented_as_session_only(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    for path, methods in MANAGEMENT_PATHS.items():
        for method in methods:
            assert schema["paths"][path][method]["security"] == [{"cookieAuth": []}], (path, method)


def test_generating_the_schema_raises_no_warnings_for_the_management_api():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        SchemaGenerator().get_schema(request=None, public=True)
    # Messages start with the source file of the view that caused them.
    messages = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert [m for m in messages if "tenancy/api/" in m] == []


def test_the_swagger_ui_is_served(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_swagger_ui_loads_only_local_assets(client):
    """Air-gapped hosts: every script, style and icon of /api/docs/ is one of our static files."""
    import re

    from django.contrib.staticfiles import finders
    from django.templatetags.static import static

    page = client.get("/api/docs/").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r'"(\S+?\.(?:js|css|png))"', page)
    assert urls, page
    assert [u for u in urls if u.startswith(("http:", "https:", "//"))] == []
    prefix = static("")
    assets = [u for u in urls if u.startswith(prefix)]
    assert any(u.endswith("swagger-ui-bundle.js") for u in assets)
    for url in assets:
        assert finders.find(url[len(prefix):]) is not None, url


# --- the whole surface: every route, the wire endpoints included ------------------------------------

import base64  # noqa: E402
import copy  # noqa: E402
import re  # noqa: E402

import jsonschema  # noqa: E402
import orjson  # noqa: E402
import pytest  # noqa: E402
from django.urls import URLResolver, get_resolver, resolve  # noqa: E402
from django.urls.exceptions import Resolver404  # noqa: E402
from drf_spectacular.validation import validate_schema  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

# Routes that are deliberately not in the schema, each with the reason. Everything else outside the
# console (`admin/`) must be documented; a stale entry here fails too.
NOT_IN_SCHEMA = {
    "api/schema/": "the schema itself (SERVE_INCLUDE_SCHEMA is off)",
    "api/docs/": "the Swagger UI page, HTML",
    "^api/public/": "catch-all: Langfuse routes we do not implement answer a JSON 404",
    "": "redirects to the console",
    "invitations/accept": "the HTML page an invitation email links to",
    "sign-out": "the console's sign-out page",
    "project/<uuid:project_id>/traces/<anyid:trace_id>": "SDK trace link: redirects to the console",
    "trace/<anyid:trace_id>": "SDK trace link: redirects to the console",
    "project/<uuid:project_id>/experiments/results": "SDK v5 experiment link: redirects to the console",
    "project/<uuid:project_id>/datasets/<str:sdk_dataset_id>/runs/<str:sdk_run_id>":
        "SDK v4 dataset run link: redirects to the console",
}
# Our code: a schema warning or error whose message names one of these folders is ours to fix.
OUR_FOLDERS = ("config/", "tenancy/", "traces/", "ingest/", "scores/", "feedback/", "prompts/", "evals/",
               "privacy/", "pricing/", "billing/")
SAMPLE_UUID = "0b5c4d9e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _url_routes() -> dict[str, object]:
    """Every URL pattern outside the console: its route (as `ResolverMatch.route` spells it) → callback."""
    routes = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            # The consoles (the admin and the console app's HTML pages) are not the API.
            if route.lstrip("^").startswith(("admin/", "console/")):
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            else:
                routes[route] = pattern.callback

    walk(get_resolver("config.urls").url_patterns, "")
    return routes


def _example_url(schema_path: str) -> str:
    # A `version` must look like one for the prompt routes; any other id may be any string.
    return re.sub(r"\{(\w+)\}", lambda m: "3" if m.group(1) == "version" else SAMPLE_UUID, schema_path)


def _documented_routes(schema: dict) -> dict[str, set[str]]:
    """Route each schema path resolves to → the methods documented for it."""
    documented: dict[str, set[str]] = {}
    for path, operations in schema["paths"].items():
        try:
            match = resolve(_example_url(path))
        except Resolver404:
            pytest.fail(f"the schema documents {path}, which no URL pattern serves")
        assert match.route not in NOT_IN_SCHEMA, f"{path} resolved to {match.route!r}: an undocumented route"
        documented.setdefault(match.route, set()).update(m for m in operations if m in HTTP_METHODS | {"options"})
    return documented


def test_every_route_outside_the_console_is_in_the_schema_or_explicitly_left_out():
    routes = _url_routes()
    documented = _documented_routes(_schema())
    missing = sorted(route for route in routes if route not in documented and route not in NOT_IN_SCHEMA)
    assert missing == [], f"routes missing from the OpenAPI schema: {missing}"
    stale = sorted(set(NOT_IN_SCHEMA) - set(routes))
    assert stale == [], f"NOT_IN_SCHEMA names routes that no longer exist: {stale}"


def test_drf_routes_document_exactly_the_methods_they_implement():
    routes = _url_routes()
    for route, methods in _documented_routes(_schema()).items():
        callback = routes[route]
        if not hasattr(callback, "cls"):
            continue  # plain views: checked against live answers below
        if getattr(callback, "actions", None):
            implemented = set(callback.actions) - {"head"}  # DRF answers HEAD wherever GET is served
        else:
            implemented = {m for m in HTTP_METHODS if hasattr(callback.cls, m)}
        assert methods - {"options"} == implemented, route


# Plain-view routes and the methods they serve, as a client sees them.
WIRE_METHODS = {
    "/api/public/health": {"get"},
    "/api/public/ready": {"get"},
    "/api/public/projects": {"get"},
    "/api/public/ingestion": {"post"},
    "/api/public/otel/v1/traces": {"post"},
    "/v1/traces": {"post"},
    "/api/public/scores": {"get", "post", "options"},
    "/api/public/scores/{score_id}": {"get", "delete"},
    "/api/public/v2/scores": {"get", "post", "options"},
    "/api/public/v2/scores/{score_id}": {"get", "delete"},
    "/api/public/score-configs": {"get", "post"},
    "/api/public/score-configs/{config_id}": {"get", "patch"},
    "/api/public/v2/prompts": {"get", "post"},
    "/api/public/v2/prompts/{name}": {"get"},
    "/api/public/v2/prompts/{name}/versions/{version}": {"patch"},
    "/api/public/v2/prompts/{name}/compile": {"post"},
    "/api/public/v2/prompts/{name}/metrics": {"get"},
    "/api/v1/feedback": {"post", "options"},
    "/api/public/redact": {"post"},
    "/api/public/v2/datasets": {"get", "post"},
    "/api/public/v2/datasets/{name}": {"get"},
    "/api/public/datasets/{name}": {"get"},
    "/api/public/datasets/{name}/runs": {"get"},
    "/api/public/datasets/{name}/runs/{runName}": {"get", "delete"},
    "/api/public/dataset-items": {"get", "post"},
    "/api/public/dataset-items/{id}": {"get", "delete"},
    "/api/public/dataset-run-items": {"get", "post"},
}
# On these, a method the route does not serve reads the whole path as a prompt name (prompts/urls.py).
NAME_FALLBACK = {"/api/public/v2/prompts/{name}/versions/{version}", "/api/public/v2/prompts/{name}/compile",
                 "/api/public/v2/prompts/{name}/metrics"}
# One route serves these and `…/runs/{runName}`, where DELETE is served: a DELETE here is let through to
# the key check (401 without one) and answered 405 by the view after it (checked below).
DELETE_AFTER_AUTH = {"/api/public/datasets/{name}", "/api/public/datasets/{name}/runs"}


def test_the_wire_endpoints_are_documented_with_the_methods_they_serve(client):
    schema = _schema()
    for path, methods in WIRE_METHODS.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) & (HTTP_METHODS | {"options"}) == methods, path
        url = _example_url(path)
        for method in sorted(HTTP_METHODS):
            status = getattr(client, method)(url).status_code
            if method in methods:
                assert status != 405, f"{method.upper()} {path} is documented but answers 405"
            elif path in DELETE_AFTER_AUTH and method == "delete":
                assert status == 401, f"DELETE {path} answers {status} without a key"
            elif path not in NAME_FALLBACK:
                assert status == 405, f"{method.upper()} {path} answers {status} but is not documented"


def test_undocumented_delete_on_the_deprecated_dataset_routes_answers_405_with_a_key(client, api_key):
    _post_json(client, "/api/public/v2/datasets", {"name": SAMPLE_UUID}, api_key.basic)
    for path in DELETE_AFTER_AUTH:
        response = client.delete(_example_url(path), HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 405, path
        assert response.json()["error"] == "MethodNotAllowedError", path


def test_wire_endpoints_name_their_authentication():
    schema = _schema()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["projectKeyBasic"]["scheme"] == "basic"
    assert schemes["projectKeyBearer"]["scheme"] == "bearer"
    assert schemes["publicKeyBearer"]["scheme"] == "bearer"
    secret = [{"projectKeyBasic": []}, {"projectKeyBearer": []}]
    paths = schema["paths"]
    assert paths["/api/public/health"]["get"]["security"] == [{}]
    assert paths["/api/public/ingestion"]["post"]["security"] == secret
    assert paths["/v1/traces"]["post"]["security"] == secret
    assert paths["/api/public/v2/prompts"]["post"]["security"] == secret
    # Browser feedback: the public key alone is enough.
    for path in ("/api/v1/feedback", "/api/public/scores"):
        assert paths[path]["post"]["security"] == [*secret, {"publicKeyBearer": []}], path


def test_the_schema_is_valid_openapi_3_and_generates_without_warnings():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = _schema()
    messages = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert [m for m in messages if any(folder in m for folder in OUR_FOLDERS)] == []
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # drf-spectacular's OpenAPI 3 JSON schema; raises on any violation


def test_the_spectacular_command_passes_with_warnings_as_errors(tmp_path):
    """In a fresh process, so warnings raised while our modules are imported (a misnamed
    `@extend_schema_view` argument, say) count too; in this process they were emitted long ago."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    out = tmp_path / "schema.json"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json",
         "--file", str(out)],
        cwd=settings.BASE_DIR, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/api/public/ingestion" in orjson.loads(out.read_bytes())["paths"]


def test_the_served_schema_includes_the_wire_endpoints(client):
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert {"/api/public/ingestion", "/v1/traces", "/api/public/redact", "/api/v1/feedback"} <= set(paths)


# --- the documented shapes are what the views answer -------------------------------------------------


def _strict(node):
    """OpenAPI 3.0 schema → JSON Schema for checking answers: `nullable` becomes a null type, and
    objects with listed properties refuse others (a field the views send but the schema omits fails)."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class Conformance:
    def __init__(self, schema: dict):
        self.schema = schema
        self.components = _strict(schema["components"])

    def check(self, response, path: str, method: str) -> dict | bytes:
        operation = self.schema["paths"][path][method]
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, (
            f"{method.upper()} {path} answered {response.status_code}, which the schema does not document"
        )
        content_type = response["Content-Type"].split(";")[0] if response.has_header("Content-Type") else None
        if "content" not in documented:
            assert not response.content, f"{method.upper()} {path}: body on an answer documented without one"
            return b""
        assert content_type in documented["content"], (method, path, content_type)
        if content_type != "application/json":
            return response.content
        body = orjson.loads(response.content)
        target = {**_strict(copy.deepcopy(documented["content"][content_type]["schema"])),
                  "components": self.components}
        jsonschema.validate(body, target)
        return body


@pytest.fixture
def conformance():
    return Conformance(_schema())


def _post_json(client, url, body, auth=None, **headers):
    if auth:
        headers["HTTP_AUTHORIZATION"] = auth
    return client.post(url, data=orjson.dumps(body), content_type="application/json", **headers)


def _patch_json(client, url, body, auth):
    return client.patch(url, data=orjson.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth)


TS = "2026-03-01T12:00:00.000Z"


def test_ingestion_answers_match_the_schema(client, api_key, conformance):
    path = "/api/public/ingestion"
    batch = {"batch": [
        {"id": "e1", "type": "trace-create", "timestamp": TS, "body": {"id": "t-schema", "name": "n"}},
        {"id": "e2", "type": "generation-create", "timestamp": TS,
         "body": {"id": "g1", "traceId": "t-schema", "model": "gpt-4o", "usage": {"input": 3, "output": 4}}},
        {"id": "e3", "type": "span-create", "timestamp": "not a time", "body": {"id": "s1"}},
        {"id": "e4", "type": "score-create", "timestamp": TS, "body": {"id": "sc1", "name": "q", "value": 1,
                                                                       "traceId": "t-schema"}},
    ]}
    body = conformance.check(_post_json(client, path, batch, api_key.basic), path, "post")
    assert {s["id"] for s in body["successes"]} == {"e1", "e2", "e4"} and body["errors"][0]["id"] == "e3"
    conformance.check(_post_json(client, path, {"batch": "no"}, api_key.basic), path, "post")
    conformance.check(client.post(path, data=b"{", content_type="application/json",
                                  HTTP_AUTHORIZATION=api_key.basic), path, "post")
    conformance.check(_post_json(client, path, batch), path, "post")  # 401


def test_score_answers_match_the_schema(client, api_key, conformance):
    for prefix in ("/api/public", "/api/public/v2"):
        path = f"{prefix}/scores"
        one = conformance.check(_post_json(client, path, {"name": "q", "value": 0.5, "traceId": "t"},
                                           api_key.basic), path, "post")
        conformance.check(_post_json(client, path, [{"name": "q", "value": 1, "traceId": "t"}], api_key.basic),
                          path, "post")  # 202
        partial = conformance.check(
            _post_json(client, path, [{"name": "q", "value": 1, "traceId": "t"}, {"value": 1}], api_key.basic),
            path, "post",
        )
        assert partial["accepted"] == 1 and partial["rejected"] == 1
        conformance.check(_post_json(client, path, {"value": 1}, api_key.basic), path, "post")  # 400
        conformance.check(client.get(path, HTTP_AUTHORIZATION=api_key.basic), path, "get")
        conformance.check(client.get(path, {"limit": 0}, HTTP_AUTHORIZATION=api_key.basic), path, "get")
        item = f"{path}/{{score_id}}"
        conformance.check(client.get(f"{path}/{one['id']}", HTTP_AUTHORIZATION=api_key.basic), item, "get")
        conformance.check(client.delete(f"{path}/{one['id']}", HTTP_AUTHORIZATION=api_key.basic), item, "delete")
        conformance.check(client.get(f"{path}/{one['id']}", HTTP_AUTHORIZATION=api_key.basic), item, "get")  # 404


def test_score_config_answers_match_the_schema(client, api_key, conformance):
    path, item = "/api/public/score-configs", "/api/public/score-configs/{config_id}"
    created = conformance.check(_post_json(
        client, path, {"name": "tone", "dataType": "CATEGORICAL", "categories": [{"label": "ok", "value": 1}]},
        api_key.basic), path, "post")
    conformance.check(_post_json(client, path, {"name": "x", "dataType": "NUMERIC", "minValue": 2, "maxValue": 1},
                                 api_key.basic), path, "post")  # 400
    conformance.check(_post_json(client, path, {"name": "tone", "dataType": "TEXT"}, api_key.basic), path, "post")
    conformance.check(client.get(path, HTTP_AUTHORIZATION=api_key.basic), path, "get")
    url = f"{path}/{created['id']}"
    conformance.check(client.get(url, HTTP_AUTHORIZATION=api_key.basic), item, "get")
    conformance.check(_patch_json(client, url, {"isArchived": True}, api_key.basic), item, "patch")
    conformance.check(client.get(f"{path}/{SAMPLE_UUID}", HTTP_AUTHORIZATION=api_key.basic), item, "get")


def test_prompt_answers_match_the_schema(client, api_key, conformance):
    root = "/api/public/v2/prompts"
    created = conformance.check(_post_json(
        client, root, {"name": "team/greet", "prompt": "Hi {{name}}", "labels": ["production"]}, api_key.basic),
        root, "post")
    assert created["version"] == 1
    conformance.check(_post_json(client, root, {"name": "chat", "type": "chat", "prompt": [
        {"role": "system", "content": "Be {{tone}}"}, {"type": "placeholder", "name": "history"}]}, api_key.basic),
        root, "post")
    conformance.check(_post_json(client, root, {"name": ""}, api_key.basic), root, "post")  # 400
    conformance.check(client.get(root, HTTP_AUTHORIZATION=api_key.basic), root, "get")
    named = "/api/public/v2/prompts/{name}"
    conformance.check(client.get(f"{root}/team%2Fgreet", HTTP_AUTHORIZATION=api_key.basic), named, "get")
    conformance.check(client.get(f"{root}/missing", HTTP_AUTHORIZATION=api_key.basic), named, "get")  # 404
    conformance.check(_patch_json(client, f"{root}/team%2Fgreet/versions/1", {"newLabels": ["staging"]},
                                  api_key.basic), f"{named}/versions/{{version}}", "patch")
    conformance.check(_post_json(client, f"{root}/team%2Fgreet/compile", {"variables": {"x": 1}}, api_key.basic),
                      f"{named}/compile", "post")
    conformance.check(client.get(f"{root}/team%2Fgreet/metrics", HTTP_AUTHORIZATION=api_key.basic),
                      f"{named}/metrics", "get")


def test_feedback_redact_and_operational_answers_match_the_schema(client, api_key, conformance):
    path = "/api/v1/feedback"
    conformance.check(_post_json(client, path, {"trace_id": "t", "rating": "up", "user_id": "u"}, api_key.basic),
                      path, "post")  # 201
    conformance.check(_post_json(client, path, {"trace_id": "t", "rating": "down", "user_id": "u"}, api_key.basic),
                      path, "post")  # 200
    conformance.check(_post_json(client, path, {"trace_id": "t", "rating": "sideways"}, api_key.basic), path, "post")
    conformance.check(_post_json(client, path, {"trace_id": "t", "rating": "up"}, f"Bearer {api_key.public}",
                                 HTTP_ORIGIN="https://nowhere.example"), path, "post")  # 403
    conformance.check(client.options(path, HTTP_ORIGIN="https://nowhere.example",
                                     HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"), path, "options")

    redact = "/api/public/redact"
    body = conformance.check(_post_json(client, redact, {"text": "mail maria@example.com"}, api_key.basic),
                             redact, "post")
    assert body["counts"] == {"email": 1}
    conformance.check(_post_json(client, redact, {"value": {"a": ["x@example.com"]}}, api_key.basic), redact, "post")
    conformance.check(_post_json(client, redact, {"text": "a", "value": 1}, api_key.basic), redact, "post")  # 400

    for path in ("/api/public/health", "/api/public/ready"):
        conformance.check(client.get(path), path, "get")
    conformance.check(client.get("/api/public/projects", HTTP_AUTHORIZATION=api_key.basic),
                      "/api/public/projects", "get")
    conformance.check(client.get("/api/public/projects"), "/api/public/projects", "get")  # 401


def _otlp_json(span_id: str = "eee19b7ec3c1b174", trace_id: str = "0af7651916cd43dd8448eb211c80319c") -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "root", "kind": 1,
            "startTimeUnixNano": "1772366400000000000", "endTimeUnixNano": "1772366401000000000",
            "attributes": [{"key": "input.value", "value": {"stringValue": "hi"}}],
        }]}]}]}


@pytest.mark.parametrize("path", ["/api/public/otel/v1/traces", "/v1/traces"])
def test_otlp_answers_match_the_schema(client, api_key, conformance, path):
    ok = conformance.check(_post_json(client, path, _otlp_json(), api_key.basic), path, "post")
    assert ok == {}
    bad_span = _otlp_json()
    bad_span["resourceSpans"][0]["scopeSpans"][0]["spans"].append(
        {**bad_span["resourceSpans"][0]["scopeSpans"][0]["spans"][0], "spanId": "1111111111111111",
         "startTimeUnixNano": "99999999999999999999999"})
    partial = conformance.check(_post_json(client, path, bad_span, api_key.basic), path, "post")
    assert set(partial) == {"partialSuccess"} and partial["partialSuccess"]["rejectedSpans"] == "1"
    conformance.check(client.post(path, data=b"{", content_type="application/json",
                                  HTTP_AUTHORIZATION=api_key.basic), path, "post")  # 400
    conformance.check(client.post(path, data=b"x", content_type="text/plain",
                                  HTTP_AUTHORIZATION=api_key.basic), path, "post")  # 415
    conformance.check(_post_json(client, path, _otlp_json()), path, "post")  # 401

    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex("1" * 32), bytes.fromhex("2" * 16), "pb"
    span.start_time_unix_nano, span.end_time_unix_nano = 1772366400000000000, 1772366401000000000
    raw = conformance.check(client.post(path, data=message.SerializeToString(), content_type="application/x-protobuf",
                                        HTTP_AUTHORIZATION=api_key.basic), path, "post")
    ExportTraceServiceResponse().ParseFromString(raw)


def test_the_basic_scheme_is_the_one_the_sdks_send(client, api_key):
    # The documented Basic scheme is literally `public:secret`, base64: what every Langfuse SDK sends.
    header = "Basic " + base64.b64encode(f"{api_key.public}:{api_key.secret}".encode()).decode()
    assert client.get("/api/public/projects", HTTP_AUTHORIZATION=header).status_code == 200


def test_every_management_operation_is_documented_as_session_only():
    # The management API is for people (tenancy/api/base.py: keys get 404); browser feedback is the
    # one /api/v1 route for keys.
    for path, operations in _schema()["paths"].items():
        if not path.startswith("/api/v1/") or path == "/api/v1/feedback":
            continue
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                assert operation["security"] == [{"cookieAuth": []}], (path, method)


def test_dataset_answers_match_the_schema(client, api_key, conformance):
    auth = api_key.basic
    root, named = "/api/public/v2/datasets", "/api/public/v2/datasets/{name}"
    dataset = conformance.check(_post_json(client, root, {
        "name": "team/qa", "description": "d", "metadata": {"k": 1},
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}, auth), root, "post")
    assert dataset["name"] == "team/qa"
    conformance.check(_post_json(client, root, {"name": ""}, auth), root, "post")  # 400
    conformance.check(_post_json(client, root, {"name": "bad", "inputSchema": {"pattern": "(a)\\1"}}, auth),
                      root, "post")  # 400: RE2 cannot run a backreference
    conformance.check(client.get(root, HTTP_AUTHORIZATION=auth), root, "get")
    conformance.check(client.get(root, {"limit": 0}, HTTP_AUTHORIZATION=auth), root, "get")  # 400
    conformance.check(client.get(root), root, "get")  # 401
    conformance.check(client.get(f"{root}/team%2Fqa", HTTP_AUTHORIZATION=auth), named, "get")
    conformance.check(client.get(f"{root}/missing", HTTP_AUTHORIZATION=auth), named, "get")  # 404

    items, item_path = "/api/public/dataset-items", "/api/public/dataset-items/{id}"
    item = conformance.check(_post_json(client, items, {
        "datasetName": "team/qa", "id": "item-1", "input": {"q": "refund?"}, "expectedOutput": "yes",
        "metadata": {"m": 1}, "sourceTraceId": "t1"}, auth), items, "post")
    assert item["mediaReferences"] == [] and item["datasetName"] == "team/qa"
    conformance.check(_post_json(client, items, {"datasetName": "team/qa", "input": {"q": 1}}, auth),
                      items, "post")  # 400: does not match the input schema
    conformance.check(_post_json(client, items, {"datasetName": "missing"}, auth), items, "post")  # 404
    conformance.check(_post_json(client, root, {"name": "other"}, auth), root, "post")
    conformance.check(_post_json(client, items, {"datasetName": "other", "id": "item-1"}, auth),
                      items, "post")  # 409: item ids are unique per project
    listed = conformance.check(client.get(items, {"datasetName": "team/qa"}, HTTP_AUTHORIZATION=auth), items, "get")
    assert [i["id"] for i in listed["data"]] == ["item-1"]
    conformance.check(client.get(items, {"version": TS}, HTTP_AUTHORIZATION=auth), items, "get")  # 400
    conformance.check(client.get(items, {"datasetName": "missing"}, HTTP_AUTHORIZATION=auth), items, "get")  # 404
    conformance.check(client.get(f"{items}/item-1", HTTP_AUTHORIZATION=auth), item_path, "get")
    conformance.check(client.get(f"{items}/missing", HTTP_AUTHORIZATION=auth), item_path, "get")  # 404

    run_items = "/api/public/dataset-run-items"
    run_item = conformance.check(_post_json(client, run_items, {
        "runName": "base/line", "runDescription": "first", "metadata": {"m": 1}, "datasetItemId": "item-1",
        "traceId": "t-run", "datasetVersion": TS}, auth), run_items, "post")
    assert run_item["datasetRunName"] == "base/line" and run_item["observationId"] is None
    conformance.check(_post_json(client, run_items, {"runName": "b", "datasetItemId": "item-1"}, auth),
                      run_items, "post")  # 400: neither a trace nor an observation
    conformance.check(_post_json(client, run_items, {"runName": "b", "datasetItemId": "missing", "traceId": "t"},
                                 auth), run_items, "post")  # 404
    query = {"datasetId": dataset["id"], "runName": "base/line"}
    page = conformance.check(client.get(run_items, query, HTTP_AUTHORIZATION=auth), run_items, "get")
    assert [ri["id"] for ri in page["data"]] == [run_item["id"]]
    conformance.check(client.get(run_items, HTTP_AUTHORIZATION=auth), run_items, "get")  # 400
    conformance.check(client.get(run_items, {**query, "runName": "missing"}, HTTP_AUTHORIZATION=auth),
                      run_items, "get")  # 404

    legacy = "/api/public/datasets"
    whole = conformance.check(client.get(f"{legacy}/team%2Fqa", HTTP_AUTHORIZATION=auth),
                              f"{legacy}/{{name}}", "get")
    assert [i["id"] for i in whole["items"]] == ["item-1"] and whole["runs"] == ["base/line"]
    conformance.check(client.get(f"{legacy}/missing", HTTP_AUTHORIZATION=auth), f"{legacy}/{{name}}", "get")
    runs_path, run_path = f"{legacy}/{{name}}/runs", f"{legacy}/{{name}}/runs/{{runName}}"
    runs = conformance.check(client.get(f"{legacy}/team%2Fqa/runs", HTTP_AUTHORIZATION=auth), runs_path, "get")
    assert [r["name"] for r in runs["data"]] == ["base/line"]
    conformance.check(client.get(f"{legacy}/team%2Fqa/runs", {"page": "x"}, HTTP_AUTHORIZATION=auth),
                      runs_path, "get")  # 400
    conformance.check(client.get(f"{legacy}/missing/runs", HTTP_AUTHORIZATION=auth), runs_path, "get")  # 404
    run = conformance.check(client.get(f"{legacy}/team%2Fqa/runs/base%2Fline", HTTP_AUTHORIZATION=auth),
                            run_path, "get")
    assert [ri["id"] for ri in run["datasetRunItems"]] == [run_item["id"]]
    conformance.check(client.get(f"{legacy}/team%2Fqa/runs/missing", HTTP_AUTHORIZATION=auth), run_path, "get")
    conformance.check(client.delete(f"{legacy}/team%2Fqa/runs/base%2Fline", HTTP_AUTHORIZATION=auth),
                      run_path, "delete")
    conformance.check(client.delete(f"{legacy}/team%2Fqa/runs/base%2Fline", HTTP_AUTHORIZATION=auth),
                      run_path, "delete")  # 404

    conformance.check(client.delete(f"{items}/item-1", HTTP_AUTHORIZATION=auth), item_path, "delete")
    conformance.check(client.delete(f"{items}/item-1", HTTP_AUTHORIZATION=auth), item_path, "delete")  # 404
    conformance.check(client.get(f"{items}/item-1"), item_path, "get")  # 401


def test_add_to_dataset_answers_match_the_schema(project, owner, conformance):
    from datetime import UTC, datetime

    from rest_framework.test import APIClient

    from evals.services import dataset_upsert
    from traces.models import Trace

    dataset_upsert(project=project, fields={"name": "review"}, actor=None)
    Trace.objects.for_project(project).create(id="prod-1", timestamp=datetime(2026, 3, 1, tzinfo=UTC),
                                              input={"q": "refund?"}, output={"a": "yes"})
    api = APIClient()
    api.force_login(owner)
    path = "/api/v1/organizations/{organization_id}/projects/{project_id}/dataset-items/from-trace"
    url = path.format(organization_id=project.organization_id, project_id=project.id)
    body = {"dataset_name": "review", "trace_id": "prod-1"}
    item = conformance.check(api.post(url, body, format="json"), path, "post")  # 201
    assert item["source_trace_id"] == "prod-1" and item["expected_output"] == {"a": "yes"}
    conformance.check(api.post(url, body, format="json"), path, "post")  # 409
    conformance.check(api.post(url, {**body, "trace_id": "missing"}, format="json"), path, "post")  # 404
    conformance.check(api.post(url, {}, format="json"), path, "post")  # 400
