"""Evaluations in the console.

- Evals › Evaluations (a page per project): jobs by state (pending, delayed, completed, error) with
  the latest errors, the daily trend of each eval score on production, a dataset run's summary, and
  two runs side by side with their regressions. Reads through `evals.eval_selectors`, like the API.
- Evals › LLM connections / Evaluators / Evaluation rules: lists and details (secret keys shown
  masked only). Connections and evaluators are created through the API (`/api/v1/…/evals/…` or the
  Langfuse v2 routes); the console can delete them, resume a paused evaluator and enable or disable
  rules.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404
from django.template.response import TemplateResponse

from evals import eval_selectors as sel
from evals import eval_services
from evals.evaluation_models import EvaluationRule, Evaluator, LlmConnection
from evals.models import DatasetRun
from tenancy.admin_site import OrganizationScopedAdmin, admin_site, visible_projects
from tenancy.models import Role

RECENT_JOBS = 50


class EvalsForm(forms.Form):
    project = forms.ChoiceField()
    run = forms.ChoiceField(required=False, label="Run (summary; candidate when comparing)")
    baseline = forms.ChoiceField(required=False, label="Baseline run")

    def __init__(self, data, *, projects, runs):
        super().__init__(data)
        self.projects = {str(p.id): p for p in projects}
        self.fields["project"].choices = [(k, str(p)) for k, p in self.projects.items()]
        choices = [("", "—")] + [(str(r.id), r.name) for r in runs]
        self.fields["run"].choices = choices
        self.fields["baseline"].choices = choices


def evaluations_view(request):
    projects = list(visible_projects(request))
    data = request.GET.copy()
    if projects and not data.get("project"):
        data["project"] = str(projects[0].id)
    project = next((p for p in projects if str(p.id) == data.get("project")), None)
    if projects and project is None:
        raise Http404("No such project.")  # another tenant's project looks like no project
    runs = list(DatasetRun.objects.for_project(project).order_by("-created_at")[:200]) if project else []
    form = EvalsForm(data, projects=projects, runs=runs)
    context = {**admin_site.each_context(request), "title": "Evaluations", "form": form,
               "has_projects": bool(projects), "project": None}
    status = 200
    if project is not None and form.is_valid():
        by_id = {str(r.id): r for r in runs}
        run, baseline = by_id.get(form.cleaned_data.get("run") or ""), by_id.get(form.cleaned_data.get("baseline") or "")
        jobs = list(sel.jobs_query(project=project)[:RECENT_JOBS])
        context.update(
            project=project,
            counts=sel.job_counts(project=project),
            jobs=jobs,
            trend=sel.daily_trend(project=project, days=30),
            summary=sel.run_summary(project=project, run=run) if run else None,
            comparison=sel.run_compare(project=project, baseline=baseline, candidate=run) if run and baseline else None,
            paused=Evaluator.objects.filter(project=project, status="paused"),
        )
    elif projects:
        status = 400
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/evals/evaluations.html", context, status=status)


admin_site.register_view(
    "evals/evaluations/", evaluations_view, name="evals_evaluations", link_title="Evaluations",
    app_label="evals", app_title="Evals", visible=admin_site.has_permission,
)


@admin.register(LlmConnection, site=admin_site)
class LlmConnectionAdmin(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.OWNER  # no console form for secrets: connections are created through the API
    change_role = Role.OWNER
    delete_role = Role.ADMIN
    list_display = ("provider", "adapter", "project", "base_url", "display_secret_key", "default_model", "updated_at")
    list_select_related = ("project__organization",)
    fields = ("project", "provider", "adapter", "base_url", "display_secret_key", "default_model", "custom_models",
              "timeout_seconds", "max_retries", "created_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Evaluator, site=admin_site)
class EvaluatorAdmin(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.OWNER
    change_role = Role.MEMBER
    delete_role = Role.MEMBER
    list_display = ("name", "type", "project", "status", "paused_reason", "updated_at")
    list_filter = ("type", "status")
    list_select_related = ("project__organization",)
    fields = ("project", "name", "description", "type", "status", "paused_reason", "paused_message", "paused_at", "created_at")
    readonly_fields = fields
    actions = ["resume"]

    def has_add_permission(self, request):
        return False

    @admin.action(permissions=["change"], description="Resume the selected paused evaluators (after fixing their connection)")
    def resume(self, request, queryset):
        for evaluator in queryset:
            eval_services.resume_evaluator(evaluator=evaluator)
        self.message_user(request, f"{queryset.count()} evaluator(s) resumed.", messages.SUCCESS)


@admin.register(EvaluationRule, site=admin_site)
class EvaluationRuleAdmin(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.OWNER
    change_role = Role.MEMBER
    delete_role = Role.MEMBER
    list_display = ("name", "project", "target", "enabled", "status", "sampling", "delay_seconds", "nightly", "updated_at")
    list_filter = ("enabled", "status", "target", "nightly")
    list_select_related = ("project__organization",)
    fields = ("project", "name", "target", "enabled", "status", "paused_reason", "paused_message", "filter", "sampling",
              "delay_seconds", "run_on_new", "nightly", "nightly_sampling", "nightly_max_targets", "assignments",
              "new_data_cursor")
    readonly_fields = fields
    actions = ["enable", "disable"]

    def has_add_permission(self, request):
        return False

    def _set(self, request, queryset, enabled: bool):
        for rule in queryset:
            eval_services.rule_save(project=rule.project, rule=rule, data={"enabled": enabled})
        self.message_user(request, f"{queryset.count()} rule(s) {'enabled' if enabled else 'disabled'}.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Enable the selected rules")
    def enable(self, request, queryset):
        self._set(request, queryset, True)

    @admin.action(permissions=["change"], description="Disable the selected rules")
    def disable(self, request, queryset):
        self._set(request, queryset, False)
