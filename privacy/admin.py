"""Console pages of the privacy app: redaction policies (admins and owners edit their organization's
projects' policies, viewers and members read them; every save goes through `redaction_policy_update`),
erasure requests and retention (confirmed first when they delete sooner), and the receipts of both
jobs, which reload themselves while a job runs."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ValidationError
from django.urls import reverse

from privacy.detectors import DETECTORS
from privacy.models import (
    ErasureKind,
    ErasureRequest,
    JobStatus,
    RedactionPolicy,
    RetentionPolicy,
    RetentionRun,
)
from privacy.policy import RedactionMode
from privacy.retention import effective_retention
from privacy.selectors import deletion_progress, deletion_totals
from privacy.services import (
    MAX_GRACE_DAYS,
    MAX_RETENTION_DAYS,
    MAX_TRACE_IDS,
    clean_erasure_subjects,
    erasure_request_create,
    redaction_policy_update,
    retention_policy_update,
)
from tenancy.admin_site import (
    NOBODY,
    REFRESH_SECONDS,
    OrganizationScopedAdmin,
    admin_site,
    adopt,
    confirmation_page,
    confirmed,
    refresh_while,
)
from tenancy.models import Role

# --- redaction policies -------------------------------------------------------------------------

_INHERIT = ""


class RedactionPolicyForm(forms.ModelForm):
    """The policy with one mode per built-in detector (instead of a JSON map), so an admin sees
    every detector and what it does. Everything is validated again by the service."""

    rotate_salt = forms.BooleanField(
        required=False, label="Rotate the pseudonymization key",
        help_text="Pseudonyms produced from now on no longer match earlier ones.",
    )

    class Meta:
        model = RedactionPolicy
        fields = ("project", "enabled", "default_mode", "phone_default_region", "custom_patterns")
        help_texts = {
            "enabled": "When on, ingestion redacts inputs, outputs, metadata, tool calls, error texts and "
            "score comments before they are stored. Records that cannot be redacted are rejected.",
            "phone_default_region": "ISO 3166 code (US, DE, FR…) for numbers written without +country "
            "code; empty = only international numbers.",
            "custom_patterns": 'Your own patterns (RE2 syntax), e.g. [{"label": "EMPLOYEE_ID", '
            '"pattern": "EMP-\\d{6}", "mode": "mask"}]. At most 20.',
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        modes = self.instance.detector_modes if self.instance and self.instance.pk else {}
        for name, detector in DETECTORS.items():
            self.fields[f"mode_{name}"] = forms.ChoiceField(
                required=False, label=f"{name}", initial=modes.get(name, _INHERIT),
                choices=[(_INHERIT, "— default mode —"), *RedactionMode.choices],
                help_text=f"{detector.description} → [{detector.label}]",
            )
        if "custom_patterns" in self.fields:
            self.fields["custom_patterns"].required = False

    def clean(self):
        cleaned = super().clean()
        cleaned["detector_modes"] = {
            name: cleaned[f"mode_{name}"] for name in DETECTORS if cleaned.get(f"mode_{name}")
        }
        if cleaned.get("custom_patterns") is None:
            cleaned["custom_patterns"] = []
        return cleaned

    def _post_clean(self):
        # The model's clean() checks the detector modes too, so they must be on the instance.
        self.instance.detector_modes = self.cleaned_data.get("detector_modes", {})
        super()._post_clean()


@admin.register(RedactionPolicy, site=admin_site)
class RedactionPolicyAdmin(OrganizationScopedAdmin):
    """Admins and owners edit the policies of their organization's projects; viewers and members
    read them. Every save goes through `redaction_policy_update`, which audits it. Turning a policy
    off (not deleting it) is how redaction stops, so the change is in the audit log."""

    form = RedactionPolicyForm
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = NOBODY
    list_display = ("project", "enabled", "default_mode", "overrides", "pattern_count", "version", "updated_at")
    list_filter = ("enabled", "default_mode")
    list_select_related = ("project__organization",)
    search_fields = ("project__name",)

    @admin.display(description="detector overrides")
    def overrides(self, obj):
        return ", ".join(f"{name}: {mode}" for name, mode in sorted(obj.detector_modes.items())) or "—"

    @admin.display(description="custom patterns")
    def pattern_count(self, obj):
        return len(obj.custom_patterns or [])

    def get_fieldsets(self, request, obj=None):
        main = ["project", "enabled", "default_mode", "phone_default_region"]
        if obj is not None:
            main += ["version", "updated_at"]
            if self.has_change_permission(request, obj):
                main.append("rotate_salt")
        return [
            (None, {"fields": main}),
            ("Built-in detectors", {"fields": [f"mode_{name}" for name in DETECTORS]}),
            ("Custom patterns", {"fields": ["custom_patterns"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("project", "version", "updated_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The per-detector fields are added by the form itself; the model knows nothing of them.
        fields = kwargs.get("fields")
        if fields is None:
            fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [name for name in fields if not name.startswith("mode_")]
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = redaction_policy_update(
            project=obj.project,
            actor=request.user,
            enabled=data["enabled"],
            default_mode=data["default_mode"],
            detector_modes=data["detector_modes"],
            phone_default_region=data["phone_default_region"],
            custom_patterns=data["custom_patterns"],
            rotate_salt=bool(data.get("rotate_salt")),
        )
        adopt(obj, saved)


def _mode_display(name: str):
    # What a person without the change permission sees in place of the per-detector fields.
    @admin.display(description=name)
    def show(self, obj):
        mode = obj.detector_modes.get(name)
        return mode if mode else f"{obj.default_mode} (default mode)"

    return show


for _name in DETECTORS:
    setattr(RedactionPolicyAdmin, f"mode_{_name}", _mode_display(_name))


# --- the receipts of background jobs ---------------------------------------------------------------


class JobReceiptAdmin(OrganizationScopedAdmin):
    """The list and the page of an erasure request or a retention run: both reload themselves while a
    job they show is queued or running (as the re-pricing runs page does) and stop once none is; the
    page says how far the job got (`deletion_progress`)."""

    # Why nothing is said about what is left, per job model (see `deletion_progress`).
    left_unknown = ""

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:
            # The page of rows the list shows, already fetched for it: no query of its own.
            context["refresh_seconds"] = refresh_while(any(job.in_progress for job in context["cl"].result_list))
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and context.get("original") is not None:
            context["refresh_seconds"] = refresh_while(context["original"].in_progress)
        return response

    @admin.display(description="rows deleted")
    def rows_deleted(self, obj):
        # The saved counts, so the list reads no region: a running job's grow each time slice (~40 s).
        rows = intcomma(deletion_totals(counts=obj.counts or {}).deleted)
        return f"{rows} so far" if obj.in_progress else rows

    @admin.display(description="progress")
    def progress(self, obj):
        if obj.status == JobStatus.QUEUED:
            return f"Queued: waiting for a worker in the project's region ({obj.project.region})."
        done = deletion_progress(job=obj)
        parts = [f"{intcomma(done.deleted)} rows deleted"]
        if done.emptied:
            parts.append(f"{intcomma(done.emptied)} rows' payloads emptied")
        if done.files:
            parts.append(f"{intcomma(done.files)} export file(s) deleted")
        what = ", ".join(parts)
        if obj.status == JobStatus.DONE:
            return f"Done: {what}."
        if obj.status == JobStatus.FAILED:
            return f"Failed: {what} before it stopped (see the error below)."
        source = ("counted from the region's batch records just now" if done.live else
                  "as the run last saved them (the region did not answer)")
        left = self.left(obj, done)
        return (f"{obj.get_status_display().capitalize()}: {what} so far, {source}. {left} "
                f"This page reloads every {REFRESH_SECONDS} seconds until the run ends.")

    def left(self, obj, done) -> str:
        return self.left_unknown


# --- erasure requests --------------------------------------------------------------------------


class ErasureRequestForm(forms.ModelForm):
    """A new erasure request: the subject is typed here and handed to the service, which writes it to
    the project's region only; the receipt keeps its keyed hash."""

    subject = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=MAX_TRACE_IDS * 201,
        help_text="The end-user id, the session id, or trace ids (one per line).",
    )
    grace_days = forms.IntegerField(
        min_value=0, max_value=MAX_GRACE_DAYS, initial=7, label="Grace period (days)",
        help_text="Data for the same subject that arrives during this time is erased too.",
    )

    class Meta:
        model = ErasureRequest
        fields = ("project", "kind")

    def clean(self):
        cleaned = super().clean()
        subject = cleaned.get("subject") or ""
        if cleaned.get("kind") == ErasureKind.TRACES:
            cleaned["subjects"] = [line.strip() for line in subject.splitlines() if line.strip()]
        else:
            cleaned["subjects"] = [subject.strip()] if subject.strip() else []
        if cleaned.get("kind"):
            try:
                cleaned["subjects"] = clean_erasure_subjects(cleaned["kind"], cleaned["subjects"])
            except ValidationError as exc:
                self.add_error("subject", [m for ms in exc.message_dict.values() for m in ms])
        return cleaned


