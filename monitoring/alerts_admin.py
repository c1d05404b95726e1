"""Alerts and sampling in the console: rules (switch a seed rule on, thresholds, channels), channels
(with a "send a test" action), the state history (read-only), and each project's sampling policy
with its kept/dropped counts. Writes go through `monitoring.alerts_services` / `monitoring.sampling`
(validated — every outbound URL against SSRF — and audited)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.db import InterfaceError, OperationalError, models
from django.utils import timezone

from monitoring import alerts, alerts_services, sampling
from monitoring.alerts_models import (
    AlertBaseline,
    AlertChannel,
    AlertEvent,
    AlertMode,
    AlertOperator,
    AlertRule,
    DeliveryStatus,
)
from monitoring.alerts_services import CHANNEL_FIELDS, RULE_FIELDS
from monitoring.sampling_models import SamplingPolicy
from tenancy.admin_site import NOBODY, OrganizationScopedAdmin, admin_site, adopt, allowed
from tenancy.models import Role


class _Explained:
    """Labels and help on the forms without touching the models (no migration for wording): every
    field a person has to fill says what it means and in which unit."""

    labels: dict = {}
    help_texts: dict = {}

    def get_form(self, request, obj=None, **kwargs):
        kwargs.setdefault("labels", self.labels)
        kwargs.setdefault("help_texts", self.help_texts)
        return super().get_form(request, obj, **kwargs)


class _ProjectScoped(_Explained, OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_select_related = ("project__organization",)

    def get_readonly_fields(self, request, obj=None):
        return (*self.state_fields, *(() if obj is None else ("project",)))

    state_fields: tuple = ()


def condition_text(rule: AlertRule) -> str:
    """'> 1.5 × yesterday', '> 0.05', '> mean + 3σ (4 weeks)', with the window and the minimum calls."""
    op = AlertOperator(rule.operator).label
    factor = f"{rule.threshold:g}"
    if rule.mode == AlertMode.RATIO:
        base = "yesterday" if rule.baseline == AlertBaseline.YESTERDAY else "previous window"
        text = f"{op} {factor} × {base}"
    elif rule.mode == AlertMode.ANOMALY:
        sign = "+" if op.startswith(">") else "−"
        text = f"{op} mean {sign} {factor}σ ({rule.anomaly_weeks} weeks)"
    else:
        text = f"{op} {factor}"
    window = f"{rule.window_minutes // 60} h" if rule.window_minutes % 60 == 0 else f"{rule.window_minutes} min"
    return f"{text} over {window}, ≥ {rule.min_calls} calls"


@admin.register(AlertRule, site=admin_site)
class AlertRuleAdmin(_ProjectScoped):
    list_display = ("name", "project", "metric", "condition", "enabled", "state", "last_value",
                    "last_evaluated_at")
    labels = {"window_minutes": "Window (minutes)", "min_calls": "Minimum calls",
              "renotify_minutes": "Re-notify every (minutes)", "cooldown_minutes": "Cooldown (minutes)"}
    help_texts = {
        "score_name": "For “average of a score”: the score's name (required). For thumbs-down rate: optional.",
        "feature": "Only calls of this feature (empty: any). The same for model, environment and prompt.",
        "window_minutes": "A multiple of 60: the rule reads hourly rollups.",
        "baseline": "Ratio mode: what the window is compared with.",
        "anomaly_weeks": "Anomaly mode: how many past weeks of the same window make the mean.",
        "threshold": "Threshold mode: the value (0.05 = 5% for rates). Ratio: the factor (1.5 = 50% above the "
                     "baseline). Anomaly: the number of standard deviations.",
        "warning_threshold": "Optional: a lower bar that gives the warning state before firing.",
        "min_calls": "Fewer calls (or thumbs, or scores) in the window: no data, never firing.",
        "renotify_minutes": "While firing, notify again this often (0: once per change of state).",
        "cooldown_minutes": "No two notifications of a change of state closer than this.",
    }
    list_filter = ("enabled", "state", "metric")
    search_fields = ("name",)
    state_fields = ("state", "state_since", "last_value", "last_baseline", "last_evaluated_at", "last_notified_at",
                    "seed_key")
    exclude = ("last_notified_state",)
    filter_horizontal = ("channels",)

    @admin.display(description="condition")
    def condition(self, obj) -> str:
        # The mode's label is a sentence meant for the form; in the list one short formula per rule
        # keeps the rows one line high.
        return condition_text(obj)

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
    labels = {"url": "URL", "emails": "E-mail addresses"}
    # A URL typed without a scheme means https (Django 6's default; webhooks are https).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    help_texts = {
        "url": "Signed webhook or Slack incoming webhook (https). Private and internal addresses are refused.",
        "emails": "For e-mail channels: addresses separated by commas.",
    }
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
    labels = {"keep_share": "Share of normal traces kept", "settle_minutes": "Settle time (minutes)",
              "cost_threshold": "Cost threshold (USD)", "latency_threshold_ms": "Latency threshold (ms)",
              "latency_percentile": "Latency percentile", "percentile_min_calls": "Minimum calls for a percentile"}
    help_texts = {
        "enabled": "Off by default: every trace is stored whole. On: errors, refusals and outliers are always "
                   "kept, and a share of the rest; rollups count everything before the decision.",
        "keep_share": "0.1 = 10% of the traces without an error, a refusal or an outlier keep their payloads.",
        "settle_minutes": "A trace is decided once nothing was written to it for this long (a late error still "
                          "keeps it).",
        "cost_threshold": "A call (or a trace's total) above this cost is an outlier, always kept.",
        "latency_threshold_ms": "A call slower than this is an outlier, always kept.",
        "latency_percentile": "A call slower than this recent percentile of the same feature and model is an "
                              "outlier (empty: off).",
        "percentile_min_calls": "Below this many recent calls the percentile is not trusted.",
    }
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
