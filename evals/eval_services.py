"""Writes of evaluation configuration (control plane): LLM connections, evaluators and their
versions, evaluation rules, pausing. Validation errors are `judging.DefinitionError` (answered 400).
"""

from __future__ import annotations

import math

from django.db import IntegrityError, transaction
from django.utils import timezone

from evals import judging, library, secrets
from evals.evaluation_models import (
    EvaluationRule,
    Evaluator,
    EvaluatorStatus,
    EvaluatorType,
    EvaluatorVersion,
    LlmAdapter,
    LlmConnection,
    RuleStatus,
    RuleTarget,
)
from tenancy import outbound
from tenancy.models import Project

MAX_ACTIVE_RULES = 500  # per project, as Langfuse


class Conflict(judging.DefinitionError):
    status = 409


# --- LLM connections ----------------------------------------------------------------------------


def _check_base_url(base_url: str) -> str:
    if not base_url:
        return ""
    try:
        return outbound.check_url(base_url)
    except outbound.UnsafeURL as exc:
        raise judging.DefinitionError(f"`baseURL` is refused: {exc}", "unsafe_url") from None


def connection_upsert(*, project: Project, provider: str, adapter: str, secret_key: str | None, base_url: str = "",
                      default_model: str = "", custom_models=None, timeout_seconds: float | None = None,
                      max_retries: int | None = None) -> tuple[LlmConnection, bool]:
    """Create or replace the project's connection named `provider`. The base URL is checked against
    the outbound rules here (a clear 400) and again before every call. A missing secret keeps the
    stored one (editing a connection must not require pasting the key again)."""
    if not isinstance(provider, str) or not provider.strip() or len(provider) > 100:
        raise judging.DefinitionError("`provider` is required (at most 100 characters).")
    if not isinstance(adapter, str) or adapter not in LlmAdapter.values:
        raise judging.DefinitionError(f"`adapter` must be one of {', '.join(LlmAdapter.values)}.")
    base_url = _check_base_url((base_url or "").strip())
    if timeout_seconds is not None and (
        isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, (int, float)) or not (0 < timeout_seconds <= 300)
    ):
        raise judging.DefinitionError("`timeoutSeconds` must be a number in (0, 300].")
    if max_retries is not None and (isinstance(max_retries, bool) or not isinstance(max_retries, int) or not (0 <= max_retries <= 10)):
        raise judging.DefinitionError("`maxRetries` must be an integer in [0, 10].")
    if not isinstance(adapter, str) or not isinstance(default_model, str) or len(default_model) > 200:
        raise judging.DefinitionError("`adapter` and `defaultModel` must be strings (at most 200 characters).")
    models = custom_models or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise judging.DefinitionError("`customModels` must be a list of strings.")
    with transaction.atomic():
        connection = LlmConnection.objects.select_for_update().filter(project=project, provider=provider).first()
        created = connection is None
        if created:
            if not secret_key:
                raise judging.DefinitionError("`secretKey` is required for a new connection.")
            connection = LlmConnection(project=project, provider=provider)
        if secret_key:
            connection.secret_key_encrypted = secrets.encrypt(secret_key)
            connection.display_secret_key = secrets.mask(secret_key)
        connection.adapter = adapter
        connection.base_url = base_url
        connection.default_model = default_model or ""
        connection.custom_models = models
        if timeout_seconds is not None:
            connection.timeout_seconds = timeout_seconds
        if max_retries is not None:
            connection.max_retries = max_retries
        connection.updated_at = timezone.now()
        connection.save()
    return connection, created


def connection_delete(*, project: Project, connection_id) -> bool:
    deleted, _ = LlmConnection.objects.filter(project=project, pk=connection_id).delete()
    return bool(deleted)


def rotate_connection_secrets() -> int:
    """Re-encrypt every stored secret under the first of LLM_SECRET_KEYS; returns how many."""
    count = 0
    for connection in LlmConnection.objects.select_for_update().iterator():
        connection.secret_key_encrypted = secrets.rotate(connection.secret_key_encrypted)
        connection.save(update_fields=["secret_key_encrypted"])
        count += 1
    return count


# --- evaluators -----------------------------------------------------------------------------------


