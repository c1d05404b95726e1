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
