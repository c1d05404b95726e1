"""Trace links the Langfuse SDKs print (`get_trace_url`, the `htmlPath` of the read API, v2's
`/trace/<id>`): they land on the console's trace page, after login when needed.

The console page does the access check itself (another organization's trace answers 404 like a
missing one); these views only translate the address.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from tenancy.admin_site import admin_site, visible_projects
from traces.selectors import trace_project


def _console_trace_url(project_id, trace_id: str) -> str:
    return reverse("admin:traces_trace_detail", args=[project_id, trace_id])


def project_trace(request, project_id, trace_id):
    """`/project/<project id>/traces/<trace id>` (SDK v3+ and the read API's htmlPath)."""
    return HttpResponseRedirect(_console_trace_url(project_id, trace_id))


def trace(request, trace_id):
    """`/trace/<trace id>` (SDK v2): the project is not in the address, so look among the caller's."""
    if not admin_site.has_permission(request):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    project = trace_project(projects=visible_projects(request), trace_id=trace_id)
    if project is None:
        raise Http404("No such trace.")
    return HttpResponseRedirect(_console_trace_url(project.id, trace_id))
