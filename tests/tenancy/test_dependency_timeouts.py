"""A stalled Redis or PostgreSQL costs a request a bounded time, never a hang.

The Redis here is a real redis-server frozen with SIGSTOP (it accepts connections, never answers).
A safety timer kills it after a few seconds, so code without timeouts fails these tests instead of
hanging them.
"""

import threading
import time

import orjson
import psycopg
import pytest
import redis
from django.core.cache import cache
from django.db import connections
from django.utils import timezone

from config.celery import app as celery_app
from ingest.stages import price as costs
from tenancy import keycache
from tenancy.models import ApiKey
from tenancy.tasks import enqueue_for_project, publish
from tests.faults import FreezableRedis

SAFETY_SECONDS = 6
# In milliseconds, whatever unit the setting was given in.
TIMEOUTS = (
    "SELECT (SELECT setting FROM pg_settings WHERE name = 'statement_timeout'),"
    " (SELECT setting FROM pg_settings WHERE name = 'lock_timeout')"
)


@pytest.fixture
def frozen_redis():
    redis = FreezableRedis().start()
    redis.freeze()
    # Code without timeouts would wait forever: end it (and the test) after SAFETY_SECONDS.
    safety = threading.Timer(SAFETY_SECONDS, redis.kill)
    safety.start()
    try:
        yield redis
    finally:
        safety.cancel()
        redis.stop()
        from config import cache as failfast

        failfast.reset()  # the next test's cache starts trusted


