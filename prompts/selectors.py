"""Reads of the prompt registry. Every query is scoped by project and goes to its region database."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from django.contrib.postgres.expressions import ArraySubquery
from django.db import transaction
from django.db.models import OuterRef, Q

from ingest.rollups import EMPTY_DIMS, OBS_COLUMNS, Deltas
from monitoring.models import DIMENSION_CHARS, HISTOGRAM_BUCKETS
from monitoring.rules import percentile_of
from monitoring.selectors import Window, hist_sum_sql, rollup_source
from prompts import cache
from prompts.models import PRODUCTION, Prompt, PromptLabel, PromptLabelEvent, PromptVersion
from prompts.payloads import LABEL_MAX, LABEL_RE
from prompts.render import dumps, prompt_payload
from tenancy.dataplane import data_connection
from tenancy.models import Project
from traces.models import ObservationType


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

    if label is not None and (len(label) > LABEL_MAX or not LABEL_RE.match(label)):
        # No label can be set in this form (`payloads` checks them), so this is whatever a URL held:
        # read through, never cached, so arbitrary text (any length, control characters) from a
        # request never becomes a cache key, nor a cached 404 filling Redis.
        return load()
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

# A call "belongs" to version N of prompt P when it is an LLM call (a GENERATION or EMBEDDING
# observation, not a nested duplicate of another: the calls the monitoring rollups count) whose
# prompt_name = P and prompt_version = N (N > 0: the rollups keep "no version" as 0) and whose
# start_time falls in [since, until).
# A score is "attached" to version N when it is on one of N's generations (observation_id) or on a
# trace that contains one (trace_id); a score is counted once per version even when several
# generations of that version share its trace.
# Feedback is an attached USER score that is a thumbs up/down: BOOLEAN, or NUMERIC with value 0 or 1.
# Thumbs-down rate = feedback scores with value 0 / all feedback scores (null when none).
#
# The call figures come from the monitoring call rollups (prompt name and version are dimensions):
# the window's whole hours through `monitoring.selectors.rollup_source` (whole days from the daily
# rollup), and only its partial edge hours from the raw calls, added up by the rollups' own rule
# (`ingest.rollups.Deltas`), so both parts sum the same contributions. The rollup rows grow with the
# prompt's dimension combinations per day, not with its calls (grouping and sorting every call of a
# week for the percentiles grew with the traffic). Latency and TTFT percentiles are read from the
# rollups' fixed-bucket histograms (±9%, as on the dashboards). A prompt name of DIMENSION_CHARS or
# more is cut in the rollups (another prompt could share the cut), so its calls are read raw.
#
# Scores have no prompt dimension in the score rollups (a probe per inserted call on every batch,
# see README), so the attached scores are still read from the raw rows: the window's generations
# (from the covering partial index obs_project_prompt_cover, whose predicate is repeated here so the
# planner can use it: keep the two in step), each joined to its scores by trace and by observation.

_CALLS_CTE = """
    calls AS MATERIALIZED (
        SELECT o.id, o.trace_id, o.prompt_version
        FROM traces_observation o
        WHERE o.project_id = %(project)s AND o.prompt_name = %(name)s AND o.prompt_name <> ''
          AND o.start_time >= %(since)s AND o.start_time < %(until)s
          AND o.type = %(generation)s AND o.prompt_version IS NOT NULL AND o.prompt_version <> 0
          AND o.duplicate_of = ''  -- a nested span of the same call is not a second call
    )
