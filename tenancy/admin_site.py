"""The admin console for organization members (not only superusers).

Every app registers its ModelAdmins on `admin_site`, not on django.contrib.admin.site, and scopes
them by subclassing `OrganizationScopedAdmin`. Django's model permissions (auth.Permission,
`is_staff`) play no part here: what a person sees and does follows from their role in each
organization (`tenancy.models.Role`); superusers act as owners everywhere.

Views that are not ModelAdmins (the trace pages: data-plane models with composite keys) are added
with `admin_site.register_view(...)`; they are served behind the same login and listed on the index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ForeignKey, QuerySet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse

from tenancy.models import Membership, Organization, Project, Role, User, role_at_least

# Role requirements beyond the four organization roles.
SUPERUSER_ONLY = "superuser"
NOBODY = "nobody"

_ROLES_ATTR = "_lookglass_console_roles"


def console_roles(request) -> dict:
    """{organization_id: role} of the person making the request, read once per request.

    Superusers get an empty dict: they are not scoped, and listing every organization would cost a
    query per request for nothing.
    """
    cached = getattr(request, _ROLES_ATTR, None)
    if cached is not None:
        return cached
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated or user.is_superuser:
        roles = {}
    else:
        roles = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
    setattr(request, _ROLES_ATTR, roles)
    return roles


def visible_projects(request) -> QuerySet[Project]:
    """The projects a console page may show the requester: every project of every organization they
    are a member of, whatever the role (superusers: all). The one rule every console page resolves
    projects through (the trace, prompt, feedback, dataset and pricing pages), using the roles already
    read for this request; another organization's project is then as absent as a missing one."""
    queryset = Project.objects.select_related("organization")
    if is_superuser(request):
        return queryset
    return queryset.filter(organization_id__in=list(console_roles(request)))


def is_superuser(request) -> bool:
    user = request.user
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def organization_ids_with(request, role: str) -> list:
    """Organizations where the requester holds at least `role` (not meaningful for superusers)."""
    if role in (NOBODY, SUPERUSER_ONLY):
        return []
    return [org_id for org_id, r in console_roles(request).items() if role_at_least(r, role)]


def allowed(request, role: str, organization_id=None, *, anywhere: bool = False) -> bool:
    """Does the requester hold `role` in `organization_id` (or, with anywhere=True, in any org)?"""
    if role == NOBODY:
        return False
    if is_superuser(request):
        return True
    if role == SUPERUSER_ONLY:
        return False
    if anywhere:
        return bool(organization_ids_with(request, role))
    return role_at_least(console_roles(request).get(organization_id), role)


class ConsoleAuthenticationForm(AdminAuthenticationForm):
    """Admits superusers and organization members; `is_staff` is not required."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct %(username)s and password of an account that belongs to an "
            "organization. Note that the password is case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user):
        AuthenticationForm.confirm_login_allowed(self, user)
        if not (user.is_superuser or Membership.objects.filter(user=user).exists()):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


@dataclass(frozen=True)
class ConsoleView:
    """A page of the console that is not a ModelAdmin.

    `view(request, **kwargs)` runs behind the console login (`has_permission`); it must scope its
    own data. With `link_title`, the index and the sidebar list it under `app_label`/`app_title`.
    `visible(request)` decides whether the link is shown (the view itself still checks access).
    """

    route: str
    view: Callable
    name: str
    link_title: str = ""
    app_label: str = ""
    app_title: str = ""
    visible: Callable | None = None


class LookglassAdminSite(admin.AdminSite):
    site_header = "Lookglass"
    site_title = "Lookglass"
    index_title = "Console"
    site_url = None
    login_form = ConsoleAuthenticationForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._console_views: list[ConsoleView] = []

    def has_permission(self, request):
        user = request.user
        if not (user.is_authenticated and user.is_active):
            return False
        return user.is_superuser or bool(console_roles(request))

    def login(self, request, extra_context=None):
        # Someone signed in who belongs to no organization (they left, were removed, or have not
        # accepted an invitation yet) is sent here by every console page. Django's page would ask
        # them to sign in again, which the login form then refuses: say what is going on instead.
        user = request.user
        member_of_nothing = user.is_authenticated and user.is_active and not self.has_permission(request)
        if request.method == "GET" and member_of_nothing:
            context = {**self.each_context(request), "title": "No organization yet"}
            return TemplateResponse(request, "tenancy/no_membership.html", context, status=403)
        return super().login(request, extra_context)

    def register_view(self, route: str, view: Callable, *, name: str, **link) -> None:
        """Serve `view` at /admin/<route> as `admin:<name>`. Call from an app's admin.py."""
        if any(existing.name == name for existing in self._console_views):
            return
        self._console_views.append(ConsoleView(route=route, view=view, name=name, **link))

    def get_urls(self):
        # Console views come first so they win over the app index route of the same label.
        own = [path(v.route, self.admin_view(v.view), name=v.name) for v in self._console_views]
        # The "view on site" shortcut looks objects up by content type and id with no tenant scope
        # (its 404s tell "exists" from "missing"), and no console model has a public page anyway.
        stock = [p for p in super().get_urls() if getattr(p, "name", None) != "view_on_site"]
        return own + stock

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        apps = {app["app_label"]: app for app in app_list}
        for v in self._console_views:
            if not v.link_title or (app_label and v.app_label != app_label):
                continue
            if v.visible is not None and not v.visible(request):
                continue
            try:
                url = reverse(f"{self.name}:{v.name}", current_app=self.name)
            except NoReverseMatch:
                continue
            entry = {
                "model": None,
                "name": v.link_title,
                "object_name": v.name,
                "perms": {"add": False, "change": False, "delete": False, "view": True},
                "admin_url": url,
                "add_url": None,
                "view_only": True,
            }
            app = apps.get(v.app_label)
            if app is None:
                app = apps[v.app_label] = {
                    "name": v.app_title or v.app_label.title(),
                    "app_label": v.app_label,
                    "app_url": url,
                    "has_module_perms": True,
                    "models": [],
                }
                app_list.append(app)
            app["models"].append(entry)
            app["models"].sort(key=lambda m: m["name"])
        app_list.sort(key=lambda a: a["name"].lower())
        return app_list