@pytest.fixture
def frozen_cache(frozen_redis, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": frozen_redis.url}}
    yield frozen_redis
    # Forget what the outage taught this process, so later tests start with a reachable cache.
    keycache._state.update(checked_at=0.0, redis_ok=True)


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_the_cache_gives_up_on_a_frozen_redis(frozen_cache):
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        cache.get("anything")
    assert time.monotonic() - started < 2
    assert "Timeout" in type(raised.value).__name__


def test_authentication_falls_back_to_the_database_when_redis_is_frozen(client, api_key, frozen_redis, settings):
    # Warm the key cache while the suite's Redis answers, then lose Redis.
    assert client.get("/api/public/projects", HTTP_AUTHORIZATION=api_key.basic).status_code == 200
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": frozen_redis.url}}
    try:
        # Revoked by another process: its stamp bump cannot reach Redis, and no signal fires here.
        ApiKey.objects.filter(public_key=api_key.public).update(revoked_at=timezone.now())
        time.sleep(keycache.STAMP_CHECK_SECONDS + 0.1)
        response, elapsed = timed(lambda: client.get("/api/public/projects", HTTP_AUTHORIZATION=api_key.basic))
        assert elapsed < 2
        # The cached row is not trusted without the stamp: the database says the key is revoked.
        assert response.status_code == 401
    finally:
        keycache._state.update(checked_at=0.0, redis_ok=True)


def test_feedback_rate_limits_fail_open_on_a_frozen_redis(client, project, api_key, frozen_cache, monkeypatch, caplog):
    monkeypatch.setattr(costs, "_pricing", lambda: None)
    response, elapsed = timed(lambda: client.post(
        "/api/v1/feedback", data=orjson.dumps({"trace_id": "t1", "rating": "up"}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key.public}", REMOTE_ADDR="203.0.113.9",
    ))
    assert response.status_code == 201
    assert elapsed < 3
    assert "feedback rate limit unavailable" in caplog.text


def _fresh_broker_connections():
    # Publishers reuse pooled broker connections; drop them so the next publish dials broker_url anew.
    from kombu import pools

    pools.reset()  # kombu's process-wide pools, keyed by broker URL: closed *and* forgotten
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def frozen_broker(frozen_redis, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", frozen_redis.url)
    _fresh_broker_connections()
    yield frozen_redis
    _fresh_broker_connections()  # monkeypatch restores broker_url after this


def test_enqueue_after_commit_logs_instead_of_hanging_on_a_frozen_broker(project, frozen_broker, caplog):
    from tests.commits import on_commit_of_every_database
    from tests.tenancy.test_region_queues import region_probe

    started = time.monotonic()
    with on_commit_of_every_database():
        enqueue_for_project(region_probe, project=project, kwargs={"marker": "lost"})
    assert time.monotonic() - started < 4
    assert "could not enqueue tests.region_probe on region.eu" in caplog.text
    assert '"marker": "lost"' in caplog.text  # what an operator needs to send it again
    assert publish(region_probe, kwargs={"project_id": str(project.id), "marker": "x"}, queue="region.eu") is False


def test_web_connections_carry_statement_and_lock_timeouts(settings):
    with connections["default"].cursor() as cursor:
        cursor.execute(TIMEOUTS)
        statement, lock = cursor.fetchone()
    assert (statement, lock) == (str(settings.DB_STATEMENT_TIMEOUT_MS), str(settings.DB_LOCK_TIMEOUT_MS))
    assert settings.DB_STATEMENT_TIMEOUT_MS > 0 and settings.DB_LOCK_TIMEOUT_MS > 0


def test_a_lock_timeout_answers_503_with_retry_after(client, api_key, project):
    # Another session holds a lock the request's read must wait for (traces_trace in the project's
    # region: this test wrote nothing there, so the lock is free to take).
    region = connections["region_eu"]
    settings_dict = region.settings_dict
    other = psycopg.connect(
        host=settings_dict["HOST"], port=settings_dict["PORT"], user=settings_dict["USER"],
        dbname=settings_dict["NAME"], autocommit=False,
    )
    try:
        other.execute("SET lock_timeout = '2s'")
        other.execute("LOCK TABLE traces_trace IN ACCESS EXCLUSIVE MODE")
        with region.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")  # the setting's 5 s, shortened for the test
        response, elapsed = timed(lambda: client.get("/api/public/traces", HTTP_AUTHORIZATION=api_key.basic))
    finally:
        other.rollback()
        other.close()
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert elapsed < 2


def test_workers_get_their_own_longer_timeouts(settings):
    from django.db.backends.signals import connection_created

    from config import db

    seen = {}

    def in_a_fresh_connection():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(TIMEOUTS)
                seen["values"] = cursor.fetchone()
        finally:
            connections["default"].close()

    db.use_worker_timeouts()
    try:
        thread = threading.Thread(target=in_a_fresh_connection)
        thread.start()
        thread.join(10)
    finally:
        db._worker_timeouts["on"] = False
        connection_created.disconnect(dispatch_uid="lookglass-worker-timeouts")
    assert seen["values"] == (str(settings.DB_WORKER_STATEMENT_TIMEOUT_MS), str(settings.DB_WORKER_LOCK_TIMEOUT_MS))
    assert settings.DB_WORKER_STATEMENT_TIMEOUT_MS > settings.DB_STATEMENT_TIMEOUT_MS


def _direct_params(port=None):
    params = connections["default"].get_connection_params()
    if port is not None:
        params.update(host="127.0.0.1", port=port)
    return params


def test_a_frozen_database_cuts_the_waiting_query_within_seconds(settings):
    from config.db import DeadlineConnection
    from tests.faults import FreezableProxy

    settings_dict = connections["default"].settings_dict
    proxy = FreezableProxy(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"]))
    try:
        with DeadlineConnection.connect(**_direct_params(proxy.port), autocommit=True) as conn:
            conn.execute("SELECT 1")
            proxy.freeze()
            # Without the watchdog the query would wait forever: thaw after SAFETY_SECONDS (it then
            # succeeds, and the test fails).
            safety = threading.Timer(SAFETY_SECONDS, proxy.frozen.clear)
            safety.start()
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
            elapsed = time.monotonic() - started
            safety.cancel()
        assert elapsed < settings.DB_STALL_SECONDS + settings.DB_PROBE_TIMEOUT_SECONDS + 1
    finally:
        proxy.close()


def test_a_slow_query_on_a_live_database_is_left_to_its_statement_timeout(settings):
    from config.db import DeadlineConnection

    with DeadlineConnection.connect(**_direct_params(), autocommit=True) as conn:
        seconds = settings.DB_STALL_SECONDS + 0.8
        started = time.monotonic()
        conn.execute("SELECT pg_sleep(%s)", [seconds])
        assert time.monotonic() - started >= seconds
        conn.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")


def test_a_purge_lost_to_a_frozen_broker_is_enqueued_by_the_sweep(
    project, frozen_broker, django_capture_on_commit_callbacks, caplog, monkeypatch
):
    import json

    import redis
    from django.conf import settings as django_settings

    from tenancy.services import project_delete
    from tenancy.tasks import sweep_project_purges

    project_id = str(project.id)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=project, actor=None)  # commits; the purge message cannot be sent
    assert time.monotonic() - started < 4
    assert "could not enqueue tenancy.purge_project_data" in caplog.text

    # The broker is back.
    monkeypatch.undo()
    _fresh_broker_connections()
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.delete("region.eu", "region.us")
    assert sweep_project_purges.run() >= 1
    messages = [json.loads(m) for m in client.lrange("region.eu", 0, -1)]
    assert any(
        m["headers"]["task"] == "tenancy.purge_project_data" and project_id in json.dumps(m) for m in messages
    )
    assert client.llen("region.us") == 0 or project_id not in json.dumps(client.lrange("region.us", 0, -1))


def test_after_one_timeout_the_cache_stops_waiting_on_a_frozen_redis_for_a_moment(frozen_cache, settings):
    from config import cache as failfast

    failfast.reset()
    try:
        started = time.monotonic()
        for _ in range(6):  # a request's worth of cache calls
            with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
                cache.get("anything")
        # One socket timeout, not six.
        assert time.monotonic() - started < settings.REDIS_SOCKET_TIMEOUT * 2
        # And Redis is tried again afterwards: a thawed Redis is used at once.
        frozen_cache.thaw()
        time.sleep(settings.REDIS_RETRY_AFTER_SECONDS + 0.1)
        cache.set("back", 1)
        assert cache.get("back") == 1
    finally:
        failfast.reset()
