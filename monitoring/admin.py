"""Console pages of monitoring (registered on `tenancy.admin_site.admin_site` when the admin loads):
alerts and sampling (`alerts_admin`), the cost and quality dashboard (`dashboards`)."""

from monitoring import (
    alerts_admin,  # noqa: F401
    dashboards,  # noqa: F401
)
