"""Feedback settings and the end-user feedback reports (thumbs-down list, daily thumbs-down rate).
Score reads are in scores/selectors.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from feedback.models import FeedbackEvent, FeedbackSettings
from scores.models import Score, ScoreDataType, ScoreSource
from scores.selectors import _iso
from traces.models import Trace

# --- feedback settings (control plane) -----------------------------------------------------------


def feedback_settings_for(project) -> FeedbackSettings:
    """The project's settings, or unsaved defaults when it never changed them."""
    return FeedbackSettings.objects.filter(project=project).first() or FeedbackSettings(project=project)


# --- end-user feedback reports (data plane) -----------------------------------------------------

# A thumb is end-user feedback (source USER) of data type BOOLEAN: 1 = up, 0 = down. Numeric ratings
# (stars, 1–10) are feedback too, but not thumbs, so they count in neither list.


def _thumbs(project, *, name: str | None, since: datetime | None, until: datetime | None):
    qs = Score.objects.for_project(project).filter(source=ScoreSource.USER, data_type=ScoreDataType.BOOLEAN)
    if name is not None:
        qs = qs.filter(name=name)
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    if until is not None:
        qs = qs.filter(timestamp__lt=until)
    return qs


def thumbs_down_page(
    *,
    project,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[list[dict], int]:
    """Thumbs-down of the project, newest first, with their comments and a summary of the trace
    (None while the trace has not arrived yet); and the total count. Three queries, whatever the page."""
    qs = _thumbs(project, name=name, since=since, until=until).filter(value=0)
    total = qs.count()
    scores = list(
        qs.order_by("-timestamp", "-id").only(
            "project_id",
            "id",
            "trace_id",
            "observation_id",
            "name",
            "comment",
            "author_user_id",
            "timestamp",
            "metadata",
            "updated_at",
        )[offset : offset + limit]
    )
    trace_ids = {s.trace_id for s in scores if s.trace_id}
    traces = (
        {
            row["id"]: row
            for row in Trace.objects.for_project(project)
            .filter(id__in=trace_ids)
            .values("id", "name", "user_id", "session_id", "timestamp", "environment")
        }
        if trace_ids
        else {}
    )
    items = []
    for score in scores:
        trace = traces.get(score.trace_id)
        items.append(
            {
                "scoreId": score.id,
                "traceId": score.trace_id,
                "observationId": score.observation_id or None,
                "name": score.name,
                "userId": score.author_user_id or None,
                "comment": score.comment or None,
                "metadata": score.metadata or {},
                "timestamp": _iso(score.timestamp),
                "trace": None
                if trace is None
                else {
                    "name": trace["name"] or None,
                    "userId": trace["user_id"] or None,
                    "sessionId": trace["session_id"] or None,
                    "timestamp": _iso(trace["timestamp"]),
                    "environment": trace["environment"],
                },
            }
        )
    return items, total


def thumbs_down_daily(*, project, since: date, until: date, name: str | None = None) -> list[dict]:
    """One row per UTC day in [since, until): thumbs total, up, down and the thumbs-down rate
    (down / total; None on a day without thumbs). One query."""
    start = datetime.combine(since, datetime.min.time()).replace(tzinfo=UTC)
    end = datetime.combine(until, datetime.min.time()).replace(tzinfo=UTC)
    rows = (
        _thumbs(project, name=name, since=start, until=end)
        .annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("day")
        .annotate(total=Count("id"), down=Count("id", filter=Q(value=0)))
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    out = []
    day = since
    while day < until:
        row = by_day.get(day)
        total = row["total"] if row else 0
        down = row["down"] if row else 0
        out.append(
            {
                "date": day.isoformat(),
                "total": total,
                "up": total - down,
                "down": down,
                "thumbsDownRate": (down / total) if total else None,
            }
        )
        day += timedelta(days=1)
    return out


def feedback_history(*, project, score_id: str) -> list[FeedbackEvent]:
    """Every submission behind one feedback score, oldest first."""
    return list(
        FeedbackEvent.objects.for_project(project).filter(score_id=score_id).order_by("created_at", "id")
    )
