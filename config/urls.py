from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tenancy import public_views
from tenancy.admin_site import admin_site

# Console pages of models that moved to another app (issue 9): bookmarks of the old pages still work.
MOVED_CONSOLE_PAGES = {
    "billing/modelprice": "pricing/modelprice",
    "traces/redactionpolicy": "privacy/redactionpolicy",
    "feedback/scoreconfig": "scores/scoreconfig",
}

urlpatterns = [
    *(
        re_path(
            rf"^admin/{old}/(?P<rest>.*)$",
            RedirectView.as_view(url=f"/admin/{new}/%(rest)s", query_string=True, permanent=True),
        )
        for old, new in MOVED_CONSOLE_PAGES.items()
    ),
    path("admin/", admin_site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/public/health", public_views.health, name="public-health"),
    path("api/public/ready", public_views.ready, name="public-ready"),
    path("api/public/projects", public_views.projects, name="public-projects"),
    path("api/v1/", include("tenancy.api.urls")),
    path("api/v1/", include("pricing.urls")),
    path("api/v1/", include("privacy.api.urls")),
    # Langfuse-compatible public API (routes without trailing slashes, CSRF-exempt) and OTLP/HTTP.
    path("", include("traces.ingest_urls")),
    path("", include("traces.otel_urls")),
    path("", include("traces.read_urls")),
    path("", include("privacy.urls")),
    path("", include("prompts.urls")),
    path("", include("feedback.urls")),
    path("", include("scores.urls")),
    path("", include("tenancy.urls")),
]
