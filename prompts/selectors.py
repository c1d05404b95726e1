"""Reads of the prompt registry. Every query is scoped by project and goes to its region database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import orjson
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Q

from prompts import cache
from prompts.models import PRODUCTION, Prompt, PromptLabel, PromptLabelEvent, PromptVersion
from prompts.render import dumps, prompt_payload
from tenancy.dataplane import data_connection
from tenancy.models import Project
from traces.models import ObservationType, Status


def prompt_by_name(*, project: Project, name: str) -> Prompt | None:
    return Prompt.objects.for_project(project).filter(name=name).first()


def _labels_of_version(project: Project):
    return ArraySubquery(
        PromptLabel.objects.for_project(project)
        .filter(prompt_id=OuterRef("prompt_id"), version=OuterRef("version"))
        .order_by("label")
        .values("label")
    )


def versions_with_labels(*, project: Project, prompt: Prompt):
    """All versions of a prompt, newest first, each with `.labels`."""
    return (
        PromptVersion.objects.for_project(project)
        .filter(prompt_id=prompt.id)
        .annotate(labels=_labels_of_version(project))
        .order_by("-version")
    )


def prompt_labels(*, project: Project, prompt: Prompt) -> list[tuple[str, int]]:
    """The prompt's labels and the version each points at, by label."""
    return list(
        PromptLabel.objects.for_project(project)
        .filter(prompt_id=prompt.id)
        .order_by("label")
        .values_list("label", "version")
    )


def prompt_version_get(
    *, project: Project, prompt: Prompt, label: str | None = None, version: int | None = None
) -> PromptVersion | None:
    """The version a label points at, or a version by number (with `.labels`)."""
    versions = PromptVersion.objects.for_project(project).filter(prompt_id=prompt.id)
    if version is not None:
        versions = versions.filter(version=version)
    else:
        pointed = PromptLabel.objects.for_project(project).filter(
            prompt_id=prompt.id, label=label or PRODUCTION
        )
        versions = versions.filter(version__in=pointed.values("version"))
    return versions.annotate(labels=_labels_of_version(project)).first()


def prompt_payload_for(*, project: Project, name: str, label: str | None, version: int | None) -> dict | None:
    prompt = prompt_by_name(project=project, name=name)
    if prompt is None:
        return None
    found = prompt_version_get(project=project, prompt=prompt, label=label, version=version)
    if found is None:
        return None
    return prompt_payload(prompt=prompt, version=found, labels=list(found.labels))


def prompt_fetch_cached(
    *, project: Project, name: str, label: str | None, version: int | None
) -> bytes | None:
    """The SDK's `get_prompt`: JSON bytes of the version, or None. Served from the cache tiers."""
    if version is None and label is None:
        label = PRODUCTION

    def load() -> bytes | None:
        payload = prompt_payload_for(project=project, name=name, label=label, version=version)
        return dumps(payload) if payload is not None else None

    return cache.fetch(project.id, name, cache.selector_key(label=label, version=version), load)


# --- linking generations to versions --------------------------------------------------------


def prompt_version_for(*, project: Project, name: str, version: int) -> PromptVersion | None:
    """The registered version an observation's (prompt_name, prompt_version) refers to."""
    prompt = Prompt.objects.for_project(project).filter(name=name).values("id")
    return PromptVersion.objects.for_project(project).filter(prompt_id__in=prompt, version=version).first()


def prompt_versions_for(*, project: Project, pairs) -> dict[tuple[str, int], PromptVersion]:
    """Many (name, version) pairs at once, in two queries (for lists of observations)."""
    pairs = {(name, int(version)) for name, version in pairs if name and version is not None}
    if not pairs:
        return {}
    names = dict(
        Prompt.objects.for_project(project).filter(name__in={n for n, _ in pairs}).values_list("id", "name")
    )
    if not names:
        return {}
    wanted = Q()
    for prompt_id, name in names.items():
        numbers = [v for n, v in pairs if n == name]
        wanted |= Q(prompt_id=prompt_id, version__in=numbers)
    found = PromptVersion.objects.for_project(project).filter(wanted)
    return {(names[v.prompt_id], v.version): v for v in found}


