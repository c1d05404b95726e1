"""The console's prompt pages: prompts by folder; a prompt's versions side by side with their
metrics; a new version (edit, or fork into another prompt) and label moves, confirmed before
`production` moves. Reads through `prompts.selectors` (and the admin's list and diff helpers),
writes through `prompts.services` (label moves keep their history there)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from console.access import console_login_required, may_annotate, project_or_404
from console.views import _page, trace_url
from prompts import selectors, services
from prompts.admin import prompt_rows, side_by_side, version_as_text
from prompts.errors import InvalidRequest, PromptNotFound
from prompts.models import LATEST, PRODUCTION, PromptType
from prompts.payloads import PromptInput, parse_create, validate_labels
from tenancy.http.body import loads_json
from traces import selectors as trace_selectors
from traces.admin import format_cost, format_ms

METRICS_DAYS = 7


def prompt_url(project, name: str) -> str:
    return f"{reverse('console:prompts', args=[project.id])}{quote(name, safe='')}/"


def _folder(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


NEW_CHAT = json.dumps([{"role": "system", "content": "You are a helpful assistant."},
                       {"role": "user", "content": "{{question}}"}], indent=2)


@require_GET
@console_login_required
def prompts(request, project_id):
    project = project_or_404(request, project_id)
    return _prompts_page(request, project)


def _prompts_page(request, project, *, new: dict | None = None, error: str = "", status: int = 200):
    contains = request.GET.get("q", "")[:255]
    rows, truncated = prompt_rows(projects=[project], name_contains=contains)
    folders: dict[str, list] = defaultdict(list)
    for row in rows:
        row["url"] = prompt_url(project, row["prompt"].name)
        row["short_name"] = row["prompt"].name.rsplit("/", 1)[-1]
        folders[_folder(row["prompt"].name)].append(row)
    context = {"folders": sorted(folders.items()), "q": contains, "truncated": truncated,
               "can_write": may_annotate(request, project), "new_error": error,
               "new": new or {"name": "", "type": PromptType.CHAT, "content": NEW_CHAT, "config": "{}",
                              "commit_message": ""}}
    return _page(request, project, "console/prompts.html", context, status=status, section="prompts")


def _prompt_input(*, name: str, type_: str, content: str, config_text: str, commit_message: str) -> PromptInput:
    """The console's prompt form as the API's create body (so the API's rules apply)."""
    # The API's JSON reader (orjson): no NaN, which jsonb refuses, and a depth limit that is an error,
    # not the interpreter's RecursionError.
    if type_ == PromptType.CHAT:
        try:
            body_prompt = loads_json(content.encode())
        except ValueError:
            raise InvalidRequest("The messages must be JSON: a list of {role, content}.") from None
    else:
        body_prompt = content
    try:
        config = loads_json((config_text or "{}").encode())
    except ValueError:
        raise InvalidRequest("The config must be a JSON object.") from None
    return parse_create({"name": name, "type": type_, "prompt": body_prompt, "config": config,
                         "commitMessage": commit_message or None})


@require_POST
@console_login_required
def prompt_create(request, project_id):
    """A new prompt (its v1, labelled `latest` only). A name already taken is refused rather than
    given a new version: that is the prompt page's form, where the current version is in view."""
    project = project_or_404(request, project_id)
    if not may_annotate(request, project):
        raise PermissionDenied("Creating a prompt needs the member role.")
    new = {"name": (request.POST.get("name") or "").strip(), "type": request.POST.get("type", PromptType.CHAT),
           "content": request.POST.get("content", ""), "config": request.POST.get("config", ""),
           "commit_message": (request.POST.get("commit_message") or "").strip()}
    try:
        if new["type"] not in PromptType.values:
            raise InvalidRequest("Choose the prompt's type: chat or text.")
        existing = selectors.prompt_by_name(project=project, name=new["name"]) if new["name"] else None
        if existing is not None:
            raise InvalidRequest(f"A prompt named “{existing.name}” exists already: add a version on its page.")
        data = _prompt_input(name=new["name"], type_=new["type"], content=new["content"],
                             config_text=new["config"], commit_message=new["commit_message"])
        created, version = services.prompt_create_version(project=project, data=data, actor=request.user)
    except InvalidRequest as exc:
        return _prompts_page(request, project, new=new, error=exc.message, status=400)
    messages.success(request, f"Created {created.name} v{version.version}.")
    return HttpResponseRedirect(prompt_url(project, created.name))


def _pick(raw, by_number: dict, default: int):
    try:
        return by_number.get(int(raw)) or by_number[default]
    except (TypeError, ValueError):
        return by_number[default]


def _editable(version) -> str:
    """The version's content as the edit form shows it: the text, or the messages as JSON."""
    if version.type == PromptType.TEXT:
        return version.text or ""
    # `"type": "chatmessage"` is the stored default the save adds back: shown, it is only noise to edit
    # around (a placeholder keeps its type: it is what makes it one).
    messages = [{k: v for k, v in m.items() if not (k == "type" and v == "chatmessage")} if isinstance(m, dict) else m
                for m in version.messages or []]
    return json.dumps(messages, indent=2, ensure_ascii=False)


def _prompt_or_404(project, name):
    prompt = selectors.prompt_by_name(project=project, name=name)
    if prompt is None:
        raise Http404("No such prompt.")
    return prompt


@require_GET
@console_login_required
def prompt_detail(request, project_id, name):
    project = project_or_404(request, project_id)
    prompt = _prompt_or_404(project, name)
    versions = list(selectors.versions_with_labels(project=project, prompt=prompt))
    by_number = {v.version: v for v in versions}
    numbers = [v.version for v in versions]
    right = _pick(request.GET.get("right"), by_number, numbers[0])
    left = _pick(request.GET.get("left"), by_number, numbers[1] if len(numbers) > 1 else numbers[0])
    until = timezone.now()
    metrics = selectors.compare_versions(project=project, prompt=prompt, since=until - timedelta(days=METRICS_DAYS),
                                         until=until)
    traces_url = reverse("console:traces", args=[project.id])
    generations_url = prompt_url(project, prompt.name).rstrip("/") + "/generations"
    for row in metrics:
        row.generations_url = f"{generations_url}?{urlencode({'version': row.version, 'days': METRICS_DAYS})}"
        row.traces_url = f"{traces_url}?{urlencode({'prompt': prompt.name, 'prompt_version': row.version})}"
    context = {
        "prompt": prompt,
        "versions": versions,
        "left": left,
        "right": right,
        "diff": side_by_side(left, right) if left.version != right.version else None,
        "right_text": version_as_text(right),
        "metrics": metrics,
        "metrics_days": METRICS_DAYS,
        "history": list(selectors.label_history(project=project, prompt=prompt, limit=50)),
        "labels": [(label, v) for label, v in selectors.prompt_labels(project=project, prompt=prompt) if label != LATEST],
        "can_write": may_annotate(request, project),
        "edit_content": _editable(right),
        "edit_config": json.dumps(right.config or {}, indent=2, ensure_ascii=False),
        "url": prompt_url(project, prompt.name),
        "production": PRODUCTION,
    }
    return _page(request, project, "console/prompt.html", context, section="prompts")


GENERATIONS_DAYS = (1, 7, 30)


@require_GET
@console_login_required
def prompt_generations(request, project_id, name):
    """One version's generations in the metrics' window, newest first, a page at a time (a cursor on
    start time and id, so a page never repeats or skips a call as new ones arrive): what a version's
    figures were computed from, each linked to its trace with the call unfolded."""
    project = project_or_404(request, project_id)
    prompt = _prompt_or_404(project, name)
    try:
        version = int(request.GET.get("version", ""))
        days = int(request.GET.get("days", METRICS_DAYS))
    except ValueError:
        return HttpResponseBadRequest("version and days are whole numbers.")
    if days not in GENERATIONS_DAYS:
        return HttpResponseBadRequest(f"days is one of {', '.join(map(str, GENERATIONS_DAYS))}.")
    before = None
    if request.GET.get("before_time") or request.GET.get("before_id"):
        moment = parse_datetime(request.GET.get("before_time", ""))
        if moment is None or timezone.is_naive(moment) or not request.GET.get("before_id"):
            return HttpResponseBadRequest("before_time (ISO 8601 with a zone) and before_id go together.")
        before = (moment, request.GET["before_id"])
    until = timezone.now()
    rows, more = trace_selectors.version_generations(
        project=project, prompt_name=prompt.name, prompt_version=version, since=until - timedelta(days=days),
        until=until, before=before, limit=trace_selectors.VERSION_GENERATIONS_PAGE,
    )
    here = prompt_url(project, prompt.name).rstrip("/") + "/generations"
    generations = [
        {"obs": o, "url": f"{trace_url(project, o.trace_id)}?{urlencode({'observation': o.id})}#lg-focus",
         "latency": format_ms(o.latency_ms), "ttft": format_ms(o.time_to_first_token_ms),
         "cost": format_cost(o.total_cost)}
        for o in rows
    ]
    next_url = None
    if more and rows:
        last = rows[-1]
        next_url = f"{here}?{urlencode({'version': version, 'days': days, 'before_time': last.start_time.isoformat(), 'before_id': last.id})}"
    context = {
        "prompt": prompt, "version": version, "days": days, "rows": generations, "next_url": next_url,
        "first_url": f"{here}?{urlencode({'version': version, 'days': days})}" if before else None,
        "day_links": [(d, f"{here}?{urlencode({'version': version, 'days': d})}") for d in GENERATIONS_DAYS],
        "url": prompt_url(project, prompt.name),
        "traces_url": f"{reverse('console:traces', args=[project.id])}?"
                      f"{urlencode({'prompt': prompt.name, 'prompt_version': version})}",
    }
    return _page(request, project, "console/prompt_generations.html", context, section="prompts")


@require_POST
@console_login_required
def prompt_label(request, project_id, name):
    """Point a label at a version, or remove it. Moving `production` changes what every SDK fetching
    the prompt gets, so it takes an explicit confirmation (a second POST with `confirm`)."""
    project = project_or_404(request, project_id)
    prompt = _prompt_or_404(project, name)
    if not may_annotate(request, project):
        raise PermissionDenied("Moving labels needs the member role.")
    label = (request.POST.get("label") or "").strip()
    action = request.POST.get("action", "move")
    back = prompt_url(project, prompt.name)
    try:
        validate_labels([label], field="label", allow_latest=False)
        if action == "remove":
            if label == PRODUCTION and not request.POST.get("confirm"):
                return _confirm(request, project, prompt, label=label, version=None, action=action)
            services.prompt_label_remove(project=project, name=prompt.name, label=label, actor=request.user)
            messages.success(request, f"Removed the label “{label}”.")
            return HttpResponseRedirect(back)
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            raise InvalidRequest("Choose the version the label should point at.") from None
        if label == PRODUCTION and not request.POST.get("confirm"):
            return _confirm(request, project, prompt, label=label, version=version, action=action)
        services.prompt_version_add_labels(project=project, name=prompt.name, version=version, labels=[label],
                                           actor=request.user)
        messages.success(request, f"“{label}” now points at v{version}.")
    except (InvalidRequest, PromptNotFound) as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(back)


def _confirm(request, project, prompt, *, label, version, action):
    current = dict(selectors.prompt_labels(project=project, prompt=prompt)).get(label)
    context = {"prompt": prompt, "label": label, "version": version, "action": action, "current": current,
               "url": prompt_url(project, prompt.name)}
    return _page(request, project, "console/prompt_confirm.html", context, section="prompts")


@require_POST
@console_login_required
def prompt_version_create(request, project_id, name):
    """Save an edited version as the prompt's next version, or (with `fork_name`) as the first
    version of another prompt."""
    project = project_or_404(request, project_id)
    prompt = _prompt_or_404(project, name)
    if not may_annotate(request, project):
        raise PermissionDenied("Creating a version needs the member role.")
    target = (request.POST.get("fork_name") or "").strip() or prompt.name
    try:
        data = _prompt_input(name=target, type_=prompt.type, content=request.POST.get("content", ""),
                             config_text=request.POST.get("config") or "",
                             commit_message=(request.POST.get("commit_message") or "").strip())
        created, version = services.prompt_create_version(project=project, data=data, actor=request.user)
    except InvalidRequest as exc:
        messages.error(request, f"Not saved: {exc.message}")
        return HttpResponseRedirect(prompt_url(project, prompt.name) + "#edit")
    messages.success(request, f"Saved as {created.name} v{version.version} (labels unchanged, except latest).")
    return HttpResponseRedirect(prompt_url(project, created.name))
