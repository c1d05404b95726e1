"""Password guessing is throttled on every sign-in form (console login and the invitation page):
LOGIN_FAILURE_LIMIT failures per account, and separately per client address, refuse sign-in, right
password or not, for the cool-off; a success clears that account's count."""

import base64
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from tenancy.models import Membership, Role
from tenancy.services import invitation_create
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
LIMIT = settings.AXES_FAILURE_LIMIT
LOGIN = reverse("admin:login")


def sign_in(client, email, password, ip="198.51.100.7", **extra):
    return client.post(LOGIN, {"username": email, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip, **extra)


def signed_in(response) -> bool:
    return response.status_code == 302 and response.url == "/admin/"


def cool_off_passes():
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))


def test_the_defaults_are_a_handful_of_failures_and_minutes_of_cool_off():
    assert 3 <= LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME >= timedelta(minutes=5)


def test_after_the_limit_even_the_right_password_is_refused_until_the_cool_off_ends(
    client, organization, member_of
):
    victim = member_of(organization, Role.OWNER)

    responses = [sign_in(client, victim.email, f"guess-{n}") for n in range(LIMIT)]

    assert all(r.status_code == 200 for r in responses[:-1])
    locked = responses[-1]
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()

    right = sign_in(client, victim.email, PASSWORD)
    assert right.status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302  # not signed in

    cool_off_passes()
    assert signed_in(sign_in(client, victim.email, PASSWORD))


def test_the_account_lock_holds_from_any_address_and_in_any_letter_case(client, organization, member_of):
    victim = member_of(organization, Role.ADMIN)
    for n in range(LIMIT):
        email = victim.email.upper() if n % 2 else victim.email
        sign_in(client, email, f"guess-{n}", ip=f"203.0.113.{n + 1}")

    assert sign_in(client, victim.email, PASSWORD, ip="192.0.2.99").status_code == 429


def test_another_account_from_another_address_is_unaffected(client, organization, member_of):
    victim = member_of(organization, Role.OWNER)
    bystander = member_of(organization, Role.MEMBER)
    for n in range(LIMIT):
        sign_in(client, victim.email, f"guess-{n}", ip="198.51.100.7")

    assert signed_in(sign_in(client, bystander.email, PASSWORD, ip="192.0.2.20"))


def test_an_address_spraying_many_accounts_is_locked_while_those_accounts_are_not(client, organization, member_of):
    people = [member_of(organization, Role.VIEWER) for _ in range(LIMIT)]
    for person in people:
        sign_in(client, person.email, "Summer2026!", ip="198.51.100.66")

    assert sign_in(client, people[0].email, PASSWORD, ip="198.51.100.66").status_code == 429
    assert signed_in(sign_in(client, people[0].email, PASSWORD, ip="192.0.2.30"))


def test_a_success_clears_the_accounts_failures(client, organization, member_of):
    person = member_of(organization, Role.MEMBER)
    for n in range(LIMIT - 1):
        sign_in(client, person.email, f"typo-{n}")
    assert signed_in(sign_in(client, person.email, PASSWORD))
    client.post(reverse("admin:logout"))

    for n in range(LIMIT - 1):
        sign_in(client, person.email, f"typo-again-{n}", ip="192.0.2.40")

    assert signed_in(sign_in(client, person.email, PASSWORD, ip="192.0.2.40"))


def test_signing_into_ones_own_account_does_not_clear_the_count_of_an_account_one_is_guessing(
    client, organization, member_of
):
    victim = member_of(organization, Role.OWNER)
    attacker = member_of(organization, Role.VIEWER)
    for n in range(LIMIT - 1):
        sign_in(client, victim.email, f"guess-{n}", ip="198.51.100.7")
    assert signed_in(sign_in(client, attacker.email, PASSWORD, ip="198.51.100.7"))
    client.post(reverse("admin:logout"))

    sign_in(client, victim.email, "one-more-guess", ip="192.0.2.50")

    assert sign_in(client, victim.email, PASSWORD, ip="192.0.2.51").status_code == 429


def test_behind_a_proxy_each_client_address_is_counted_on_its_own(client, organization, member_of, settings):
    settings.LOGIN_TRUSTED_PROXY_HOPS = 1
    people = [member_of(organization, Role.VIEWER) for _ in range(LIMIT)]
    proxy = "10.0.0.2"
    for person in people:
        # The left entry is whatever the client claims; only the one the proxy appended counts.
        sign_in(client, person.email, "Summer2026!", ip=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{person.pk.int % 200}, 203.0.113.9")

    assert sign_in(client, people[0].email, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert signed_in(sign_in(client, people[0].email, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.10"))
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}


def hops_with(**environ) -> str:
    """LOGIN_TRUSTED_PROXY_HOPS as a fresh process reads it from this environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("BEHIND_TLS_PROXY", "LOGIN_TRUSTED_PROXY_HOPS")}
    env.update(environ, DJANGO_SETTINGS_MODULE="config.test_settings")
    code = "import django; django.setup(); from django.conf import settings; print(settings.LOGIN_TRUSTED_PROXY_HOPS)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_behind_tls_proxy_the_client_address_is_taken_from_the_proxys_header_by_default():
    assert hops_with(BEHIND_TLS_PROXY="true") == "1"
    assert hops_with() == "0"
    assert hops_with(BEHIND_TLS_PROXY="true", LOGIN_TRUSTED_PROXY_HOPS="2") == "2"


def test_failed_attempts_never_store_passwords_or_invitation_tokens(client, organization):
    UserFactory(email="joiner@example.com")
    _, token = invitation_create(organization=organization, email="joiner@example.com", role="member", invited_by=None)
    client.post(
        f"{reverse('accept-invitation')}?token={token}", {"token": token, "action": "sign_in", "password": "s3cret-guess"}
    )
    sign_in(client, "someone@example.com", "another-s3cret")

    stored = " ".join(f"{a.get_data} {a.post_data}" for a in AccessAttempt.objects.all())
    assert AccessAttempt.objects.count() == 2
    assert "s3cret" not in stored and token not in stored


def test_the_invitation_page_sign_in_is_throttled_too(client, organization):
    person = UserFactory(email="joiner@example.com")
    _, token = invitation_create(organization=organization, email="joiner@example.com", role="member", invited_by=None)
    page = f"{reverse('accept-invitation')}?token={token}"

    responses = [
        client.post(page, {"token": token, "action": "sign_in", "password": f"guess-{n}"}, REMOTE_ADDR="198.51.100.7")
        for n in range(LIMIT)
    ]
    right = client.post(page, {"token": token, "action": "sign_in", "password": PASSWORD}, REMOTE_ADDR="192.0.2.8")

    assert responses[-1].status_code == 429
    assert right.status_code == 429
    assert not Membership.objects.filter(user=person).exists()
    # The console login shares the count: the account is locked there as well.
    assert sign_in(client, person.email, PASSWORD, ip="192.0.2.9").status_code == 429


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/organizations/"])
def test_the_api_takes_no_passwords_so_there_is_nothing_to_guess_there(client, organization, member_of, path):
    person = member_of(organization, Role.OWNER)
    basic = "Basic " + base64.b64encode(f"{person.email}:{PASSWORD}".encode()).decode()

    response = client.get(path, HTTP_AUTHORIZATION=basic)

    assert response.status_code == 401
