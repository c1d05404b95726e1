from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import tenancy.http.converters  # noqa: F401 (registers <anyid:…>)
from console import views as console_views
from tenancy import public_views
from tenancy.admin_site import admin_site

# The docs page runs drf-spectacular's inline bootstrap script under the CSP nonce; its bundle,
# stylesheet and favicon are our own static files (drf-spectacular-sidecar), so no CDN is allowed.
api_docs = SpectacularSwaggerView.as_view(url_name="schema", template_name="api_docs/swagger_ui.html")

# Console pages of models that moved to another app (issue 9): bookmarks of the old pages still work.
MOVED_CONSOLE_PAGES = {
    "billing/modelprice": "pricing/modelprice",
    "traces/redactionpolicy": "privacy/redactionpolicy",
    "feedback/scoreconfig": "scores/scoreconfig",
}

urlpatterns = [
    # First: the ingestion routes take every write, and Django tries patterns in order, an include
    # whose prefix does not match raising (and catching) a Resolver404 on the way (~18 µs of CPU per
    # request behind the 14 patterns before them; issue 13). No other route matches their paths
    # (tests/tenancy/test_url_order.py), so the order decides nothing else.
    path("", include("ingest.urls")),
    *(
        re_path(
            rf"^admin/{old}/(?P<rest>.*)$",
            RedirectView.as_view(url=f"/admin/{new}/%(rest)s", query_string=True, permanent=True),
        )
        for old, new in MOVED_CONSOLE_PAGES.items()
    ),
    path("admin/", admin_site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="swagger-ui"),
    path("api/public/health", public_views.health, name="public-health"),
    path("api/public/ready", public_views.ready, name="public-ready"),
    path("api/public/projects", public_views.projects, name="public-projects"),
    path("api/v1/", include("tenancy.api.urls")),
    path("api/v1/", include("pricing.urls")),
    path("api/v1/", include("privacy.api.urls")),
    path("api/v1/", include("monitoring.urls")),
    path("api/v1/", include("billing.urls")),
    # Langfuse-compatible public API (routes without trailing slashes, CSRF-exempt); its write
    # routes and OTLP/HTTP (ingest.urls) come first, above.
    path("", include("traces.read_urls")),
    path("", include("privacy.urls")),
    path("", include("prompts.urls")),
    path("", include("feedback.urls")),
    path("", include("scores.urls")),
    path("", include("evals.urls")),
    path("", include("tenancy.urls")),
    path("", include("monitoring.public_urls")),
    path("console/", include("console.urls")),
    # The trace links the SDKs print open the console's trace page (after login).
    path("project/<uuid:project_id>/traces/<anyid:trace_id>", console_views.sdk_project_trace, name="sdk-project-trace"),
    path("trace/<anyid:trace_id>", console_views.sdk_trace, name="sdk-trace"),
    # The experiment links they print (v5 `experiment_url`, v4 dataset run URL) open the run's summary.
    path("project/<uuid:project_id>/experiments/results", console_views.sdk_project_experiment,
         name="sdk-project-experiment"),
    path("project/<uuid:project_id>/datasets/<str:sdk_dataset_id>/runs/<str:sdk_run_id>",
         console_views.sdk_project_experiment, name="sdk-project-dataset-run"),
    # Last: a Langfuse route Lookglass does not implement answers JSON in Langfuse's error shape (the
    # SDKs parse error bodies as JSON; an HTML 404 reads as "Internal error occurred").
    re_path(r"^api/public/", public_views.not_implemented, name="public-not-implemented"),
]
