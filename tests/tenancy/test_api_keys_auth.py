"""Project API keys: storage, the three header forms, failures, last-used throttling, logging."""

import base64
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from tenancy import keycache
from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.keys import hash_secret
from tenancy.logging import RedactSecretsFilter
from tenancy.models import ApiKey
from tenancy.services import api_key_revoke
from tests.factories import ApiKeyPair


def basic(public, secret):
    return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()


def test_keys_have_the_documented_shape_and_the_secret_is_stored_only_as_hmac(api_key):
    assert api_key.public.startswith("pk-lg-") and api_key.secret.startswith("sk-lg-")
    row = ApiKey.objects.get(pk=api_key.key.pk)
    assert row.secret_hash == hash_secret(api_key.secret)
    assert api_key.secret not in {row.secret_hash, row.public_key, row.note, str(row)}
    assert row.secret_last4 == api_key.secret[-4:]
    assert str(row).endswith(f"(sk-lg-…{api_key.secret[-4:]})")


def test_secrets_are_unique_and_unpredictable(project):
    secrets = {ApiKeyPair.issue(project).secret for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 40 for s in secrets)


def test_basic_and_bearer_secret_authenticate_the_key_project(api_key, project):
    for header in (api_key.basic, api_key.bearer):
        principal = authenticate_header(header)
        assert principal.project == project
        assert principal.public_only is False


def test_public_key_alone_only_where_allowed(api_key, project):
    with pytest.raises(AuthenticationFailed, match="public key alone"):
        authenticate_header(f"Bearer {api_key.public}")
    principal = authenticate_header(f"Bearer {api_key.public}", allow_public_only=True)
    assert principal.public_only is True and principal.project == project


@pytest.mark.parametrize(
    "make_header",
    [
        lambda k, o: basic(k.public, o.secret),  # secret of another project
        lambda k, o: basic("pk-lg-" + "0" * 32, k.secret),  # unknown public key
        lambda k, o: basic(k.public, k.secret + "x"),  # wrong secret
        lambda k, o: "Bearer sk-lg-not-a-real-secret",
        lambda k, o: "Bearer something-else",
    ],
)
def test_wrong_credentials_get_one_message_that_says_what_to_check(api_key, other_api_key, make_header):
    with pytest.raises(AuthenticationFailed) as exc:
        authenticate_header(make_header(api_key, other_api_key))
    assert "public key" in exc.value.message and "revoked" in exc.value.message


def test_unknown_public_key_and_wrong_secret_take_the_same_path(api_key, monkeypatch):
    """Both branches must compute exactly one HMAC comparison, so timing cannot tell them apart."""
    import tenancy.authentication as auth

    calls = []
    real = auth.secret_matches
    monkeypatch.setattr(auth, "secret_matches", lambda s, h: calls.append(h) or real(s, h))
    for header in (basic("pk-lg-" + "f" * 32, api_key.secret), basic(api_key.public, "sk-lg-wrong")):
        with pytest.raises(AuthenticationFailed):
            authenticate_header(header)
    assert len(calls) == 2


