"""Data-plane trace storage. Lives in the project's region database; `project_id` leads every key
and index so tables can later be time-partitioned and distributed by project (Citus) as they are."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.db import models
from django.db.models import F
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel


class ObservationType(models.TextChoices):
    SPAN = "SPAN"
    GENERATION = "GENERATION"
    EVENT = "EVENT"
    AGENT = "AGENT"
    TOOL = "TOOL"
    CHAIN = "CHAIN"
    RETRIEVER = "RETRIEVER"
    EMBEDDING = "EMBEDDING"
    EVALUATOR = "EVALUATOR"
    GUARDRAIL = "GUARDRAIL"


class Level(models.TextChoices):
    DEBUG = "DEBUG"
    DEFAULT = "DEFAULT"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Status(models.TextChoices):
    SUCCESS = "success"
    ERROR = "error"
    REFUSED = "refused"


class CostSource(models.TextChoices):
    CLIENT = "client", "sent by the client"
    CATALOG = "catalog", "tokens × catalog price"
    NONE = "none", "no price known"


class Trace(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.CharField(max_length=200)
    name = models.CharField(max_length=1000, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now)
    # True while `timestamp` is only a stand-in (the earliest observation of a trace created before its
    # own trace-create arrived, or the arrival time): the trace's own timestamp replaces it whenever
    # it comes, even when it is later. Set and cleared by the ingest writer.
    timestamp_is_placeholder = models.BooleanField(default=False)
    user_id = models.CharField(max_length=1000, blank=True, default="")
    session_id = models.CharField(max_length=1000, blank=True, default="")
    environment = models.CharField(max_length=100, blank=True, default="default")
    release = models.CharField(max_length=500, blank=True, default="")
    version = models.CharField(max_length=500, blank=True, default="")
    tags = ArrayField(models.TextField(), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    public = models.BooleanField(default=False)
    # What PII redaction removed, by detector (counts only, never values).
    redactions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The trace's cost as its readers sum it — `total_cost` of its counted observations (not the
    # duplicate of a parent's call, `duplicate_of`), NULL while none has a cost — and how many counted
    # observations have one. Kept exact by the writer: `ingest.rollups` moves both by (new − old) of
    # every call a write changes, in the write's transaction (`manage.py rebuild_trace_costs` recomputes
    # them). The explorer sorts and filters by cost from this row instead of summing every
    # observation of every trace in the window (issue 16).
    cost = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    cost_calls = models.IntegerField(default=0, db_default=0)

    class Meta:
        indexes = [
            # The metering job counts rows by creation hour (billing/metering.py): a BRIN index is a
            # few pages and costs ingestion next to nothing, since rows arrive in created_at order.
            BrinIndex(fields=["project_id", "created_at"], name="trace_project_created_brin", autosummarize=True),
            models.Index(fields=["project_id", "-timestamp"], name="trace_project_time"),
            # The sessions list walks first traces newest first and probes each one's session for an
            # earlier trace (traces.selectors.session_page): both from an index alone (the environment
            # is the list's filter; the trace id, once the tie-break, is no longer read), so a deep
            # page reads no heap page.
            models.Index(
                fields=["project_id", "session_id", "-timestamp"],
                include=["id", "environment"],
                name="trace_project_session_cover",
            ),
            models.Index(
                fields=["project_id", "-timestamp", "-session_id"],
                include=["id", "environment"],
                condition=~models.Q(session_id=""),
                name="trace_project_sessions_time",
            ),
            # A user's traces newest first, with the trace id: the console's users list counts a page of
            # users' traces with an error by joining these ids to the failed calls' partial index, from
            # this index alone (a heap page per trace before: 20,000 for a page at 10M observations).
            models.Index(fields=["project_id", "user_id", "-timestamp"], include=["id"], name="trace_project_user_cover"),
            # Reads at volume (issue 13): `name=` pages walk this newest first; `tags=` uses a GIN index
            # that starts with the project too (btree_gin gives GIN a uuid operator class).
            models.Index(fields=["project_id", "name", "-timestamp"], name="trace_project_name_time"),
            GinIndex(fields=["project_id", "tags"], name="trace_project_tags"),
            # The explorer sorted by cost, dearest first (its order, with NULL — no cost — last and the
            # id breaking ties): walked from the top, the window's dearest traces come first, instead of
            # reading every trace of the window to sort them (issue 16).
            models.Index(
                F("project_id"), F("cost").desc(nulls_last=True), F("id").desc(), name="trace_project_cost"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.id


class Observation(DataPlaneModel):
    """A span, generation, event, or agent/tool/chain/retriever/embedding/evaluator/guardrail step."""

    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.CharField(max_length=200)
    trace_id = models.CharField(max_length=200)
    parent_observation_id = models.CharField(max_length=200, blank=True, default="")
    type = models.CharField(max_length=16, choices=ObservationType.choices, default=ObservationType.SPAN)
    name = models.CharField(max_length=1000, blank=True, default="")
    start_time = models.DateTimeField(default=timezone.now)
    end_time = models.DateTimeField(null=True, blank=True)
    completion_start_time = models.DateTimeField(null=True, blank=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.DEFAULT)
    status_message = models.TextField(blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SUCCESS)
    version = models.CharField(max_length=500, blank=True, default="")
    environment = models.CharField(max_length=100, blank=True, default="default")

    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    # Generations: model as requested and as answered, parameters, prompt link.
    model = models.CharField(max_length=500, blank=True, default="")
    response_model = models.CharField(max_length=500, blank=True, default="")
    model_parameters = models.JSONField(default=dict, blank=True)
    prompt_name = models.CharField(max_length=500, blank=True, default="")
    prompt_version = models.IntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=100, blank=True, default="")
    # Tool calls the model asked for: [{"id", "name", "arguments"}], arguments parsed when JSON.
    tool_calls = models.JSONField(default=list, blank=True)

    # Tokens by kind. input_tokens counts fresh (uncached) input only.
    # Usage in Langfuse's keys, each kind once (raw OTLP usage attributes are in metadata.usage_raw).
    usage_details = models.JSONField(default=dict, blank=True)
    input_tokens = models.BigIntegerField(null=True, blank=True)
    cached_input_tokens = models.BigIntegerField(null=True, blank=True)
    cache_write_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    reasoning_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)

    cost_details = models.JSONField(default=dict, blank=True)  # per token kind, disjoint, in USD
    input_cost = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    output_cost = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    total_cost = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cost_source = models.CharField(max_length=8, choices=CostSource.choices, default=CostSource.NONE)

    # Tool invocations (type TOOL): input holds the arguments, output the result.
    tool_name = models.CharField(max_length=500, blank=True, default="")
    tool_call_id = models.CharField(max_length=200, blank=True, default="")

    error_type = models.CharField(max_length=500, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    error_stack = models.TextField(blank=True, default="")

    redactions = models.JSONField(default=dict, blank=True)
    # A generation that describes the same model call as its parent generation (an SDK's own span
    # nested under an instrumentation's span for one API call) names that parent here, and is left
    # out of trace totals, so the call is counted once. Set by the writer (ingest.writer), never sent.
    duplicate_of = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The metering job counts rows by creation hour (billing/metering.py): a BRIN index is a
            # few pages and costs ingestion next to nothing, since rows arrive in created_at order.
            BrinIndex(fields=["project_id", "created_at"], name="obs_project_created_brin", autosummarize=True),
            models.Index(fields=["project_id", "trace_id", "start_time"], name="obs_project_trace"),
            models.Index(fields=["project_id", "-start_time"], name="obs_project_time"),
            models.Index(fields=["project_id", "type", "-start_time"], name="obs_project_type_time"),
            models.Index(fields=["project_id", "model", "-start_time"], name="obs_project_model_time"),
            models.Index(fields=["project_id", "prompt_name", "prompt_version"], name="obs_project_prompt"),
            # The writer's lookup of a call's stored children (duplicate-call marking, ingest.writer).
            models.Index(
                fields=["project_id", "trace_id", "parent_observation_id"],
                name="obs_project_children",
                condition=~models.Q(parent_observation_id=""),
            ),
            # Reads at volume (issue 13). `model=` matches the requested or the answered model: each side
            # has its index, so a rare model is found without scanning every observation.
            models.Index(
                fields=["project_id", "response_model", "-start_time"], name="obs_project_resp_model_time"
            ),
            # Trace status filters probe "has this trace a failed call?": only failed rows are indexed
            # (a few percent), so the index stays small and cheap for the writer.
            models.Index(
                fields=["project_id", "trace_id"],
                name="obs_project_trace_failed",
                condition=models.Q(status__in=["error", "refused"]),
            ),
            # Prompt version metrics read a time window of one prompt's counted generations: exactly the
            # rows of this partial index (prompts.selectors._CALLS_CTE repeats its predicate), and from
            # it alone: it carries every column they read (an index-only scan, no heap page per call).
            models.Index(
                fields=["project_id", "prompt_name", "start_time"],
                include=[
                    "prompt_version", "status", "end_time", "completion_start_time", "total_cost", "id", "trace_id",
                    "model", "response_model", "input_tokens", "cached_input_tokens", "cache_write_tokens",
                    "output_tokens", "reasoning_tokens",
                ],
                name="obs_project_prompt_cover",
                condition=models.Q(type="GENERATION", prompt_version__isnull=False, duplicate_of="")
                & ~models.Q(prompt_name=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name or self.id}"

    @property
    def latency_ms(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds() * 1000

    @property
    def time_to_first_token_ms(self) -> float | None:
        if self.completion_start_time is None:
            return None
        return (self.completion_start_time - self.start_time).total_seconds() * 1000
