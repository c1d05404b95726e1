"""Console: "add to dataset" on a trace's page.

The trace page (traces/admin.py) renders the form through the `add_to_dataset_form` tag
(evals/templatetags/evals_console.py), so traces/ does not depend on evals/. The form posts here
with its CSRF token; the item is made by `evals.services.dataset_item_from_production`, the same
service as the management API, and the person lands back on the trace page with a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect

from evals import services
from prompts.errors import ApiError
from tenancy.admin_site import admin_site, allowed, visible_projects
from tenancy.models import Role
from traces.admin import trace_detail_url

ADD_ROLE = Role.MEMBER


def can_add_to_dataset(request, project) -> bool:
    return allowed(request, ADD_ROLE, project.organization_id)


def add_to_dataset_view(request, project_id):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    project = visible_projects(request).filter(pk=project_id).first()
    trace_id = request.POST.get("trace_id") or ""
    if project is None or not trace_id:
        raise Http404("No such trace.")
    if not can_add_to_dataset(request, project):
        raise PermissionDenied("Adding to a dataset needs the member role in the organization.")
    dataset_name = request.POST.get("dataset") or ""
    observation_id = request.POST.get("observation_id") or None
    try:
        item, dataset = services.dataset_item_from_production(
            project=project,
            dataset_name=dataset_name,
            trace_id=trace_id,
            observation_id=observation_id,
        )
    except ApiError as exc:
        if exc.status == 404 and exc.message.startswith("Trace"):
            raise Http404("No such trace.") from None
        messages.error(request, f"Not added to dataset {dataset_name!r}: {exc.message}")
    else:
        what = f"Observation {observation_id}" if observation_id else "The trace"
        messages.success(request, f"{what} was added to dataset {dataset.name!r} as item {item.id}.")
    return HttpResponseRedirect(trace_detail_url(project.id, trace_id))


admin_site.register_view(
    "evals/add-to-dataset/<uuid:project_id>/", add_to_dataset_view, name="evals_add_to_dataset",
)


# Review rules' ModelAdmin, and the evaluations page and lists (their own modules; registered on import).
from evals import eval_admin, review_admin  # noqa: E402,F401
