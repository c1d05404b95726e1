"""Console page for model prices.

    rows                  view                        add / change / delete
    global catalog        every console user          superusers
    project overrides     viewer+ of the organization admin+ of the organization

A superuser's edit of a catalog row marks it `custom`, so `load_model_prices` keeps it.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from pricing import services
from pricing.models import ModelPrice, default_pattern_for
from pricing.pricing import price_for
from pricing.selectors import projects_for_price_overrides
from tenancy.admin_site import (
    OrganizationScopedAdmin,
    admin_site,
    adopt,
    allowed,
    is_superuser,
    organization_ids_with,
)
from tenancy.models import Project, Role
from traces.selectors import unpriced_models

UNPRICED_DAYS = 7


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

    actions = ("reprice_calls",)

    def changelist_view(self, request, extra_context=None):
        # The catalog page lists what it is missing: models seen without a price, with a one-click add.
        extra = {"unpriced": unpriced_rows(request, limit=20), "unpriced_days": UNPRICED_DAYS}
        return super().changelist_view(request, extra_context={**(extra_context or {}), **extra})

    @admin.action(description="Re-price stored calls with the selected prices…")
    def reprice_calls(self, request, queryset):
        rows = list(queryset)
        query = {"prices": ",".join(str(r.id) for r in rows)}
        projects = {r.project_id for r in rows}
        if len(projects) == 1 and None not in projects:
            query["project"] = str(projects.pop())
        starts = [r.effective_from for r in rows if r.effective_from is not None]
        if starts:
            query["since"] = min(starts).strftime("%Y-%m-%d %H:%M:%S")
        return HttpResponseRedirect(reverse("admin:pricing_reprice") + "?" + urlencode(query))

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
        # Calls stored before this price keep their old (or missing) cost until re-priced.
        query = {"prices": str(saved.id), "since": saved.effective_from.strftime("%Y-%m-%d %H:%M:%S")}
        if saved.project_id:
            query["project"] = str(saved.project_id)
        messages.info(request, format_html(
            'Calls stored earlier keep their cost until re-priced: <a href="{}">re-price stored calls</a>.',
            reverse("admin:pricing_reprice") + "?" + urlencode(query),
        ))

    def delete_model(self, request, obj):
        services.model_price_delete(price=obj, actor=request.user)


# --- models seen without a price, and re-pricing ------------------------------------------------


def _readable_projects(request):
    queryset = Project.objects.select_related("organization")
    if is_superuser(request):
        return queryset
    return queryset.filter(organization_id__in=organization_ids_with(request, Role.VIEWER))


def _writable_projects(request):
    return projects_for_price_overrides(user=request.user)


def unpriced_rows(request, *, limit: int = 100, days: int = UNPRICED_DAYS) -> list[dict]:
    """Recent models without a price in the requester's projects, with links to fix them."""
    since = timezone.now() - timedelta(days=days)
    writable = {p.id for p in _writable_projects(request)}
    add_url = reverse("admin:pricing_modelprice_add")
    rows = []
    for item in unpriced_models(projects=list(_readable_projects(request)), since=since, limit=limit):
        # A price added since these calls were stored: they only need re-pricing.
        priced_now = price_for(project_id=item.project.id, model=item.model, at=item.last_seen) is not None
        prefill = {"model_name": item.model[:200], "match_pattern": default_pattern_for(item.model[:200]),
                   "provider": _provider_guess(item.model)}
        row = {"item": item, "priced_now": priced_now, "add_override_url": None, "add_catalog_url": None,
               "reprice_url": None}
        if item.project.id in writable:
            row["add_override_url"] = add_url + "?" + urlencode({**prefill, "project": str(item.project.id)})
            row["reprice_url"] = reverse("admin:pricing_reprice") + "?" + urlencode({
                "project": str(item.project.id), "models": item.model,
                "since": item.first_seen.strftime("%Y-%m-%d %H:%M:%S"),
            })
        if is_superuser(request):
            row["add_catalog_url"] = add_url + "?" + urlencode(prefill)
        rows.append(row)
    return rows


def _provider_guess(model: str) -> str:
    name = model.lower().rsplit("/", 1)[-1]
    for prefix, provider in (("claude", "anthropic"), ("gpt", "openai"), ("o1", "openai"), ("o3", "openai"),
                             ("o4", "openai"), ("text-embedding", "openai"), ("gemini", "google"),
                             ("gemma", "google"), ("mistral", "mistral"), ("codestral", "mistral"),
                             ("ministral", "mistral"), ("llama", "meta"), ("meta-llama", "meta")):
        if name.startswith(prefix) or model.lower().startswith(prefix):
            return provider
    return model.split("/", 1)[0].lower() if "/" in model else "other"


def unpriced_models_view(request):
    context = {
        **admin_site.each_context(request),
        "title": "Models seen without a price",
        "rows": unpriced_rows(request),
        "unpriced_days": UNPRICED_DAYS,
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/pricing/unpriced_models.html", context)


def _may_view_prices(request) -> bool:
    return admin_site.has_permission(request)


admin_site.register_view(
    "pricing/unpriced/", unpriced_models_view, name="pricing_unpriced_models",
    link_title="Models without a price", app_label="pricing", app_title="Pricing", visible=_may_view_prices,
)
