from urllib.parse import urlsplit

from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tenancy import public_views
from tenancy.admin_site import admin_site

# Swagger UI loads its bundle, stylesheet and favicon from a CDN: allowed on the docs page only.
# TODO(issue): vendor the assets and drop this exception.
_SWAGGER_CDN = "{0.scheme}://{0.netloc}".format(urlsplit(spectacular_settings.SWAGGER_UI_DIST))
api_docs = csp_update({"script-src": [_SWAGGER_CDN], "style-src": [_SWAGGER_CDN], "img-src": [_SWAGGER_CDN]})(
    SpectacularSwaggerView.as_view(url_name="schema", template_name="api_docs/swagger_ui.html")
)

urlpatterns = [
    path("admin/", admin_site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="swagger-ui"),
    path("api/public/health", public_views.health, name="public-health"),
    path("api/public/ready", public_views.ready, name="public-ready"),
    path("api/public/projects", public_views.projects, name="public-projects"),
    path("api/v1/", include("tenancy.api.urls")),
    path("api/v1/", include("billing.urls")),
    path("api/v1/", include("traces.api.urls")),
    # Langfuse-compatible public API (routes without trailing slashes, CSRF-exempt) and OTLP/HTTP.
    path("", include("traces.ingest_urls")),
    path("", include("traces.otel_urls")),
    path("", include("traces.read_urls")),
    path("", include("traces.redaction_urls")),
    path("", include("prompts.urls")),
    path("", include("feedback.urls")),
    path("", include("tenancy.urls")),
]