@pytest.mark.parametrize("header", ["", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Token x"])
def test_malformed_headers_are_refused_with_a_reason(header):
    with pytest.raises(AuthenticationFailed) as exc:
        authenticate_header(header)
    assert exc.value.message


def test_revoked_and_expired_keys_are_refused(api_key, project):
    api_key_revoke(api_key=api_key.key)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        authenticate_header(api_key.basic)
    expiring = ApiKeyPair.issue(project, expires_at=timezone.now() + timedelta(seconds=30))
    ApiKey.objects.filter(pk=expiring.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        authenticate_header(expiring.bearer)


def _stamp_seen(monkeypatch) -> None:
    """The fixtures' saves bumped the key cache's stamp, which a process notices at its next check (at
    most a second later). Make the first call check it, so that check cannot land between a test's cold
    and warm calls and empty the cache under it (a CI flake on a slow first call)."""
    monkeypatch.setitem(keycache._state, "checked_at", 0.0)


def test_last_used_is_written_at_most_once_a_minute(api_key, django_assert_num_queries, monkeypatch):
    _stamp_seen(monkeypatch)
    authenticate_header(api_key.basic)
    first = ApiKey.objects.get(pk=api_key.key.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(0):  # the key comes from the process cache and no UPDATE is due
        authenticate_header(api_key.basic)
    assert ApiKey.objects.get(pk=api_key.key.pk).last_used_at == first
    ApiKey.objects.filter(pk=api_key.key.pk).update(last_used_at=first - timedelta(minutes=2))
    keycache.invalidate()  # as another process, or this one after the cache entry expired, would see it
    authenticate_header(api_key.basic)
    assert ApiKey.objects.get(pk=api_key.key.pk).last_used_at > first


def test_known_and_unknown_public_keys_cost_the_same_queries(api_key, django_assert_num_queries, monkeypatch):
    _stamp_seen(monkeypatch)
    unknown = basic("pk-lg-" + "e" * 32, api_key.secret)
    wrong_secret = basic(api_key.public, "sk-lg-wrong")
    for header in (unknown, wrong_secret):  # cold: one lookup each
        with django_assert_num_queries(1), pytest.raises(AuthenticationFailed):
            authenticate_header(header)
    for header in (unknown, wrong_secret):  # warm: none for either
        with django_assert_num_queries(0), pytest.raises(AuthenticationFailed):
            authenticate_header(header)


def test_revocation_applies_at_once_despite_the_cache(api_key):
    authenticate_header(api_key.basic)  # now cached
    api_key_revoke(api_key=api_key.key)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        authenticate_header(api_key.basic)


def test_revocation_in_another_process_applies_within_the_stamp_interval(api_key, monkeypatch):
    from django.core.cache import cache

    authenticate_header(api_key.bearer)
    # Another process revokes: its row change reaches us only through the Redis generation stamp.
    ApiKey.objects.filter(pk=api_key.key.pk).update(revoked_at=timezone.now())
    cache.set(keycache.GENERATION_KEY, (cache.get(keycache.GENERATION_KEY) or 0) + 1, None)
    monkeypatch.setitem(keycache._state, "checked_at", 0.0)  # the once-a-second check is due
    with pytest.raises(AuthenticationFailed, match="revoked"):
        authenticate_header(api_key.bearer)


def test_projects_endpoint_is_the_sdk_auth_check(client, api_key, project):
    response = client.get("/api/public/projects", HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200
    assert response.json()["data"] == [
        {
            "id": str(project.id),
            "name": project.name,
            "organization": {"id": str(project.organization_id), "name": project.organization.name},
            "metadata": {"region": "eu"},
        }
    ]


def test_projects_endpoint_answers_401_json_for_bad_keys(client, api_key, other_api_key):
    for header in (None, basic(api_key.public, other_api_key.secret), f"Bearer {api_key.public}"):
        extra = {"HTTP_AUTHORIZATION": header} if header else {}
        response = client.get("/api/public/projects", **extra)
        assert response.status_code == 401
        assert response.json()["error"] == "UnauthorizedError"
        assert response.json()["message"]


def test_projects_endpoint_shows_only_the_key_project(client, other_api_key, other_project, project):
    response = client.get("/api/public/projects", HTTP_AUTHORIZATION=other_api_key.bearer)
    assert [p["id"] for p in response.json()["data"]] == [str(other_project.id)]


def test_log_lines_never_carry_a_secret(api_key, caplog):
    logger = logging.getLogger("lookglass.test")
    logger.addFilter(RedactSecretsFilter())
    with caplog.at_level(logging.INFO, logger="lookglass.test"):
        logger.info("client sent %s and Authorization: %s", api_key.secret, api_key.basic)
    text = caplog.text
    assert api_key.secret not in text
    assert api_key.basic.split(" ", 1)[1] not in text
    assert f"sk-lg-…{api_key.secret[-4:]}" in text
