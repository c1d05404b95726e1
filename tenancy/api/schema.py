"""OpenAPI descriptions of our authentication classes (imported for its registration side effect)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ProjectKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiKeyAuthentication"
    match_subclasses = True
    name = ["projectKeyBasic", "projectKeyBearer"]

    def get_security_requirement(self, auto_schema):
        if not getattr(auto_schema.view, "allow_api_keys", True):
            # Management views list the key class only so anonymous callers get a 401 challenge.
            return None
        # Either form works on its own (OR), unlike a list of names, which OpenAPI reads as AND.
        return [{"projectKeyBasic": []}, {"projectKeyBearer": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "basic",
                "description": "Project public key (pk-lg-…) as username, secret key (sk-lg-…) as password.",
            },
            {"type": "http", "scheme": "bearer", "description": "The project's secret key (sk-lg-…)."},
        ]