# --- list (Langfuse's PromptMeta) -------------------------------------------------------------


@dataclass(frozen=True)
class PromptListFilters:
    name: str | None = None
    label: str | None = None
    tag: str | None = None
    from_updated_at: datetime | None = None
    to_updated_at: datetime | None = None


def prompt_list(
    *, project: Project, filters: PromptListFilters, page: int, limit: int
) -> tuple[list[dict], int]:
    """Prompts with the versions that match the filters, one page of them, and the total count.

    As in Langfuse, the filters select *versions*: `versions`, `labels`, `lastUpdatedAt` and
    `lastConfig` describe the matching versions only, and a prompt without any is left out.
    """
    where = ["v.project_id = %(project)s"]
    params: dict = {"project": project.id, "limit": limit, "offset": (page - 1) * limit}
    if filters.name is not None:
        where.append("p.name = %(name)s")
        params["name"] = filters.name
    if filters.tag is not None:
        where.append("%(tag)s = ANY(p.tags)")
        params["tag"] = filters.tag
    if filters.label is not None:
        where.append(
            "EXISTS (SELECT 1 FROM prompts_promptlabel l WHERE l.project_id = v.project_id "
            "AND l.prompt_id = v.prompt_id AND l.version = v.version AND l.label = %(label)s)"
        )
        params["label"] = filters.label
    if filters.from_updated_at is not None:
        where.append("v.updated_at >= %(from)s")
        params["from"] = filters.from_updated_at
    if filters.to_updated_at is not None:
        where.append("v.updated_at < %(to)s")
        params["to"] = filters.to_updated_at
    matching = f"""
        WITH grouped AS (
            SELECT v.prompt_id,
                   array_agg(v.version ORDER BY v.version) AS versions,
                   max(v.updated_at) AS last_updated_at,
                   (array_agg(v.config ORDER BY v.version DESC))[1] AS last_config
            FROM prompts_promptversion v
            JOIN prompts_prompt p ON p.project_id = v.project_id AND p.id = v.prompt_id
            WHERE {" AND ".join(where)}
            GROUP BY v.prompt_id
        )
    """
    page_sql = (
        matching
        + """
        SELECT p.name, p.type, p.tags, g.versions, g.last_updated_at, g.last_config,
               ARRAY(SELECT DISTINCT l.label FROM prompts_promptlabel l
                     WHERE l.project_id = p.project_id AND l.prompt_id = p.id AND l.version = ANY(g.versions)
                     ORDER BY l.label) AS labels,
               count(*) OVER () AS total
        FROM grouped g JOIN prompts_prompt p ON p.project_id = %(project)s AND p.id = g.prompt_id
        ORDER BY p.name
        LIMIT %(limit)s OFFSET %(offset)s
    """
    )
    with data_connection(project).cursor() as cursor:
        cursor.execute(page_sql, params)
        rows = cursor.fetchall()
        if rows:
            total = rows[0][7]
        else:
            cursor.execute(matching + "SELECT count(*) FROM grouped", params)
            total = cursor.fetchone()[0]
    data = [
        {
            "name": name,
            "type": kind,
            "versions": list(versions),
            "labels": list(labels),
            "tags": list(tags),
            "lastUpdatedAt": last_updated_at,
            # Django's psycopg setup hands jsonb to the ORM fields as text; raw SQL sees it the same way.
            "lastConfig": orjson.loads(last_config) if isinstance(last_config, str) else last_config,
        }
        for name, kind, tags, versions, last_updated_at, last_config, labels, _total in rows
    ]
    return data, total


