"""Score views by the scored observation (`observationModelName`, `observationPromptName`,
`observationPromptVersion`, `observationName`: the console feedback page's thumbs by model and by prompt
version) answer from the score rollups plus the raw scores that name an observation, and that answer is
the raw rows' answer row for row — after randomized histories where a score arrives before or after the
generation it judges, generations change model or prompt version after being scored, scores move
between observations, and thumbs on whole traces (no observation: "on the trace") sit beside them."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from console import selectors as console_selectors
from ingest import writer
from monitoring import metrics
from tests.monitoring.test_score_metrics_rollups import (
    START,
    VIEW_METRICS,
    iso,
    random_filter,
    random_moment,
    raw_answer,
    write_scores,
)

OBS_DIMENSIONS = sorted(metrics.SCORE_OBSERVATION_COLUMNS)
MODELS = ["gpt-4o", "claude-sonnet-4", "", "gpt-4o-mini"]


def observations(rng: random.Random, ids) -> list[dict]:
    out = []
    for i in ids:
        start = START + timedelta(minutes=rng.randint(0, 3 * 24 * 60))
        kind = rng.choice(["GENERATION", "GENERATION", "SPAN"])
        obs = {"id": f"o{i}", "trace_id": f"t{i % 6}", "type": kind, "name": rng.choice(["answer", "plan", ""]),
               "start_time": start}
        if kind == "GENERATION":
            obs["model"] = rng.choice(MODELS)
            if rng.random() < 0.7:
                obs.update(prompt_name=rng.choice(["answer", "route"]), prompt_version=rng.randint(1, 3))
        out.append(obs)
    return out


def write_history(project, rng: random.Random) -> None:
    """`write_scores`' trace-level history, then scores on observations o0–o19 of which only some are
    stored at first: the others arrive later (after their scores), stored ones change model and prompt,
    scores are re-pointed to other observations (same id) and deleted."""
    write_scores(project, rng, orphans=rng.random() < 0.5, rounds=3)
    stored_first = [i for i in range(20) if rng.random() < 0.5]
    writer.write_records(project=project, traces=[], scores=[], observations=observations(rng, stored_first))
    for _round in range(5):
        batch = {}
        for _ in range(rng.randint(15, 40)):
            value = float(rng.choice([0, 1]))
            score = {"id": f"os{rng.randint(0, 80)}", "observation_id": f"o{rng.randint(0, 22)}",  # o20–o22 never
                     "timestamp": START + timedelta(minutes=rng.randint(0, 3 * 24 * 60), seconds=rng.randint(0, 59)),
                     "environment": rng.choice(["default", "production"])}
            score["trace_id"] = f"t{int(score['observation_id'][1:]) % 6}" if rng.random() < 0.9 else ""
            if rng.random() < 0.75:
                score.update(name=rng.choice(["thumbs", "user-feedback"]), source=rng.choice(["USER", "USER", "API"]),
                             data_type="BOOLEAN", value=value, string_value="True" if value else "False")
            else:
                score.update(name="relevance", source="EVAL", data_type="NUMERIC", value=rng.choice([0.25, 0.5, 1.0]))
            batch[score["id"]] = score
        writer.write_records(project=project, traces=[], observations=[], scores=list(batch.values()))
        # Observations arriving after their scores, and stored ones re-sent with another model/prompt.
        ids = rng.sample(range(20), rng.randint(2, 8))
        writer.write_records(project=project, traces=[], scores=[], observations=observations(rng, ids))
        for _ in range(rng.randint(0, 3)):
            writer.delete_score(project=project, score_id=f"os{rng.randint(0, 80)}")


def random_query(rng: random.Random) -> dict:
    view = rng.choice(["scores-boolean", "scores-numeric", "scores-categorical"])
    since = random_moment(rng, aligned=rng.random() < 0.4)
    until = since + rng.choice([timedelta(minutes=rng.randint(1, 59)), timedelta(hours=rng.randint(1, 30)),
                                timedelta(hours=rng.randint(1, 80), minutes=rng.randint(0, 59))])
    granularity = rng.choice([None, None, "hour", "day"])
    others = sorted({*metrics.SCORE_ROLLUP_COLUMNS} - {"traceName", "traceRelease"})
    dims = rng.sample(OBS_DIMENSIONS, rng.choice([1, 1, 2])) + rng.sample(others, rng.choice([0, 0, 1]))
    filters = [random_filter(rng, view) for _ in range(rng.choice([0, 0, 1]))]
    filters = [f for f in filters if f["column"] not in ("traceName", "traceRelease")]
    if rng.random() < 0.3:
        filters.append(rng.choice([
            {"column": "observationModelName", "operator": rng.choice(["=", "!="]), "type": "string",
             "value": rng.choice(MODELS)},
            {"column": "observationPromptVersion", "operator": rng.choice(["=", ">"]), "type": "number",
             "value": rng.randint(1, 3)},
            {"column": "observationPromptName", "operator": rng.choice(["is null", "is not null"]), "type": "null"},
        ]))
    q = {
        "view": view, "dimensions": [{"field": d} for d in dims],
        "metrics": [{"measure": m, "aggregation": a} for m, a in rng.sample(VIEW_METRICS[view], rng.randint(1, 3))],
        "filters": filters, "fromTimestamp": iso(since), "toTimestamp": iso(until),
        "timeDimension": {"granularity": granularity} if granularity else None,
        "config": {"row_limit": rng.choice([1, 3, 100, 1000])},
    }
    if rng.random() < 0.3:
        fields = dims + [f"{m['aggregation']}_{m['measure']}" for m in q["metrics"]]
        q["orderBy"] = [{"field": rng.choice(fields), "direction": rng.choice(["asc", "desc"])}]
    return q


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_score_views_by_the_scored_observation_from_the_rollups_equal_the_raw_rows(project, other_project, seed):
    rng = random.Random(seed)
    write_history(project, rng)
    # Another tenant with the same ids, names and hours: never counted.
    write_history(other_project, random.Random(seed))
    on_observations = 0
    for _ in range(120):
        q = random_query(rng)
        parsed = metrics.parse_query(json.dumps(q), version=1)
        answer = metrics.run_query(project=project, query=parsed)
        assert answer["data"] == raw_answer(project, parsed), q
        # Only the per-user path (none here) and minute series would read raw: the rest is the rollups'.
        assert answer["source"] == "rollups", q
        on_observations += any(row.get(d) not in (None, "") for row in answer["data"] for d in OBS_DIMENSIONS)
    assert on_observations > 30, on_observations  # many answers hold scored observations


def test_every_observation_dimension_on_whole_and_edge_windows(project):
    write_history(project, random.Random(8))
    whole = {"fromTimestamp": iso(START - timedelta(hours=2)), "toTimestamp": iso(START + timedelta(days=3, hours=5))}
    edges = {"fromTimestamp": iso(START + timedelta(hours=5, minutes=17, seconds=3)),
             "toTimestamp": iso(START + timedelta(days=2, hours=7, minutes=41))}
    inside = {"fromTimestamp": iso(START + timedelta(hours=30, minutes=5)),
              "toTimestamp": iso(START + timedelta(hours=30, minutes=55))}
    for view in ("scores-boolean", "scores-numeric"):
        for dimension in OBS_DIMENSIONS:
            for extra in ([], ["booleanValue"] if view == "scores-boolean" else ["name"]):
                for granularity in (None, "hour", "day"):
                    for window in (whole, edges, inside):
                        q = {"view": view, "dimensions": [{"field": d} for d in (dimension, *extra)],
                             "metrics": [{"measure": m, "aggregation": a} for m, a in VIEW_METRICS[view]],
                             "filters": [], "timeDimension": {"granularity": granularity} if granularity else None,
                             "config": {"row_limit": 1000}, **window}
                        parsed = metrics.parse_query(json.dumps(q), version=1)
                        answer = metrics.run_query(project=project, query=parsed)
                        assert answer["source"] == "rollups", q
                        assert answer["data"] == raw_answer(project, parsed), q


def test_the_feedback_page_breakdowns_equal_the_raw_rows(project, other_project, monkeypatch):
    """The console's thumbs by model and by prompt version: a thumb on a generation counts under that
    generation's model and version as stored now (also when it arrived before the generation, or the
    generation changed model after it), a thumb on a whole trace under "(on the trace)" / "(no prompt)"."""
    now = START + timedelta(days=3, hours=1, minutes=20)
    writer.write_records(project=project, scores=[], traces=[{"id": "t1", "name": "chat"}], observations=[])
    thumbs = [
        {"id": "a", "trace_id": "t1", "observation_id": "g1", "value": 1.0},  # before g1 is stored
        {"id": "b", "trace_id": "t1", "observation_id": "g1", "value": 0.0},
        {"id": "c", "trace_id": "t1", "observation_id": "g2", "value": 0.0},
        {"id": "d", "trace_id": "t1", "value": 1.0},  # the whole trace
        {"id": "e", "trace_id": "t1", "observation_id": "g9", "value": 1.0},  # never stored
    ]
    writer.write_records(project=project, traces=[], observations=[], scores=[
        {**t, "name": "thumbs", "source": "USER", "data_type": "BOOLEAN", "timestamp": START + timedelta(hours=3),
         "string_value": "True" if t["value"] else "False"} for t in thumbs])
    generation = {"trace_id": "t1", "type": "GENERATION", "start_time": START + timedelta(hours=2)}
    writer.write_records(project=project, traces=[], scores=[], observations=[
        {**generation, "id": "g1", "model": "gpt-4o", "prompt_name": "answer", "prompt_version": 1},
        {**generation, "id": "g2", "model": "gpt-4o", "prompt_name": "answer", "prompt_version": 2}])
    # g2 changes model after its thumb: the thumb follows it.
    writer.write_records(project=project, traces=[], scores=[], observations=[
        {**generation, "id": "g2", "model": "claude-sonnet-4"}])
    from_rollups = console_selectors.thumbs_breakdowns(project=project, days=30, now=now)
    assert from_rollups["model"] == [
        {"label": "(on the trace)", "thumbs": 2, "up": 2, "down": 0, "thumbs_down_rate": 0.0},
        {"label": "gpt-4o", "thumbs": 2, "up": 1, "down": 1, "thumbs_down_rate": 0.5},
        {"label": "claude-sonnet-4", "thumbs": 1, "up": 0, "down": 1, "thumbs_down_rate": 1.0},
    ]
    assert [r["label"] for r in from_rollups["prompt_version"]] == ["(no prompt)", "answer v1", "answer v2"]
    assert console_selectors.thumbs_breakdowns(project=other_project, days=30, now=now)["model"] == []
    monkeypatch.setattr(metrics, "USE_SCORE_ROLLUPS", False)
    assert console_selectors.thumbs_breakdowns(project=project, days=30, now=now) == from_rollups