admin_site = LookglassAdminSite(name="admin")


class ServiceErrorsAsMessages:
    """Shows a `ValidationError` raised by a service during a save or delete as an error message
    (the admin's transaction is rolled back) instead of a server error."""

    def _refuse_with_message(self, request, error: ValidationError):
        self.message_user(request, "; ".join(error.messages), messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            return self._refuse_with_message(request, error)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as error:
            return self._refuse_with_message(request, error)

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except ValidationError as error:
            return self._refuse_with_message(request, error)


class OrganizationScopedAdmin(ServiceErrorsAsMessages, admin.ModelAdmin):
    """Base ModelAdmin of the console: rows are scoped to the requester's organizations and every
    permission follows from their role there. Subclass it for every model registered on
    `admin_site`.

    Contract for subclasses:

    - `organization_path`: ORM path from the model to its organization, used both to filter the
      queryset (`<path>__in=[org ids]`) and to find an object's organization (following the path
      attribute by attribute). Examples: "organization" (Project), "project__organization" (ApiKey),
      "organization_id" (a plain UUID column, AuditLogEntry), "pk" (Organization itself).
      `None` marks a global model (e.g. a model price catalog): every console user may view it
      (unless `view_role` is NOBODY) and only superusers may add, change or delete it.
    - `view_role`, `add_role`, `change_role`, `delete_role`: the least role needed in the object's
      organization: a `Role` value, `SUPERUSER_ONLY`, or `NOBODY` (not even superusers, e.g. the
      append-only audit log). Without an object (changelist, add page) a person needs that role in
      at least one organization. Superusers pass every check except NOBODY.
    - The queryset holds only rows of organizations where the requester has `view_role`, so an
      object of another organization opened by URL gets the admin's "doesn't exist" redirect,
      exactly like a missing one. Don't override `get_queryset` without calling super().
    - Foreign-key choices to Organization, Project and User are limited to the organizations where
      the requester has `add_role` (change forms normally make those fields read-only); override
      `scoped_choices()` for other related models. A submitted id outside the choices fails
      form validation.
    - Plain foreign-key names in `list_filter` are shown with RelatedOnlyFieldListFilter, so a
      filter never lists other tenants' objects.
    - Writes that must be audited belong in `tenancy.services`: override `save_model` /
      `delete_model` / `delete_queryset` and call the service there. A `ValidationError` raised by
      a service is shown as an error message instead of a server error, and the transaction is
      rolled back.
    - `delete_queryset` (the "delete selected" action) is checked object by object.
    - Custom actions: decorate with `@admin.action(permissions=["<name>"])` and define
      `has_<name>_permission(request)`; check each object again with `allowed(...)`.
    """

    # The site does not serve the "view on site" shortcut (see LookglassAdminSite.get_urls).
    view_on_site = False

    organization_path: str | None = "organization"
    view_role: str = Role.VIEWER
    add_role: str = Role.ADMIN
    change_role: str = Role.ADMIN
    delete_role: str = NOBODY

    # --- scoping -------------------------------------------------------------------------------
    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_superuser(request):
            return queryset if self.view_role != NOBODY else queryset.none()
        if self.view_role in (NOBODY, SUPERUSER_ONLY):
            return queryset.none()
        if self.organization_path is None:
            return queryset
        visible = organization_ids_with(request, self.view_role)
        return queryset.filter(**{f"{self.organization_path}__in": visible})

    def organization_id_of(self, obj):
        if self.organization_path is None:
            return None
        *hops, last = self.organization_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
        if last == "pk":
            return obj.pk
        attname = f"{last}_id"
        return getattr(obj, attname) if hasattr(obj, attname) else getattr(obj, last)

    def _permitted(self, request, role: str, obj=None, *, reading: bool = False) -> bool:
        if self.organization_path is None:
            if reading and role not in (NOBODY, SUPERUSER_ONLY):
                return self.admin_site.has_permission(request)
            return role != NOBODY and is_superuser(request)
        if obj is None:
            return allowed(request, role, anywhere=True)
        return allowed(request, role, self.organization_id_of(obj))

    # --- permissions (roles, never auth.Permission) ---------------------------------------------
    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._permitted(request, self.view_role, obj, reading=True) or self.has_change_permission(
            request, obj
        )

    def has_add_permission(self, request):
        return self._permitted(request, self.add_role)

    def has_change_permission(self, request, obj=None):
        return self._permitted(request, self.change_role, obj)

    def has_delete_permission(self, request, obj=None):
        return self._permitted(request, self.delete_role, obj)

    # --- forms ------------------------------------------------------------------------------------
    def scoped_choices(self, request, related_model) -> QuerySet | None:
        """Queryset of choices for a foreign key to `related_model`, or None to keep Django's."""
        if is_superuser(request):
            return None
        org_ids = organization_ids_with(request, self.add_role)
        if related_model is Organization:
            return Organization.objects.filter(pk__in=org_ids)
        if related_model is Project:
            return Project.objects.filter(organization_id__in=org_ids).select_related("organization")
        if related_model is User:
            return User.objects.filter(memberships__organization_id__in=org_ids).distinct()
        return None

    def formfield_for_foreignkey(self, db_field: ForeignKey, request, **kwargs):
        if "queryset" not in kwargs:
            choices = self.scoped_choices(request, db_field.related_model)
            if choices is not None:
                kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request):
        scoped = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                try:
                    field = self.model._meta.get_field(entry)
                except FieldDoesNotExist:
                    field = None
                if field is not None and field.is_relation and field.many_to_one:
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
            scoped.append(entry)
        return scoped

    # --- writes -----------------------------------------------------------------------------------
    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                if not self.has_delete_permission(request, obj):
                    raise PermissionDenied
                self.delete_model(request, obj)


