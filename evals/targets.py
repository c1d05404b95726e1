"""Which targets a rule evaluates: its filter, the loop guard and its sampling, applied in SQL so a
nightly sample of a day's million observations is one indexed range scan (`obs_project_time`).

Sampling is `judging.sample_point(id) < rate`, computed by PostgreSQL with the same SHA-256 bits, so
the decision for a target is the same whichever side takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform

from evals import judging
from evals.evaluation_models import EvaluationRule, RuleTarget
from evals.models import DatasetRun, DatasetRunItem
from traces.models import Observation, Trace

# Columns a filter may name, and where each lives: on the target row itself, or on its trace.
OBSERVATION_COLUMNS = {"name": "name", "environment": "environment", "type": "type", "level": "level",
                       "model": "model", "version": "version", "metadata": "metadata"}
TRACE_COLUMNS = {"traceName": "name", "tags": "tags", "userId": "user_id", "sessionId": "session_id",
                 "release": "release", "feature": "metadata__feature", "traceEnvironment": "environment"}
EXPERIMENT_COLUMNS = {"datasetId"}
FILTER_COLUMNS = frozenset(OBSERVATION_COLUMNS) | frozenset(TRACE_COLUMNS) | EXPERIMENT_COLUMNS


@dataclass(frozen=True)
class Target:
    target_id: str
    trace_id: str
    observation_id: str = ""
    dataset_item_id: str = ""
    dataset_run_id: str = ""


def _condition(field: str, operator: str, value, *, array: bool = False) -> Q:
    if operator == "is null":
        return Q(**{f"{field}__isnull": True}) | (Q() if array else Q(**{field: ""}))
    if operator == "is not null":
        return ~Q(**{f"{field}__isnull": True}) & (Q() if array else ~Q(**{field: ""}))
    values = value if isinstance(value, list) else [value]
    if array:  # tags
        if operator in ("any of", "=", "contains"):
            return Q(**{f"{field}__overlap": [str(v) for v in values]})
        if operator == "all of":
            return Q(**{f"{field}__contains": [str(v) for v in values]})
        if operator in ("none of", "<>", "does not contain"):
            return ~Q(**{f"{field}__overlap": [str(v) for v in values]})
        raise judging.DefinitionError(f"operator {operator!r} does not apply to tags.")
    lookups = {"=": "exact", "contains": "contains", "starts with": "startswith", "ends with": "endswith",
               ">": "gt", "<": "lt", ">=": "gte", "<=": "lte"}
    if operator in lookups:
        return Q(**{f"{field}__{lookups[operator]}": value})
    if operator == "<>":
        return ~Q(**{field: value})
    if operator == "does not contain":
        return ~Q(**{f"{field}__contains": value})
    if operator == "any of":
        return Q(**{f"{field}__in": values})
    if operator == "none of":
        return ~Q(**{f"{field}__in": values})
    raise judging.DefinitionError(f"operator {operator!r} does not apply to this column.")


def _split(filters: list[dict]) -> tuple[Q, Q, list, dict, dict]:
    """(Q on the target row, Q on its trace, dataset conditions, annotations of each). Metadata keys
    are read with KeyTextTransform, never spliced into a lookup path: a key such as `contains` or
    `a__b` would otherwise become an ORM lookup."""
    own, trace, datasets, own_notes, trace_notes = Q(), Q(), [], {}, {}
    for index, f in enumerate(filters):
        column, operator, value = f["column"], f["operator"], f.get("value")
        text = [str(v) for v in value] if isinstance(value, list) else (None if value is None else str(value))
        if column == "datasetId":
            datasets.append((operator, value))
        elif column == "metadata":
            name = f"lg_meta_{index}"
            own_notes[name] = KeyTextTransform(str(f["key"]), "metadata")
            own &= _condition(name, operator, text)
        elif column == "feature":
            trace_notes["lg_feature"] = KeyTextTransform("feature", "metadata")
            trace &= _condition("lg_feature", operator, text)
        elif column in OBSERVATION_COLUMNS:
            own &= _condition(OBSERVATION_COLUMNS[column], operator, value)
        else:
            trace &= _condition(TRACE_COLUMNS[column], operator, value, array=column == "tags")
    return own, trace, datasets, own_notes, trace_notes


def validate(*, project, target: str, filters: list[dict]) -> None:
    """Raise DefinitionError when the filter cannot become SQL (checked when a rule is saved, so a
    scan never fails on it). The query is compiled, not run."""
    rule = EvaluationRule(project=project, target=target, filter=filters)
    try:
        queryset = _queryset(project, rule)
        if queryset is not None:
            queryset.query.sql_with_params()
    except judging.DefinitionError:
        raise
    except Exception as exc:  # noqa: BLE001 - an ORM refusal of a value or lookup is the user's filter
        raise judging.DefinitionError(f"the filter cannot be applied: {exc}") from None


def _loop_guard() -> Q:
    reserved = Q(environment__istartswith="lookglass") | Q(environment__istartswith="langfuse") | Q(environment__iexact="llm-as-a-judge")
    return ~reserved | Q(environment__iexact="langfuse-prompt-experiment")


def _point_sql(table: str) -> str:
    """`judging.sample_point(id) * 2^53` as an SQL expression."""
    prefix = judging.SAMPLING_PREFIX.hex()
    return (
        f"(('x' || encode(substring(sha256(decode('{prefix}', 'hex') || convert_to(\"{table}\".\"id\", 'UTF8')) "
        "from 1 for 7), 'hex'))::bit(56)::bigint >> 3)"
    )


def _sampling_sql(table: str, rate: float) -> tuple[str, list]:
    return f"{_point_sql(table)} < %s", [int(rate * 2**53)]


def _queryset(project, rule: EvaluationRule):
    """The rule's filter and the loop guard on its target table (None for experiments)."""
    own, trace_q, _, own_notes, trace_notes = _split(rule.filter)
    if rule.target == RuleTarget.EXPERIMENT:
        return None
    traces = Trace.objects.for_project(project)
    if trace_notes:
        traces = traces.annotate(**trace_notes)
    if rule.target == RuleTarget.OBSERVATION:
        queryset = Observation.objects.for_project(project).filter(_loop_guard())
        if own_notes:
            queryset = queryset.annotate(**own_notes)
        queryset = queryset.filter(own)
        if trace_q:
            queryset = queryset.filter(trace_id__in=traces.filter(trace_q).values("id"))
        return queryset
    # A trace target: model/type/level are its observations'; name, environment, version and
    # metadata are the trace's own.
    queryset = traces.filter(_loop_guard())
    if own_notes:
        queryset = queryset.annotate(**own_notes)
    trace_own = Q()
    for index, f in enumerate(rule.filter):
        if f["column"] in ("model", "type", "level"):
            trace_own &= Q(id__in=Observation.objects.for_project(project).filter(
                _condition(OBSERVATION_COLUMNS[f["column"]], f["operator"], f.get("value"))).values("trace_id"))
        elif f["column"] in ("name", "environment", "version"):
            trace_own &= _condition(f["column"], f["operator"], f.get("value"))
        elif f["column"] == "metadata":
            value = f.get("value")
            text = [str(v) for v in value] if isinstance(value, list) else (None if value is None else str(value))
            trace_own &= _condition(f"lg_meta_{index}", f["operator"], text)
    return queryset.filter(trace_own & trace_q)


