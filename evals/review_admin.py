"""Review rules in the console (Evals › Review rules): viewer+ reads, admin+ changes and deletes;
writes go through `evals.review_services` (validated and audited), as the API's do."""

from __future__ import annotations

from django.contrib import admin

from evals import review_services
from evals.models_review import ReviewRule
from tenancy.admin_site import OrganizationScopedAdmin, admin_site, adopt
from tenancy.models import Role


@admin.register(ReviewRule, site=admin_site)
class ReviewRuleAdmin(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("name", "project", "dataset_name", "score_name", "source", "operator", "value", "enabled")
    list_filter = ("enabled", "source")
    list_select_related = ("project__organization",)
    search_fields = ("name", "dataset_name", "score_name")
    fields = (
        "project", "name", "dataset_name", "score_name", "source", "data_type", "operator", "value", "string_value",
        "require_comment", "enabled",
    )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("project",)

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in review_services.RULE_EDITABLE if name in form.cleaned_data}
        if change:
            review_services.review_rule_update(rule=obj, actor=request.user, **data)
        else:
            saved = review_services.review_rule_create(project=form.cleaned_data["project"], actor=request.user, **data)
            adopt(obj, saved)

    def delete_model(self, request, obj):
        review_services.review_rule_delete(rule=obj, actor=request.user)
