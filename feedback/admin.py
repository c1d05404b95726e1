"""End-user feedback in the console.

- "Feedback" (`/admin/feedback/`): a project's thumbs-down with comments, newest first, and the daily
  thumbs-down rate; every role of the organization may read it.
- Feedback settings (browser origins, comment limit) are a ModelAdmin, viewer+ to read and admin+ to
  change; writes go through `feedback.services` (validated and audited).

Scores and score configs are in scores/admin.py.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils import timezone

from feedback import selectors, services
from feedback.models import FeedbackSettings
from tenancy.admin_site import (
    OrganizationScopedAdmin,
    admin_site,
    adopt,
    visible_projects,
)
from tenancy.models import Project, Role
from traces.admin import trace_detail_url

# --- the feedback page ---------------------------------------------------------------------------

REPORT_DAYS = 30
PAGE_SIZE = 50



class FeedbackFilterForm(forms.Form):
    project = forms.ChoiceField()
    name = forms.CharField(required=False, max_length=500, label="Feedback name")
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data, *, projects: list[Project]):
        super().__init__(data)
        self.projects = {str(p.id): p for p in projects}
        self.fields["project"].choices = [(key, str(p)) for key, p in self.projects.items()]


def feedback_view(request):
    projects = list(visible_projects(request))
    data = request.GET.copy()
    if projects and not data.get("project"):
        data["project"] = str(projects[0].id)
    form = FeedbackFilterForm(data, projects=projects)
    if data.get("project") and data["project"] not in form.projects:
        # Another organization's project is as absent as a missing one (as on the dashboard).
        raise Http404("no such project")
    context = {
        **admin_site.each_context(request),
        "title": "Feedback",
        "form": form,
        "has_projects": bool(projects),
        "project": None,
    }
    status = 200
    if projects and form.is_valid():
        project = form.projects[form.cleaned_data["project"]]
        name = form.cleaned_data["name"] or None
        page = form.cleaned_data["page"] or 1
        until = timezone.now().date() + timedelta(days=1)
        days = selectors.thumbs_down_daily(
            project=project, since=until - timedelta(days=REPORT_DAYS), until=until, name=name
        )
        items, total = selectors.thumbs_down_page(
            project=project, name=name, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        for item in items:
            item["detail_url"] = trace_detail_url(project.id, item["traceId"])
        all_total = sum(d["total"] for d in days)
        all_down = sum(d["down"] for d in days)
        query = request.GET.copy()
        query["project"] = str(project.id)
        older = newer = None
        if page * PAGE_SIZE < total:
            query["page"] = page + 1
            older = "?" + query.urlencode()
        if page > 1:
            query["page"] = page - 1
            newer = "?" + query.urlencode()
        context.update(
            project=project,
            days=list(reversed(days)),
            items=items,
            total=total,
            period_total=all_total,
            period_down=all_down,
            period_rate=(all_down / all_total) if all_total else None,
            report_days=REPORT_DAYS,
            older_url=older,
            newer_url=newer,
        )
    elif projects:
        status = 400
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/feedback/feedback.html", context, status=status)


def _is_console_user(request) -> bool:
    return admin_site.has_permission(request)


admin_site.register_view(
    "feedback/overview/",
    feedback_view,
    name="feedback_overview",
    link_title="Feedback",
    app_label="feedback",
    app_title="Feedback",
    visible=_is_console_user,
)


# --- feedback settings ------------------------------------------------------------------------------


class FeedbackSettingsForm(forms.ModelForm):
    class Meta:
        model = FeedbackSettings
        fields = ("project", "enabled", "allowed_origins", "comment_max_length")
        help_texts = {
            "allowed_origins": "Comma-separated exact origins (https://app.example.com) whose pages may send "
            "feedback with the public key; * allows any page.",
        }


@admin.register(FeedbackSettings, site=admin_site)
class FeedbackSettingsAdmin(OrganizationScopedAdmin):
    form = FeedbackSettingsForm
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("project", "enabled", "origins", "comment_max_length", "updated_at")
    list_select_related = ("project__organization",)
    list_filter = ("enabled",)

    @admin.display(description="allowed origins")
    def origins(self, obj):
        return ", ".join(obj.allowed_origins) or "—"

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("project",)

    def save_model(self, request, obj, form, change):
        saved = services.feedback_settings_update(
            project=obj.project,
            actor=request.user,
            enabled=form.cleaned_data["enabled"],
            allowed_origins=form.cleaned_data["allowed_origins"],
            comment_max_length=form.cleaned_data["comment_max_length"],
        )
        adopt(obj, saved)
