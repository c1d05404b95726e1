"""The "add to dataset" panel of the console's trace page."""

from __future__ import annotations

from django import template
from django.urls import reverse

from evals import selectors

register = template.Library()


@register.inclusion_tag("admin/evals/_add_to_dataset.html", takes_context=True)
def add_to_dataset_form(context):
    from evals.admin import can_add_to_dataset

    request, project, trace = context["request"], context["project"], context["trace"]
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "trace": trace,
        "can_add": can_add_to_dataset(request, project),
        "datasets": selectors.dataset_names(project=project),
        "observations": [row["obs"] for row in context.get("tree") or ()],
        "memberships": selectors.trace_dataset_memberships(project=project, trace_id=trace.id),
        "action": reverse("admin:evals_add_to_dataset", kwargs={"project_id": project.id}),
    }