def _model_config(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("provider"), str) or not isinstance(value.get("model"), str):
        raise judging.DefinitionError("`modelConfig` is {provider, model} or null.")
    return {"provider": value["provider"], "model": value["model"]}


def _version_fields(data: dict) -> dict:
    """The fields of a new version from an API body (camelCase, Langfuse's shape)."""
    kind = data.get("type") or EvaluatorType.LLM_AS_JUDGE
    if kind == EvaluatorType.RULE:
        rule_kind = data.get("ruleKind")
        if not isinstance(rule_kind, str) or not rule_kind:
            raise judging.DefinitionError("a rule evaluator needs `ruleKind` (e.g. expected_substring, regex).")
        params = data.get("ruleParams") or {}
        from lookglass.evaluators import EvaluatorError, compile_evaluator

        try:
            compiled = compile_evaluator(rule_kind, params)
        except EvaluatorError as exc:
            raise judging.DefinitionError(str(exc), "invalid_rule_evaluator") from None
        data_type = "NUMERIC" if rule_kind == "similarity" else "BOOLEAN"
        definition = {"dataType": data_type, **({"minValue": 0, "maxValue": 1} if data_type == "NUMERIC" else {})}
        del compiled
        return {"rule_kind": rule_kind, "rule_params": params, "output_definition": definition, "higher_is_better": True}
    if kind != EvaluatorType.LLM_AS_JUDGE:
        raise judging.DefinitionError("`type` must be llm_as_judge or rule.")
    template = data.get("template")
    if template is not None and not isinstance(template, str):
        raise judging.DefinitionError("`template` must be a template name (a string).")
    base = library.template(template) if template else None
    if template and base is None:
        raise judging.DefinitionError(f"no template named {template!r} (GET …/evaluator-templates lists them).")
    prompt = data.get("prompt", base["prompt"] if base else None)
    messages = judging.normalize_prompt(prompt)
    variables = judging.variables_of(messages)
    definition = judging.normalize_output_definition(data.get("outputDefinition", base["output"] if base else None))
    mapping = judging.normalize_mapping(data.get("variableMapping"), variables, required=False)
    higher = data.get("higherIsBetter", base["higher_is_better"] if base else True)
    if not isinstance(higher, bool):
        raise judging.DefinitionError("`higherIsBetter` must be a boolean.")
    return {"prompt": messages, "variables": variables, "variable_mapping": mapping,
            "model_config": _model_config(data.get("modelConfig")), "output_definition": definition,
            "higher_is_better": higher}


def evaluator_create(*, project: Project, data: dict, actor=None) -> Evaluator:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise judging.DefinitionError("`name` is required (at most 200 characters).")
    fields = _version_fields(data)
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise judging.DefinitionError("`description` must be a string or null.")
    user = actor if getattr(actor, "pk", None) and hasattr(actor, "email") else None
    with transaction.atomic():
        evaluator = Evaluator.objects.create(
            project=project, name=name, description=description, type=data.get("type") or EvaluatorType.LLM_AS_JUDGE,
            created_by=user,
        )
        EvaluatorVersion.objects.create(evaluator=evaluator, version=1, created_by=user, **fields)
    return evaluator


def evaluator_update(*, evaluator: Evaluator, data: dict, actor=None) -> Evaluator:
    """Name/description change in place; anything else makes a new version (the id stays)."""
    user = actor if getattr(actor, "pk", None) and hasattr(actor, "email") else None
    with transaction.atomic():
        evaluator = Evaluator.objects.select_for_update().get(pk=evaluator.pk)
        if "name" in data:
            if not isinstance(data["name"], str) or not data["name"].strip() or len(data["name"]) > 200:
                raise judging.DefinitionError("`name` must be a non-empty string (at most 200 characters).")
            evaluator.name = data["name"]
        if "description" in data:
            if data["description"] is not None and not isinstance(data["description"], str):
                raise judging.DefinitionError("`description` must be a string or null.")
            evaluator.description = data["description"]
        definition_keys = {"prompt", "outputDefinition", "variableMapping", "modelConfig", "ruleKind", "ruleParams", "higherIsBetter", "template"}
        if definition_keys & set(data):
            if data.get("type") and data["type"] != evaluator.type:
                raise judging.DefinitionError("the type of an existing evaluator cannot change.")
            latest = evaluator.versions.order_by("-version").first()
            merged = _version_body(latest)
            merged.update({k: v for k, v in data.items() if k in definition_keys})
            merged["type"] = evaluator.type
            fields = _version_fields(merged)
            EvaluatorVersion.objects.create(evaluator=evaluator, version=latest.version + 1, created_by=user, **fields)
        evaluator.updated_at = timezone.now()
        evaluator.save()
    return evaluator


