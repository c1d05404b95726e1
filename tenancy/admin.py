from django.contrib import admin  # noqa: F401  (the scoped console is built in tenancy/admin_site.py)