@admin.register(ErasureRequest, site=admin_site)
class ErasureRequestAdmin(JobReceiptAdmin):
    """Admins and owners ask for erasures of their organization's projects and read the receipts;
    receipts are never edited or deleted here."""

    form = ErasureRequestForm
    organization_path = "project__organization"
    view_role = Role.ADMIN
    add_role = Role.ADMIN
    change_role = NOBODY
    delete_role = NOBODY
    list_display = ("id", "project", "kind", "status", "rows_deleted", "requested_via", "created_at", "finished_at",
                    "closed_at")
    list_filter = ("status", "kind")
    list_select_related = ("project__organization",)
    readonly_fields = ("id", "project", "kind", "status", "progress", "subject_hash", "subject_count", "counts",
                       "verification", "requested_by", "requested_via", "error", "created_at", "started_at",
                       "finished_at", "verified_at", "grace_until", "closed_at")
    left_unknown = ("How many rows are left is not known: the rows an end user or a session matches are not "
                    "counted beforehand; the run ends with a verification query that must find none.")

    def left(self, obj, done) -> str:
        if obj.kind != ErasureKind.TRACES:
            return self.left_unknown
        # Exact as far as it goes: the trace ids were counted when the request was made; an id that was
        # never stored deletes nothing, so the run may end below that.
        return (f"Traces: {intcomma(done.traces)} of the {intcomma(obj.subject_count)} trace id(s) asked for "
                "(ids never stored are not deleted, so it may end below).")

    def get_fields(self, request, obj=None):
        return ("project", "kind", "subject", "grace_days") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def add_view(self, request, form_url="", extra_context=None):
        # An erasure cannot be undone: a valid request is shown back for confirmation first.
        if request.method == "POST" and not confirmed(request) and self.has_add_permission(request):
            form = self.get_form(request, None, change=False)(request.POST)
            if form.is_valid():
                return self._confirm_erasure(request, form.cleaned_data)
        return super().add_view(request, form_url, extra_context)

    def _confirm_erasure(self, request, data):
        project, subjects = data["project"], data["subjects"]
        if data["kind"] == ErasureKind.TRACES:
            what = f"{len(subjects)} trace(s)"
        else:
            what = f"the {ErasureKind(data['kind']).label.lower()} “{subjects[0]}”"
        grace = data["grace_days"]
        return confirmation_page(
            request,
            title="Erase data?",
            question=f"Erase everything about {what} in {project}?",
            consequences=[
                "Their traces, observations, scores, feedback and evaluation results are deleted from the "
                f"project's region ({project.region}), and every export file built before now.",
                f"Data for the same subject that arrives in the next {grace} day(s) is erased too."
                if grace else "Data for the same subject that arrives later is kept.",
                "This cannot be undone.",
            ],
            button="Yes, erase",
            cancel_url=reverse("admin:privacy_erasurerequest_changelist"),
        )

    def save_model(self, request, obj, form, change):
        saved = erasure_request_create(
            project=form.cleaned_data["project"], kind=form.cleaned_data["kind"],
            subjects=form.cleaned_data["subjects"], via="admin", actor=request.user,
            grace_days=form.cleaned_data["grace_days"],
        )
        adopt(obj, saved)


