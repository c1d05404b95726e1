"""Console pages for prompts: a cross-project list and a prompt's page (versions side by side, the
version comparison, label history, and moving labels).

Prompts have composite primary keys and live in region databases, which ModelAdmin cannot handle,
so these are plain views registered on `admin_site`. Every query is limited to the projects the
person can see, so another tenant's prompt is as absent as a missing one.
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections import defaultdict
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from prompts import selectors, services
from prompts.errors import InvalidRequest, PromptNotFound
from prompts.models import LATEST, PRODUCTION, Prompt, PromptLabel, PromptType
from prompts.payloads import validate_labels
from tenancy.admin_site import admin_site, allowed, confirmation_page, confirmed, visible_projects
from tenancy.models import Project, Role, User

MAX_LIST_ROWS = 500
LABEL_WRITE_ROLE = Role.MEMBER



def detail_url(project_id, name: str) -> str:
    return reverse("admin:prompts_prompt_detail", args=[project_id, name])


# --- the list ------------------------------------------------------------------------------------


class PromptFilterForm(forms.Form):
    project = forms.ChoiceField(required=False)
    name = forms.CharField(required=False, max_length=255, label="Name contains")

    def __init__(self, data, *, projects: list[Project]):
        super().__init__(data)
        self.projects = {str(p.id): p for p in projects}
        self.fields["project"].choices = [
            ("", "all projects"),
            *[(k, str(p)) for k, p in self.projects.items()],
        ]

    def selected_projects(self) -> list[Project]:
        key = self.cleaned_data.get("project")
        return [self.projects[key]] if key else list(self.projects.values())


def prompt_rows(*, projects: list[Project], name_contains: str = "") -> tuple[list[dict], bool]:
    """Prompts of these projects with their labels: two queries per region, whatever the count."""
    by_region: dict[str, list[Project]] = defaultdict(list)
    for project in projects:
        by_region[project.region].append(project)
    rows, truncated = [], False
    for region, members in by_region.items():
        index = {p.id: p for p in members}
        prompts = Prompt.objects.dangerously_in_region(region).filter(project_id__in=list(index))
        if name_contains:
            prompts = prompts.filter(name__icontains=name_contains)
        prompts = list(prompts.order_by("name", "project_id")[: MAX_LIST_ROWS + 1])
        truncated = truncated or len(prompts) > MAX_LIST_ROWS
        prompts = prompts[:MAX_LIST_ROWS]
        labels = defaultdict(list)
        for label in (
            PromptLabel.objects.dangerously_in_region(region)
            .filter(project_id__in=list(index), prompt_id__in=[p.id for p in prompts])
            .order_by("label")
        ):
            labels[(label.project_id, label.prompt_id)].append((label.label, label.version))
        for prompt in prompts:
            project = index[prompt.project_id]
            rows.append(
                {
                    "prompt": prompt,
                    "project": project,
                    "labels": labels[(prompt.project_id, prompt.id)],
                    "url": detail_url(project.id, prompt.name),
                }
            )
    rows.sort(key=lambda r: (r["prompt"].name, str(r["project"])))
    return rows[:MAX_LIST_ROWS], truncated


def prompt_list_view(request):
    projects = list(visible_projects(request))
    form = PromptFilterForm(request.GET or None, projects=projects)
    rows, truncated = [], False
    if form.is_bound and form.is_valid():
        rows, truncated = prompt_rows(
            projects=form.selected_projects(), name_contains=form.cleaned_data["name"]
        )
    elif not form.is_bound:
        rows, truncated = prompt_rows(projects=projects)
    context = {
        **admin_site.each_context(request),
        "title": "Prompts",
        "form": form,
        "rows": rows,
        "truncated": truncated,
        "max_rows": MAX_LIST_ROWS,
        "has_projects": bool(projects),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/prompts/prompt_list.html", context)


# --- the detail ------------------------------------------------------------------------------------


def version_as_text(version) -> str:
    """What the side-by-side diff compares: the content, then the config."""
    if version.type == PromptType.TEXT:
        body = version.text or ""
    else:
        parts = []
        for message in version.messages or []:
            if message.get("type") == "placeholder":
                parts.append(f"[placeholder: {message.get('name')}]")
            else:
                parts.append(f"[{message.get('role')}]\n{message.get('content')}")
        body = "\n\n".join(parts)
    config = json.dumps(version.config, indent=2, sort_keys=True, ensure_ascii=False)
    return f"{body}\n\n--- config ---\n{config}"


def side_by_side(left, right) -> str:
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(
        version_as_text(left).splitlines(),
        version_as_text(right).splitlines(),
        fromdesc=f"v{left.version}",
        todesc=f"v{right.version}",
    )
    # HtmlDiff escapes the compared text itself (&, <, >); the table markup is its own.
    return mark_safe(table)


class WindowForm(forms.Form):
    since = forms.DateTimeField(
        required=False, label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def window(self):
        until = self.cleaned_data.get("until") or timezone.now()
        since = self.cleaned_data.get("since") or until - timedelta(days=7)
        return since, until

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("“From” must be earlier than “Until”.")
        return cleaned


class LabelForm(forms.Form):
    label = forms.CharField(max_length=36)
    version = forms.TypedChoiceField(coerce=int, required=False)
    action = forms.ChoiceField(choices=[("move", "move"), ("remove", "remove")])

    def __init__(self, data, *, versions: list[int]):
        super().__init__(data)
        self.fields["version"].choices = [(v, f"v{v}") for v in versions]

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        try:
            validate_labels([label], field="label", allow_latest=False)
        except InvalidRequest as exc:
            raise forms.ValidationError(exc.message) from None
        return label

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") == "move" and cleaned.get("version") in (None, ""):
            raise forms.ValidationError("Choose the version the label should point at.")
        return cleaned


def _people(ids) -> dict[str, str]:
    wanted = set()
    for value in ids:
        try:
            wanted.add(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    if not wanted:
        return {}
    return {str(pk): email for pk, email in User.objects.filter(pk__in=wanted).values_list("pk", "email")}


def prompt_detail_view(request, project_id, name):
    project = visible_projects(request).filter(pk=project_id).first()
    if project is None:
        raise Http404("No such prompt.")
    prompt = selectors.prompt_by_name(project=project, name=name)
    if prompt is None:
        raise Http404("No such prompt.")
    can_move_labels = allowed(request, LABEL_WRITE_ROLE, project.organization_id)
    versions = list(selectors.versions_with_labels(project=project, prompt=prompt))
    numbers = [v.version for v in versions]

    if request.method == "POST":
        if not can_move_labels:
            raise PermissionDenied("Moving labels needs the member role in the organization.")
        label_form = LabelForm(request.POST, versions=numbers)
        if label_form.is_valid():
            data = label_form.cleaned_data
            # `production` is what every application fetching the prompt without a version gets.
            if data["label"] == PRODUCTION and not confirmed(request):
                return _confirm_label(request, project, prompt, data)
            try:
                if data["action"] == "remove":
                    services.prompt_label_remove(
                        project=project, name=prompt.name, label=data["label"], actor=request.user
                    )
                    messages.success(request, f"Removed the label “{data['label']}”.")
                else:
                    services.prompt_version_add_labels(
                        project=project,
                        name=prompt.name,
                        version=data["version"],
                        labels=[data["label"]],
                        actor=request.user,
                    )
                    messages.success(request, f"“{data['label']}” now points at v{data['version']}.")
            except (InvalidRequest, PromptNotFound) as exc:
                messages.error(request, exc.message)
            return HttpResponseRedirect(request.get_full_path())
        messages.error(request, "; ".join(e for errors in label_form.errors.values() for e in errors))
        return HttpResponseRedirect(request.get_full_path())

    by_number = {v.version: v for v in versions}
    right = _pick(request.GET.get("right"), by_number, default=numbers[0])
    left = _pick(request.GET.get("left"), by_number, default=numbers[1] if len(numbers) > 1 else numbers[0])

    window_form = WindowForm(request.GET)
    since = until = None
    comparison = []
    if window_form.is_valid():
        since, until = window_form.window()
        comparison = selectors.compare_versions(project=project, prompt=prompt, since=since, until=until)

    people = _people([v.created_by for v in versions])
    for v in versions:
        v.author = people.get(v.created_by, v.created_by or "API")
        v.display_labels = [label for label in v.labels if label != LATEST] + (
            [LATEST] if LATEST in v.labels else []
        )

    context = {
        **admin_site.each_context(request),
        "title": prompt.name,
        "project": project,
        "prompt": prompt,
        "versions": versions,
        "left": left,
        "right": right,
        "diff": side_by_side(left, right) if left.version != right.version else None,
        "right_text": version_as_text(right),
        "window_form": window_form,
        "since": since,
        "until": until,
        "comparison": comparison,
        "history": list(selectors.label_history(project=project, prompt=prompt, limit=50)),
        "can_move_labels": can_move_labels,
        "label_form": LabelForm(None, versions=numbers),
        "list_url": reverse("admin:prompts_prompt_list"),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/prompts/prompt_detail.html", context)


def _confirm_label(request, project, prompt, data):
    current = dict(selectors.prompt_labels(project=project, prompt=prompt)).get(data["label"])
    now = f"It points at v{current} now" if current else "It points at no version now"
    if data["action"] == "remove":
        question = f"Remove “{data['label']}” from {prompt.name}?"
        then = f"{now}; once removed, those fetches fail until the label is set again."
    else:
        question = f"Move “{data['label']}” of {prompt.name} to v{data['version']}?"
        then = f"{now} and will point at v{data['version']}."
    return confirmation_page(
        request,
        title=f"Confirm · {prompt.name}",
        question=question,
        consequences=[f"Every application fetching {prompt.name} without a version gets the "
                      f"{data['label']} version. {then}"],
        button="Yes, remove it" if data["action"] == "remove" else "Yes, move it",
        cancel_url=request.get_full_path(),
    )


def _pick(raw, by_number: dict, *, default: int):
    try:
        number = int(raw)
    except (TypeError, ValueError):
        number = default
    return by_number.get(number) or by_number[default]


def _is_console_user(request) -> bool:
    return admin_site.has_permission(request)


admin_site.register_view(
    "prompts/",
    prompt_list_view,
    name="prompts_prompt_list",
    link_title="Prompts",
    app_label="prompts",
    app_title="Prompts",
    visible=_is_console_user,
)
admin_site.register_view(
    "prompts/<uuid:project_id>/<path:name>/",
    prompt_detail_view,
    name="prompts_prompt_detail",
)
