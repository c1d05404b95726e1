"""Console pages of monitoring (registered on `tenancy.admin_site.admin_site` when the admin loads)."""

from monitoring import dashboards  # noqa: F401 (registers the cost and quality dashboard)