def label_history(*, project: Project, prompt: Prompt, limit: int = 100):
    return (
        PromptLabelEvent.objects.for_project(project)
        .filter(prompt_id=prompt.id)
        .order_by("-created_at")[:limit]
    )


# --- comparing versions -----------------------------------------------------------------------

# A generation "belongs" to version N of prompt P when it is a GENERATION observation whose
# prompt_name = P and prompt_version = N and whose start_time falls in [since, until).
# A score is "attached" to version N when it is on one of those generations (observation_id) or
# on a trace that contains one (trace_id); a score is counted once per version even when several
# generations of that version share its trace.
# Feedback is an attached USER score that is a thumbs up/down: BOOLEAN, or NUMERIC with value 0 or 1.
# Thumbs-down rate = feedback scores with value 0 / all feedback scores (null when none).

# One statement: the version's calls are read once (a MATERIALIZED CTE over the prompt/time index
# obs_project_prompt_cover, whose `prompt_name <> ''` predicate is repeated so the planner can use it;
# it includes every column read here, so the calls come from the index alone: keep the two in step),
# then grouped for the call metrics and joined to their scores. Rows: ('calls', version, ...call
# columns) and ('scores', version, name or NULL for the per-version grouping set, ...score columns).
_CALLS_CTE = """
    calls AS MATERIALIZED (
        SELECT o.id, o.trace_id, o.prompt_version, o.status, o.start_time, o.end_time,
               o.completion_start_time, o.total_cost,
               o.total_cost IS NULL AND (o.model <> '' OR o.response_model <> '')
                   AND GREATEST(o.input_tokens, o.cached_input_tokens, o.cache_write_tokens,
                                o.output_tokens, o.reasoning_tokens) > 0 AS unpriced
        FROM traces_observation o
        WHERE o.project_id = %(project)s AND o.prompt_name = %(name)s AND o.prompt_name <> ''
          AND o.start_time >= %(since)s AND o.start_time < %(until)s
          AND o.type = %(generation)s AND o.prompt_version IS NOT NULL
          AND o.duplicate_of = ''  -- a nested span of the same call is not a second call
    )
"""

_CALL_METRICS_CTE = """
    call_metrics AS (
        SELECT prompt_version,
               count(*) AS calls,
               count(*) FILTER (WHERE status = %(error)s) AS errors,
               count(*) FILTER (WHERE status = %(refused)s) AS refusals,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM end_time - start_time) * 1000)
                   FILTER (WHERE end_time IS NOT NULL) AS latency_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM end_time - start_time) * 1000)
                   FILTER (WHERE end_time IS NOT NULL) AS latency_p95,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM completion_start_time - start_time) * 1000)
                   FILTER (WHERE completion_start_time IS NOT NULL) AS ttft_p50,
               avg(total_cost) AS avg_cost,
               count(total_cost) AS costed_calls,
               count(*) FILTER (WHERE unpriced) AS unpriced_calls
        FROM calls
        GROUP BY prompt_version
    )
"""

# The call metrics alone (version, calls, errors, …): what the combined statement's 'calls' rows hold.
_CALL_METRICS_SQL = "WITH" + _CALLS_CTE + "," + _CALL_METRICS_CTE + "SELECT * FROM call_metrics"

