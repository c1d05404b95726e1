from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tenancy import public_views
from tenancy.admin_site import admin_site

urlpatterns = [
    path("admin/", admin_site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/public/health", public_views.health, name="public-health"),
    path("api/public/ready", public_views.ready, name="public-ready"),
    path("api/public/projects", public_views.projects, name="public-projects"),
    path("api/v1/", include("tenancy.api.urls")),
    path("api/v1/", include("billing.urls")),
    path("api/v1/", include("traces.api.urls")),
    # Langfuse-compatible public API (routes without trailing slashes, CSRF-exempt) and OTLP/HTTP.
    path("", include("ingest.urls")),
    path("", include("traces.read_urls")),
    path("", include("traces.redaction_urls")),
    path("", include("prompts.urls")),
    path("", include("feedback.urls")),
    path("", include("tenancy.urls")),
]
