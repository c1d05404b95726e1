"""The playground and replay: run a prompt version with variables, or replay a recorded generation
(its messages, model and parameters, as recorded or changed), against a project LLM connection;
compare the new answer with the recorded one; save the messages as a new prompt version.

Thin views: the call and its trace go through `evals.playground` (the judges' LLM client, traced
through the ingest pipeline in the reserved `lookglass-playground` environment), reads through the
traces/prompts/evals selectors, the new version through `prompts.services`. Nothing is kept between
requests: each POST carries the whole form, and a replayed generation or a prompt version is read
again from the project (so another organization's answers 404 on every request, GET or POST).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from console.access import console_login_required, may_annotate, project_or_404
from console.prompt_views import prompt_url
from console.views import _page, trace_url
from evals import eval_selectors
from evals.llm import NAMED_PARAMETERS
from evals.playground import (
    MAX_CHARS,
    PLAYGROUND_ENVIRONMENT,
    PlaygroundInputError,
    RunInput,
    RunResult,
    clean_parameters,
    run,
)
from prompts import selectors as prompt_selectors
from prompts import services as prompt_services
from prompts.errors import InvalidRequest
from prompts.models import PRODUCTION, PromptType
from prompts.payloads import parse_create
from prompts.templating import compile_prompt, template_variables
from tenancy.http.body import loads_json
from traces import selectors as trace_selectors

ROLES = ("system", "user", "assistant")
PLACEHOLDER = "placeholder"
# Roles recorded by SDKs that mean one of ours.
ROLE_ALIASES = {"developer": "system", "human": "user", "ai": "assistant", "model": "assistant"}
# Prompt-config keys that are model parameters (the rest of a prompt's config is the application's).
CONFIG_PARAMETERS = ("presence_penalty", "frequency_penalty", "stop", "seed", "response_format",
                     "max_completion_tokens", "reasoning_effort", "tools", "tool_choice")
EMPTY_ROWS = 1  # blank message rows offered below the others (the script adds more)
# `LlmError.kind` in words, for the error box's title.
ERROR_TITLES = {
    "auth": "the provider refused the key", "billing": "the provider's account has no credit",
    "rate_limited": "rate limited", "malformed": "a malformed answer", "transient": "the provider failed or timed out",
    "refused_url": "the address is refused", "model": "the model is not available", "bad_request": "the request was refused",
    "secret": "the key cannot be read",
}


@dataclass
class State:
    """Everything the page shows and every POST carries back."""

    messages: list[dict] = field(default_factory=list)  # {role, content}; role may be `placeholder`
    variables: dict = field(default_factory=dict)
    connection_id: str = ""
    model: str = ""
    parameters: dict = field(default_factory=dict)  # temperature / max_tokens / top_p
    extra: str = ""  # other parameters, as JSON text
    prompt_name: str = ""
    prompt_version: int | None = None
    prompt_type: str = ""
    observation_id: str = ""
    recorded: str | None = None  # the replayed generation's answer
    recorded_model: str = ""
    trace_id: str = ""
    notes: list[str] = field(default_factory=list)

    def variable_names(self) -> list[str]:
        texts = [m for m in self.messages if m["role"] != PLACEHOLDER]
        return [*template_variables(messages=texts), *[m["content"] for m in self.messages if m["role"] == PLACEHOLDER]]


# --- from what was recorded ---------------------------------------------------------------------


def _text_of(content) -> tuple[str, bool]:
    """A message content as text, and whether non-text parts (images, audio) were left out."""
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, False
    if isinstance(content, list):
        texts, dropped = [], False
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                dropped = True
        return "\n".join(texts), dropped
    return json.dumps(content, ensure_ascii=False), False


def recorded_messages(value) -> tuple[list[dict], list[str]]:
    """An observation's input as chat messages to send again, and notes on what could not be kept."""
    notes: list[str] = []
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    elif isinstance(value, dict) and isinstance(value.get("role"), str):
        value = [value]
    if isinstance(value, str):
        return [{"role": "user", "content": value}], notes
    if not isinstance(value, list) or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value):
        if value in (None, "", [], {}):
            return [], ["The generation has no recorded input; write the messages."]
        notes.append("The recorded input is not a list of chat messages; it is sent as one user message (JSON).")
        return [{"role": "user", "content": json.dumps(value, ensure_ascii=False, indent=2)}], notes
    out, skipped, parts_dropped = [], 0, False
    for message in value:
        role = ROLE_ALIASES.get(message["role"].lower(), message["role"].lower())
        if role not in ROLES or message.get("tool_calls"):
            skipped += 1
            continue
        text, dropped = _text_of(message.get("content"))
        parts_dropped = parts_dropped or dropped
        out.append({"role": role, "content": text})
    if skipped:
        notes.append(f"{skipped} message{'s' if skipped > 1 else ''} with tool calls or tool results "
                     "left out: replaying tool use is not supported.")
    if parts_dropped:
        notes.append("Non-text parts (images, audio, files) of the recorded messages are left out.")
    return out, notes


