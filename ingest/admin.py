"""Console pages for re-pricing stored calls (`/admin/pricing/reprice/`, and its runs at
`/admin/pricing/reprice/runs/<project>/`): a write to the telemetry tables, so it lives with the write
path; the catalog's admin links here by URL name. A re-pricing runs in the background on the
project's region queue (`ingest.reprice`); the runs page shows its counts as they grow. The stored
costs it replaces are not kept, so a valid form is shown back for confirmation first."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from ingest import services
from pricing.admin import UNPRICED_DAYS, _writable_projects
from pricing.models import RepriceRun
from pricing.selectors import prices_visible_to
from tenancy.admin_site import admin_site, allowed, confirmation_page, confirmed, is_superuser, refresh_while
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
        # The service refuses more too; said here, before the confirmation, rather than after it.
        if len(set(cleaned["model_list"])) > services.MAX_REPRICE_MODELS:
            self.add_error("models", f"At most {services.MAX_REPRICE_MODELS} model names at once.")
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
            if not confirmed(request):
                return _confirm_reprice(request, c, prices)
            try:
                run = services.reprice_run_create(
                    project=c["project"], actor=request.user, since=c["since"], until=c["until"],
                    models=c["model_list"] or None, prices=prices or None,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(
                    request, f"{c['project']}: re-pricing {run.id} queued; it runs in the project's region "
                    f"({c['project'].region}) and its counts grow below as it goes.",
                )
                return HttpResponseRedirect(reverse("admin:pricing_reprice_runs", args=[c["project"].id]))
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


def _utc(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _confirm_reprice(request, c, prices):
    """What a re-pricing will change, before anything is queued: the project, the window, the models."""
    project = c["project"]
    # An empty "until" means "now" when the confirmed form arrives, not when this page was drawn.
    until = f"{_utc(c['until'])} UTC" if request.POST.get("until") else "now (the moment you confirm)"
    consequences = [
        f"Project: {project}, in its region ({project.region}).",
        f"Calls that started from {_utc(c['since'])} UTC until {until}.",
    ]
    if c["model_list"]:
        consequences.append("Only calls of these models (as sent): " + ", ".join(c["model_list"]) + ".")
    if prices:
        consequences.append("Only calls of the models these prices match: "
                            + ", ".join(f"{p.model_name} ({p.match_pattern})" for p in prices) + ".")
    if not c["model_list"] and not prices:
        consequences.append("Every model.")
    consequences += [
        "Their stored costs are recomputed with the price table as it is now (each call at its own start "
        "time, project prices first) and replace the costs stored today, which are not kept; traces, "
        "dashboards and their daily rollups show the new costs. Costs the client sent are kept.",
        "It runs in the background, batch by batch; the project's runs page shows how far it got.",
    ]
    back = {key: request.POST.get(key, "") for key in ("project", "since", "until", "models", "prices")}
    return confirmation_page(
        request,
        title="Re-price stored calls?",
        question=f"Re-price the stored calls of {project}?",
        consequences=consequences,
        button="Yes, re-price",
        cancel_url=reverse("admin:pricing_reprice") + "?" + urlencode({k: v for k, v in back.items() if v}),
    )


RUNS_LISTED = 50


def reprice_runs_view(request, project_id):
    """The project's re-pricing runs, newest first, with status and counts (admins of the project)."""
    project = _writable_projects(request).filter(id=project_id).first()
    if project is None:
        raise Http404("no such project")
    runs = list(RepriceRun.objects.filter(project=project).select_related("requested_by")
                .order_by("-created_at")[:RUNS_LISTED])
    context = {
        **admin_site.each_context(request),
        "title": f"Re-pricing runs · {project}",
        "project": project,
        "runs": runs,
        "listed": RUNS_LISTED,
        "refresh_seconds": refresh_while(any(run.in_progress for run in runs)),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/pricing/reprice_runs.html", context)


def _may_reprice(request) -> bool:
    return is_superuser(request) or allowed(request, Role.ADMIN, anywhere=True)


admin_site.register_view("pricing/reprice/runs/<uuid:project_id>/", reprice_runs_view, name="pricing_reprice_runs")
admin_site.register_view(
    "pricing/reprice/", reprice_view, name="pricing_reprice",
    link_title="Re-price stored calls", app_label="pricing", app_title="Pricing", visible=_may_reprice,
)
