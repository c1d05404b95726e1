"""Alerts and sampling in the console: rules (switch a seed rule on, thresholds, channels), channels
(with a "send a test" action), the state history (read-only), and each project's sampling policy
with its kept/dropped counts. Writes go through `monitoring.alerts_services` / `monitoring.sampling`
(validated — every outbound URL against SSRF — and audited)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from monitoring import alerts, alerts_services, sampling
from monitoring.alerts_models import AlertChannel, AlertEvent, AlertRule, DeliveryStatus
from monitoring.alerts_services import CHANNEL_FIELDS, RULE_FIELDS
from monitoring.sampling_models import SamplingPolicy
from tenancy.admin_site import NOBODY, OrganizationScopedAdmin, admin_site, adopt, allowed
from tenancy.models import Role


class _ProjectScoped(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_select_related = ("project__organization",)

    def get_readonly_fields(self, request, obj=None):
        return (*self.state_fields, *(() if obj is None else ("project",)))

    state_fields: tuple = ()


@admin.register(AlertRule, site=admin_site)
class AlertRuleAdmin(_ProjectScoped):
    list_display = ("name", "project", "metric", "mode", "threshold", "enabled", "state", "last_value",
                    "last_evaluated_at")
    list_filter = ("enabled", "state", "metric")
    search_fields = ("name",)
    state_fields = ("state", "state_since", "last_value", "last_baseline", "last_evaluated_at", "last_notified_at",
                    "seed_key")
    exclude = ("last_notified_state",)
    filter_horizontal = ("channels",)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "channels":
            project_id = request.resolver_match.kwargs.get("object_id")
            rule = AlertRule.objects.filter(pk=project_id).first() if project_id else None
            qs = AlertChannel.objects.filter(project__organization__in=self.scoped_organizations(request))
            kwargs["queryset"] = qs.filter(project=rule.project) if rule else qs
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def scoped_organizations(self, request):
        from tenancy.admin_site import organization_ids_with

        return organization_ids_with(request, Role.ADMIN)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
        if change:
            saved = alerts_services.alert_rule_update(rule=obj, actor=request.user, **fields)
        else:
            saved = alerts_services.alert_rule_create(project=form.cleaned_data["project"], actor=request.user,
                                                      **fields)
        adopt(obj, saved)

    def save_related(self, request, form, formsets, change):
        if "channels" in form.cleaned_data:
            channels = list(form.cleaned_data["channels"])
            if any(channel.project_id != form.instance.project_id for channel in channels):
                from django.core.exceptions import ValidationError

                raise ValidationError({"channels": ["a channel of the rule's project"]})
            form.instance.channels.set(channels)

    def delete_model(self, request, obj):
        alerts_services.alert_rule_delete(rule=obj, actor=request.user)


@admin.register(AlertChannel, site=admin_site)
class AlertChannelAdmin(_ProjectScoped):
    list_display = ("name", "project", "kind", "url", "enabled", "created_at")
    list_filter = ("kind", "enabled")
    state_fields = ("secret",)
    actions = ["send_test"]

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in CHANNEL_FIELDS if name in form.cleaned_data}
        if change:
            saved = alerts_services.alert_channel_update(channel=obj, actor=request.user, **fields)
        else:
            saved = alerts_services.alert_channel_create(project=form.cleaned_data["project"], actor=request.user,
                                                         **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        alerts_services.alert_channel_delete(channel=obj, actor=request.user)

    def has_send_test_permission(self, request):
        return allowed(request, Role.ADMIN, anywhere=True)

    @admin.action(description="Send a test notification", permissions=["send_test"])
    def send_test(self, request, queryset):
        for channel in queryset.select_related("project"):
            if not allowed(request, Role.ADMIN, channel.project.organization_id):
                continue
            delivery = alerts.test_delivery(channel)
            if delivery.status == DeliveryStatus.SENT:
                self.message_user(request, f"{channel.name}: sent", messages.SUCCESS)
            else:
                self.message_user(request, f"{channel.name}: {delivery.last_error or delivery.status}", messages.ERROR)


@admin.register(AlertEvent, site=admin_site)
class AlertEventAdmin(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = change_role = delete_role = NOBODY
    list_display = ("created_at", "rule", "from_state", "to_state", "value", "limit", "calls", "message")
    list_filter = ("to_state",)
    list_select_related = ("rule", "project__organization")


@admin.register(SamplingPolicy, site=admin_site)
class SamplingPolicyAdmin(_ProjectScoped):
    list_display = ("project", "enabled", "keep_share", "settle_minutes", "enabled_at")
    list_filter = ("enabled",)
    state_fields = ("enabled_at", "counts_last_7_days")

    @admin.display(description="kept / dropped, last 7 days")
    def counts_last_7_days(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        try:
            result = sampling.counts(project=obj.project, since=timezone.now() - timedelta(days=7))
        except (OperationalError, InterfaceError):
            return "the region database is unavailable"
        reasons = ", ".join(f"{reason}: {count}" for reason, count in result["by_reason"].items() if count)
        return (f"{result['kept']} kept, {result['dropped']} dropped ({reasons or 'none yet'}); "
                f"client-sampled traces: {result['client_sampled_traces']}, "
                f"standing for ≈{result['estimated_client_traces']:g}")

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in (
            "enabled", "keep_share", "settle_minutes", "cost_threshold", "latency_threshold_ms", "latency_percentile",
            "percentile_min_calls") if name in form.cleaned_data}
        project = obj.project if change else form.cleaned_data["project"]
        adopt(obj, sampling.policy_update(project=project, actor=request.user, **fields))
