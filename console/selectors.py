"""Reads of the console's own configuration."""

from __future__ import annotations

from console.models import SavedView


def saved_views(*, project) -> list[SavedView]:
    return list(SavedView.objects.filter(project=project).order_by("name"))


# End users' thumbs (scores of source USER, type BOOLEAN: 1 up, 0 down) by the scored trace's feature,
# and by the scored generation's model and prompt version, answered by the metrics query
# (`monitoring.metrics`, the code behind /api/public/metrics) rather than SQL of our own.
THUMBS_BY = {
    "feature": ("feature",),
    "model": ("observationModelName",),
    "prompt_version": ("observationPromptName", "observationPromptVersion"),
}


def thumbs_breakdowns(*, project, days: int, now=None) -> dict[str, list[dict]]:
    """{by: [{label, thumbs, up, down, thumbs_down_rate}, …]} over the last `days` days, most thumbs
    first. A thumb on a whole trace has no generation: it counts under "(on the trace)" by model."""
    import json
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.metrics import parse_query, run_query

    until = now or timezone.now()
    since = until - timedelta(days=days)
    out = {}
    for by, fields in THUMBS_BY.items():
        query = parse_query(json.dumps({
            "view": "scores-boolean",
            "dimensions": [{"field": f} for f in fields],
            "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "value", "aggregation": "sum"}],
            "filters": [{"column": "source", "operator": "=", "value": "USER", "type": "string"}],
            "fromTimestamp": since.isoformat(), "toTimestamp": until.isoformat(),
            "config": {"row_limit": 100},
        }), version=1)
        rows = []
        for row in run_query(project=project, query=query)["data"]:
            total = int(row["count_count"])
            up = round(float(row["sum_value"] or 0))
            parts = [row[f] for f in fields if row[f] not in (None, "")]
            if parts:
                label = " v".join(str(p) for p in parts)
            else:
                label = {"model": "(on the trace)", "prompt_version": "(no prompt)"}.get(by, "(none)")
            rows.append({"label": label, "thumbs": total, "up": up, "down": total - up,
                         "thumbs_down_rate": (total - up) / total if total else None})
        rows.sort(key=lambda r: (-r["thumbs"], r["label"]))
        out[by] = rows
    return out
