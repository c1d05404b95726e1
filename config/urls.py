from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tenancy import public_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/public/health", public_views.health, name="public-health"),
    path("api/public/ready", public_views.ready, name="public-ready"),
    path("api/public/projects", public_views.projects, name="public-projects"),
    path("api/v1/", include("tenancy.api.urls")),
    path("", include("tenancy.urls")),
]
