"""Console page for model prices.

    rows                  view                        add / change / delete
    global catalog        every console user          superusers
    project overrides     viewer+ of the organization admin+ of the organization

A superuser's edit of a catalog row marks it `custom`, so `load_model_prices` keeps it.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q

from pricing import services
from pricing.models import ModelPrice
from tenancy.admin_site import (
    OrganizationScopedAdmin,
    admin_site,
    adopt,
    allowed,
    is_superuser,
    organization_ids_with,
)
from tenancy.models import Role


@admin.register(ModelPrice, site=admin_site)
class ModelPriceAdmin(OrganizationScopedAdmin):
    # Mixed scope: `None` makes the base treat rows as global (viewable by every console user,
    # writable by superusers); overrides are narrowed and opened up per organization below.
    organization_path = None
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN

    list_display = (
        "model_name", "provider", "project", "effective_from", "input_price", "cached_input_price",
        "cache_write_price", "output_price", "reasoning_price", "source",
    )
    list_filter = ("provider", "source")
    search_fields = ("model_name", "match_pattern", "project__name")
    ordering = ("provider", "model_name", "-effective_from")
    list_select_related = ("project__organization",)
    fields = (
        "project", "provider", "model_name", "match_pattern", "effective_from", "input_price",
        "cached_input_price", "cache_write_price", "output_price", "reasoning_price", "source",
    )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_superuser(request):
            return queryset
        visible = organization_ids_with(request, self.view_role)
        return queryset.filter(Q(project__isnull=True) | Q(project__organization_id__in=visible))

    def get_readonly_fields(self, request, obj=None):
        # An override never moves to another project or into the catalog.
        return ("source",) if obj is None else ("project", "source")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "project" in form.base_fields and not is_superuser(request):
            form.base_fields["project"].required = True
            form.base_fields["project"].help_text = "The project this price overrides the catalog for."
        elif "project" in form.base_fields:
            form.base_fields["project"].help_text = "Empty: a global catalog price (superusers only)."
        return form

    def _may_write(self, request, obj) -> bool:
        if obj is None:
            return is_superuser(request) or allowed(request, Role.ADMIN, anywhere=True)
        if obj.project_id is None:
            return is_superuser(request)
        return allowed(request, Role.ADMIN, obj.project.organization_id)

    def has_add_permission(self, request):
        return self._may_write(request, None)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS if name in form.cleaned_data}
        if change:
            saved = services.model_price_update(
                price=ModelPrice.objects.get(pk=obj.pk), actor=request.user, data=data
            )
        else:
            saved = services.model_price_create(project=form.cleaned_data.get("project"), actor=request.user, data=data)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.model_price_delete(price=obj, actor=request.user)
