"""Plans are the operator's (superusers edit, console users read); a subscription is seen by its
organization's members and changed by superusers only, since it decides what the organization pays."""

from django.contrib import admin

from billing.models import Plan, RejectedEvents, Subscription
from tenancy.admin_site import NOBODY, SUPERUSER_ONLY, OrganizationScopedAdmin, admin_site
from tenancy.models import Role


@admin.register(Plan, site=admin_site)
class PlanAdmin(OrganizationScopedAdmin):
    organization_path = None  # global: everyone in the console reads, superusers write
    view_role = Role.VIEWER
    add_role = SUPERUSER_ONLY
    change_role = SUPERUSER_ONLY
    delete_role = SUPERUSER_ONLY
    list_display = ("name", "included_units", "extra_unit_price", "ingest_rate_per_second", "key_rate_per_second",
                    "max_projects", "max_members", "retention_days", "eval_judge_calls", "soft_limit_share")
    search_fields = ("name",)


@admin.register(Subscription, site=admin_site)
class SubscriptionAdmin(OrganizationScopedAdmin):
    organization_path = "organization"
    view_role = Role.VIEWER
    add_role = SUPERUSER_ONLY
    change_role = SUPERUSER_ONLY
    delete_role = SUPERUSER_ONLY
    list_display = ("organization", "plan", "period_start", "overrides", "updated_at")
    list_filter = ("plan",)
    list_select_related = ("organization", "plan")
    search_fields = ("organization__name",)


@admin.register(RejectedEvents, site=admin_site)
class RejectedEventsAdmin(OrganizationScopedAdmin):
    organization_path = "organization"
    view_role = Role.VIEWER
    add_role = NOBODY
    change_role = NOBODY
    delete_role = NOBODY
    list_display = ("day", "organization", "project_id", "reason", "requests", "events")
    list_filter = ("reason",)
    list_select_related = ("organization",)
    ordering = ("-day",)