"""

_SCORES_SQL = (
    "WITH"
    + _CALLS_CTE
    + """,
    versions_of_trace AS MATERIALIZED (
        SELECT DISTINCT prompt_version, trace_id FROM calls
    ),
    -- Each (version, score) once without sorting them all to deduplicate (a UNION did): by trace, one
    -- row per version the trace holds; by observation (a call id is unique), unless its trace already
    -- attached it to that version.
    attached AS (
        SELECT v.prompt_version, s.name, s.value, s.source, s.data_type
        FROM versions_of_trace v
        JOIN feedback_score s ON s.project_id = %(project)s AND s.trace_id = v.trace_id
        UNION ALL
        SELECT c.prompt_version, s.name, s.value, s.source, s.data_type
        FROM calls c
        JOIN feedback_score s ON s.project_id = %(project)s AND s.observation_id = c.id
            AND s.observation_id <> ''  -- a no-op for the join, but lets a hash join read only the scores
                                        -- on observations (partial index score_project_on_obs_time)
        WHERE NOT EXISTS (SELECT 1 FROM versions_of_trace v
                          WHERE v.prompt_version = c.prompt_version AND v.trace_id = s.trace_id)
    )
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
"""
)

# The calls of the window's partial edge hours (and of a prompt whose name the rollups cut), with the
# columns `ingest.rollups.Deltas.add` reads: generations through the covering prompt index, embeddings
# through the (project, type, start_time) index. One pair of branches per time range.
_RAW_CALLS_BRANCH = (
    f"SELECT {', '.join(f'o.{column}' for column in OBS_COLUMNS)} FROM traces_observation o "
    "WHERE o.project_id = %(project)s AND o.prompt_name = %(name)s AND o.prompt_name <> '' "
    "AND o.start_time >= %(since{i})s AND o.start_time < %(until{i})s AND o.type = {kind} "
    "AND o.prompt_version IS NOT NULL AND o.prompt_version <> 0 AND o.duplicate_of = ''"
)


@dataclass
class _CallSums:
    calls: int = 0
    errors: int = 0
    refusals: int = 0
    uncosted: int = 0
    cost: Decimal = Decimal(0)
    latency: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)
    ttft: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _raw_calls_sql(
    *, project: Project, name: str, ranges: list[tuple[datetime, datetime]]
) -> tuple[str, dict]:
    """The statement reading the prompt's calls started in `ranges` (for `ingest.rollups.Deltas`)."""
    params = {
        "project": project.id,
        "name": name,
        "generation": ObservationType.GENERATION,
        "embedding": ObservationType.EMBEDDING,
    }
    branches = []
    for i, (since, until) in enumerate(ranges):
        params[f"since{i}"], params[f"until{i}"] = since, until
        branches += [
            _RAW_CALLS_BRANCH.replace("{i}", str(i)).replace("{kind}", f"%({kind})s")
            for kind in ("generation", "embedding")
        ]
    return " UNION ALL ".join(branches), params


def _call_sums(
    cursor, *, project: Project, name: str, since: datetime, until: datetime
) -> dict[int, _CallSums]:
    """Per version: the call sums over [since, until), from the rollups' whole hours plus the raw
    calls of the partial hours at either edge (at most one statement each)."""
    sums: dict[int, _CallSums] = defaultdict(_CallSums)
    raw_ranges: list[tuple[datetime, datetime]] = []
    first_hour = _hour_floor(since)
    if first_hour < since:
        first_hour += timedelta(hours=1)
    last_hour = _hour_floor(until)
    if len(name) >= DIMENSION_CHARS or first_hour >= last_hour:
        raw_ranges.append((since, until))
    else:
        raw_ranges += [(a, b) for a, b in ((since, first_hour), (last_hour, until)) if a < b]
        source, params = rollup_source(
            pid=str(project.id),
            window=Window(since=first_hour, until=last_hour),
            columns="prompt_name, prompt_version, calls, errors, refusals, unpriced_calls, cost, latency_hist, "
            "ttft_hist",
        )
        cursor.execute(
            f"SELECT prompt_version, sum(calls), sum(errors), sum(refusals), sum(unpriced_calls), sum(cost), "
            f"{hist_sum_sql('latency_hist')}, {hist_sum_sql('ttft_hist')} FROM ({source}) AS r "
            "WHERE prompt_name = %s AND prompt_version <> 0 GROUP BY prompt_version",
            [*params, name],
        )
        for number, calls, errors, refusals, uncosted, cost, latency, ttft in cursor.fetchall():
            entry = sums[number]
            entry.calls, entry.errors, entry.refusals = int(calls), int(errors), int(refusals)
            entry.uncosted, entry.cost = int(uncosted), Decimal(cost or 0)
            entry.latency, entry.ttft = list(latency), list(ttft)
    if raw_ranges:
        cursor.execute(*_raw_calls_sql(project=project, name=name, ranges=raw_ranges))
        deltas = Deltas()
        for row in cursor.fetchall():
            deltas.add(dict(zip(OBS_COLUMNS, row)), EMPTY_DIMS, 1)
        for key, acc in deltas.hourly.items():
            entry = sums[key[-1]]  # the key's last dimension is the prompt version
            entry.calls += acc.sums["calls"]
            entry.errors += acc.sums["errors"]
            entry.refusals += acc.sums["refusals"]
            entry.uncosted += acc.sums["unpriced_calls"]
            entry.cost += acc.sums["cost"]
            for hist, counts in ((entry.latency, acc.latency), (entry.ttft, acc.ttft)):
                for bucket, count in counts.items():
                    hist[bucket] += count
    return {number: entry for number, entry in sums.items() if entry.calls}


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
    # Calls without a cost (no price for their model, or nothing to price): `avg_cost` is over the
    # costed calls only, so costed_calls + unpriced_calls = calls.
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


