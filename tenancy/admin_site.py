"""The admin console for organization members (not only superusers). Every app registers its
ModelAdmins on `admin_site`, not on django.contrib.admin.site."""

from django.contrib.admin import AdminSite


class LookglassAdminSite(AdminSite):
    site_header = "Lookglass"
    site_title = "Lookglass"
    index_title = "Console"


admin_site = LookglassAdminSite(name="admin")
