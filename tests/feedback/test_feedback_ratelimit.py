"""Per-key and per-IP limits on browser feedback, counted in the run's real Redis."""

import uuid

import orjson
import pytest
from django.core.cache import cache

from feedback import ratelimit
from feedback.services import feedback_settings_update
from ingest.stages import price as costs
from scores.models import Score

FEEDBACK = "/api/v1/feedback"
SCORES = "/api/public/scores"


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(monkeypatch):
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"feedback-rl:test:{uuid.uuid4().hex}")


@pytest.fixture(autouse=True)
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


def post(client, auth, *, url=FEEDBACK, ip="203.0.113.5", body=None, **extra):
    body = body or (
        {"trace_id": "t1", "rating": "up"} if url == FEEDBACK else {"traceId": "t1", "name": "n", "value": 1}
    )
    return client.post(
        url,
        data=orjson.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
        REMOTE_ADDR=ip,
        **extra,
    )


def test_the_per_ip_limit_answers_429_with_retry_after(client, project, api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_IP = 3
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 100
    auth = f"Bearer {api_key.public}"
    statuses = [post(client, auth).status_code for _ in range(3)]
    assert statuses == [201, 201, 201]
    limited = post(client, auth)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    body = limited.json()
    assert (body["code"], body["details"]["scope"], body["details"]["limit"]) == ("rate_limited", "ip", 3)
    assert body["details"]["retryAfterSeconds"] == int(limited["Retry-After"])
    # Another address is counted on its own.
    assert post(client, auth, ip="203.0.113.6").status_code == 201
    assert Score.objects.for_project(project).count() == 4


def test_the_per_key_limit_holds_across_addresses(client, project, api_key, other_api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_IP = 100
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 2
    auth = f"Bearer {api_key.public}"
    assert [post(client, auth, ip=f"198.51.100.{i}").status_code for i in range(2)] == [201, 201]
    limited = post(client, auth, ip="198.51.100.9")
    assert limited.status_code == 429
    assert limited.json()["details"]["scope"] == "key"
    assert limited["Retry-After"]
    # Another project's key has its own budget.
    assert post(client, f"Bearer {other_api_key.public}", ip="198.51.100.9").status_code == 201


def test_public_key_scores_share_the_limits(client, project, api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_IP = 100
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 2
    auth = f"Bearer {api_key.public}"
    assert post(client, auth).status_code == 201
    assert post(client, auth, url=SCORES).status_code == 200
    limited = post(client, auth, url=SCORES)
    assert limited.status_code == 429 and limited["Retry-After"]


def test_secret_key_callers_are_not_limited(client, project, api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_IP = 1
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 1
    for _ in range(4):
        assert post(
            client, api_key.basic, body={"trace_id": "t1", "rating": "up", "user_id": "srv"}
        ).status_code in (200, 201)
        assert post(client, api_key.basic, url=SCORES).status_code == 200


def test_failed_authentication_counts_against_the_address(client, api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_IP = 2
    for auth in ("Bearer pk-lg-nope", "Basic " + "eDp5"):  # unknown public key; wrong pk:sk
        assert post(client, auth).status_code == 401
    assert post(client, "Bearer sk-lg-guess").status_code == 429
    assert post(client, f"Bearer {api_key.public}").status_code == 429


def test_an_allowed_page_can_read_the_429(client, project, api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 1
    feedback_settings_update(project=project, actor=None, allowed_origins=["https://app.acme.example"])
    auth = f"Bearer {api_key.public}"
    assert post(client, auth, HTTP_ORIGIN="https://app.acme.example").status_code == 201
    limited = post(client, auth, HTTP_ORIGIN="https://app.acme.example")
    assert limited.status_code == 429
    assert limited["Access-Control-Allow-Origin"] == "https://app.acme.example"
    assert "Retry-After" in limited["Access-Control-Expose-Headers"]


def test_behind_proxies_the_client_is_the_address_the_trusted_proxy_saw(client, api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_IP = 1
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 100
    settings.FEEDBACK_TRUSTED_PROXY_HOPS = 1
    auth = f"Bearer {api_key.public}"
    # The left part of X-Forwarded-For is client-chosen; varying it does not buy a new budget.
    assert post(client, auth, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1, 192.0.2.7").status_code == 201
    assert post(client, auth, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="2.2.2.2, 192.0.2.7").status_code == 429
    # Another real client behind the same proxy is not limited by the first.
    assert post(client, auth, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.8").status_code == 201


def test_counters_are_real_redis_keys_that_expire(api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 5
    now = 60 * 31_666_667 + 30.0  # 30 s into a window
    assert ratelimit.hit_key(api_key.key.id, now=now) is None
    keys = [k for k in cache._cache.get_client().scan_iter(f"*{ratelimit.KEY_PREFIX}:key:*")]
    assert len(keys) == 1
    assert 0 < cache._cache.get_client().ttl(keys[0]) <= 2 * ratelimit.WINDOW_SECONDS
    for _ in range(4):
        assert ratelimit.hit_key(api_key.key.id, now=now) is None
    limited = ratelimit.hit_key(api_key.key.id, now=now)
    assert (limited.scope, limited.limit, limited.retry_after) == ("key", 5, 30)
    # The next window starts from zero.
    assert ratelimit.hit_key(api_key.key.id, now=now + 30) is None


def test_a_limit_of_zero_is_off(api_key, settings):
    settings.FEEDBACK_RATE_LIMIT_PER_KEY = 0
    assert all(ratelimit.hit_key(api_key.key.id) is None for _ in range(50))


def test_a_cache_outage_lets_feedback_through(client, project, api_key, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(ratelimit.cache, "add", down)
    assert post(client, f"Bearer {api_key.public}").status_code == 201
