"""Scores in the console. Score is a data-plane model with a composite key, so there is no
ModelAdmin; the trace detail page (traces/admin.py) shows a trace's scores through this module."""

from __future__ import annotations

from feedback.models import Score, ScoreDataType
from tenancy.models import Project

# A trace rarely has more; the panel is a summary, not an export.
MAX_SCORES_PER_TRACE = 500


def trace_scores(*, project: Project, trace_id: str) -> list[dict]:
    """The scores of one trace (on the trace itself or on one of its observations), oldest first."""
    scores = Score.objects.for_project(project).filter(trace_id=trace_id).order_by("timestamp", "id")
    return [
        {
            "score": score,
            "display_value": display_value(score),
        }
        for score in scores.only(
            "project_id", "id", "trace_id", "observation_id", "name", "value", "string_value", "data_type",
            "source", "comment", "author_user_id", "timestamp",
        )[:MAX_SCORES_PER_TRACE]
    ]


def display_value(score: Score) -> str:
    if score.data_type == ScoreDataType.CATEGORICAL or (score.value is None and score.string_value):
        return score.string_value
    if score.data_type == ScoreDataType.BOOLEAN and score.value is not None:
        return "True" if score.value else "False"
    if score.value is None:
        return "—"
    return f"{score.value:g}"