def recorded_answer(output) -> str | None:
    """The recorded generation's answer as text (a message, a whole completion, or plain text)."""
    if output in (None, "", [], {}):
        return None
    if isinstance(output, str):
        return output
    message = output
    if isinstance(output, dict) and isinstance(output.get("choices"), list) and output["choices"]:
        message = output["choices"][0].get("message", {}) if isinstance(output["choices"][0], dict) else {}
    elif isinstance(output, list) and output and isinstance(output[-1], dict) and "role" in output[-1]:
        message = output[-1]
    if isinstance(message, dict) and ("content" in message or "refusal" in message):
        text, _ = _text_of(message.get("content"))
        return text or message.get("refusal") or ""
    return json.dumps(output, ensure_ascii=False, indent=2)


def _split_parameters(parameters: dict) -> tuple[dict, str]:
    named = {k: parameters[k] for k in NAMED_PARAMETERS if k in parameters}
    rest = {k: v for k, v in parameters.items() if k not in NAMED_PARAMETERS}
    return named, (json.dumps(rest, ensure_ascii=False, indent=2) if rest else "")


def _default_connection(project, connections) -> str:
    return str(connections[0].id) if connections else ""


def state_from_observation(project, observation_id: str) -> State:
    observation = trace_selectors.observation_get(project=project, observation_id=observation_id)
    if observation is None:
        raise Http404("No such generation.")
    state = State(observation_id=observation.id, trace_id=observation.trace_id, model=observation.model,
                  recorded_model=observation.response_model or observation.model,
                  prompt_name=observation.prompt_name, prompt_version=observation.prompt_version)
    state.messages, state.notes = recorded_messages(observation.input)
    parameters, dropped = clean_parameters(observation.model_parameters if isinstance(observation.model_parameters, dict) else {})
    if dropped:
        state.notes.append(f"Left out {', '.join(dropped)}: the playground waits for the whole answer.")
    state.parameters, state.extra = _split_parameters(parameters)
    state.recorded = recorded_answer(observation.output)
    return state


def state_from_prompt(project, name: str, version_raw: str) -> State:
    try:
        number = int(version_raw)
    except (TypeError, ValueError):
        number = None
    prompt = prompt_selectors.prompt_by_name(project=project, name=name)
    if prompt is None:
        raise Http404("No such prompt.")
    version = prompt_selectors.prompt_version_for(project=project, name=name, version=number or prompt.latest_version)
    if version is None:
        raise Http404("No such prompt version.")
    state = State(prompt_name=prompt.name, prompt_version=version.version, prompt_type=version.type)
    if version.type == PromptType.TEXT:
        state.messages = [{"role": "user", "content": version.text or ""}]
    else:
        state.messages = [{"role": PLACEHOLDER, "content": m["name"]} if m.get("type") == PLACEHOLDER
                          else {"role": m.get("role", "user"), "content": m.get("content", "")}
                          for m in version.messages or []]
    config = version.config if isinstance(version.config, dict) else {}
    state.model = config.get("model") if isinstance(config.get("model"), str) else ""
    state.parameters = {k: config[k] for k in NAMED_PARAMETERS if config.get(k) is not None}
    rest = {k: config[k] for k in CONFIG_PARAMETERS if config.get(k) is not None}
    state.extra = json.dumps(rest, ensure_ascii=False, indent=2) if rest else ""
    state.variables = {name: "" for name in state.variable_names()}
    return state


# --- from the form --------------------------------------------------------------------------------


