"""Console pages for the control plane, scoped by organization and role.

What each role may do (superusers act as owners everywhere; "—" means nobody, superusers included):

    model            view     add         change          delete   extra
    Organization     viewer   superuser   owner (name)    —
    Membership       viewer   owner       owner (role)    owner
    Invitation       admin    owner       —               —        revoke: owner
    Project          viewer   admin       admin (name)    —
    ApiKey           admin    admin       —               —        revoke: admin
    AuditLogEntry    admin    —           —               —
    User             a member of a shared organization (email, name); only superusers edit

API keys are for admins: a public key alone already allows browser-side feedback writes, which a
viewer must not be able to make. Projects and organizations are not deleted from the console:
their traces live in region databases and need a purge that does not exist yet.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from tenancy import services
from tenancy.admin_site import (
    NOBODY,
    SUPERUSER_ONLY,
    OrganizationScopedAdmin,
    RegionChoiceField,
    ServiceErrorsAsMessages,
    admin_site,
    adopt,
    allowed,
    confirmation_page,
    confirmed,
    console_roles,
    is_superuser,
    organization_ids_with,
)
from tenancy.models import ApiKey, AuditLogEntry, Invitation, Membership, Organization, Project, Role, User


@admin.register(Organization, site=admin_site)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    view_role = Role.VIEWER
    add_role = SUPERUSER_ONLY
    change_role = Role.OWNER
    delete_role = NOBODY

    list_display = ("name", "created_at")
    search_fields = ("name",)

    def get_fields(self, request, obj=None):
        return ["name"] if obj is None else ["name", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["created_at"]

    def save_model(self, request, obj, form, change):
        if change:
            original = Organization.objects.get(pk=obj.pk)
            saved = services.organization_update(
                organization=original, name=obj.name, actor=request.user
            )
        else:
            # The person creating an organization owns it, so it never starts without an owner.
            saved = services.organization_create(name=obj.name, owner=request.user)
        adopt(obj, saved)


@admin.register(Membership, site=admin_site)
class MembershipAdmin(OrganizationScopedAdmin):
    view_role = Role.VIEWER
    add_role = Role.OWNER
    change_role = Role.OWNER
    delete_role = Role.OWNER

    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("organization", "role")
    list_select_related = ("organization", "user")
    search_fields = ("user__email", "user__name")

    def get_fields(self, request, obj=None):
        fields = ["organization", "user", "role"]
        return fields if obj is None else [*fields, "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["organization", "user", "created_at"]

    def save_model(self, request, obj, form, change):
        if change:
            original = Membership.objects.select_related("organization", "user").get(pk=obj.pk)
            saved = services.membership_set_role(
                membership=original, role=obj.role, actor=request.user
            )
        else:
            saved = services.membership_add(
                organization=obj.organization, user=obj.user, role=obj.role, actor=request.user
            )
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.membership_remove(membership=obj, actor=request.user)


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["organization", "email", "role"]

    def clean(self):
        cleaned = super().clean()
        organization, email = cleaned.get("organization"), cleaned.get("email")
        if organization and email and Membership.objects.filter(
            organization=organization, user__email__iexact=email.strip()
        ).exists():
            self.add_error("email", "This person is already a member of the organization.")
        return cleaned


@admin.register(Invitation, site=admin_site)
class InvitationAdmin(OrganizationScopedAdmin):
    view_role = Role.ADMIN
    add_role = Role.OWNER
    change_role = NOBODY
    delete_role = NOBODY

    form = InvitationForm
    list_display = ("email", "organization", "role", "state", "invited_by", "created_at", "expires_at")
    list_filter = ("organization", "role")
    list_select_related = ("organization", "invited_by")
    search_fields = ("email",)
    actions = ["revoke_invitations"]
    detail_fields = ["organization", "email", "role", "state", "invited_by", "created_at", "expires_at",
                     "accepted_at", "revoked_at"]

    @admin.display(description="state")
    def state(self, obj):
        if obj.accepted_at:
            return "accepted"
        if obj.revoked_at:
            return "revoked"
        return "pending" if obj.is_pending else "expired"

    def get_fields(self, request, obj=None):
        return ["organization", "email", "role"] if obj is None else self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.detail_fields

    def save_model(self, request, obj, form, change):
        invitation, _token = services.invitation_create(
            organization=obj.organization, email=obj.email, role=obj.role, invited_by=request.user
        )
        adopt(obj, invitation)
        # The token travels only in the email; the console never shows or keeps it.
        self.message_user(request, f"An invitation was emailed to {invitation.email}.", messages.SUCCESS)

    def has_revoke_permission(self, request):
        return allowed(request, Role.OWNER, anywhere=True)

    @admin.action(description="Revoke selected invitations", permissions=["revoke"])
    def revoke_invitations(self, request, queryset):
        invitations = list(queryset.select_related("organization", "invited_by"))
        if not all(allowed(request, Role.OWNER, invitation.organization_id) for invitation in invitations):
            raise PermissionDenied
        pending = [invitation for invitation in invitations if invitation.is_pending]
        if not pending:
            # Another organization's invitation is not in the queryset: it reads like a missing one.
            self.message_user(request, "None of the selected invitations is pending: nothing was revoked.",
                              messages.WARNING)
            return None
        if not confirmed(request):
            return self._confirm_revoke(request, pending, not_pending=len(invitations) - len(pending))
        with transaction.atomic():
            for invitation in pending:
                services.invitation_revoke(invitation=invitation, actor=request.user)
        self.message_user(request, f"Revoked {len(pending)} invitation(s).", messages.SUCCESS)
        return None

    CONFIRMATION_LISTS = 50  # invitations named on the confirmation page; the rest are counted

    def _confirm_revoke(self, request, pending, *, not_pending: int):
        named = [
            f"{i.email} to {i.organization} as {i.role}"
            f"{', invited by ' + i.invited_by.email if i.invited_by else ''}, expires {i.expires_at:%Y-%m-%d %H:%M} UTC"
            for i in pending[:self.CONFIRMATION_LISTS]
        ]
        if len(pending) > self.CONFIRMATION_LISTS:
            named.append(f"… and {len(pending) - self.CONFIRMATION_LISTS} more.")
        if not_pending:
            named.append(f"{not_pending} other selected invitation(s) are no longer pending (accepted, revoked or "
                         "expired) and stay as they are.")
        return confirmation_page(
            request,
            title="Revoke invitations?",
            question=f"Revoke {len(pending)} pending invitation(s)?",
            consequences=[
                *named,
                "The links in their emails stop working at once; a revoked invitation cannot be restored, "
                "only sent again.",
            ],
            button="Yes, revoke",
            cancel_url=request.get_full_path(),
        )


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["organization", "name", "region"]

    def clean(self):
        cleaned = super().clean()
        # On change the organization is read-only, so the model form skips the (organization,
        # name) constraint; check it here rather than fail in the service.
        name = cleaned.get("name")
        if self.instance.pk and name and Project.objects.filter(
            organization_id=self.instance.organization_id, name=name.strip()
        ).exclude(pk=self.instance.pk).exists():
            self.add_error("name", "A project with this name already exists in the organization.")
        return cleaned


@admin.register(Project, site=admin_site)
class ProjectAdmin(OrganizationScopedAdmin):
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = NOBODY

    form = ProjectForm
    list_display = ("name", "organization", "region", "created_at", "traces")
    list_filter = ("organization", "region")
    list_select_related = ("organization",)
    search_fields = ("name",)

    @admin.display(description="traces")
    def traces(self, obj):
        try:
            url = reverse("admin:traces_trace_list")
        except NoReverseMatch:
            return ""
        return format_html('<a href="{}?project={}">Traces</a>', url, obj.pk)

    def get_fields(self, request, obj=None):
        fields = ["organization", "name", "region"]
        return fields if obj is None else [*fields, "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A project's region is pinned at creation: its data lives there.
        return [] if obj is None else ["organization", "region", "created_at"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "region":
            return RegionChoiceField(label="Region")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            original = Project.objects.select_related("organization").get(pk=obj.pk)
            saved = services.project_update(project=original, name=obj.name, actor=request.user)
        else:
            saved = services.project_create(
                organization=obj.organization, name=obj.name, region=obj.region, actor=request.user
            )
        adopt(obj, saved)


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["project", "note", "expires_at"]

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


@admin.register(ApiKey, site=admin_site)
class ApiKeyAdmin(OrganizationScopedAdmin):
    organization_path = "project__organization"
    view_role = Role.ADMIN
    add_role = Role.ADMIN
    # Keys are immutable: revoke one and issue another.
    change_role = NOBODY
    delete_role = NOBODY
    revoke_role = Role.ADMIN

    form = ApiKeyForm
    list_display = ("public_key", "display_secret", "project", "note", "state", "created_by", "created_at",
                    "last_used_at", "expires_at")
    list_filter = ("project",)
    list_select_related = ("project__organization", "created_by")
    search_fields = ("public_key", "note")
    actions = ["revoke_keys"]
    # secret_hash is never listed here, nor anywhere in the console.
    detail_fields = ["project", "public_key", "display_secret", "note", "state", "created_by", "created_at",
                     "expires_at", "last_used_at", "revoked_at"]

    @admin.display(description="secret")
    def display_secret(self, obj):
        return obj.display_secret

    @admin.display(description="state")
    def state(self, obj):
        if obj.revoked_at:
            return "revoked"
        return "active" if obj.is_active else "expired"

    def get_fields(self, request, obj=None):
        return ["project", "note", "expires_at"] if obj is None else self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.detail_fields

    def save_model(self, request, obj, form, change):
        api_key, secret = services.api_key_create(
            project=obj.project, actor=request.user, note=obj.note, expires_at=obj.expires_at
        )
        adopt(obj, api_key)
        obj._one_time_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(obj, "_one_time_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        # Rendered straight into this response rather than put in a message: messages live in a
        # cookie or the session until read, and the secret must not be stored anywhere.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API key created",
            "api_key": obj,
            "secret": secret,
            "change_url": reverse("admin:tenancy_apikey_change", args=[obj.pk]),
            "changelist_url": reverse("admin:tenancy_apikey_changelist"),
        }
        response = TemplateResponse(request, "admin/tenancy/apikey/secret_once.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_revoke"] = bool(
            obj is not None and obj.revoked_at is None and self._can_revoke(request, obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _can_revoke(self, request, obj) -> bool:
        return allowed(request, self.revoke_role, obj.project.organization_id)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="tenancy_apikey_revoke",
            ),
            *super().get_urls(),
        ]

    def revoke_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        api_key = self.get_object(request, unquote(object_id))
        if api_key is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self._can_revoke(request, api_key):
            raise PermissionDenied
        if not confirmed(request):
            return self._confirm_revoke(request, [api_key], cancel_url=reverse("admin:tenancy_apikey_change",
                                                                              args=[api_key.pk]))
        services.api_key_revoke(api_key=api_key, actor=request.user)
        self.message_user(request, f"Revoked {api_key.public_key}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:tenancy_apikey_change", args=[api_key.pk]))

    def has_revoke_permission(self, request):
        return allowed(request, self.revoke_role, anywhere=True)

    def _confirm_revoke(self, request, api_keys, *, cancel_url):
        # A revoked key stays revoked (keys are immutable): the clients using it stop at once.
        return confirmation_page(
            request,
            title="Revoke API keys?",
            question=f"Revoke {len(api_keys)} API key(s)?",
            consequences=[
                *(f"{k.public_key} ({k.project}{', ' + k.note if k.note else ''})" for k in api_keys),
                "Requests signed with them are refused from now on; a revoked key cannot be restored.",
            ],
            button="Yes, revoke",
            cancel_url=cancel_url,
        )

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke_keys(self, request, queryset):
        api_keys = list(queryset.select_related("project"))
        if not all(self._can_revoke(request, api_key) for api_key in api_keys):
            raise PermissionDenied
        active = [api_key for api_key in api_keys if api_key.revoked_at is None]
        if active and not confirmed(request):
            return self._confirm_revoke(request, active, cancel_url=request.get_full_path())
        revoked = 0
        with transaction.atomic():
            for api_key in api_keys:
                if api_key.revoked_at is None:
                    services.api_key_revoke(api_key=api_key, actor=request.user)
                    revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)


class AuditOrganizationFilter(admin.SimpleListFilter):
    """organization_id is a plain column (history outlives organizations), so the stock related
    filter does not apply; this one offers only the organizations the requester may audit."""

    title = "organization"
    parameter_name = "organization"

    def lookups(self, request, model_admin):
        organizations = Organization.objects.all()
        if not is_superuser(request):
            organizations = organizations.filter(pk__in=organization_ids_with(request, model_admin.view_role))
        return [(str(o.pk), o.name) for o in organizations]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value not in {key for key, _ in self.lookup_choices}:
            return queryset.none()
        return queryset.filter(organization_id=value)


@admin.register(AuditLogEntry, site=admin_site)
class AuditLogEntryAdmin(OrganizationScopedAdmin):
    organization_path = "organization_id"
    view_role = Role.ADMIN
    # Append-only, for everyone (a database trigger refuses UPDATE and DELETE too).
    add_role = NOBODY
    change_role = NOBODY
    delete_role = NOBODY

    list_display = ("created_at", "organization_name", "actor_email", "action", "target_type", "target_id")
    list_filter = (AuditOrganizationFilter, "action")
    search_fields = ("actor_email", "target_id")
    date_hierarchy = "created_at"
    detail_fields = [
        "created_at", "organization_name", "organization_id", "actor_email", "actor_id", "action",
        "target_type", "target_id", "data_pretty",
    ]

    @admin.display(description="data")
    def data_pretty(self, obj):
        pretty = json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", pretty)

    def get_fields(self, request, obj=None):
        return self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        return self.detail_fields


class ConsoleUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email address already exists.")
        return email


class ConsoleUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "name", "is_active", "is_superuser")

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A user with this email address already exists.")
        return email


@admin.register(User, site=admin_site)
class UserAdmin(ServiceErrorsAsMessages, DjangoUserAdmin):
    """Members see the people of their organizations (email and name only); superusers edit."""

    view_on_site = False
    form = ConsoleUserChangeForm
    add_form = ConsoleUserCreationForm
    ordering = ("email",)
    list_display = ("email", "name", "is_active", "is_superuser", "last_login")
    list_filter = ("is_active", "is_superuser")
    search_fields = ("email", "name")
    filter_horizontal = ()
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        ("Access", {"fields": ("is_active", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {
            "classes": ("wide",),
            "fields": ("email", "name", "usable_password", "password1", "password2"),
        }),
    )
    readonly_fields = ("last_login", "date_joined")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_superuser(request):
            return queryset
        return queryset.filter(memberships__organization_id__in=list(console_roles(request))).distinct()

    def get_list_display(self, request):
        return self.list_display if is_superuser(request) else ("email", "name")

    def get_list_filter(self, request):
        return self.list_filter if is_superuser(request) else ()

    def get_fieldsets(self, request, obj=None):
        if is_superuser(request):
            return super().get_fieldsets(request, obj)
        return ((None, {"fields": ("email", "name")}),)

    def get_readonly_fields(self, request, obj=None):
        if is_superuser(request):
            return self.readonly_fields
        return ("email", "name")

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        # Objects outside the requester's organizations are already absent from get_queryset.
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request):
        return is_superuser(request)

    def has_change_permission(self, request, obj=None):
        return is_superuser(request)

    def has_delete_permission(self, request, obj=None):
        return is_superuser(request)

    def save_model(self, request, obj, form, change):
        # is_staff means nothing to the console; keep it aligned with is_superuser, as the model says.
        obj.is_staff = obj.is_superuser
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        # Memberships go through the service first: audited, and never the last owner.
        with transaction.atomic():
            for membership in Membership.objects.filter(user=obj).select_related("organization", "user"):
                services.membership_remove(membership=membership, actor=request.user)
            obj.delete()

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for user in queryset:
                self.delete_model(request, user)