def _version_body(version: EvaluatorVersion) -> dict:
    return {"prompt": version.prompt, "outputDefinition": version.output_definition,
            "variableMapping": version.variable_mapping, "modelConfig": version.model_config,
            "ruleKind": version.rule_kind, "ruleParams": version.rule_params,
            "higherIsBetter": version.higher_is_better}


def evaluator_delete(*, project: Project, evaluator_id) -> bool:
    with transaction.atomic():
        deleted, _ = Evaluator.objects.filter(project=project, pk=evaluator_id).delete()
        if deleted:
            for rule in EvaluationRule.objects.select_for_update().filter(project=project):
                kept = [a for a in rule.assignments if a.get("evaluatorId") != str(evaluator_id)]
                if kept != rule.assignments:
                    rule.assignments = kept
                    rule.enabled = rule.enabled and bool(kept)
                    rule.save(update_fields=["assignments", "enabled"])
    return bool(deleted)


def pause_evaluator(*, evaluator_id, reason: str, message: str, rule_id=None) -> None:
    """Stop spending on a connection that cannot work (bad key, no credit): the evaluator and the
    rule that hit it are paused with the reason until someone fixes the connection and resumes."""
    now = timezone.now()
    Evaluator.objects.filter(pk=evaluator_id).update(
        status=EvaluatorStatus.PAUSED, paused_at=now, paused_reason=reason, paused_message=message[:2000], updated_at=now
    )
    if rule_id:
        EvaluationRule.objects.filter(pk=rule_id).update(
            status=RuleStatus.PAUSED, paused_reason=reason, paused_message=message[:2000], updated_at=now
        )


def resume_evaluator(*, evaluator: Evaluator) -> None:
    now = timezone.now()
    Evaluator.objects.filter(pk=evaluator.pk).update(status=EvaluatorStatus.ACTIVE, paused_at=None, paused_reason="", paused_message="", updated_at=now)
    EvaluationRule.objects.filter(project_id=evaluator.project_id, status=RuleStatus.PAUSED).update(
        status=RuleStatus.ACTIVE, paused_reason="", paused_message="", updated_at=now
    )


# --- rules ----------------------------------------------------------------------------------------

FILTER_OPERATORS = frozenset({
    "=", "<>", "contains", "does not contain", "starts with", "ends with", ">", "<", ">=", "<=",
    "any of", "none of", "all of", "is null", "is not null",
})


def _filters(value) -> list[dict]:
    from evals.targets import FILTER_COLUMNS

    if value is None:
        return []
    if not isinstance(value, list):
        raise judging.DefinitionError("`filter` must be a list of {type, column, operator, value, key?}.")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("column"), str) or entry["column"] not in FILTER_COLUMNS:
            raise judging.DefinitionError(
                f"filter column must be one of {', '.join(sorted(FILTER_COLUMNS))}, not {entry.get('column') if isinstance(entry, dict) else entry!r}."
            )
        if not isinstance(entry.get("operator"), str) or entry["operator"] not in FILTER_OPERATORS:
            raise judging.DefinitionError(f"filter operator {entry.get('operator')!r} is not supported.")
        if entry.get("key") is not None and not isinstance(entry["key"], str):
            raise judging.DefinitionError("a filter `key` must be a string.")
        if entry["column"] == "metadata" and not isinstance(entry.get("key"), str):
            raise judging.DefinitionError("a metadata filter needs a `key`.")
        out.append({k: entry.get(k) for k in ("type", "column", "operator", "value", "key") if k in entry})
    return out