def _number(raw: str, label: str, *, low: float, high: float, integer: bool = False):
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise PlaygroundInputError(f"{label} must be {'a whole number' if integer else 'a number'}.") from None
    if not (low <= value <= high):
        raise PlaygroundInputError(f"{label} must be between {low:g} and {high:g}.")
    return value


def state_from_post(request, project) -> tuple[State, list[str]]:
    """The form as posted, plus the problems found (shown above the form; nothing is sent then)."""
    post = request.POST
    problems: list[str] = []
    state = State(connection_id=post.get("connection", ""), model=post.get("model", "").strip()[:200],
                  extra=post.get("extra", ""), prompt_name=post.get("prompt_name", ""))
    # The source is read again from the project: a replayed generation of another organization 404s.
    if post.get("observation_id"):
        source = state_from_observation(project, post["observation_id"])
        state.observation_id, state.trace_id = source.observation_id, source.trace_id
        state.recorded, state.recorded_model = source.recorded, source.recorded_model
    if post.get("prompt_version"):
        try:
            state.prompt_version = int(post["prompt_version"])
        except ValueError:
            state.prompt_version = None
    if state.prompt_name:
        prompt = prompt_selectors.prompt_by_name(project=project, name=state.prompt_name)
        state.prompt_type = prompt.type if prompt is not None else ""
    for role, content in zip(post.getlist("role"), post.getlist("content"), strict=False):
        role = (role or "").strip()
        if not role and not content.strip():
            continue
        if role not in (*ROLES, PLACEHOLDER):
            problems.append(f"Unknown role {role!r}.")
            continue
        if role == PLACEHOLDER:
            content = content.strip()
        state.messages.append({"role": role, "content": content.replace("\r\n", "\n")})
    for name in state.variable_names():
        state.variables[name] = post.get(f"var:{name}", "").replace("\r\n", "\n")
    try:
        state.parameters = {
            "temperature": _number(post.get("temperature"), "Temperature", low=0, high=2),
            "max_tokens": _number(post.get("max_tokens"), "Max tokens", low=1, high=1_000_000, integer=True),
            "top_p": _number(post.get("top_p"), "Top p", low=0, high=1),
        }
    except PlaygroundInputError as exc:
        problems.append(exc.message)
    state.parameters = {k: v for k, v in state.parameters.items() if v is not None}
    return state, problems


def _extra_parameters(state: State) -> dict:
    if not state.extra.strip():
        return {}
    try:
        extra = loads_json(state.extra.encode())
    except ValueError:
        raise PlaygroundInputError("Other parameters must be a JSON object, e.g. {\"seed\": 7}.") from None
    if not isinstance(extra, dict):
        raise PlaygroundInputError("Other parameters must be a JSON object, e.g. {\"seed\": 7}.")
    clash = sorted(set(extra) & {"model", "messages", *NAMED_PARAMETERS})
    if clash:
        raise PlaygroundInputError(f"Set {', '.join(clash)} in its own field, not in the other parameters.")
    return extra


def compiled_messages(state: State) -> list[dict]:
    """The messages with the variables filled in, as they are sent."""
    variables: dict = {}
    placeholders = {m["content"] for m in state.messages if m["role"] == PLACEHOLDER}
    for name, value in state.variables.items():
        if name in placeholders:
            try:
                variables[name] = loads_json(value.encode()) if value.strip() else []
            except ValueError:
                raise PlaygroundInputError(f"The placeholder {name!r} takes a JSON list of messages.") from None
            if not isinstance(variables[name], list):
                raise PlaygroundInputError(f"The placeholder {name!r} takes a JSON list of messages.")
        else:
            variables[name] = value
    messages = [{"type": PLACEHOLDER, "name": m["content"]} if m["role"] == PLACEHOLDER else m for m in state.messages]
    compiled = compile_prompt(messages=messages, variables=variables)
    if compiled.warnings:
        raise PlaygroundInputError(compiled.warnings[0])
    out = []
    for message in compiled.prompt:
        role = ROLE_ALIASES.get(str(message.get("role", "")).lower(), str(message.get("role", "")).lower())
        if role not in ROLES:
            raise PlaygroundInputError(f"A placeholder message has the role {message.get('role')!r}; use {', '.join(ROLES)}.")
        out.append({"role": role, "content": message.get("content") or ""})
    return out


