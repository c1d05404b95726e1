"""Who may open a console page, and which project it shows.

The console has the admin's audience and rule: superusers and members of an organization, each
seeing the projects of their organizations (`tenancy.admin_site.visible_projects`). A project of
another organization answers 404, exactly like a missing one.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.urls import reverse

from tenancy.admin_site import admin_site, allowed, visible_projects
from tenancy.models import Project, Role

SESSION_PROJECT = "console_project"


def console_login_required(view):
    """Send anyone who is not a console user to the sign-in page (which explains a missing
    membership), and back here afterwards."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not admin_site.has_permission(request):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return view(request, *args, **kwargs)

    return wrapper


def project_or_404(request, project_id) -> Project:
    project = visible_projects(request).filter(pk=project_id).first()
    if project is None:
        raise Http404("No such project.")
    request.session[SESSION_PROJECT] = str(project.id)
    return project


def may_annotate(request, project: Project) -> bool:
    """Adding scores, comments, dataset items and saved views: members and above (viewers read)."""
    return allowed(request, Role.MEMBER, project.organization_id)


def may_export(request, project: Project) -> bool:
    """Exports and their download links: admins (an export holds every end user's data)."""
    return allowed(request, Role.ADMIN, project.organization_id)
