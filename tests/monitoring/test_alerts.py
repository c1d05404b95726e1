"""Regression alerts: every rule kind firing and resolving against a loopback webhook receiver that
verifies the signature; ratio and anomaly modes; filters; no data; cooldown and re-notify; retries;
Slack and email; the seed's rules on every project; SSRF refusal at save; the API (OpenAPI, roles,
validation) and isolation from the same-region and the far-region tenant."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from ingest import writer
from monitoring import alerts
from monitoring.alerts_models import AlertChannel, AlertDelivery, AlertEvent, AlertRule
from monitoring.alerts_seed import SEED_RULES, seed_rules
from monitoring.alerts_services import alert_channel_create, alert_rule_create
from monitoring.tasks import backoff
from tenancy.models import Role
from tests.factories import MembershipFactory, ProjectFactory
from tests.monitoring.receiver import Receiver


@pytest.fixture
def eager():
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hook(project, receiver):
    channel = alert_channel_create(project=project, actor=None, name="hook", kind="webhook", url=receiver.url)
    receiver.secret = channel.secret
    return channel


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def at_hour(minutes: int = 30):
    """A moment `minutes` into the current hour (hour windows are whole hours)."""
    return timezone.now().replace(minute=minutes, second=0, microsecond=0)


_seq = iter(range(10**9))


def calls(project, start, n, *, errors=0, refusals=0, latency_ms=500, ttft_ms=None, cost="0.01",
          model="gpt-4o", feature="support", environment="production"):
    """n LLM calls of one trace starting at `start`."""
    trace_id = f"t{next(_seq)}"
    observations = []
    for i in range(n):
        obs = {
            "id": f"{trace_id}-{i}", "trace_id": trace_id, "type": "GENERATION", "start_time": start,
            "end_time": start + timedelta(milliseconds=latency_ms), "model": model, "environment": environment,
            "total_cost": Decimal(cost), "cost_details": {"total": float(cost)},
        }
        if i < errors:
            obs["level"] = "ERROR"
        elif i < errors + refusals:
            obs["finish_reason"] = "content_filter"
        if ttft_ms is not None:
            obs["completion_start_time"] = start + timedelta(milliseconds=ttft_ms)
        observations.append(obs)
    writer.write_records(
        project=project, scores=[], observations=observations,
        traces=[{"id": trace_id, "name": "chat", "timestamp": start, "metadata": {"feature": feature},
                 "environment": environment}],
    )


def scores(project, at, values, *, name="user_feedback", source="USER", data_type="BOOLEAN"):
    trace_id = f"t{next(_seq)}"
    writer.write_records(
        project=project, observations=[], traces=[{"id": trace_id, "timestamp": at}],
        scores=[{"id": f"{trace_id}-s{i}", "trace_id": trace_id, "name": name, "value": float(v), "source": source,
                 "data_type": data_type, "timestamp": at} for i, v in enumerate(values)],
    )


def rule(project, channel=None, **fields):
    spec = {"name": "r", "metric": "error_rate", "threshold": 0.5, "min_calls": 3, "cooldown_minutes": 10, **fields}
    return alert_rule_create(project=project, actor=None, channels=[channel] if channel else [], **spec)


def evaluate(r, now, capture):
    with capture(execute=True):
        return alerts.evaluate_rule(r.id, now=now)


# Each rule kind: (rule fields, data making it fire, data of a later hour that resolves it).
KINDS = {
    "error_rate": (
        {"metric": "error_rate", "threshold": 0.5},
        lambda p, t: calls(p, t, 4, errors=3), lambda p, t: calls(p, t, 4),
    ),
    "refusal_rate": (
        {"metric": "refusal_rate", "threshold": 0.2},
        lambda p, t: calls(p, t, 4, refusals=2), lambda p, t: calls(p, t, 4),
    ),
    "latency_avg": (
        {"metric": "latency_avg", "threshold": 2000},
        lambda p, t: calls(p, t, 3, latency_ms=5000), lambda p, t: calls(p, t, 3, latency_ms=300),
    ),
    "latency_p95": (
        {"metric": "latency_p95", "threshold": 2000},
        lambda p, t: calls(p, t, 3, latency_ms=4000), lambda p, t: calls(p, t, 3, latency_ms=300),
    ),
    "latency_p99": (
        {"metric": "latency_p99", "threshold": 2000},
        lambda p, t: calls(p, t, 3, latency_ms=4000), lambda p, t: calls(p, t, 3, latency_ms=300),
    ),
    "ttft_avg": (
        {"metric": "ttft_avg", "threshold": 1000},
        lambda p, t: calls(p, t, 3, ttft_ms=3000, latency_ms=4000), lambda p, t: calls(p, t, 3, ttft_ms=100),
    ),
    "ttft_p95": (
        {"metric": "ttft_p95", "threshold": 1000},
        lambda p, t: calls(p, t, 3, ttft_ms=3000, latency_ms=4000), lambda p, t: calls(p, t, 3, ttft_ms=100),
    ),
    "cost": (
        {"metric": "cost", "threshold": 5},
        lambda p, t: calls(p, t, 3, cost="4"), lambda p, t: calls(p, t, 3, cost="0.5"),
    ),
    "volume": (
        {"metric": "volume", "threshold": 10},
        lambda p, t: calls(p, t, 12), lambda p, t: calls(p, t, 2),
    ),
    "thumbs_down_rate": (
        {"metric": "thumbs_down_rate", "threshold": 0.5},
        lambda p, t: scores(p, t, [0, 0, 0, 1]), lambda p, t: scores(p, t, [1, 1, 1, 0]),
    ),
    "score_avg": (
        {"metric": "score_avg", "score_name": "faithfulness", "operator": "lt", "threshold": 0.5},
        lambda p, t: scores(p, t, [0.1, 0.2, 0.3], name="faithfulness", source="EVAL", data_type="NUMERIC"),
        lambda p, t: scores(p, t, [0.9, 0.8, 0.9], name="faithfulness", source="EVAL", data_type="NUMERIC"),
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_rule_kind_fires_and_resolves_to_a_signed_webhook(
    project, hook, receiver, eager, django_capture_on_commit_callbacks, kind
):
    fields, bad, good = KINDS[kind]
    r = rule(project, hook, **fields)
    t0 = at_hour(10)
    # Nothing yet: no data — except volume, whose zero is a value (a drop to zero is its signal).
    before = "ok" if kind == "volume" else "no_data"
    assert evaluate(r, t0, django_capture_on_commit_callbacks) == before
    bad(project, t0)
    # The condition is true from now: the next evaluation (a minute later) fires.
    assert evaluate(r, t0 + timedelta(minutes=1), django_capture_on_commit_callbacks) == "firing"
    assert receiver.kinds() == ["firing"]
    [request] = receiver.requests
    assert request["signed"], request["headers"]
    assert request["headers"]["X-Lookglass-Signature"].startswith("t=")
    body = request["json"]
    assert body["type"] == "alert" and body["payload"]["ruleId"] == str(r.id)
    assert body["payload"]["state"] == "firing" and body["payload"]["metric"] == fields["metric"]
    # The next hour: the bad calls are out of the 60-minute window, the good ones in.
    t1 = t0 + timedelta(hours=1)
    good(project, t1)
    assert evaluate(r, t1, django_capture_on_commit_callbacks) == "resolved"
    assert evaluate(r, t1 + timedelta(minutes=1), django_capture_on_commit_callbacks) == "ok"
    assert receiver.kinds() == ["firing", "resolved"]
    assert all(req["signed"] for req in receiver.requests)
    history = list(AlertEvent.objects.filter(rule=r).order_by("created_at").values_list("from_state", "to_state"))
    assert history[-3:] == [(before, "firing"), ("firing", "resolved"), ("resolved", "ok")]
    assert AlertDelivery.objects.filter(rule=r, status="sent").count() == 2


def test_a_tampered_body_or_an_old_timestamp_fails_verification():
    from monitoring.alerts_delivery import signature, verify

    header = signature("lgwhsec_x", b'{"a":1}')
    assert verify("lgwhsec_x", b'{"a":1}', header)
    assert not verify("lgwhsec_x", b'{"a":2}', header)
    assert not verify("lgwhsec_y", b'{"a":1}', header)
    old = signature("lgwhsec_x", b"{}", timestamp=1_000_000)
    assert not verify("lgwhsec_x", b"{}", old)


def test_ratio_against_yesterday_fires_on_a_regression_and_needs_a_baseline(
    project, hook, receiver, eager, django_capture_on_commit_callbacks
):
    r = rule(project, hook, metric="error_rate", mode="ratio", baseline="yesterday", threshold=1.5, min_calls=5)
    now = at_hour(40)
    calls(project, now - timedelta(minutes=20), 10, errors=4)  # 40% now
    assert evaluate(r, now, django_capture_on_commit_callbacks) == "no_data"  # nothing yesterday
    calls(project, now - timedelta(hours=24), 10, errors=1)  # 10% yesterday: 40% > 1.5 × 10%
    assert evaluate(r, now + timedelta(minutes=1), django_capture_on_commit_callbacks) == "firing"
    r.refresh_from_db()
    assert r.last_baseline == pytest.approx(0.1) and r.last_value == pytest.approx(0.4)
    assert receiver.requests[-1]["json"]["payload"]["limit"] == pytest.approx(0.15)


def test_ratio_of_a_sum_scales_the_baseline_to_the_elapsed_window(project, django_capture_on_commit_callbacks):
    # Volume at 15 minutes into the hour vs the whole previous hour: 30 calls then, 10 so far now is
    # the same rate (10 / (30 × 0.25) = 1.33 < 1.5), 20 so far is not.
    r = rule(project, metric="volume", mode="ratio", baseline="previous_window", threshold=1.5)
    now = at_hour(15)
    calls(project, now - timedelta(hours=1), 30)
    calls(project, now - timedelta(minutes=5), 10)
    assert evaluate(r, now, django_capture_on_commit_callbacks) == "ok"
    calls(project, now - timedelta(minutes=4), 10)
    assert evaluate(r, now + timedelta(minutes=1), django_capture_on_commit_callbacks) == "firing"


def test_anomaly_against_the_same_window_in_past_weeks(project, django_capture_on_commit_callbacks):
    r = rule(project, metric="latency_avg", mode="anomaly", anomaly_weeks=3, threshold=3)
    now = at_hour(30)
    for weeks, ms in ((1, 1000), (2, 1100), (3, 900)):
        calls(project, now - timedelta(weeks=weeks), 5, latency_ms=ms)
    calls(project, now, 5, latency_ms=1050)
    assert evaluate(r, now, django_capture_on_commit_callbacks) == "ok"
    calls(project, now, 5, latency_ms=9000)  # avg ≈ 5000 ms, far above 1000 + 3σ
    assert evaluate(r, now + timedelta(minutes=1), django_capture_on_commit_callbacks) == "firing"
    r.refresh_from_db()
    assert r.last_baseline == pytest.approx(1000, rel=0.01)


def test_anomaly_needs_two_past_weeks(project, django_capture_on_commit_callbacks):
    r = rule(project, metric="latency_avg", mode="anomaly", anomaly_weeks=3, threshold=3)
    now = at_hour(30)
    calls(project, now - timedelta(weeks=1), 5, latency_ms=1000)
    calls(project, now, 5, latency_ms=9000)
    assert evaluate(r, now, django_capture_on_commit_callbacks) == "no_data"


@pytest.mark.parametrize(
    ("filters", "fires"),
    [
        ({"feature": "support"}, True),
        ({"feature": "search"}, False),
        ({"model": "gpt-4o"}, True),
        ({"model": "claude"}, False),
        ({"environment": "production"}, True),
        ({"environment": "staging"}, False),
    ],
)
def test_filters_narrow_the_calls_a_rule_reads(project, django_capture_on_commit_callbacks, filters, fires):
    r = rule(project, **filters)
    now = at_hour(20)
    calls(project, now, 4, errors=4, feature="support", model="gpt-4o", environment="production")
    calls(project, now, 4, feature="search", model="claude", environment="staging")
    assert evaluate(r, now, django_capture_on_commit_callbacks) == ("firing" if fires else "ok")


def test_prompt_version_filter(project, django_capture_on_commit_callbacks):
    now = at_hour(20)
    trace = {"id": "tp", "timestamp": now}
    obs = [{"id": f"p{i}", "trace_id": "tp", "type": "GENERATION", "start_time": now, "end_time": now,
            "model": "m", "prompt_name": "qa", "prompt_version": v, "level": "ERROR" if v == 2 else "DEFAULT"}
           for i, v in enumerate([1, 1, 1, 2, 2, 2])]
    writer.write_records(project=project, traces=[trace], observations=obs, scores=[])
    assert evaluate(rule(project, name="v2", prompt_name="qa", prompt_version=2), now,
                    django_capture_on_commit_callbacks) == "firing"
    assert evaluate(rule(project, name="v1", prompt_name="qa", prompt_version=1), now,
                    django_capture_on_commit_callbacks) == "ok"


def test_fewer_calls_than_the_minimum_is_no_data_and_sends_nothing(
    project, hook, receiver, eager, django_capture_on_commit_callbacks
):
    r = rule(project, hook, min_calls=10)
    now = at_hour(20)
    calls(project, now, 5, errors=5)
    assert evaluate(r, now, django_capture_on_commit_callbacks) == "no_data"
    assert receiver.requests == []


def test_cooldown_and_renotify(project, hook, receiver, eager, django_capture_on_commit_callbacks):
    r = rule(project, hook, renotify_minutes=5, cooldown_minutes=10)
    t = at_hour(0)
    calls(project, t, 4, errors=3)
    assert evaluate(r, t, django_capture_on_commit_callbacks) == "firing"
    assert evaluate(r, t + timedelta(minutes=1), django_capture_on_commit_callbacks) == "firing"
    assert receiver.kinds() == ["firing"]  # still firing: no repeat before renotify_minutes
    evaluate(r, t + timedelta(minutes=5), django_capture_on_commit_callbacks)
    assert receiver.kinds() == ["firing", "renotify"]
    # Recovery two minutes after the re-notification: within the cooldown, so not sent yet …
    calls(project, t, 30)  # 3 errors in 34 calls
    assert evaluate(r, t + timedelta(minutes=7), django_capture_on_commit_callbacks) == "resolved"
    assert evaluate(r, t + timedelta(minutes=8), django_capture_on_commit_callbacks) == "ok"
    assert receiver.kinds() == ["firing", "renotify"]
    # … but by the first evaluation after it: a recovery is never lost.
    evaluate(r, t + timedelta(minutes=15), django_capture_on_commit_callbacks)
    assert receiver.kinds() == ["firing", "renotify", "resolved"]
    evaluate(r, t + timedelta(minutes=30), django_capture_on_commit_callbacks)
    assert receiver.kinds() == ["firing", "renotify", "resolved"]


def test_flapping_within_the_cooldown_sends_one_message(
    project, hook, receiver, eager, django_capture_on_commit_callbacks
):
    r = rule(project, hook, cooldown_minutes=30)
    t = at_hour(0)
    calls(project, t, 4, errors=3)
    evaluate(r, t, django_capture_on_commit_callbacks)
    calls(project, t, 10)  # 3 / 14: ok
    assert evaluate(r, t + timedelta(minutes=1), django_capture_on_commit_callbacks) == "resolved"
    calls(project, t, 10, errors=10)  # 13 / 24: firing again
    assert evaluate(r, t + timedelta(minutes=2), django_capture_on_commit_callbacks) == "firing"
    evaluate(r, t + timedelta(minutes=40), django_capture_on_commit_callbacks)
    assert receiver.kinds() == ["firing"]  # the recovery and the relapse fell inside the cooldown
    states = list(AlertEvent.objects.filter(rule=r).order_by("created_at").values_list("to_state", flat=True))
    assert states == ["firing", "resolved", "firing"]  # the history has every change


def test_warning_before_firing(project, hook, receiver, eager, django_capture_on_commit_callbacks):
    r = rule(project, hook, threshold=0.5, warning_threshold=0.2, cooldown_minutes=0)
    t = at_hour(0)
    calls(project, t, 10, errors=3)
    assert evaluate(r, t, django_capture_on_commit_callbacks) == "warning"
    calls(project, t, 10, errors=10)
    assert evaluate(r, t + timedelta(minutes=1), django_capture_on_commit_callbacks) == "firing"
    assert receiver.kinds() == ["warning", "firing"]


def test_a_failing_receiver_is_retried_with_backoff(project, hook, receiver, eager, django_capture_on_commit_callbacks):
    receiver.statuses = [503, 502]
    r = rule(project, hook)
    t = at_hour(0)
    calls(project, t, 4, errors=4)
    evaluate(r, t, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get(rule=r)
    assert delivery.status == "sent" and delivery.attempts == 3
    assert len(receiver.requests) == 3
    ids = {req["headers"]["X-Lookglass-Delivery"] for req in receiver.requests}
    assert ids == {str(delivery.id)}  # one id: the receiver can de-duplicate
    assert [backoff(n) for n in range(8)] == [10, 20, 40, 80, 160, 320, 600, 600]


def test_a_4xx_answer_is_not_retried(project, hook, receiver, eager, django_capture_on_commit_callbacks):
    receiver.statuses = [410]
    r = rule(project, hook)
    t = at_hour(0)
    calls(project, t, 4, errors=4)
    evaluate(r, t, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get(rule=r)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, 410)


def test_slack_and_email_channels(project, receiver, eager, django_capture_on_commit_callbacks):
    slack = alert_channel_create(project=project, actor=None, name="slack", kind="slack", url=receiver.url)
    email = alert_channel_create(project=project, actor=None, name="oncall", kind="email",
                                 emails=["oncall@example.com"])
    assert slack.secret == "" and email.secret == ""
    r = alert_rule_create(project=project, actor=None, name="Errors", metric="error_rate", threshold=0.5,
                          min_calls=1, channels=[slack, email])
    t = at_hour(0)
    calls(project, t, 2, errors=2)
    evaluate(r, t, django_capture_on_commit_callbacks)
    [request] = receiver.requests
    assert request["json"]["text"].startswith("*[FIRING] Errors*")
    [message] = mail.outbox
    assert message.to == ["oncall@example.com"] and message.subject == "[FIRING] Errors"


def test_a_disabled_rule_or_channel_is_not_evaluated_or_sent(
    project, hook, receiver, eager, django_capture_on_commit_callbacks
):
    r = rule(project, hook, enabled=False)
    t = at_hour(0)
    calls(project, t, 4, errors=4)
    assert evaluate(r, t, django_capture_on_commit_callbacks) is None
    AlertRule.objects.filter(pk=r.pk).update(enabled=True)
    AlertChannel.objects.filter(pk=hook.pk).update(enabled=False)
    assert evaluate(r, t, django_capture_on_commit_callbacks) == "firing"
    assert receiver.requests == []


def test_the_region_run_evaluates_only_its_region(project, far_project, django_capture_on_commit_callbacks):
    mine = rule(project)
    far = rule(far_project)
    t = timezone.now()
    calls(project, t, 4, errors=4)
    with django_capture_on_commit_callbacks(execute=True):
        counts = alerts.evaluate_region("eu", now=t)
    assert counts["firing"] == 1
    mine.refresh_from_db()
    far.refresh_from_db()
    assert mine.state == "firing" and far.last_evaluated_at is None


def test_an_overlapping_run_skips_a_rule_evaluated_moments_ago(project, django_capture_on_commit_callbacks):
    r = rule(project)
    t = timezone.now()
    assert evaluate(r, t, django_capture_on_commit_callbacks) == "no_data"
    assert evaluate(r, t + timedelta(seconds=10), django_capture_on_commit_callbacks) is None


def test_celery_beat_evaluates_every_region_every_minute_on_its_queue():
    from django.conf import settings

    from config.celery import app
    from tenancy.regions import region_queue

    app.finalize()
    schedule = app.conf.beat_schedule
    for region in settings.DATA_REGIONS:
        entry = schedule[f"evaluate-alerts-{region}"]
        assert entry["task"] == "monitoring.evaluate_alerts" and entry["schedule"] == 60.0
        assert entry["kwargs"] == {"region": region} and entry["options"]["queue"] == region_queue(region)
        assert schedule[f"decide-sampling-{region}"]["options"]["queue"] == region_queue(region)


# --- the seed's rules ------------------------------------------------------------------------------


def test_every_new_project_starts_with_the_three_seed_rules_switched_off(organization):
    project = ProjectFactory(organization=organization, region="eu")
    rules = AlertRule.objects.filter(project=project).order_by("seed_key")
    assert sorted(r.seed_key for r in rules) == sorted(s["seed_key"] for s in SEED_RULES)
    assert not any(r.enabled for r in rules)
    by_key = {r.seed_key: r for r in rules}
    assert (by_key["error_rate_vs_yesterday"].mode, by_key["error_rate_vs_yesterday"].threshold) == ("ratio", 1.5)
    assert by_key["latency_vs_yesterday"].metric == "latency_avg"
    assert (by_key["refusal_rate_5pct"].metric, by_key["refusal_rate_5pct"].threshold) == ("refusal_rate", 0.05)
    assert seed_rules(AlertRule, project.id) == 0  # the migration's function adds each at most once


def test_the_data_migration_gives_existing_projects_the_seed_rules(project):
    import importlib

    from django.apps import apps

    AlertRule.objects.filter(project=project).delete()
    migration = importlib.import_module("monitoring.migrations.0003_seed_alert_rules")
    migration.add_seed_rules(apps, None)
    migration.add_seed_rules(apps, None)
    assert AlertRule.objects.filter(project=project).exclude(seed_key="").count() == 3


def test_switching_on_the_seed_refusal_rule_fires(
    organization, project, owner, hook, receiver, eager, django_capture_on_commit_callbacks
):
    seed = AlertRule.objects.get(project=project, seed_key="refusal_rate_5pct")
    response = person(owner).patch(rule_url(organization, project, seed.id),
                                   {"enabled": True, "channels": [str(hook.id)]}, format="json")
    assert response.status_code == 200, response.content
    t = at_hour(10)
    calls(project, t, 20, refusals=2)  # 10% > 5%
    assert evaluate(seed, t, django_capture_on_commit_callbacks) == "firing"
    assert receiver.kinds() == ["firing"] and receiver.requests[0]["signed"]


# --- the API --------------------------------------------------------------------------------------


def rules_url(org, project):
    return f"/api/v1/organizations/{org.id}/projects/{project.id}/alert-rules"


def rule_url(org, project, rule_id):
    return f"{rules_url(org, project)}/{rule_id}"


def channels_url(org, project):
    return f"/api/v1/organizations/{org.id}/projects/{project.id}/alert-channels"


def test_create_a_rule_and_a_channel_through_the_api(organization, project, owner, receiver):
    client = person(owner)
    response = client.post(channels_url(organization, project),
                           {"name": "hook", "kind": "webhook", "url": receiver.url}, format="json")
    assert response.status_code == 201, response.content
    channel = response.json()
    assert channel["secret"].startswith("lgwhsec_") and len(channel["secret"]) == 72
    response = client.post(rules_url(organization, project), {
        "name": "p95 latency of support", "metric": "latency_p95", "threshold": 3000, "feature": "support",
        "window_minutes": 120, "channels": [channel["id"]],
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "no_data" and body["channels"] == [channel["id"]] and body["enabled"] is True
    listed = client.get(rules_url(organization, project)).json()
    assert {r["name"] for r in listed} >= {"p95 latency of support", "Refusal rate above 5%"}
    history = client.get(rule_url(organization, project, body["id"]) + "/history")
    assert history.status_code == 200 and history.json() == {"events": [], "deliveries": []}
    assert client.delete(rule_url(organization, project, body["id"])).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window_minutes": 30}, "window_minutes"),
        ({"window_minutes": 60 * 24 * 8}, "window_minutes"),
        ({"metric": "score_avg"}, "score_name"),
        ({"metric": "thumbs_down_rate", "feature": "support"}, "feature"),
        ({"metric": "bogus"}, "metric"),
        ({"mode": "ratio", "threshold": 0}, "threshold"),
        ({"warning_threshold": 0.9}, "warning_threshold"),
        ({"mode": "anomaly", "anomaly_weeks": 1}, "anomaly_weeks"),
        ({"thershold": 1}, "thershold"),
        ({"threshold": "NaN"}, "threshold"),
    ],
)
def test_bad_rules_answer_400_with_the_field(organization, project, owner, body, field):
    response = person(owner).post(rules_url(organization, project),
                                  {"name": "x", "metric": "error_rate", "threshold": 0.5, **body}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/hook", "http://10.0.0.7/hook",
     "http://[::1]/hook", "http://metadata.google.internal/", "ftp://example.com/x"],
)
def test_an_internal_webhook_url_is_refused_at_save(organization, project, owner, url, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    client = person(owner)
    for kind in ("webhook", "slack"):
        response = client.post(channels_url(organization, project), {"name": "x", "kind": kind, "url": url},
                               format="json")
        assert response.status_code == 400, response.content
        assert "url" in response.json()
    assert not AlertChannel.objects.filter(project=project).exists()


def test_an_internal_url_is_refused_on_update_too(organization, project, owner, receiver, settings):
    channel = alert_channel_create(project=project, actor=None, name="hook", kind="webhook", url=receiver.url)
    settings.OUTBOUND_ALLOW_PRIVATE = False
    response = person(owner).patch(f"{channels_url(organization, project)}/{channel.id}",
                                   {"url": "http://169.254.169.254/"}, format="json")
    assert response.status_code == 400 and "url" in response.json()


def test_send_a_test(organization, project, owner, hook, receiver):
    response = person(owner).post(f"{channels_url(organization, project)}/{hook.id}/test", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "sent"
    [request] = receiver.requests
    assert request["signed"] and request["json"]["payload"]["kind"] == "test"


def test_a_test_to_an_address_refused_since_saving_reports_it(organization, project, owner, hook, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False  # DNS or settings changed: the request-time check refuses it
    body = person(owner).post(f"{channels_url(organization, project)}/{hook.id}/test", {}, format="json").json()
    assert body["status"] == "failed" and "loopback" in body["last_error"]


def test_viewers_read_and_admins_write(organization, project, hook):
    viewer = MembershipFactory(organization=organization, role=Role.VIEWER).user
    client = person(viewer)
    assert client.get(rules_url(organization, project)).status_code == 200
    channels = client.get(channels_url(organization, project)).json()
    assert channels[0]["secret"].startswith("…")  # the secret is for admins
    assert client.post(rules_url(organization, project), {"name": "x", "metric": "volume", "threshold": 1},
                       format="json").status_code == 403
    assert client.post(f"{channels_url(organization, project)}/{hook.id}/test").status_code == 403


def test_a_channel_of_another_project_cannot_be_attached(organization, project, owner, other_project, receiver):
    theirs = alert_channel_create(project=other_project, actor=None, name="x", kind="webhook", url=receiver.url)
    response = person(owner).post(rules_url(organization, project), {
        "name": "x", "metric": "volume", "threshold": 1, "channels": [str(theirs.id)]}, format="json")
    assert response.status_code == 400 and "channels" in response.json()


def test_every_alert_endpoint_is_isolated(
    organization, project, owner, hook, other_owner, other_organization, far_organization, far_project
):
    from tests.factories import MembershipFactory as M

    far_owner = M(organization=far_organization, role="owner").user
    r = rule(project, hook)
    paths = [
        ("get", rules_url(organization, project)),
        ("post", rules_url(organization, project)),
        ("get", rule_url(organization, project, r.id)),
        ("patch", rule_url(organization, project, r.id)),
        ("delete", rule_url(organization, project, r.id)),
        ("get", rule_url(organization, project, r.id) + "/history"),
        ("get", channels_url(organization, project)),
        ("post", channels_url(organization, project)),
        ("get", f"{channels_url(organization, project)}/{hook.id}"),
        ("patch", f"{channels_url(organization, project)}/{hook.id}"),
        ("delete", f"{channels_url(organization, project)}/{hook.id}"),
        ("post", f"{channels_url(organization, project)}/{hook.id}/test"),
    ]
    for user in (other_owner, far_owner):
        client = person(user)
        for method, path in paths:
            assert getattr(client, method)(path, {}, format="json").status_code == 404, (method, path)
    # Their own project's URL with our ids: 404 too.
    mine_in_theirs = [
        rule_url(far_organization, far_project, r.id),
        f"{channels_url(far_organization, far_project)}/{hook.id}",
    ]
    for path in mine_in_theirs:
        assert person(far_owner).get(path).status_code == 404
    assert AlertRule.objects.filter(pk=r.pk).exists() and AlertChannel.objects.filter(pk=hook.pk).exists()


def test_the_openapi_schema_documents_alerts(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    base = "/api/v1/organizations/{organization_id}/projects/{project_id}"
    expected = {
        f"{base}/alert-rules": {"get", "post"},
        f"{base}/alert-rules/{{alert_rule_id}}": {"get", "put", "patch", "delete"},
        f"{base}/alert-rules/{{alert_rule_id}}/history": {"get"},
        f"{base}/alert-channels": {"get", "post"},
        f"{base}/alert-channels/{{channel_id}}": {"get", "put", "patch", "delete"},
        f"{base}/alert-channels/{{channel_id}}/test": {"post"},
        f"{base}/sampling-policy": {"get", "put", "patch"},
        f"{base}/sampling/counts": {"get"},
    }
    for path, methods in expected.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) & {"get", "post", "put", "patch", "delete"} == methods, path


def test_the_admin_lists_rules_and_sends_a_test(organization, project, owner, hook, receiver, client):
    client.force_login(owner)
    response = client.get("/admin/monitoring/alertrule/")
    assert response.status_code == 200 and b"Refusal rate above 5%" in response.content
    # One short formula per rule instead of the mode's sentence (the seed rules: ratio and threshold).
    page = response.content.decode()
    assert "&gt; 1.5 × yesterday over 1 h, ≥ 20 calls" in page
    assert "&gt; 0.05 over 1 h, ≥ 20 calls" in page
    assert "the value against threshold × the baseline" not in page
    # Every field a person fills says what it means (labels and help set on the admin forms).
    form = client.get("/admin/monitoring/alertchannel/add/").content.decode()
    assert "Private and internal addresses are refused" in form and ">URL:<" in form
    form = client.get("/admin/monitoring/alertrule/add/").content.decode()
    assert "Window (minutes)" in form and "1.5 = 50% above the baseline" in form
    form = client.get("/admin/monitoring/samplingpolicy/add/").content.decode()
    assert "Share of normal traces kept" in form and "a late error still keeps it" in form
    response = client.post("/admin/monitoring/alertchannel/",
                           {"action": "send_test", "_selected_action": [str(hook.id)]}, follow=True)
    assert response.status_code == 200
    assert receiver.kinds() == ["test"]


def test_the_admin_hides_other_tenants_rules(organization, project, other_project, other_owner, client):
    client.force_login(other_owner)
    mine = AlertRule.objects.filter(project=project).first()
    assert client.get(f"/admin/monitoring/alertrule/{mine.pk}/change/").status_code == 302
    assert str(project.id) not in client.get("/admin/monitoring/alertrule/").content.decode()