_METRICS_SQL = (
    "WITH"
    + _CALLS_CTE
    + ","
    + _CALL_METRICS_CTE
    + """,
    attached AS (
        SELECT c.prompt_version, s.id, s.name, s.value, s.source, s.data_type
        FROM calls c
        JOIN feedback_score s ON s.project_id = %(project)s AND s.trace_id = c.trace_id
        UNION
        SELECT c.prompt_version, s.id, s.name, s.value, s.source, s.data_type
        FROM calls c
        JOIN feedback_score s ON s.project_id = %(project)s AND s.observation_id = c.id
    ),
    score_metrics AS (
        SELECT prompt_version, name,
               avg(value) AS average,
               count(value) AS scored,
               count(*) FILTER (WHERE source = %(user)s AND value IS NOT NULL
                                AND (data_type = %(boolean)s OR (data_type = %(numeric)s AND value IN (0, 1))))
                   AS feedback,
               count(*) FILTER (WHERE source = %(user)s AND value = 0
                                AND (data_type = %(boolean)s OR data_type = %(numeric)s)) AS thumbs_down
        FROM attached
        GROUP BY GROUPING SETS ((prompt_version, name), (prompt_version))
    )
    SELECT 'calls', prompt_version, NULL::text, calls, errors, refusals, latency_p50, latency_p95, ttft_p50,
           avg_cost, costed_calls, unpriced_calls,
           NULL::double precision, NULL::bigint, NULL::bigint, NULL::bigint
    FROM call_metrics
    UNION ALL
    SELECT 'scores', prompt_version, name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           average, scored, feedback, thumbs_down
    FROM score_metrics
"""
)


@dataclass
class VersionMetrics:
    version: int
    registered: bool
    labels: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    commit_message: str | None = None
    calls: int = 0
    errors: int = 0
    refusals: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    time_to_first_token_p50_ms: float | None = None
    avg_cost: Decimal | None = None
    costed_calls: int = 0
    # Calls with a model and tokens but no price: `avg_cost` is over priced calls only.
    unpriced_calls: int = 0
    feedback_count: int = 0
    thumbs_down_count: int = 0
    scores: dict[str, dict] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    @property
    def refusal_rate(self) -> float | None:
        return self.refusals / self.calls if self.calls else None

    @property
    def thumbs_down_rate(self) -> float | None:
        return self.thumbs_down_count / self.feedback_count if self.feedback_count else None


def compare_versions(
    *, project: Project, prompt: Prompt, since: datetime, until: datetime
) -> list[VersionMetrics]:
    """Per version, over [since, until): calls, error/refusal rates, latency p50/p95, time to first
    token p50, average cost, thumbs-down rate and the average of every score. Newest version first.

    Versions seen on generations but not (or no longer) in the registry are included with
    `registered=False`. One statement for the metrics (and one for the registry), whatever the number of
    versions or rows.
    """
    registered = {v.version: v for v in versions_with_labels(project=project, prompt=prompt)}
    params = {
        "project": project.id,
        "name": prompt.name,
        "since": since,
        "until": until,
        "generation": ObservationType.GENERATION,
        "error": Status.ERROR,
        "refused": Status.REFUSED,
        "user": "USER",
        "boolean": "BOOLEAN",
        "numeric": "NUMERIC",
    }
    metrics: dict[int, VersionMetrics] = {
        number: VersionMetrics(
            version=number,
            registered=True,
            labels=list(v.labels),
            created_at=v.created_at,
            commit_message=v.commit_message,
        )
        for number, v in registered.items()
    }

    def entry(number: int) -> VersionMetrics:
        if number not in metrics:
            metrics[number] = VersionMetrics(version=number, registered=False)
        return metrics[number]

    with data_connection(project).cursor() as cursor:
        cursor.execute(_METRICS_SQL, params)
        rows = cursor.fetchall()
    for kind, number, name, *call_columns, average, scored, feedback, thumbs_down in rows:
        m = entry(number)
        if kind == "calls":
            calls, errors, refusals, p50, p95, ttft, avg_cost, costed, unpriced = call_columns
            m.calls, m.errors, m.refusals, m.costed_calls = calls, errors, refusals, costed
            m.unpriced_calls = unpriced
            m.latency_p50_ms, m.latency_p95_ms, m.time_to_first_token_p50_ms = p50, p95, ttft
            m.avg_cost = avg_cost
        elif name is None:  # the per-version grouping set
            m.feedback_count, m.thumbs_down_count = feedback, thumbs_down
        elif scored:
            m.scores[name] = {"avg": average, "count": scored}
    return [metrics[n] for n in sorted(metrics, reverse=True)]