# --- the answer compared with the recorded one -----------------------------------------------------

_TOKENS = re.compile(r"\s+|[^\s\w]|\w+")


def word_diff(old: str, new: str) -> str:
    """The recorded answer turned into the new one, word by word: <del> what went, <ins> what came."""
    a, b = _TOKENS.findall(old or ""), _TOKENS.findall(new or "")
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(escape("".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del>{escape(''.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{escape(''.join(b[j1:j2]))}</ins>")
    return mark_safe("".join(out))  # every piece of text above is escaped


# --- pages ----------------------------------------------------------------------------------------


def _render(request, project, state: State, *, result=None, problems=(), confirm=None, save=None, status=200):
    connections = list(eval_selectors.llm_connections(project=project))
    if not state.connection_id:
        state.connection_id = _default_connection(project, connections)
    if not state.model:
        chosen = next((c for c in connections if str(c.id) == state.connection_id), None)
        state.model = chosen.default_model if chosen else ""
    rows = [*state.messages, *([{"role": "", "content": ""}] * EMPTY_ROWS)]
    names = state.variable_names()
    placeholders = {m["content"] for m in state.messages if m["role"] == PLACEHOLDER}
    save = save or {}
    context = {
        "state": state,
        "rows": rows,
        "roles": (*ROLES, PLACEHOLDER),
        "variables": [(n, state.variables.get(n, ""), n in placeholders) for n in names],
        "connections": connections,
        "result": result,
        "problems": list(problems),
        "confirm": confirm,
        "can_run": may_annotate(request, project),
        "error_title": ERROR_TITLES.get(result.error_kind, "") if result is not None else "",
        "diff": word_diff(state.recorded, result.text) if result is not None and result.ok and state.recorded is not None else None,
        "trace_link": trace_url(project, state.trace_id) if state.trace_id else None,
        "run_link": trace_url(project, result.trace_id) if result is not None and result.recorded else None,
        "prompt_link": (prompt_url(project, state.prompt_name) + (f"?right={state.prompt_version}" if state.prompt_version else ""))
        if state.prompt_name and state.prompt_type else None,
        "template_link": (f"{reverse('console:playground', args=[project.id])}?"
                          + urlencode({"prompt": state.prompt_name, "version": state.prompt_version or ""}))
        if state.observation_id and state.prompt_name and state.prompt_type else None,
        "save_name": save.get("name", state.prompt_name),
        "save_message": save.get("message", ""),
        "save_production": save.get("production", False),
        "environment": PLAYGROUND_ENVIRONMENT,
        "production": PRODUCTION,
    }
    return _page(request, project, "console/playground.html", context, status=status, section="playground")


@require_GET
@console_login_required
def playground(request, project_id):
    """`?observation=<id>`: replay that generation; `?prompt=<name>&version=<n>`: run that version;
    neither: an empty playground."""
    project = project_or_404(request, project_id)
    if request.GET.get("observation"):
        state = state_from_observation(project, request.GET["observation"])
        if state.prompt_name:
            prompt = prompt_selectors.prompt_by_name(project=project, name=state.prompt_name)
            state.prompt_type = prompt.type if prompt is not None else ""
    elif request.GET.get("prompt"):
        state = state_from_prompt(project, request.GET["prompt"], request.GET.get("version", ""))
    else:
        state = State(messages=[{"role": "system", "content": ""}, {"role": "user", "content": ""}])
    return _render(request, project, state)


def _connection_or_404(project, connection_id: str):
    connection = eval_selectors.llm_connection_get(project=project, connection_id=connection_id)
    if connection is None:
        raise Http404("No such LLM connection.")
    return connection


@require_POST
@console_login_required
def playground_run(request, project_id):
    project = project_or_404(request, project_id)
    if not may_annotate(request, project):
        raise PermissionDenied("Running the playground needs the member role.")
    state, problems = state_from_post(request, project)
    if not state.connection_id:
        problems.append("The project has no LLM connection yet: add one under Settings › LLM connections.")
        return _render(request, project, state, problems=problems, status=400)
    connection = _connection_or_404(project, state.connection_id)
    state.model = state.model or connection.default_model
    result = None
    if not problems:
        try:
            missing = [n for n, v in state.variables.items() if not v.strip()]
            if missing:
                raise PlaygroundInputError(f"Fill in the variable{'s' if len(missing) > 1 else ''} {', '.join(missing)}.")
            data = RunInput(
                connection=connection, model=state.model, messages=compiled_messages(state),
                parameters={**_extra_parameters(state), **state.parameters},
                prompt_name=state.prompt_name if state.prompt_type else "",
                prompt_version=state.prompt_version if state.prompt_type else None,
                replay_of={"trace_id": state.trace_id, "observation_id": state.observation_id} if state.observation_id else None,
                actor_id=str(request.user.pk),
            )
            result = run(project=project, data=data)
        except PlaygroundInputError as exc:
            problems.append(exc.message)
    status = 400 if problems else 200
    return _render(request, project, state, result=result, problems=problems, status=status)


def _version_body(state: State, target_type: str) -> dict:
    """The prompt body of the new version: the messages as templates (variables kept), the model
    and its parameters as the version's config."""
    config = {"model": state.model, **_extra_parameters(state), **state.parameters} if state.model else \
        {**_extra_parameters(state), **state.parameters}
    if target_type == PromptType.TEXT:
        texts = [m for m in state.messages if m["role"] != PLACEHOLDER]
        if len(state.messages) != 1 or len(texts) != 1:
            raise InvalidRequest("this is a text prompt: it takes exactly one message. Save the messages as a new "
                                 "chat prompt under another name instead.")
        return {"type": PromptType.TEXT, "prompt": texts[0]["content"], "config": config}
    prompt = [{"type": PLACEHOLDER, "name": m["content"]} if m["role"] == PLACEHOLDER
              else {"role": m["role"], "content": m["content"]} for m in state.messages]
    return {"type": PromptType.CHAT, "prompt": prompt, "config": config}


@require_POST
@console_login_required
def playground_save(request, project_id):
    """Save the messages, model and parameters as the next version of a prompt (a new prompt if the
    name is new). Labels other than `latest` stay where they are, unless `production` is asked for:
    then a confirmation comes first (the form posted again with `confirm`)."""
    project = project_or_404(request, project_id)
    if not may_annotate(request, project):
        raise PermissionDenied("Saving a prompt version needs the member role.")
    state, problems = state_from_post(request, project)
    save = {"name": (request.POST.get("save_name") or "").strip(),
            "message": (request.POST.get("commit_message") or "").strip()[:500],
            "production": bool(request.POST.get("production"))}
    # The answer on screen when Save was pressed comes back with the form, so a confirmation or a
    # refusal still shows it (display only: it is not stored anywhere).
    shown = None
    if request.POST.get("shown_answer") is not None and request.POST.get("shown_model") is not None:
        shown = RunResult(ok=True, text=request.POST["shown_answer"][:MAX_CHARS], model=request.POST["shown_model"][:200])
    if problems:
        return _render(request, project, state, result=shown, problems=problems, save=save, status=400)
    target = prompt_selectors.prompt_by_name(project=project, name=save["name"]) if save["name"] else None
    try:
        if not save["name"]:
            raise InvalidRequest("give the prompt a name.")
        if not state.messages:
            raise InvalidRequest("write at least one message.")
        body = _version_body(state, target.type if target is not None else PromptType.CHAT)
        data = parse_create({"name": save["name"], **body, "commitMessage": save["message"] or None,
                             "labels": [PRODUCTION] if save["production"] else []})
        if save["production"] and not request.POST.get("confirm"):
            current = dict(prompt_selectors.prompt_labels(project=project, prompt=target)).get(PRODUCTION) if target else None
            next_version = (target.latest_version + 1) if target is not None else 1
            return _render(request, project, state, result=shown, save=save,
                           confirm={"current": current, "next": next_version, "name": save["name"]})
        prompt, version = prompt_services.prompt_create_version(project=project, data=data, actor=request.user)
    except (InvalidRequest, PlaygroundInputError) as exc:
        return _render(request, project, state, result=shown, problems=[f"Not saved: {exc.message}"], save=save,
                       status=400)
    moved = f" and “{PRODUCTION}” now points at it" if save["production"] else " (labels unchanged, except latest)"
    flash.success(request, f"Saved as {prompt.name} v{version.version}{moved}.")
    return HttpResponseRedirect(prompt_url(project, prompt.name) + f"?right={version.version}")
