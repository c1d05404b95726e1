"""Prompt version metrics read their call figures from the monitoring rollups (whole days from the
daily rollup, whole hours from the hourly one, the partial hours at the window's edges from the raw
calls) and the attached scores from the raw rows. The answer must be the one computed here from the
raw rows, independently: per version the same calls, errors, refusals, costed and uncosted calls,
average cost (exact decimals), histogram percentiles (the same buckets, so the same values), feedback
and score averages — for windows with edges mid-hour, on whole hours, on whole days, within one
hour, on data written in batches with later updates that move calls between versions and hours."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connections

from ingest import writer
from monitoring import selectors as monitoring_selectors
from monitoring.models import HISTOGRAM_BUCKETS
from monitoring.rules import bucket_of, percentile_of
from prompts import selectors as prompt_selectors
from prompts.payloads import parse_create
from prompts.selectors import compare_versions, prompt_by_name
from prompts.services import prompt_create_version
from scores.models import Score
from tenancy.regions import region_database
from traces.models import Observation

BASE = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday, 00:00 UTC
DAYS = 5
US_CAP = 2**32  # what one call may add to the rollups' latency sums (ingest.rollups.ROLLUP_US_CAP)


def _register(project, name: str, versions: int) -> None:
    for n in range(versions):
        prompt_create_version(project=project, data=parse_create({"name": name, "prompt": f"v{n} {{x}}"}), actor=None)


def _call(rng: random.Random, oid: str, trace: str, name: str) -> dict:
    start = BASE + timedelta(seconds=rng.randint(0, DAYS * 86400 - 1), microseconds=rng.randint(0, 999_999))
    kind = rng.choices(["GENERATION", "EMBEDDING", "SPAN"], weights=[8, 2, 1])[0]
    version = rng.choice([1, 1, 2, 2, 3, 5, 0, None])  # 5: not in the registry; 0 / None: no version
    obs = {
        "id": oid, "trace_id": trace, "type": kind, "start_time": start, "name": "llm",
        "status": rng.choice(["success"] * 6 + ["error", "refused"]),
        "model": rng.choice(["gpt-4o", "claude", ""]),
        "input_tokens": rng.choice([None, 0, 120]), "output_tokens": rng.choice([None, 40]),
        "total_cost": rng.choice([None, Decimal(rng.randint(1, 99_999)) / Decimal(10**7)]),
    }
    if name is not None and version is not None:
        obs.update(prompt_name=name, prompt_version=version)
    elif name is not None and rng.random() < 0.5:
        obs["prompt_name"] = name  # linked without a version (as OTLP can send it)
    if rng.random() < 0.9:
        obs["end_time"] = start + timedelta(microseconds=rng.choice([0, 500, rng.randint(1_000, 90_000_000)]))
    if rng.random() < 0.7:
        obs["completion_start_time"] = start + timedelta(microseconds=rng.randint(0, 5_000_000))
    return obs


def _score(rng: random.Random, sid: str, calls: list[dict]) -> dict:
    target = rng.choice(calls)
    score = {"id": sid, "timestamp": BASE + timedelta(minutes=rng.randint(0, DAYS * 1440)), "environment": "default"}
    where = rng.random()
    if where < 0.5:
        score["trace_id"] = target["trace_id"]
    elif where < 0.85:  # on a call, under its trace
        score.update(trace_id=target["trace_id"], observation_id=target["id"])
    else:  # on a call, under another trace (nothing checks that they match)
        score.update(trace_id=f"t{rng.randint(0, 60)}", observation_id=target["id"])
    kind = rng.random()
    if kind < 0.4:
        value = float(rng.choice([0, 1]))
        score.update(name="thumbs", source="USER", data_type="BOOLEAN", value=value,
                     string_value="True" if value else "False")
    elif kind < 0.55:
        score.update(name="stars", source="USER", data_type="NUMERIC", value=float(rng.choice([0, 1, 4])))
    elif kind < 0.9:
        score.update(name=rng.choice(["accuracy", "tone"]), source=rng.choice(["EVAL", "API"]), data_type="NUMERIC",
                     value=rng.choice([0.1, 0.25, 0.7, 0.93, 1.0, 3.5]))
    else:
        score.update(name="label", source="ANNOTATION", data_type="CATEGORICAL", string_value="ok")
    return score


def seed(project, seed_value: int, names=("qa", "qa", "qa", "other", None)) -> None:
    rng = random.Random(seed_value)
    traces = [{"id": f"t{i}", "name": f"flow-{i % 4}", "metadata": {"feature": f"f{i % 3}"}} for i in range(40)]
    writer.write_records(project=project, traces=traces, observations=[], scores=[])
    calls: list[dict] = []
    for batch in range(4):
        fresh = [_call(rng, f"o{batch}-{i}", f"t{rng.randint(0, 45)}", rng.choice(names)) for i in range(90)]
        # Later batches also rewrite earlier calls: another version, status, cost, start (another hour).
        again = [_call(rng, c["id"], c["trace_id"], rng.choice(names)) for c in rng.sample(calls, min(len(calls), 25))]
        writer.write_records(project=project, traces=[], observations=fresh + again, scores=[])
        calls += fresh
    scores = [_score(rng, f"s{i}", calls) for i in range(160)]
    writer.write_records(project=project, traces=[], observations=[], scores=scores)


# --- the reference: from the raw rows ---------------------------------------------------------------


def _bucket(start, end) -> int:
    delta = end - start
    us = min(US_CAP, max(0, (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds))
    return bucket_of(us / 1000)


def reference(project, name: str, since: datetime, until: datetime) -> dict[int, dict]:
    calls = [o for o in Observation.objects.for_project(project)
             if o.prompt_name == name and o.type in ("GENERATION", "EMBEDDING") and o.duplicate_of == ""
             and o.prompt_version not in (None, 0) and since <= o.start_time < until]
    out: dict[int, dict] = {}
    for version in {o.prompt_version for o in calls}:
        mine = [o for o in calls if o.prompt_version == version]
        costed = [o.total_cost for o in mine if o.total_cost is not None]
        latency, ttft = [0] * HISTOGRAM_BUCKETS, [0] * HISTOGRAM_BUCKETS
        for o in mine:
            if o.end_time is not None:
                latency[_bucket(o.start_time, o.end_time)] += 1
            if o.completion_start_time is not None:
                ttft[_bucket(o.start_time, o.completion_start_time)] += 1
        out[version] = {
            "calls": len(mine), "errors": sum(o.status == "error" for o in mine),
            "refusals": sum(o.status == "refused" for o in mine),
            "costed": len(costed), "unpriced": len(mine) - len(costed),
            "avg_cost": sum(costed, Decimal(0)) / len(costed) if costed else None,
            "p50": percentile_of(latency, 0.5), "p95": percentile_of(latency, 0.95), "ttft": percentile_of(ttft, 0.5),
            "feedback": 0, "down": 0, "scores": {},
        }
    # Scores attach through the version's generations: on one of them, or on a trace holding one.
    scores = list(Score.objects.for_project(project))
    for version in {o.prompt_version for o in calls if o.type == "GENERATION"}:
        generations = [o for o in calls if o.prompt_version == version and o.type == "GENERATION"]
        ids, traces = {o.id for o in generations}, {o.trace_id for o in generations}
        attached = [s for s in scores if s.trace_id in traces or s.observation_id in ids]
        row = out[version]
        feedback = [s for s in attached if s.source == "USER" and s.value is not None
                    and (s.data_type == "BOOLEAN" or (s.data_type == "NUMERIC" and s.value in (0, 1)))]
        row["feedback"], row["down"] = len(feedback), sum(s.value == 0 for s in feedback)
        for score_name in {s.name for s in attached}:
            values = [s.value for s in attached if s.name == score_name and s.value is not None]
            if values:
                row["scores"][score_name] = {"avg": sum(values) / len(values), "count": len(values)}
    return out


def answer(project, name: str, since: datetime, until: datetime) -> dict[int, dict]:
    prompt = prompt_by_name(project=project, name=name)
    out = {}
    for m in compare_versions(project=project, prompt=prompt, since=since, until=until):
        assert m.costed_calls + m.unpriced_calls == m.calls
        if not m.calls:
            assert (m.feedback_count, m.scores, m.latency_p50_ms, m.avg_cost) == (0, {}, None, None)
            continue
        out[m.version] = {
            "calls": m.calls, "errors": m.errors, "refusals": m.refusals, "costed": m.costed_calls,
            "unpriced": m.unpriced_calls, "avg_cost": m.avg_cost, "p50": m.latency_p50_ms, "p95": m.latency_p95_ms,
            "ttft": m.time_to_first_token_p50_ms, "feedback": m.feedback_count, "down": m.thumbs_down_count,
            "scores": m.scores,
        }
    return out


def _same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for version, row in want.items():
        mine = dict(got[version])
        # Float averages of the scores are summed in another order by PostgreSQL.
        assert mine.pop("scores") == {k: {"avg": pytest.approx(v["avg"], rel=1e-12), "count": v["count"]}
                                      for k, v in row["scores"].items()}, version
        assert mine == {k: v for k, v in row.items() if k != "scores"}, version


def windows(rng: random.Random) -> list[tuple[datetime, datetime]]:
    out = [
        (BASE, BASE + timedelta(days=DAYS)),  # whole days: the daily rollup alone
        (BASE + timedelta(hours=5), BASE + timedelta(days=3, hours=7)),  # whole hours, days in the middle
        (BASE + timedelta(hours=30, minutes=10), BASE + timedelta(hours=30, minutes=50)),  # inside one hour
        (BASE + timedelta(hours=30, minutes=10), BASE + timedelta(hours=31, minutes=5)),  # across one boundary
        (BASE - timedelta(days=2), BASE + timedelta(days=DAYS + 2)),  # wider than the data
    ]
    for _ in range(6):  # edges anywhere, to the microsecond
        since = BASE + timedelta(seconds=rng.randint(-3600, DAYS * 86400), microseconds=rng.randint(0, 999_999))
        out.append((since, since + timedelta(seconds=rng.randint(60, 4 * 86400))))
    return out


@pytest.mark.parametrize(("seed_value", "hash_ratio"), [(1, 0), (2, 10**9), (3, prompt_selectors.SCORES_HASH_RATIO)])
def test_the_version_figures_equal_the_raw_rows(monkeypatch, project, other_project, seed_value, hash_ratio):
    """`hash_ratio` 0 probes the scores of every call, 10**9 hashes them (see `SCORES_HASH_RATIO`)."""
    monkeypatch.setattr(prompt_selectors, "SCORES_HASH_RATIO", hash_ratio)
    _register(project, "qa", 3)
    _register(project, "other", 1)
    seed(project, seed_value)
    seed(other_project, seed_value + 100)  # same ids and names in the same tables: must not leak in
    rng = random.Random(seed_value)
    checked = 0
    for since, until in windows(rng):
        for name in ("qa", "other"):
            want = reference(project, name, since, until)
            _same(answer(project, name, since, until), want)
            checked += sum(row["calls"] for row in want.values())
    assert checked > 500
    # The planner setting of the hash read is put back, though the test runs in a transaction.
    with connections[region_database(project.region)].cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_nestloop')")
        assert cursor.fetchone()[0] == "on"


def test_the_hourly_only_read_gives_the_same_answer(monkeypatch, project):
    _register(project, "qa", 3)
    seed(project, 9)
    since, until = BASE + timedelta(hours=3, minutes=17), BASE + timedelta(days=4, hours=2, minutes=1)
    mixed = answer(project, "qa", since, until)
    monkeypatch.setattr(monitoring_selectors, "USE_DAILY", False)
    assert answer(project, "qa", since, until) == mixed
    assert sum(row["calls"] for row in mixed.values()) > 100


def test_a_long_prompt_name_is_not_mixed_with_another_sharing_its_cut(project):
    """The rollups cut names to 200 characters: a prompt of 200 or more is read from the raw calls."""
    short, longer = "p" * 200, "p" * 200 + "-v2"
    _register(project, short, 1)
    _register(project, longer, 1)
    rng = random.Random(4)
    for name in (short, longer):
        observations = [_call(rng, f"{name[-3:]}-{i}", f"t{i % 9}", name) for i in range(60)]
        writer.write_records(project=project, traces=[], observations=observations, scores=[])
    for name in (short, longer):
        want = reference(project, name, BASE, BASE + timedelta(days=DAYS))
        assert sum(row["calls"] for row in want.values()) > 20
        _same(answer(project, name, BASE, BASE + timedelta(days=DAYS)), want)


def test_an_embedding_is_a_call_and_a_call_without_a_version_is_no_versions(project):
    _register(project, "qa", 1)
    start = BASE + timedelta(hours=2)
    observations = [
        {"id": "g", "trace_id": "t", "type": "GENERATION", "start_time": start, "end_time": start + timedelta(seconds=1),
         "prompt_name": "qa", "prompt_version": 1, "total_cost": Decimal("0.5")},
        {"id": "e", "trace_id": "t", "type": "EMBEDDING", "start_time": start, "end_time": start + timedelta(seconds=3),
         "prompt_name": "qa", "prompt_version": 1, "status": "error"},
        {"id": "s", "trace_id": "t", "type": "SPAN", "start_time": start, "prompt_name": "qa", "prompt_version": 1},
        {"id": "n", "trace_id": "t", "type": "GENERATION", "start_time": start, "prompt_name": "qa"},
        {"id": "z", "trace_id": "t", "type": "GENERATION", "start_time": start, "prompt_name": "qa",
         "prompt_version": 0},
    ]
    writer.write_records(project=project, traces=[{"id": "t", "name": "x"}], observations=observations, scores=[])
    prompt = prompt_by_name(project=project, name="qa")
    # From the daily rollup, and from the raw calls (a window inside two hours).
    for since, until in ((BASE, BASE + timedelta(days=1)), (start - timedelta(minutes=5), start + timedelta(minutes=9))):
        (v1,) = compare_versions(project=project, prompt=prompt, since=since, until=until)
        assert (v1.version, v1.calls, v1.errors, v1.costed_calls, v1.unpriced_calls) == (1, 2, 1, 1, 1)
        assert v1.avg_cost == Decimal("0.5")
        assert v1.latency_p50_ms == pytest.approx(2 ** (39.5 / 4))  # 1 s: bucket 40
        assert v1.latency_p95_ms == pytest.approx(2 ** (46.5 / 4))  # 3 s: bucket 47


def _score_rows_read(plan: dict) -> int:
    """Rows the plan's scans of the scores table returned (and removed by their filters)."""
    rows = 0
    if plan.get("Relation Name") == "feedback_score":
        rows += plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1) + plan.get("Rows Removed by Filter", 0)
    for child in plan.get("Plans", []):
        rows += _score_rows_read(child)
    return rows


