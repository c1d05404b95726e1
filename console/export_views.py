"""The console's exports page: a project's exports with their status and build progress, a form to
ask for one (the whole project, a time range, or one end user's data) and a download button on each
finished one. Admins only, like erasure requests: an export holds every end user's data. Reads
through `privacy.selectors`, writes through `privacy.services.export_create` (audited, queued on the
project's region); the download button is the same signed, audited link the APIs hand out."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.access import console_login_required, may_export, project_or_404
from console.views import _page
from privacy import exports as export_files
from privacy import selectors, services
from privacy.models import JobStatus

LISTED = 100
# While a build is queued or running the page reloads itself this often (no script needed).
REFRESH_SECONDS = 5


class ExportForm(forms.Form):
    since = forms.DateTimeField(required=False, label="From (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label="Until (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    user_id = forms.CharField(required=False, max_length=1000, label="Only this end user (id)")

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            raise ValidationError("“Until” must be after “From”.")
        return cleaned


def _admin_project(request, project_id):
    """The project (404 for one the requester cannot see), refused (403) below the admin role."""
    project = project_or_404(request, project_id)
    if not may_export(request, project):
        raise PermissionDenied("Exports hold every end user's data: they need the admin role.")
    return project


def _render(request, project, form, *, status: int = 200):
    rows = []
    for export in selectors.export_list(project=project)[:LISTED]:
        rows.append({"export": export, "download_url": export_files.download_url(request, export)})
    busy = any(row["export"].status in (JobStatus.QUEUED, JobStatus.RUNNING) for row in rows)
    context = {"rows": rows, "form": form, "refresh_seconds": REFRESH_SECONDS if busy else None, "listed": LISTED}
    return _page(request, project, "console/exports.html", context, status=status, section="exports")


@require_GET
@console_login_required
def exports(request, project_id):
    project = _admin_project(request, project_id)
    return _render(request, project, ExportForm())


@require_POST
@console_login_required
def export_create(request, project_id):
    project = _admin_project(request, project_id)
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _render(request, project, form, status=400)
    data = form.cleaned_data
    try:
        export = services.export_create(project=project, since=data["since"], until=data["until"],
                                        user_id=data["user_id"] or None, actor=request.user)
    except ValidationError as exc:
        for messages_ in exc.message_dict.values():
            for message in messages_:
                form.add_error(None, message)
        return _render(request, project, form, status=400)
    messages.success(request, f"Export {export.id} queued: it is built in the project's region ({project.region}).")
    return HttpResponseRedirect(reverse("console:exports", args=[project.id]))
