"""Two owners demoting, removing or leaving at the same moment must never leave an organization
without an owner — through the services, the API and the console.

Each race runs two requests in two threads, so on two database connections, released together by a
barrier. To make the race happen every time rather than now and then, the test first locks the two
owners' membership rows from its own connection ("pins" them) and releases them only once both
workers are waiting on a lock: each worker has then done whatever checking it does *before* it
writes, which is exactly the window in which an unlocked last-owner check lets both through.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse

from tenancy import services
from tenancy.models import Membership, Role
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

TRIALS = 3


def _owners(organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


def _waiting_on_a_lock(pids: list[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid = ANY(%s)", [pids])
        return cursor.fetchone()[0]


def race(first, second, *, pin: list[Membership]) -> list:
    """Run `first()` and `second()` at once on two connections while `pin`'s rows are locked; return
    their results (or the exceptions they raised), in order."""
    barrier = threading.Barrier(2)
    pids: list[int] = []
    results: list = [None, None]

    def run(index, operation):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.append(cursor.fetchone()[0])
            barrier.wait(timeout=10)
            results[index] = operation()
        except Exception as exc:  # the losing side's refusal is a result too
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, op)) for i, op in enumerate((first, second))]
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(pk__in=[m.pk for m in pin]))
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (len(pids) == 2 and _waiting_on_a_lock(pids) == 2):
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    return results


def two_owners(trial: int, name: str):
    organization = OrganizationFactory(name=f"{name} {trial}")
    a = MembershipFactory(organization=organization, role=Role.OWNER)
    b = MembershipFactory(organization=organization, role=Role.OWNER)
    return organization, a, b


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def member_url(organization, user) -> str:
    return reverse("member-detail", args=[organization.id, user.id])


# --- services ---------------------------------------------------------------------------------


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_owners_removing_each_other_through_the_service_leave_one(trial):
    organization, a, b = two_owners(trial, "svc-remove")

    results = race(
        lambda: services.membership_remove(membership=b, actor=a.user),
        lambda: services.membership_remove(membership=a, actor=b.user),
        pin=[a, b],
    )

    assert _owners(organization) == 1
    assert sum(isinstance(r, Exception) for r in results) == 1


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_owners_demoting_each_other_through_the_service_leave_one(trial):
    organization, a, b = two_owners(trial, "svc-demote")

    race(
        lambda: services.membership_set_role(membership=b, role=Role.ADMIN, actor=a.user),
        lambda: services.membership_set_role(membership=a, role=Role.VIEWER, actor=b.user),
        pin=[a, b],
    )

    assert _owners(organization) == 1


# --- API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_owners_removing_each_other_through_the_api_leave_one(trial):
    organization, a, b = two_owners(trial, "api-remove")
    client_a, client_b = client_for(a.user), client_for(b.user)

    results = race(
        lambda: client_a.delete(member_url(organization, b.user)),
        lambda: client_b.delete(member_url(organization, a.user)),
        pin=[a, b],
    )

    assert _owners(organization) == 1
    assert sorted(r.status_code for r in results) == [204, 400]
    refused = next(r for r in results if r.status_code == 400)
    assert "at least one owner" in refused.content.decode()


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_owners_leaving_at_once_through_the_api_leave_one(trial):
    organization, a, b = two_owners(trial, "api-leave")
    client_a, client_b = client_for(a.user), client_for(b.user)

    results = race(
        lambda: client_a.delete(member_url(organization, a.user)),
        lambda: client_b.delete(member_url(organization, b.user)),
        pin=[a, b],
    )

    assert _owners(organization) == 1
    assert Membership.objects.filter(organization=organization).count() == 1
    assert sorted(r.status_code for r in results) == [204, 400]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_owners_demoting_each_other_through_the_api_leave_one(trial):
    organization, a, b = two_owners(trial, "api-demote")
    client_a, client_b = client_for(a.user), client_for(b.user)

    results = race(
        lambda: client_a.patch(member_url(organization, b.user), {"role": "admin"}, content_type="application/json"),
        lambda: client_b.patch(member_url(organization, a.user), {"role": "member"}, content_type="application/json"),
        pin=[a, b],
    )

    assert _owners(organization) == 1
    assert sorted(r.status_code for r in results) == [200, 400]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_one_owner_leaving_while_the_other_steps_down_through_the_api_leaves_one(trial):
    organization, a, b = two_owners(trial, "api-mixed")
    client_a, client_b = client_for(a.user), client_for(b.user)

    results = race(
        lambda: client_a.delete(member_url(organization, a.user)),
        lambda: client_b.patch(member_url(organization, b.user), {"role": "viewer"}, content_type="application/json"),
        pin=[a, b],
    )

    assert _owners(organization) == 1
    assert sorted(r.status_code for r in results) in ([200, 400], [204, 400])


# --- console -----------------------------------------------------------------------------------


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_owners_removing_and_demoting_each_other_in_the_console_leave_one(trial):
    organization, a, b = two_owners(trial, "console")
    client_a, client_b = client_for(a.user), client_for(b.user)

    results = race(
        lambda: client_a.post(reverse("admin:tenancy_membership_delete", args=[b.pk]), {"post": "yes"}),
        lambda: client_b.post(
            reverse("admin:tenancy_membership_change", args=[a.pk]), {"role": "viewer", "_save": "Save"}
        ),
        pin=[a, b],
    )

    assert _owners(organization) == 1
    assert all(r.status_code == 302 for r in results)
