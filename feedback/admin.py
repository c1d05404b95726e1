"""Scores and end-user feedback in the console.

- Score is a data-plane model with a composite key, so there is no ModelAdmin; the trace detail page
  (traces/admin.py) shows a trace's scores, end-user feedback included, through `trace_scores`.
- "Feedback" (`/admin/feedback/`): a project's thumbs-down with comments, newest first, and the daily
  thumbs-down rate; every role of the organization may read it.
- Feedback settings (browser origins, comment limit) and score configs are ModelAdmins, viewer+ to
  read and admin+ to change; writes go through `feedback.services` (validated and audited).
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone

from feedback import selectors, services
from feedback.models import FeedbackSettings, Score, ScoreConfig, ScoreDataType
from tenancy.admin_site import NOBODY, OrganizationScopedAdmin, admin_site, adopt, console_roles, is_superuser
from tenancy.models import Project, Role

# A trace rarely has more; the panel is a summary, not an export.
MAX_SCORES_PER_TRACE = 500


def trace_scores(*, project: Project, trace_id: str) -> list[dict]:
    """The scores of one trace (on the trace itself or on one of its observations), oldest first."""
    scores = Score.objects.for_project(project).filter(trace_id=trace_id).order_by("timestamp", "id")
    return [
        {
            "score": score,
            "display_value": display_value(score),
        }
        for score in scores.only(
            "project_id",
            "id",
            "trace_id",
            "observation_id",
            "name",
            "value",
            "string_value",
            "data_type",
            "source",
            "comment",
            "author_user_id",
            "timestamp",
        )[:MAX_SCORES_PER_TRACE]
    ]


def display_value(score: Score) -> str:
    if score.data_type == ScoreDataType.CATEGORICAL or (score.value is None and score.string_value):
        return score.string_value
    if score.data_type == ScoreDataType.BOOLEAN and score.value is not None:
        return "True" if score.value else "False"
    if score.value is None:
        return "—"
    return f"{score.value:g}"


# --- the feedback page ---------------------------------------------------------------------------

REPORT_DAYS = 30
PAGE_SIZE = 50


def _visible_projects(request):
    # Same rule as the trace pages: every role of an organization reads its projects' feedback.
    queryset = Project.objects.select_related("organization")
    if is_superuser(request):
        return queryset
    return queryset.filter(organization_id__in=list(console_roles(request)))


class FeedbackFilterForm(forms.Form):
    project = forms.ChoiceField()
    name = forms.CharField(required=False, max_length=500, label="Feedback name")
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data, *, projects: list[Project]):
        super().__init__(data)
        self.projects = {str(p.id): p for p in projects}
        self.fields["project"].choices = [(key, str(p)) for key, p in self.projects.items()]


def feedback_view(request):
    projects = list(_visible_projects(request))
    data = request.GET.copy()
    if projects and not data.get("project"):
        data["project"] = str(projects[0].id)
    form = FeedbackFilterForm(data, projects=projects)
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
        from traces.admin import trace_detail_url  # traces.admin imports this module

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


# --- feedback settings and score configs ----------------------------------------------------------


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


@admin.register(ScoreConfig, site=admin_site)
class ScoreConfigAdmin(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    # Archive instead: scores keep pointing at their config.
    delete_role = NOBODY
    list_display = ("name", "project", "data_type", "min_value", "max_value", "is_archived", "updated_at")
    list_filter = ("data_type", "is_archived")
    list_select_related = ("project__organization",)
    search_fields = ("name",)
    fields = (
        "project",
        "name",
        "data_type",
        "min_value",
        "max_value",
        "categories",
        "description",
        "is_archived",
    )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("project", "data_type")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = services.score_config_update(
                config=obj,
                actor=request.user,
                **{name: data[name] for name in services.CONFIG_EDITABLE if name in data},
            )
        else:
            saved = services.score_config_create(
                project=data["project"],
                actor=request.user,
                name=data["name"],
                data_type=data["data_type"],
                min_value=data.get("min_value"),
                max_value=data.get("max_value"),
                categories=data.get("categories"),
                description=data.get("description", ""),
            )
        adopt(obj, saved)