# --- retention -------------------------------------------------------------------------------------


class RetentionPolicyForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ("project", "days", "payload_days")
        help_texts = {
            "days": "Traces older than this are deleted with everything attached, nightly. Empty: the plan's "
            "retention, or keep.",
            "payload_days": "Shorter: inputs, outputs and metadata older than this are emptied; rows and "
            "metrics stay.",
        }

    def clean(self):
        cleaned = super().clean()
        days, payload = cleaned.get("days"), cleaned.get("payload_days")
        for name, value in (("days", days), ("payload_days", payload)):
            if value is not None and not 1 <= value <= MAX_RETENTION_DAYS:
                self.add_error(name, f"from 1 to {MAX_RETENTION_DAYS} days")
        if days is not None and payload is not None and payload >= days:
            self.add_error("payload_days", "must be shorter than days")
        return cleaned


@admin.register(RetentionPolicy, site=admin_site)
class RetentionPolicyAdmin(OrganizationScopedAdmin):
    """A project's retention in its settings: admins and owners change it (through the service, which
    validates and audits), viewers read it next to what the nightly job enforces."""

    form = RetentionPolicyForm
    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = NOBODY
    fields = ("project", "days", "payload_days")
    list_display = ("project", "days", "payload_days", "enforced", "updated_at")
    list_select_related = ("project__organization",)

    @admin.display(description="enforced (days, payload days, from)")
    def enforced(self, obj):
        effective = effective_retention(obj.project, obj)
        return f"{effective.days or '—'}, {effective.payload_days or '—'}, {effective.source}"

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("project",)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Retention that deletes sooner than today's cannot be undone by setting it back: the nightly
        # run deletes what it no longer keeps. Such a save is shown back for confirmation first.
        if request.method == "POST" and not confirmed(request):
            obj = self.get_object(request, unquote(object_id)) if object_id else None
            if (obj is not None and self.has_change_permission(request, obj)) or (
                object_id is None and self.has_add_permission(request)
            ):
                # Read before validating: the form writes the new days onto `obj`.
                before = effective_retention(obj.project, obj) if obj is not None else None
                form = self.get_form(request, obj, change=obj is not None)(request.POST, instance=obj)
                if form.is_valid():
                    project = obj.project if obj is not None else form.cleaned_data["project"]
                    if before is None:
                        before = effective_retention(project, RetentionPolicy.objects.filter(project=project).first())
                    after = effective_retention(project, RetentionPolicy(
                        project=project, days=form.cleaned_data["days"], payload_days=form.cleaned_data["payload_days"],
                    ))
                    if _sooner(after.days, before.days) or _sooner(after.payload_days, before.payload_days):
                        return self._confirm_retention(request, project, before, after)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _confirm_retention(self, request, project, before, after):
        def kept(days):
            return f"{days} days" if days is not None else "forever"

        consequences = []
        if _sooner(after.days, before.days):
            consequences.append(f"Traces older than {after.days} days are deleted with everything attached "
                                f"(kept {kept(before.days)} today).")
        if _sooner(after.payload_days, before.payload_days):
            consequences.append(f"Inputs, outputs and metadata older than {after.payload_days} days are emptied "
                                f"(kept {kept(before.payload_days)} today).")
        consequences.append("The nightly retention run does it; setting a longer retention later does not bring "
                            "anything back.")
        return confirmation_page(
            request,
            title="Shorten the retention?",
            question=f"Shorten the retention of {project}?",
            consequences=consequences,
            button="Yes, shorten the retention",
            cancel_url=reverse("admin:privacy_retentionpolicy_changelist"),
        )

    def save_model(self, request, obj, form, change):
        saved = retention_policy_update(
            project=obj.project, actor=request.user, days=form.cleaned_data["days"],
            payload_days=form.cleaned_data["payload_days"],
        )
        adopt(obj, saved)


def _sooner(days, than) -> bool:
    """Does keeping `days` (None: forever) delete sooner than keeping `than`?"""
    return days is not None and (than is None or days < than)


@admin.register(RetentionRun, site=admin_site)
class RetentionRunAdmin(JobReceiptAdmin):
    """Every retention run and what it deleted; read-only."""

    organization_path = "project__organization"
    view_role = Role.VIEWER
    add_role = NOBODY
    change_role = NOBODY
    delete_role = NOBODY
    list_display = ("project", "status", "cutoff", "payload_cutoff", "rows_deleted", "created_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("project__organization",)
    readonly_fields = ("id", "project", "status", "progress", "cutoff", "payload_cutoff", "counts", "error",
                       "created_at", "finished_at")
    left_unknown = ("How many rows are left is not known: what is older than the cutoffs is not counted "
                    "beforehand (a count over the project's traces and calls on every run).")
