"""Evaluations: who judges (LLM connections), how (evaluators and their versions), what (evaluation
rules), and the work done (jobs).

- Control plane (configuration, in `default`): `LlmConnection` (a project's model provider, its secret
  key encrypted at rest), `Evaluator` + `EvaluatorVersion` (an LLM-as-judge prompt or a rule
  evaluator; a change makes a new version, the id stays), `EvaluationRule` (filter, sampling, target,
  delay, nightly sample, the evaluators it runs).
- Data plane (in the project's region): `EvalJob`, one per (rule, target, evaluator version), whose
  id is a hash of those three so a re-scan, a retry or a redelivered message finds the same row, and
  the scores it writes have ids derived from it (`evals.judging.score_id`), so a retry updates them.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel
from tenancy.planes import Plane


class LlmAdapter(models.TextChoices):
    OPENAI = "openai"  # any OpenAI-compatible API: OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM…
    ANTHROPIC = "anthropic"


class LlmConnection(models.Model):
    """A project's model provider. `provider` is the name evaluators refer to (`modelConfig.provider`),
    unique per project as in Langfuse; `adapter` picks the SDK. The secret key is stored only
    encrypted (`evals.secrets`); `display_secret_key` is its masked form for lists and forms."""

    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="llm_connections")
    provider = models.CharField(max_length=100)
    adapter = models.CharField(max_length=16, choices=LlmAdapter.choices, default=LlmAdapter.OPENAI)
    base_url = models.CharField(max_length=2000, blank=True, default="")
    secret_key_encrypted = models.TextField(editable=False)
    display_secret_key = models.CharField(max_length=40, editable=False)
    default_model = models.CharField(max_length=200, blank=True, default="")
    custom_models = models.JSONField(default=list, blank=True)
    timeout_seconds = models.FloatField(default=30.0)
    max_retries = models.PositiveSmallIntegerField(default=2)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "LLM connection"
        ordering = ["provider"]
        constraints = [models.UniqueConstraint(fields=["project", "provider"], name="llmconnection_project_provider")]

    def __str__(self) -> str:
        return f"{self.provider} ({self.adapter})"


class EvaluatorType(models.TextChoices):
    LLM_AS_JUDGE = "llm_as_judge"
    RULE = "rule"  # a deterministic check from `lookglass.evaluators` (expected substring, regex, …)


class EvaluatorStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"


class PauseReason(models.TextChoices):
    AUTH_INVALID = "LLM_CONNECTION_AUTH_INVALID"
    BILLING_EXHAUSTED = "LLM_CONNECTION_BILLING_EXHAUSTED"
    ENDPOINT_REFUSED = "LLM_CONNECTION_ENDPOINT_UNREACHABLE"
    CONNECTION_MISSING = "LLM_CONNECTION_MISSING"
    MODEL_UNAVAILABLE = "EVAL_MODEL_UNAVAILABLE"


class Evaluator(models.Model):
    """The stable identity of an evaluator; what it does is its latest `EvaluatorVersion`.
    A paused evaluator (auth or billing failure of its connection) runs nowhere until resumed."""

    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="evaluators")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, null=True)
    type = models.CharField(max_length=16, choices=EvaluatorType.choices, default=EvaluatorType.LLM_AS_JUDGE)
    status = models.CharField(max_length=8, choices=EvaluatorStatus.choices, default=EvaluatorStatus.ACTIVE)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=64, blank=True, default="")
    paused_message = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["project", "name"], name="evaluator_project_name")]

    def __str__(self) -> str:
        return self.name


class EvaluatorVersion(models.Model):
    """One immutable version. LLM judges: `prompt` (chat messages with {{variables}}), `variables`,
    the default `variable_mapping`, `model_config` ({provider, model}, or null for the project's
    default connection) and `output_definition` (NUMERIC with bounds, BOOLEAN, CATEGORICAL). Rule
    evaluators: `rule_kind` and `rule_params` for `lookglass.evaluators.evaluate`.
    `higher_is_better` says which way the score points (hallucination, toxicity: lower is better)."""

    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    evaluator = models.ForeignKey(Evaluator, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    prompt = models.JSONField(default=list, blank=True)
    variables = models.JSONField(default=list, blank=True)
    variable_mapping = models.JSONField(null=True, blank=True)
    model_config = models.JSONField(null=True, blank=True)
    output_definition = models.JSONField(default=dict, blank=True)
    rule_kind = models.CharField(max_length=64, blank=True, default="")
    rule_params = models.JSONField(default=dict, blank=True)
    higher_is_better = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["evaluator", "-version"]
        constraints = [models.UniqueConstraint(fields=["evaluator", "version"], name="evaluatorversion_unique")]

    def __str__(self) -> str:
        return f"{self.evaluator_id} v{self.version}"


class RuleTarget(models.TextChoices):
    OBSERVATION = "observation"
    TRACE = "trace"
    EXPERIMENT = "experiment"  # dataset run items (the trace each run produced, with its item)


class RuleStatus(models.TextChoices):
    ACTIVE = "active"
    INACTIVE = "inactive"
    PAUSED = "paused"


class EvaluationRule(models.Model):
    """Which targets get evaluated, by which evaluators.

    `filter` is Langfuse's list of `{type, column, operator, value, key?}` (all must match);
    `sampling` a fraction in (0, 1], decided per target id by a hash (the same target always gets the
    same decision); new targets are evaluated `delay_seconds` after they arrive (so late updates of
    the output are in); `nightly` also evaluates a sample (`nightly_sampling`, at most
    `nightly_max_targets`) of the previous day's production targets. `assignments` is
    `[{evaluatorId, variableMapping}]`. `new_data_cursor` is how far the new-data scan has got."""

    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="evaluation_rules")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=8, choices=RuleStatus.choices, default=RuleStatus.ACTIVE)
    paused_reason = models.CharField(max_length=64, blank=True, default="")
    paused_message = models.TextField(blank=True, default="")
    target = models.CharField(max_length=16, choices=RuleTarget.choices, default=RuleTarget.OBSERVATION)
    filter = models.JSONField(default=list, blank=True)
    sampling = models.FloatField(default=1.0)
    delay_seconds = models.PositiveIntegerField(default=10)
    run_on_new = models.BooleanField(default=True)
    nightly = models.BooleanField(default=False)
    nightly_sampling = models.FloatField(default=0.1)
    nightly_max_targets = models.PositiveIntegerField(default=1000)
    assignments = models.JSONField(default=list, blank=True)
    new_data_cursor = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["project", "enabled"], name="evalrule_project_enabled")]

    def __str__(self) -> str:
        return self.name


class EvalJobStatus(models.TextChoices):
    PENDING = "pending"
    DELAYED = "delayed"  # rate-limited (429 after the SDK's own retries) or over quota: runs again at run_after
    COMPLETED = "completed"
    ERROR = "error"


class EvalJob(DataPlaneModel):
    """One evaluation of one target by one evaluator version for one rule (or an ad-hoc judge call).
    The id is `evals.judging.job_id(rule, target, version)`: creating it twice is a no-op."""

    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.CharField(max_length=64)
    rule_id = models.UUIDField(null=True, blank=True)
    evaluator_id = models.UUIDField()
    evaluator_version_id = models.UUIDField()
    target = models.CharField(max_length=16, choices=RuleTarget.choices)
    trace_id = models.CharField(max_length=200, blank=True, default="")
    observation_id = models.CharField(max_length=200, blank=True, default="")
    dataset_item_id = models.CharField(max_length=255, blank=True, default="")
    dataset_run_id = models.CharField(max_length=64, blank=True, default="")
    trigger = models.CharField(max_length=16, default="new")  # new | nightly | backfill | judge
    status = models.CharField(max_length=12, choices=EvalJobStatus.choices, default=EvalJobStatus.PENDING)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    run_after = models.DateTimeField(default=timezone.now)
    score_ids = models.JSONField(default=list, blank=True)
    execution_trace_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project_id", "status", "run_after"], name="evaljob_status"),
            models.Index(fields=["project_id", "rule_id", "-created_at"], name="evaljob_rule"),
            models.Index(fields=["project_id", "-created_at"], name="evaljob_created"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"
