"""Version comparison, checked against figures computed by hand from seeded generations and scores.

The call figures come from the monitoring rollups, so the seeded rows are counted into them as the
writer would have (`ingest.rollups.rebuild`); latency and TTFT percentiles are the geometric middle of
the rollups' histogram bucket holding the rank (bucket k >= 1 is [2^((k-1)/4), 2^(k/4)) ms)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from datetime import timezone as tz
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ingest.rollups import rebuild
from monitoring.rules import FeatureRule
from prompts.payloads import parse_create
from prompts.selectors import compare_versions, prompt_by_name, prompt_version_for, prompt_versions_for
from prompts.services import prompt_create_version
from scores.models import Score
from tenancy.regions import region_database
from traces.models import Observation, Trace

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=tz.utc)
UNTIL = T0 + timedelta(hours=1)
MS = timedelta(milliseconds=1)


def bucket_middle(k: int) -> float:
    """The value the histogram percentiles report for a rank in bucket k: its geometric middle."""
    return 2 ** ((k - 0.5) / 4)


def gen(
    oid,
    trace,
    version,
    start_min,
    *,
    latency=None,
    ttft=None,
    status="success",
    cost=None,
    name="qa",
    type="GENERATION",
):
    start = T0 + timedelta(minutes=start_min)
    return Observation(
        id=oid,
        trace_id=trace,
        type=type,
        prompt_name=name,
        prompt_version=version,
        start_time=start,
        end_time=start + latency * MS if latency is not None else None,
        completion_start_time=start + ttft * MS if ttft is not None else None,
        status=status,
        total_cost=Decimal(cost) if cost is not None else None,
    )


def score(sid, name, value, *, trace="", observation="", source="API", data_type="NUMERIC", string_value=""):
    return Score(
        id=sid,
        name=name,
        value=value,
        trace_id=trace,
        observation_id=observation,
        source=source,
        data_type=data_type,
        string_value=string_value,
    )


@pytest.fixture
def seeded(project, other_project):
    for text in ("v1 {{x}}", "v2 {{x}}", "v3 {{x}}"):
        prompt_create_version(project=project, data=parse_create({"name": "qa", "prompt": text}), actor=None)
    Observation.objects.for_project(project).bulk_create(
        [
            # version 1: four calls on traces t1 (two), t2, t3
            gen("o1", "t1", 1, 1, latency=1000, ttft=200, cost="0.010"),
            gen("o2", "t1", 1, 2, latency=3000, ttft=400, status="error", cost="0.030"),
            gen("o3", "t2", 1, 3, status="refused"),
            gen("o4", "t3", 1, 4, latency=2000, ttft=600, cost="0.020"),
            # version 2: two calls
            gen("o5", "t4", 2, 5, latency=500, ttft=100, cost="0.001"),
            gen("o6", "t5", 2, 6, latency=1500, ttft=300, cost="0.003"),
            # not counted: before the window, a span, another prompt, exactly at the end of the window
            gen("o7", "t1", 1, -1, latency=99999, cost="9"),
            gen("o8", "t1", 1, 7, latency=99999, type="SPAN"),
            gen("o9", "t1", 1, 8, latency=99999, name="other"),
            gen("o10", "t4", 2, 60, latency=99999),
            # a version the registry does not know (created elsewhere, or deleted)
            gen("o11", "t6", 7, 9, latency=100),
        ]
    )
    Score.objects.for_project(project).bulk_create(
        [
            score("s1", "thumbs", 0, trace="t1", source="USER", data_type="BOOLEAN", string_value="False"),
            score("s2", "thumbs", 1, trace="t3", observation="o4", source="USER"),
            score("s3", "thumbs", 0, trace="t2", source="USER", data_type="BOOLEAN", string_value="False"),
            score("s12", "thumbs", 0, trace="t3", source="USER"),
            score("s4", "accuracy", 0.8, trace="t1"),
            score("s5", "accuracy", 0.6, trace="t1", observation="o1", source="EVAL"),
            score("s6", "thumbs", 1, trace="t4", source="USER", data_type="BOOLEAN", string_value="True"),
            score("s7", "stars", 4, trace="t4", source="USER"),
            score("s8", "accuracy", 0.9, trace="t5", source="EVAL"),
            score("s9", "tone", None, trace="t5", data_type="CATEGORICAL", string_value="friendly"),
            score("s10", "thumbs", 0, trace="t9", source="USER", data_type="BOOLEAN"),
        ]
    )
    # Another project with the same prompt name and trace ids must not leak into the figures.
    prompt_create_version(project=other_project, data=parse_create({"name": "qa", "prompt": "x"}), actor=None)
    # Same region as ours (one table): o99 sits on trace t9, where our project has a thumbs-down but no
    # generation, so a calls query without its project filter would attach that score to version 1.
    assert other_project.region == project.region
    Observation.objects.for_project(other_project).bulk_create(
        [gen("o1", "t1", 1, 1, latency=50000, status="error"), gen("o99", "t9", 1, 2, latency=10)]
    )
    Score.objects.for_project(other_project).bulk_create(
        [
            score("s1", "thumbs", 1, trace="t1", source="USER", data_type="BOOLEAN"),
            # on an observation id that is one of our version-1 calls (o4), under a trace we do not have
            score("s98", "accuracy", 0.0, trace="t-theirs", observation="o4"),
        ]
    )
    # Every stored call has its trace (the writer creates a placeholder for a trace not sent).
    for tenant in (project, other_project):
        traces = sorted({o.trace_id for o in Observation.objects.for_project(tenant)})
        Trace.objects.for_project(tenant).bulk_create([Trace(id=trace_id, timestamp=T0) for trace_id in traces])
        rebuild(project=tenant, rule=FeatureRule())
    return project


def _by_version(rows):
    return {row.version: row for row in rows}


def test_compare_matches_hand_computed_figures(seeded, django_assert_num_queries):
    prompt = prompt_by_name(project=seeded, name="qa")
    # The registry, the rollups (a window of whole hours: no edge hours to read raw), the planner's
    # estimate of the project's scores, and the scores read between setting and putting back the
    # planner's join choice (7 calls for 11 scores: hashed). Whatever the volume.
    with django_assert_num_queries(6, using=region_database(seeded.region)):
        rows = compare_versions(project=seeded, prompt=prompt, since=T0, until=UNTIL)
    assert [row.version for row in rows] == [7, 3, 2, 1]
    by = _by_version(rows)

    v1 = by[1]
    assert (v1.calls, v1.errors, v1.refusals) == (4, 1, 1)
    assert v1.error_rate == 0.25 and v1.refusal_rate == 0.25
    # Latencies 1000, 2000, 3000 ms fall in buckets 40, 44, 47: rank 2 of 3 (p50) in 44, rank 3 (p95) in 47.
    assert v1.latency_p50_ms == pytest.approx(bucket_middle(44))
    assert v1.latency_p95_ms == pytest.approx(bucket_middle(47))
    assert v1.time_to_first_token_p50_ms == pytest.approx(bucket_middle(35))  # 200, 400, 600 ms: 400 in 35
    assert v1.avg_cost == Decimal("0.02")
    # o3 (refused) has no cost: left out of the average and counted as a call without a cost.
    assert (v1.costed_calls, v1.unpriced_calls) == (3, 1)
    # Feedback on v1's traces/generations: s1 (0), s2 (1), s3 (0), s12 (0); s1 counted once though t1 has two calls.
    assert (v1.feedback_count, v1.thumbs_down_count) == (4, 3)
    assert v1.thumbs_down_rate == 0.75
    assert v1.scores == {
        "thumbs": {"avg": pytest.approx(0.25), "count": 4},
        "accuracy": {"avg": pytest.approx(0.7), "count": 2},  # s5 is on o1 *and* t1: once
    }
    assert v1.registered and v1.labels == []

    v2 = by[2]
    assert (v2.calls, v2.errors, v2.refusals, v2.error_rate) == (2, 0, 0, 0.0)
    assert v2.latency_p50_ms == pytest.approx(bucket_middle(36))  # 500 ms (rank 1 of 2)
    assert v2.latency_p95_ms == pytest.approx(bucket_middle(43))  # 1500 ms
    assert v2.time_to_first_token_p50_ms == pytest.approx(bucket_middle(27))  # 100 ms
    assert v2.avg_cost == Decimal("0.002")
    assert (v2.costed_calls, v2.unpriced_calls) == (2, 0)
    # The 4-star score is not a thumbs up/down, but it is averaged with the other scores.
    assert (v2.feedback_count, v2.thumbs_down_count, v2.thumbs_down_rate) == (1, 0, 0.0)
    assert v2.scores == {
        "thumbs": {"avg": pytest.approx(1.0), "count": 1},
        "stars": {"avg": pytest.approx(4.0), "count": 1},
        "accuracy": {"avg": pytest.approx(0.9), "count": 1},
    }

    v3 = by[3]
    assert v3.labels == ["latest"]
    assert (v3.calls, v3.error_rate, v3.latency_p50_ms, v3.thumbs_down_rate, v3.scores) == (
        0,
        None,
        None,
        None,
        {},
    )

    assert (by[7].registered, by[7].calls, by[7].latency_p50_ms) == (False, 1, pytest.approx(bucket_middle(27)))


def test_the_public_metrics_endpoint_serves_the_comparison(client, seeded, api_key, other_api_key):
    params = {"from": T0.isoformat(), "to": UNTIL.isoformat()}
    response = client.get("/api/public/v2/prompts/qa/metrics", params, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "qa"
    assert body["from"] == "2025-03-01T12:00:00.000Z" and body["to"] == "2025-03-01T13:00:00.000Z"
    v1 = next(v for v in body["versions"] if v["version"] == 1)
    assert v1["calls"] == 4
    assert v1["errorRate"] == 0.25
    assert v1["latencyP95Ms"] == pytest.approx(bucket_middle(47))
    assert v1["timeToFirstTokenP50Ms"] == pytest.approx(bucket_middle(35))
    assert v1["avgCost"] == pytest.approx(0.02)
    assert v1["thumbsDownRate"] == 0.75
    assert v1["scores"]["accuracy"] == {"avg": pytest.approx(0.7), "count": 2}

    theirs = client.get(
        "/api/public/v2/prompts/qa/metrics", params, HTTP_AUTHORIZATION=other_api_key.basic
    ).json()
    assert [v["calls"] for v in theirs["versions"]] == [2]  # their o1 and o99
    assert theirs["versions"][0]["errorRate"] == 0.5


def test_the_metrics_window_is_validated(client, seeded, api_key):
    path = "/api/public/v2/prompts/qa/metrics"
    auth = {"HTTP_AUTHORIZATION": api_key.basic}
    assert client.get(path, {"from": "soon"}, **auth).status_code == 400
    assert client.get(path, {"from": UNTIL.isoformat(), "to": T0.isoformat()}, **auth).status_code == 400
    assert (
        client.get(path, {"from": "2020-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, **auth).status_code
        == 400
    )
    default = client.get(path, **auth).json()
    assert all(
        v["calls"] == 0 for v in default["versions"]
    )  # the seeded calls are long before "now − 7 days"
    assert client.get("/api/public/v2/prompts/nope/metrics", **auth).status_code == 404


def compare_url(organization, project, name="qa"):
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/prompts/{name}/versions/compare"


def test_the_management_comparison_is_open_to_viewers(client, seeded, organization, member_of):
    client.force_login(member_of(organization, "viewer"))
    response = client.get(
        compare_url(organization, seeded), {"from": T0.isoformat(), "to": UNTIL.isoformat()}
    )
    assert response.status_code == 200, response.content
    v1 = next(v for v in response.json()["versions"] if v["version"] == 1)
    assert (v1["calls"], v1["error_rate"], v1["thumbs_down_rate"]) == (4, 0.25, 0.75)
    assert v1["latency_p50_ms"] == pytest.approx(bucket_middle(44))
    assert client.get(compare_url(organization, seeded, "missing")).status_code == 404
    assert client.get(compare_url(organization, seeded), {"to": "x"}).status_code == 400


def test_the_management_comparison_hides_other_tenants(
    client, seeded, organization, other_organization, other_project, other_owner, api_key
):
    client.force_login(other_owner)
    assert client.get(compare_url(organization, seeded)).status_code == 404
    # Their own organization in the URL, our project: still 404.
    assert client.get(compare_url(other_organization, seeded)).status_code == 404
    client.logout()
    assert client.get(compare_url(organization, seeded)).status_code == 401
    keyed = client.get(compare_url(organization, seeded), HTTP_AUTHORIZATION=api_key.basic)
    assert keyed.status_code == 404


def test_generations_resolve_to_registered_versions(seeded, django_assert_max_num_queries):
    v2 = prompt_version_for(project=seeded, name="qa", version=2)
    assert v2 is not None and v2.text == "v2 {{x}}"
    assert prompt_version_for(project=seeded, name="qa", version=7) is None
    assert prompt_version_for(project=seeded, name="nope", version=1) is None
    observations = list(Observation.objects.for_project(seeded).filter(type="GENERATION"))
    with django_assert_max_num_queries(2, using=region_database(seeded.region)):
        resolved = prompt_versions_for(
            project=seeded, pairs=[(o.prompt_name, o.prompt_version) for o in observations]
        )
    # ("other", 1) and ("qa", 7) are on generations but not in the registry.
    assert {key: v.text for key, v in resolved.items()} == {("qa", 1): "v1 {{x}}", ("qa", 2): "v2 {{x}}"}


def test_the_management_command_prints_the_same_comparison(seeded):
    out = StringIO()
    call_command(
        "prompt_compare", project=str(seeded.id), name="qa", since=T0.isoformat(), until=UNTIL.isoformat(), stdout=out
    )
    versions = {v["version"]: v for v in json.loads(out.getvalue())["versions"]}
    assert (versions[1]["calls"], versions[1]["thumbs_down_rate"], versions[2]["avg_cost"]) == (4, 0.75, 0.002)
    with pytest.raises(CommandError, match="no prompt named"):
        call_command("prompt_compare", project=str(seeded.id), name="nope", stdout=StringIO())
    with pytest.raises(CommandError, match="no project"):
        call_command("prompt_compare", project="not-a-uuid", name="qa", stdout=StringIO())
