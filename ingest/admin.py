"""Console page for re-pricing stored calls (`/admin/pricing/reprice/`): a write to the telemetry
tables, so it lives with the write path; the catalog's admin links here by URL name."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from ingest import services
from pricing.admin import UNPRICED_DAYS, _writable_projects
from pricing.selectors import prices_visible_to
from tenancy.admin_site import admin_site, allowed, is_superuser
from tenancy.models import Project, Role


class RepriceForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none(), help_text="Only this project's calls.")
    since = forms.DateTimeField(help_text="Calls that started at or after this time (UTC).")
    until = forms.DateTimeField(required=False, help_text="…and before this time (UTC). Empty: now.")
    models = forms.CharField(
        required=False, help_text="Only these model names as sent, comma-separated. Empty: every model "
        "(or the models the selected prices match).",
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until") or timezone.now()
        cleaned["until"] = until
        if since and since >= until:
            self.add_error("until", "Must be later than the start.")
        cleaned["model_list"] = [m.strip() for m in (cleaned.get("models") or "").split(",") if m.strip()]
        return cleaned


def _uuid_or_404(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404("no such project") from None


def reprice_view(request):
    projects = _writable_projects(request)
    data = request.POST if request.method == "POST" else request.GET
    # Another organization's project (or one the requester may only read) does not exist here.
    if data.get("project") and not projects.filter(id=_uuid_or_404(data["project"])).exists():
        raise Http404("no such project")
    price_ids = [_uuid_or_404(v) for v in data.get("prices", "").split(",") if v.strip()]
    prices = list(prices_visible_to(user=request.user).filter(id__in=price_ids)) if price_ids else []
    if len(prices) != len(set(price_ids)):
        raise Http404("no such price")
    if request.method == "POST":
        form = RepriceForm(request.POST, projects=projects)
        if form.is_valid():
            c = form.cleaned_data
            try:
                report = services.observations_reprice(
                    project=c["project"], actor=request.user, since=c["since"], until=c["until"],
                    models=c["model_list"] or None, prices=prices or None,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(
                    request,
                    f"{c['project']}: {report.examined} calls examined, {report.repriced} re-priced "
                    f"({report.newly_priced} newly priced), {report.still_unpriced} still without a price.",
                )
                return HttpResponseRedirect(reverse("admin:pricing_unpriced_models"))
    else:
        initial = {"since": timezone.now() - timedelta(days=UNPRICED_DAYS)}
        for key in ("project", "since", "until", "models"):
            if request.GET.get(key):
                initial[key] = request.GET[key]
        form = RepriceForm(initial=initial, projects=projects)
    context = {
        **admin_site.each_context(request),
        "title": "Re-price stored calls",
        "form": form,
        "prices": prices,
        "prices_param": ",".join(str(p.id) for p in prices),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/pricing/reprice.html", context, status=400 if form.errors else 200)


def _may_reprice(request) -> bool:
    return is_superuser(request) or allowed(request, Role.ADMIN, anywhere=True)


admin_site.register_view(
    "pricing/reprice/", reprice_view, name="pricing_reprice",
    link_title="Re-price stored calls", app_label="pricing", app_title="Pricing", visible=_may_reprice,
)