# The planner cannot estimate the calls of the scores statement: the partial index's predicate, which
# the statement repeats, multiplies correlated clauses (prompt name set, version set, a generation),
# so it expects a few dozen calls where a week holds thousands, and probes the scores twice per call
# (at 500k observations, 7 days: 8,300 calls, 16,600 probes, ~250,000 buffer hits). The rollups have
# just counted the calls exactly: from SCORES_HASH_RATIO calls per score of the project on, reading
# the project's scores once into a hash join is cheaper than the probes (measured at 500k: ~35 µs a
# call probed against ~1.4 µs a score hashed), so nested loops are switched off for that statement.
SCORES_HASH_RATIO = 20
_NESTLOOP_SQL = "SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', %s, true)"


def _project_scores_estimate(cursor, project: Project) -> float:
    """The planner's estimate of the project's scores (EXPLAIN: no row is read)."""
    cursor.execute("EXPLAIN (FORMAT JSON) SELECT 1 FROM feedback_score WHERE project_id = %s", [project.id])
    plan = cursor.fetchone()[0]
    plan = orjson.loads(plan) if isinstance(plan, (str, bytes)) else plan
    return float(plan[0]["Plan"]["Plan Rows"])


def _attached_scores(cursor, *, project: Project, params: dict, calls: int) -> list[tuple]:
    """The rows of `_SCORES_SQL`, with hash joins when the window's calls make them cheaper."""
    if calls * SCORES_HASH_RATIO < _project_scores_estimate(cursor, project):
        cursor.execute(_SCORES_SQL, params)
        return cursor.fetchall()
    connection = data_connection(project)
    # set_config(…, is_local) lasts to the end of the transaction: put back at once, since inside a
    # caller's transaction it would outlive this read.
    with transaction.atomic(using=connection.alias, savepoint=False):
        cursor.execute(_NESTLOOP_SQL, ["off"])
        saved = cursor.fetchone()[0]
        cursor.execute(_SCORES_SQL, params)
        rows = cursor.fetchall()
        cursor.execute(_NESTLOOP_SQL, [saved])
    return rows


def compare_versions(
    *, project: Project, prompt: Prompt, since: datetime, until: datetime
) -> list[VersionMetrics]:
    """Per version, over [since, until): calls, error/refusal rates, latency p50/p95, time to first
    token p50, average cost, thumbs-down rate and the average of every score. Newest version first.

    Versions seen on calls but not (or no longer) in the registry are included with
    `registered=False`. The call figures come from the monitoring rollups (and the raw calls of the
    window's partial edge hours), the scores from the raw rows: at most six statements for the metrics
    (rollups, edge hours, the planner's estimate of the project's scores, the scores read and, around
    it when hashing, the planner setting set and put back) and one for the registry, whatever the
    number of versions or rows.
    """
    registered = {v.version: v for v in versions_with_labels(project=project, prompt=prompt)}
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

    params = {
        "project": project.id,
        "name": prompt.name,
        "since": since,
        "until": until,
        "generation": ObservationType.GENERATION,
        "user": "USER",
        "boolean": "BOOLEAN",
        "numeric": "NUMERIC",
    }
    with data_connection(project).cursor() as cursor:
        calls = _call_sums(cursor, project=project, name=prompt.name, since=since, until=until)
        score_rows = _attached_scores(
            cursor, project=project, params=params, calls=sum(sums.calls for sums in calls.values())
        )
    for number, sums in calls.items():
        m = entry(number)
        m.calls, m.errors, m.refusals = sums.calls, sums.errors, sums.refusals
        m.costed_calls = sums.calls - sums.uncosted
        m.unpriced_calls = sums.uncosted
        m.avg_cost = sums.cost / m.costed_calls if m.costed_calls else None
        m.latency_p50_ms = percentile_of(sums.latency, 0.5)
        m.latency_p95_ms = percentile_of(sums.latency, 0.95)
        m.time_to_first_token_p50_ms = percentile_of(sums.ttft, 0.5)
    for number, name, average, scored, feedback, thumbs_down in score_rows:
        m = entry(number)
        if name is None:  # the per-version grouping set
            m.feedback_count, m.thumbs_down_count = feedback, thumbs_down
        elif scored:
            m.scores[name] = {"avg": average, "count": scored}
    return [metrics[n] for n in sorted(metrics, reverse=True)]
