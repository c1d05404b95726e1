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


# --- Usage page ------------------------------------------------------------------------------------

USAGE_DAYS = 30
_CHART_W, _CHART_H = 720, 160


def _chart(days: list[dict]) -> dict:
    """Bar geometry for the inline SVG chart of units per day (server-drawn: no script, works offline)."""
    peak = max((d["units"] for d in days), default=0) or 1
    width = _CHART_W / max(1, len(days))
    bars = []
    for i, day in enumerate(days):
        height = round(day["units"] / peak * (_CHART_H - 20), 1)
        bars.append({"x": round(i * width + 1, 1), "w": round(max(1.0, width - 2), 1), "h": height,
                     "y": round(_CHART_H - height, 1), "day": day["day"], "units": day["units"]})
    return {"bars": bars, "peak": peak, "width": _CHART_W, "height": _CHART_H}


def usage_view(request):
    from datetime import timedelta

    from django.http import Http404
    from django.template.response import TemplateResponse
    from django.utils import timezone

    from billing import selectors
    from tenancy.admin_site import console_roles, organization_ids_with
    from tenancy.models import Organization

    if request.user.is_superuser:
        organizations = list(Organization.objects.order_by("name")[:500])
    else:
        organizations = list(Organization.objects.filter(id__in=list(console_roles(request))).order_by("name"))
    chosen = request.GET.get("organization")
    organization = None
    if chosen:
        organization = next((o for o in organizations if str(o.id) == chosen), None)
        if organization is None:
            raise Http404  # another organization's usage is as absent as a missing one
    elif organizations:
        organization = organizations[0]
    context = {**admin_site.each_context(request), "title": "Usage and plan", "organizations": organizations,
               "organization": organization}
    if organization is not None:
        until = timezone.now().date()
        since = until - timedelta(days=USAGE_DAYS - 1)
        rows = selectors.usage_by_day(organization=organization, since=since, until=until)
        per_day: dict[str, dict] = {}
        for row in rows:
            day = per_day.setdefault(row["day"], {"day": row["day"], "units": 0, "bytes": 0, "judge_calls": 0,
                                                  "rejected_events": 0})
            for key in ("units", "bytes", "judge_calls", "rejected_events"):
                day[key] += row[key]
        days = []
        for offset in range(USAGE_DAYS):
            key = (since + timedelta(days=offset)).isoformat()
            days.append(per_day.get(key, {"day": key, "units": 0, "bytes": 0, "judge_calls": 0,
                                          "rejected_events": 0}))
        can_export = request.user.is_superuser or organization.id in organization_ids_with(request, Role.OWNER)
        context.update(
            days=list(reversed(days)), chart=_chart(days), rows=rows,
            totals={k: sum(d[k] for d in days) for k in ("units", "bytes", "judge_calls", "rejected_events")},
            invoice=selectors.invoice_preview(organization=organization),
            subscription=selectors.subscription_summary(organization=organization),
            can_export=can_export,
            export_base=f"/api/v1/organizations/{organization.id}/billing/usage-records",
        )
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/billing/usage.html", context)


admin_site.register_view(
    "billing/usage/", usage_view, name="billing_usage", link_title="Usage and plan", app_label="billing",
    app_title="Billing", visible=lambda request: admin_site.has_permission(request),
)