CONFIRM = "confirm"

# A page that shows a background job reloads itself this often while the job is queued or running
# (a meta refresh in admin/base_site.html: no script, and it stops once the view passes None).
REFRESH_SECONDS = 5


def refresh_while(busy: bool) -> int | None:
    """The `refresh_seconds` of a page's context: REFRESH_SECONDS while something on it is `busy`."""
    return REFRESH_SECONDS if busy else None


def confirmed(request) -> bool:
    """Was this POST sent again from its `confirmation_page`?"""
    return bool(request.POST.get(CONFIRM))


def confirmation_page(request, *, title: str, question: str, consequences: list[str], button: str,
                      cancel_url: str) -> TemplateResponse:
    """What an admin action that cannot be undone shows first: what it is about to do, and the same
    form posted again with `confirm` (as the console does before `production` moves). The view checks
    `confirmed(request)` itself, so nothing happens without the second POST, script or not."""
    fields = [(name, value) for name, values in request.POST.lists()
              if name not in ("csrfmiddlewaretoken", CONFIRM) for value in values]
    context = {
        **admin_site.each_context(request),
        "title": title,
        "question": question,
        "consequences": consequences,
        "fields": fields,
        "button": button,
        "action": request.get_full_path(),
        "cancel_url": cancel_url,
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/lookglass_confirm.html", context)


def adopt(target, source) -> None:
    """Make the unsaved admin instance `target` stand for `source`, the row a service created, so
    the admin's redirect and change log point at the real object."""
    for field in type(source)._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


class RegionChoiceField(forms.ChoiceField):
    def __init__(self, **kwargs):
        from django.conf import settings

        kwargs.setdefault("choices", [(name, name) for name in settings.DATA_REGIONS])
        kwargs.setdefault("initial", settings.DEFAULT_REGION)
        kwargs.setdefault("help_text", "Where this project's traces are stored. It cannot be changed later.")
        super().__init__(**kwargs)
