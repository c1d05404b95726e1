"""Prompt routes: the Langfuse-compatible public API and the management comparison.

Prompt names may contain `/` (folders). The SDKs send them URL-encoded (`%2F`), which the WSGI
server decodes before routing, so encoded and raw slashes arrive alike; names therefore match
`.+` and the fixed suffixes (`/versions/{n}`, `/compile`, `/metrics`) are matched from the right.
"""

from django.urls import re_path

from prompts import api, views

PUBLIC = r"^api/public/v2/prompts"
PROMPT_V1 = (
    r"^api/v1/organizations/(?P<organization_id>[^/]+)/projects/(?P<project_id>[^/]+)/prompts/(?P<prompt_name>.+)"
)

urlpatterns = [
    re_path(PUBLIC + r"$", views.prompts_root, name="public-prompts"),
    re_path(
        PUBLIC + r"/(?P<name>.+)/(?P<suffix>versions/(?P<version>[^/]+))$",
        views.routed_by_method(views.prompt_detail, methods={"PATCH": views.prompt_version_update}),
        name="public-prompt-version",
    ),
    re_path(
        PUBLIC + r"/(?P<name>.+)/(?P<suffix>compile)$",
        views.routed_by_method(views.prompt_detail, methods={"POST": views.prompt_compile}),
        name="public-prompt-compile",
    ),
    re_path(
        PUBLIC + r"/(?P<name>.+)/(?P<suffix>metrics)$",
        views.routed_by_method(views.prompt_detail, methods={"GET": views.prompt_metrics}),
        name="public-prompt-metrics",
    ),
    re_path(PUBLIC + r"/(?P<name>.+)$", views.prompt_detail, name="public-prompt"),
    re_path(
        r"^api/v1/organizations/(?P<organization_id>[^/]+)/projects/(?P<project_id>[^/]+)/prompts/"
        r"(?P<prompt_name>.+)/versions/compare$",
        views.PromptCompareViewSet.as_view({"get": "compare"}),
        name="prompt-versions-compare",
    ),
    # Labels never contain `/`, so a name with folders is still split correctly from the right.
    re_path(PROMPT_V1 + r"/labels$", api.PromptLabelViewSet.as_view({"get": "labels"}), name="prompt-labels"),
    re_path(
        PROMPT_V1 + r"/labels/(?P<label>[^/]+)$",
        api.PromptLabelViewSet.as_view({"put": "update", "delete": "destroy"}),
        name="prompt-label",
    ),
]