def select(*, project, rule: EvaluationRule, since: datetime, until: datetime, sampling: float,
           limit: int | None = None) -> list[Target]:
    """The targets of `rule` that started in [since, until), matching its filter, outside the
    reserved environments, kept by `sampling` (deterministic per target), oldest first."""
    if rule.target == RuleTarget.EXPERIMENT:
        datasets = _split(rule.filter)[2]
        return _experiment_targets(project, datasets, since, until, sampling, limit)
    model = Observation if rule.target == RuleTarget.OBSERVATION else Trace
    time_field = "start_time" if model is Observation else "timestamp"
    queryset = _queryset(project, rule).filter(**{f"{time_field}__gte": since, f"{time_field}__lt": until})
    if sampling < 1:
        where, params = _sampling_sql(model._meta.db_table, sampling)
        queryset = queryset.extra(where=[where], params=params)
    if limit:
        # A capped sample (nightly) takes the targets with the smallest sample points, not the first
        # ones in time: the day is represented evenly, and the choice is still deterministic.
        queryset = queryset.extra(select={"sample_point": _point_sql(model._meta.db_table)}, order_by=["sample_point"])[:limit]
    else:
        queryset = queryset.order_by(time_field)
    if model is Observation:
        return [Target(oid, tid, observation_id=oid) for oid, tid in queryset.values_list("id", "trace_id")]
    return [Target(tid, tid) for tid in queryset.values_list("id", flat=True)]


def _experiment_targets(project, datasets, since, until, sampling, limit) -> list[Target]:
    runs = DatasetRun.objects.for_project(project)
    for operator, value in datasets:
        values = [str(v) for v in (value if isinstance(value, list) else [value])]
        runs = runs.exclude(dataset_id__in=values) if operator in ("none of", "<>") else runs.filter(dataset_id__in=values)
    run_ids = list(runs.values_list("id", flat=True))
    items = (
        DatasetRunItem.objects.for_project(project)
        .filter(run_id__in=run_ids, created_at__gte=since, created_at__lt=until)
        .order_by("created_at")
    )
    out = []
    for item_id, run_id, dataset_item_id, trace_id, observation_id in items.values_list(
        "id", "run_id", "dataset_item_id", "trace_id", "observation_id"
    ).iterator(chunk_size=2000):
        if sampling < 1 and not judging.sampled(str(item_id), sampling):
            continue
        # A local-data experiment's item has no dataset item (no expected output to judge against).
        out.append(Target(str(item_id), trace_id, observation_id or "", dataset_item_id or "", str(run_id)))
        if limit and len(out) >= limit:
            break
    return out
