"""Server-side sampling: off by default; errors, refusals and outliers kept, late errors too (the
decision waits for the trace to settle); the share of the rest kept within tolerance and decided by
trace id, so every span of a trace agrees; dropped traces lose their payloads through the writer
while the rollups stay exact; counts by reason and client sample rates; isolation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ingest import pipeline, rollups, writer
from ingest.contract import Batch
from monitoring import sampling
from monitoring.models import HourlyRollup
from monitoring.rules import FeatureRule
from monitoring.sampling_models import SamplingDecision
from monitoring.sampling_rules import kept_by_share, rate_from_tracestate, record_client_rates
from tests.factories import MembershipFactory
from traces.models import Observation, Trace


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def enable(project, **fields):
    return sampling.policy_update(project=project, actor=None, **{"enabled": True, **fields})


def settled(minutes=11):
    return timezone.now() + timedelta(minutes=minutes)


def trace(project, trace_id, *, n=2, error=False, refused=False, latency_ms=400, cost="0.01", feature="chat",
          start=None):
    start = start or timezone.now() - timedelta(minutes=1)
    observations = []
    for i in range(n):
        obs = {
            "id": f"{trace_id}-{i}", "trace_id": trace_id, "type": "GENERATION", "start_time": start,
            "end_time": start + timedelta(milliseconds=latency_ms), "model": "gpt-4o",
            "input": [{"role": "user", "content": f"question {i}"}], "output": {"content": "answer"},
            "metadata": {"k": "v"}, "total_cost": Decimal(cost), "cost_details": {"total": float(cost)},
        }
        if error and i == n - 1:
            obs["level"] = "ERROR"
        if refused and i == n - 1:
            obs["finish_reason"] = "content_filter"
        observations.append(obs)
    writer.write_records(
        project=project, scores=[], observations=observations,
        traces=[{"id": trace_id, "name": "chat", "timestamp": start, "input": "hi", "output": "hello",
                 "metadata": {"feature": feature, "customer": "acme"}}],
    )


def rollup_rows(project):
    return sorted(
        tuple(str(v) for v in row)
        for row in HourlyRollup.objects.for_project(project).values_list(
            "hour", "feature", "model", "calls", "errors", "refusals", "cost", "latency_count", "latency_us_sum",
            "latency_hist", "total_tokens",
        )
    )


def decision(project, trace_id):
    return SamplingDecision.objects.for_project(project).filter(trace_id=trace_id).first()


def test_sampling_is_off_by_default(organization, project, owner):
    body = person(owner).get(policy_url(organization, project)).json()
    assert body["enabled"] is False and body["keep_share"] == 0.1
    trace(project, "t1")
    assert sampling.decide_region("eu", now=settled()) == {}
    assert not SamplingDecision.objects.for_project(project).exists()
    assert Observation.objects.for_project(project).get(id="t1-0").input is not None


def test_errors_and_refusals_are_kept_and_the_rest_sampled_by_trace_id(project):
    policy = enable(project, keep_share=0.0)
    trace(project, "t-err", error=True)
    trace(project, "t-ref", refused=True)
    trace(project, "t-ok")
    counts = sampling.decide_project(project, policy, now=settled())
    assert counts["error"] == 1 and counts["refusal"] == 1 and counts["dropped"] == 1
    assert decision(project, "t-err").reason == "error" and decision(project, "t-ref").kept
    assert not decision(project, "t-ok").kept
    kept = Observation.objects.for_project(project).get(id="t-err-0")
    assert kept.input == [{"role": "user", "content": "question 0"}] and kept.metadata == {"k": "v"}


def test_a_trace_is_decided_only_once_it_settles_so_a_late_error_keeps_it(project):
    policy = enable(project, keep_share=0.0, settle_minutes=10)
    trace(project, "t-late")
    # Not settled yet (written a moment ago): no decision.
    assert sampling.decide_project(project, policy, now=timezone.now() + timedelta(minutes=5)).get("dropped") is None
    assert decision(project, "t-late") is None
    # The error span arrives late (its own start time is early, but it was written now).
    writer.write_records(project=project, traces=[], scores=[], observations=[{
        "id": "t-late-err", "trace_id": "t-late", "type": "SPAN", "start_time": timezone.now() - timedelta(minutes=3),
        "level": "ERROR", "status_message": "tool crashed"}])
    sampling.decide_project(project, policy, now=settled())
    assert decision(project, "t-late").reason == "error"
    assert Observation.objects.for_project(project).get(id="t-late-0").input is not None


def test_the_share_is_kept_within_tolerance_and_follows_the_trace_id_hash(project):
    policy = enable(project, keep_share=0.10)
    ids = [f"share-{i:04d}" for i in range(600)]
    for start in range(0, len(ids), 200):
        chunk = ids[start:start + 200]
        writer.write_records(
            project=project, scores=[],
            traces=[{"id": t, "name": "chat", "metadata": {"feature": "chat"}} for t in chunk],
            observations=[{"id": f"{t}-o", "trace_id": t, "type": "SPAN", "input": "x"} for t in chunk],
        )
    sampling.decide_project(project, policy, now=settled())
    decisions = dict(SamplingDecision.objects.for_project(project).values_list("trace_id", "kept"))
    assert len(decisions) == 600
    kept = sum(decisions.values())
    assert 36 <= kept <= 84, kept  # 60 expected; ±3 standard deviations of a binomial(600, 0.1)
    assert all(decisions[t] == kept_by_share(t, 0.10) for t in ids)  # deterministic per trace id


def test_every_span_of_a_trace_gets_the_same_decision(project):
    policy = enable(project, keep_share=0.5)
    ids = [f"agree-{i}" for i in range(40)]
    for t in ids:
        trace(project, t, n=3)
    sampling.decide_project(project, policy, now=settled())
    for t in ids:
        d = decision(project, t)
        inputs = list(Observation.objects.for_project(project).filter(trace_id=t).values_list("input", flat=True))
        metadata = list(Observation.objects.for_project(project).filter(trace_id=t).values_list("metadata", flat=True))
        assert len(inputs) == 3
        if d.kept:
            assert all(i is not None for i in inputs) and all(m == {"k": "v"} for m in metadata)
        else:
            assert inputs == [None] * 3 and metadata == [{"sampled_out": True}] * 3
    assert 0 < sum(decision(project, t).kept for t in ids) < 40


def test_dropping_leaves_the_rollups_unchanged_and_a_rebuild_agrees(project):
    policy = enable(project, keep_share=0.0)
    for i in range(5):
        trace(project, f"roll-{i}", cost="0.25", feature="billing")
    trace(project, "roll-err", error=True, feature="billing")
    before = rollup_rows(project)
    counts = sampling.decide_project(project, policy, now=settled())
    assert counts["dropped"] == 5
    assert rollup_rows(project) == before
    dropped = Trace.objects.for_project(project).get(id="roll-0")
    # The payload is gone; the feature key the rollups read stays, so a rebuild counts the same.
    assert dropped.input is None and dropped.output is None
    assert dropped.metadata == {"sampled_out": True, "feature": "billing"}
    rollups.rebuild(project=project, rule=FeatureRule())
    assert rollup_rows(project) == before


def test_outliers_are_kept(project):
    policy = enable(project, keep_share=0.0, cost_threshold=Decimal("1"), latency_threshold_ms=10_000,
                    latency_percentile=None)
    trace(project, "o-cost", cost="0.6")  # two calls: 1.2 in total
    trace(project, "o-slow", latency_ms=12_000)
    trace(project, "o-normal")
    sampling.decide_project(project, policy, now=settled())
    assert decision(project, "o-cost").reason == "cost_outlier"
    assert decision(project, "o-slow").reason == "latency_outlier"
    assert decision(project, "o-normal").reason == "dropped"


def test_a_call_slower_than_the_recent_pnn_of_its_feature_and_model_is_kept(project):
    # History from the rollups: 200 calls of feature "chat" on gpt-4o around 400 ms.
    policy = enable(project, keep_share=0.0, latency_percentile=95, percentile_min_calls=100)
    past = timezone.now() - timedelta(days=2)
    for i in range(100):
        trace(project, f"h-{i}", start=past)
    trace(project, "p-slow", latency_ms=3000)
    trace(project, "p-normal", latency_ms=390)
    trace(project, "p-other-feature", latency_ms=3000, feature="rare")  # too few calls for a pNN
    sampling.decide_project(project, policy, now=settled())
    assert decision(project, "p-slow").reason == "latency_pnn"
    assert decision(project, "p-normal").reason == "dropped"
    assert decision(project, "p-other-feature").reason == "dropped"


def test_spans_arriving_after_a_drop_are_emptied_by_the_next_run_but_errors_are_not(project):
    policy = enable(project, keep_share=0.0)
    trace(project, "late-drop")
    sampling.decide_project(project, policy, now=settled())
    assert not decision(project, "late-drop").kept
    writer.write_records(project=project, traces=[], scores=[], observations=[
        {"id": "late-drop-x", "trace_id": "late-drop", "type": "SPAN", "input": "late"},
        {"id": "late-drop-e", "trace_id": "late-drop", "type": "SPAN", "input": "boom", "level": "ERROR"},
    ])
    counts = sampling.decide_project(project, policy, now=settled(12))
    assert counts["late_spans_emptied"] == 1
    assert Observation.objects.for_project(project).get(id="late-drop-x").input is None
    assert Observation.objects.for_project(project).get(id="late-drop-e").input == "boom"


def test_traces_from_before_sampling_was_switched_on_are_left_alone(project):
    trace(project, "before")
    policy = enable(project, keep_share=0.0)
    trace(project, "after")
    sampling.decide_project(project, policy, now=settled())
    assert decision(project, "before") is None and decision(project, "after") is not None


# --- client sample rates ----------------------------------------------------------------------------


def test_the_otel_threshold_gives_the_client_sample_rate():
    assert rate_from_tracestate("ot=th:c") == 0.25
    assert rate_from_tracestate("vendor=x,ot=rv:abc;th:8") == 0.5
    assert rate_from_tracestate("ot=th:0") == 1.0  # threshold 0: every span kept
    assert rate_from_tracestate("other=1") is None and rate_from_tracestate("ot=th:zz") is None


def test_the_ingest_slot_records_the_client_rate_on_the_trace():
    traces = [{"id": "a"}, {"id": "b", "metadata": {"sample_rate": 0.1}}]
    observations = [
        {"id": "1", "trace_id": "a", "metadata": {"otel": {"trace_state": "ot=th:c"}}},
        {"id": "2", "trace_id": "b", "metadata": {"otel": {"trace_state": "ot=th:8"}}},
    ]
    record_client_rates(traces, observations)
    assert traces[0]["metadata"] == {"sample_rate": 0.25}
    assert traces[1]["metadata"] == {"sample_rate": 0.1}  # the trace's own statement wins


def test_an_otlp_export_with_a_sampling_threshold_is_counted_scaled(client, organization, project, owner, api_key):
    from ingest.adapters.otel.testing import make_request, make_span

    policy = enable(project, keep_share=1.0)
    now_ns = int(timezone.now().timestamp() * 1e9)
    span = make_span(name="llm", start_ns=now_ns, attributes={"gen_ai.request.model": "gpt-4o"})
    span.trace_state = "ot=th:c"  # the client kept 25%
    response = client.post("/v1/traces", data=make_request([span]).SerializeToString(),
                           content_type="application/x-protobuf", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    stored = Trace.objects.for_project(project).get()
    assert stored.metadata["sample_rate"] == 0.25
    trace(project, "langfuse-style")  # no client rate
    sampling.decide_project(project, policy, now=settled())
    body = person(owner).get(counts_url(organization, project)).json()
    assert body["decided"] == 2 and body["kept"] == 2 and body["by_reason"]["share"] == 2
    assert body["client_sampled_traces"] == 1 and body["estimated_client_traces"] == 5.0  # 4 + 1


def test_the_sampling_stage_is_cheap_without_otel_spans(project):
    batch = Batch(project=project, source="test")
    batch.add("trace", {"id": "x"})
    pipeline.sampling(batch)  # no observations: nothing walked
    assert batch.traces[0].record == {"id": "x"}


# --- API -------------------------------------------------------------------------------------------


def policy_url(org, project):
    return f"/api/v1/organizations/{org.id}/projects/{project.id}/sampling-policy"


def counts_url(org, project, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/v1/organizations/{org.id}/projects/{project.id}/sampling/counts" + (f"?{qs}" if qs else "")


def test_the_policy_and_counts_through_the_api(organization, project, owner):
    client = person(owner)
    response = client.patch(policy_url(organization, project), {"enabled": True, "keep_share": 0.0}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is True and response.json()["enabled_at"]
    trace(project, "api-err", error=True)
    trace(project, "api-ok")
    sampling.decide_region("eu", now=settled())
    body = client.get(counts_url(organization, project, days=1)).json()
    assert (body["kept"], body["dropped"]) == (1, 1)
    assert body["by_reason"]["error"] == 1 and body["by_reason"]["dropped"] == 1


@pytest.mark.parametrize("body", [{"keep_share": 1.5}, {"latency_percentile": 20}, {"settle_minutes": 0},
                                  {"sample": 1}, {"enabled": "maybe"}])
def test_bad_policies_answer_400(organization, project, owner, body):
    response = person(owner).patch(policy_url(organization, project), body, format="json")
    assert response.status_code == 400, response.content


def test_viewers_read_the_policy_and_admins_change_it(organization, project):
    viewer = MembershipFactory(organization=organization, role="viewer").user
    client = person(viewer)
    assert client.get(policy_url(organization, project)).status_code == 200
    assert client.get(counts_url(organization, project)).status_code == 200
    assert client.patch(policy_url(organization, project), {"enabled": True}, format="json").status_code == 403


def test_sampling_endpoints_are_isolated(organization, project, other_owner, far_organization, far_project):
    far_owner = MembershipFactory(organization=far_organization, role="owner").user
    enable(project, keep_share=0.0)
    trace(project, "iso")
    sampling.decide_project(project, project.sampling_policy, now=settled())
    for user in (other_owner, far_owner):
        client = person(user)
        assert client.get(policy_url(organization, project)).status_code == 404
        assert client.patch(policy_url(organization, project), {"enabled": False}, format="json").status_code == 404
        assert client.get(counts_url(organization, project)).status_code == 404
    # The far tenant's own counts do not see ours.
    body = person(far_owner).get(counts_url(far_organization, far_project)).json()
    assert body["decided"] == 0


def test_another_project_s_traces_are_never_decided(project, other_project):
    policy = enable(project, keep_share=0.0)
    trace(other_project, "theirs")
    trace(project, "mine")
    sampling.decide_project(project, policy, now=settled())
    assert Observation.objects.for_project(other_project).get(id="theirs-0").input is not None
    assert decision(other_project, "theirs") is None