def _assignments(project: Project, value) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise judging.DefinitionError("`evaluatorAssignments` must be a list of {evaluatorId, variableMapping?}.")
    out = []
    for entry in value:
        evaluator_id = entry.get("evaluatorId") if isinstance(entry, dict) else None
        evaluator = Evaluator.objects.filter(project=project, pk=evaluator_id).first() if _uuid(evaluator_id) else None
        if evaluator is None:
            raise judging.DefinitionError(f"no evaluator {evaluator_id!r} in this project.", "evaluator_not_found")
        latest = evaluator.versions.order_by("-version").first()
        mapping = entry.get("variableMapping")
        if mapping is not None and evaluator.type == EvaluatorType.LLM_AS_JUDGE:
            mapping = judging.normalize_mapping(mapping, latest.variables, required=True)
        out.append({"evaluatorId": str(evaluator.pk), "variableMapping": mapping})
    return out


def _uuid(value) -> bool:
    from tenancy.api.base import is_uuid

    return is_uuid(value)


def _fraction(value, name: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise judging.DefinitionError(f"`{name}` must be a number in [0, 1].")
    return float(value)


RULE_KEYS = {"name", "enabled", "sampling", "filter", "evaluatorAssignments", "target", "delaySeconds",
             "runOnNew", "nightly", "nightlySampling", "nightlyMaxTargets"}


def rule_save(*, project: Project, data: dict, rule: EvaluationRule | None = None, actor=None) -> EvaluationRule:
    """Create (`rule` None) or partially update a rule."""
    creating = rule is None
    if creating:
        rule = EvaluationRule(project=project, created_by=actor if getattr(actor, "pk", None) and hasattr(actor, "email") else None)
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            raise judging.DefinitionError("`name` is required.")
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip() or len(data["name"]) > 200:
            raise judging.DefinitionError("`name` must be a non-empty string (at most 200 characters).")
        rule.name = data["name"]
    if "sampling" in data or creating:
        rule.sampling = _fraction(data.get("sampling"), "sampling", rule.sampling if not creating else 1.0)
    if "nightlySampling" in data:
        rule.nightly_sampling = _fraction(data["nightlySampling"], "nightlySampling", 0.1)
    if "filter" in data or creating:
        rule.filter = _filters(data.get("filter"))
    if "evaluatorAssignments" in data or creating:
        rule.assignments = _assignments(project, data.get("evaluatorAssignments"))
    if "target" in data:
        if data["target"] not in RuleTarget.values:
            raise judging.DefinitionError(f"`target` must be one of {', '.join(RuleTarget.values)}.")
        rule.target = data["target"]
    for key, attr, low, high in (("delaySeconds", "delay_seconds", 0, 86_400), ("nightlyMaxTargets", "nightly_max_targets", 1, 100_000)):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise judging.DefinitionError(f"`{key}` must be an integer in [{low}, {high}].")
            setattr(rule, attr, value)
    for key, attr in (("runOnNew", "run_on_new"), ("nightly", "nightly"), ("enabled", "enabled")):
        if key in data:
            if not isinstance(data[key], bool):
                raise judging.DefinitionError(f"`{key}` must be a boolean.")
            setattr(rule, attr, data[key])
    if "filter" in data or "target" in data or creating:
        from evals.targets import validate

        validate(project=project, target=rule.target, filters=rule.filter)
    if rule.enabled and not rule.assignments:
        raise judging.DefinitionError("an enabled rule needs at least one evaluator assignment.")
    with transaction.atomic():
        if rule.enabled and (creating or "enabled" in data):
            active = EvaluationRule.objects.filter(project=project, enabled=True).exclude(pk=rule.pk).count()
            if active >= MAX_ACTIVE_RULES:
                raise Conflict(f"at most {MAX_ACTIVE_RULES} enabled rules per project.", "too_many_rules")
        if rule.status != RuleStatus.PAUSED:
            rule.status = RuleStatus.ACTIVE if rule.enabled else RuleStatus.INACTIVE
        if creating and rule.new_data_cursor is None:
            rule.new_data_cursor = timezone.now()  # a new rule evaluates what arrives from now on
        rule.updated_at = timezone.now()
        try:
            rule.save()
        except IntegrityError as exc:  # pragma: no cover - no unique constraints besides the pk
            raise Conflict(str(exc)) from None
    return rule


def rule_delete(*, project: Project, rule_id) -> bool:
    deleted, _ = EvaluationRule.objects.filter(project=project, pk=rule_id).delete()
    return bool(deleted)