def test_the_scores_on_generations_are_read_without_the_trace_level_scores(project):
    """Hashed, the scores attached by observation used to read every score of the project a second
    time (at 10M observations: 200,000 thumbs on whole traces, none on a generation). They are read
    from the partial index of scores that name an observation: the trace-level ones are read once."""
    _register(project, "qa", 2)
    start = BASE + timedelta(hours=2)
    traces = 3_000
    for low in range(0, traces, 500):
        ids = range(low, low + 500)
        writer.write_records(
            project=project, traces=[{"id": f"t{i}", "name": "x"} for i in ids],
            observations=[{"id": f"g{i}", "trace_id": f"t{i}", "type": "GENERATION", "prompt_name": "qa",
                           "prompt_version": 1 + i % 2, "start_time": start + timedelta(seconds=i)} for i in ids],
            scores=[{"id": f"s{i}", "trace_id": f"t{i}", "name": "thumbs", "source": "USER", "data_type": "BOOLEAN",
                     "value": float(i % 3 != 0), "string_value": "True"} for i in ids]
            + [{"id": f"o{i}", "trace_id": f"t{i}", "observation_id": f"g{i}", "name": "quality", "source": "EVAL",
                "data_type": "NUMERIC", "value": 0.5} for i in ids if i % 100 == 0],
        )
    since, until = BASE, BASE + timedelta(days=1)
    connection = connections[region_database(project.region)]
    params = {"project": project.id, "name": "qa", "since": since, "until": until, "generation": "GENERATION",
              "user": "USER", "boolean": "BOOLEAN", "numeric": "NUMERIC"}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE feedback_score, traces_observation")
        cursor.execute("SET LOCAL enable_nestloop = off")  # the hashed read (`_attached_scores`)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + prompt_selectors._SCORES_SQL, params)
        plan = cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_nestloop = on")
    plan = plan if isinstance(plan, list) else __import__("json").loads(plan)
    stored = Score.objects.for_project(project).count()
    assert stored == traces + traces // 100
    # Every score once (the trace join) and the 30 on generations once more; before: every score twice.
    assert _score_rows_read(plan[0]["Plan"]) <= stored + traces // 100 + 10
    prompt = prompt_by_name(project=project, name="qa")
    v2, v1 = compare_versions(project=project, prompt=prompt, since=since, until=until)
    assert (v1.feedback_count, v1.thumbs_down_count, v2.feedback_count) == (1_500, 500, 1_500)
    assert v1.scores["quality"] == {"avg": 0.5, "count": 30} and "quality" not in v2.scores
