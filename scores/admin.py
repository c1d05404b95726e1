"""Scores and score configs in the console.

- Score is a data-plane model with a composite key, so there is no ModelAdmin; the trace detail page
  (traces/admin.py) shows a trace's scores, end-user feedback included, through `trace_scores`.
- Score configs are a ModelAdmin, viewer+ to read and admin+ to change; writes go through
  `scores.services` (validated and audited).
"""

from __future__ import annotations

from django.contrib import admin

from scores import services
from scores.models import Score, ScoreConfig, ScoreDataType
from tenancy.admin_site import NOBODY, OrganizationScopedAdmin, admin_site, adopt
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


# --- score configs ---------------------------------------------------------------------------------


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
