"""The invitation link from the email: it shows the invitation, lets an existing person sign in or
a new person create an account, accepts, and lands them in the console of that organization only."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenancy.models import AuditAction, AuditLogEntry, Invitation, Membership, Role, User
from tenancy.services import invitation_accept, invitation_create, invitation_revoke
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "lantern-orchard-57-quietly"


def invite(organization, email="joiner@example.com", role=Role.ADMIN, invited_by=None):
    invitation, token = invitation_create(organization=organization, email=email, role=role, invited_by=invited_by)
    return invitation, token


def page(token: str) -> str:
    return f"{reverse('accept-invitation')}?token={token}"


def accepted_audit(organization):
    return AuditLogEntry.objects.filter(organization_id=organization.id, action=AuditAction.INVITATION_ACCEPTED)


def console_organizations(client) -> set[str]:
    response = client.get(reverse("admin:tenancy_organization_changelist"))
    assert response.status_code == 200
    return {organization.name for organization in response.context["cl"].result_list}


# --- the link ----------------------------------------------------------------------------------


def test_the_emailed_link_opens_a_page_showing_the_organization_and_role(
    client, organization, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(organization, role=Role.VIEWER, invited_by=owner)
    link = re.search(r"(https?://\S+/invitations/accept\?token=\S+)", mail.outbox[-1].body).group(1)
    parts = urlsplit(link)

    response = client.get(f"{parts.path}?{parts.query}")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Acme" in body and "Viewer" in body and "joiner@example.com" in body
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]


# --- a new person ------------------------------------------------------------------------------


def test_a_new_person_creates_an_account_and_lands_in_the_organizations_console(
    client, organization, owner, other_organization
):
    invitation, token = invite(organization, role=Role.ADMIN, invited_by=owner)

    shown = client.get(page(token))
    assert shown.context["mode"] == "sign_up"

    response = client.post(
        page(token),
        {
            "token": token, "action": "sign_up", "name": "Jo Iner", "email": "attacker@example.com",
            "password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302 and response.url == reverse("admin:index")
    user = User.objects.get(email="joiner@example.com")
    assert user.name == "Jo Iner" and user.check_password(NEW_PASSWORD)
    assert not User.objects.filter(email="attacker@example.com").exists()
    assert Membership.objects.get(user=user).organization == organization
    assert Membership.objects.get(user=user).role == Role.ADMIN
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    assert accepted_audit(organization).get().data == {
        "email": "joiner@example.com", "role": "admin", "account": "created",
    }
    # Signed in, in the console, seeing this organization and not the other one.
    landing = client.get(reverse("admin:index"))
    assert landing.status_code == 200
    assert "You joined Acme as admin." in landing.content.decode()
    assert console_organizations(client) == {"Acme"}
    other = client.get(reverse("admin:tenancy_organization_change", args=[other_organization.pk]))
    assert other.status_code == 302 and other.url == reverse("admin:index")


def test_a_new_persons_password_goes_through_the_validators(client, organization):
    _, token = invite(organization)

    mismatch = client.post(
        page(token),
        {"token": token, "action": "sign_up", "name": "Jo", "password1": NEW_PASSWORD, "password2": "other"},
    )
    common = client.post(
        page(token), {"token": token, "action": "sign_up", "name": "Jo", "password1": "password", "password2": "password"}
    )

    assert mismatch.status_code == 200 and mismatch.context["form"].errors["password2"]
    assert common.status_code == 200 and common.context["form"].errors["password2"]
    assert not User.objects.filter(email="joiner@example.com").exists()
    assert Invitation.objects.get(organization=organization).accepted_at is None


# --- an existing person ------------------------------------------------------------------------


def test_an_existing_person_without_membership_signs_in_and_accepts(client, organization, other_organization):
    person = UserFactory(email="joiner@example.com")
    _, token = invite(organization, role=Role.MEMBER)
    assert client.get(page(token)).context["mode"] == "sign_in"

    wrong = client.post(page(token), {"token": token, "action": "sign_in", "password": "not it"})
    assert wrong.status_code == 200 and wrong.context["form"].errors
    assert not Membership.objects.filter(user=person).exists()

    response = client.post(page(token), {"token": token, "action": "sign_in", "password": PASSWORD})

    assert response.status_code == 302 and response.url == reverse("admin:index")
    assert Membership.objects.get(user=person).organization == organization
    assert accepted_audit(organization).get().data == {"email": "joiner@example.com", "role": "member"}
    assert console_organizations(client) == {"Acme"}
    assert not Membership.objects.filter(user=person, organization=other_organization).exists()


def test_a_person_signed_in_with_the_invited_address_accepts_with_one_click(
    client, organization, other_organization, member_of
):
    person = member_of(other_organization, Role.VIEWER)
    _, token = invite(organization, email=person.email.upper(), role=Role.MEMBER)
    client.force_login(person)

    assert client.get(page(token)).context["mode"] == "accept"
    response = client.post(page(token), {"token": token, "action": "accept"})

    assert response.status_code == 302
    assert Membership.objects.get(user=person, organization=organization).role == Role.MEMBER
    # The other organization's membership is untouched: one role there, one here.
    assert Membership.objects.get(user=person, organization=other_organization).role == Role.VIEWER
    assert console_organizations(client) == {"Acme", "Globex"}


def test_a_person_signed_in_with_another_address_cannot_accept(client, organization):
    intruder = UserFactory(email="intruder@example.com")
    invitation, token = invite(organization)
    client.force_login(intruder)

    shown = client.get(page(token))
    assert shown.context["mode"] == "wrong_account"
    assert "this invitation is for joiner@example.com" in shown.content.decode()

    for action in ("accept", "sign_in", "sign_up"):
        client.post(page(token), {"token": token, "action": action, "password": PASSWORD})

    assert not Membership.objects.filter(user=intruder).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_signed_in_with_another_address_one_signs_out_and_comes_back_to_the_invitation(client, organization):
    client.force_login(UserFactory(email="intruder@example.com"))
    _, token = invite(organization)
    shown = client.get(page(token))
    sign_out = re.search(r'<form method="post" action="([^"]+)" id="lg-signout-form">', shown.content.decode()).group(1)
    next_url = re.search(r'name="next" value="([^"]+)"', shown.content.decode()).group(1).replace("&amp;", "&")

    response = client.post(sign_out, {"next": next_url})

    assert response.status_code == 302 and response.url == page(token)
    assert client.get(page(token)).context["mode"] == "sign_up"


def test_an_org_a_token_never_grants_org_b(client, organization, other_organization, other_owner):
    _, token_a = invite(organization, role=Role.OWNER)
    invite(other_organization, email="someone.else@example.com", role=Role.OWNER, invited_by=other_owner)

    client.post(
        page(token_a),
        {"token": token_a, "action": "sign_up", "name": "Jo", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    person = User.objects.get(email="joiner@example.com")
    assert list(Membership.objects.filter(user=person).values_list("organization__name", flat=True)) == ["Acme"]
    assert console_organizations(client) == {"Acme"}
    # Replaying the token (now used) grants nothing more.
    again = client.post(page(token_a), {"token": token_a, "action": "accept"})
    assert again.status_code == 410
    assert Membership.objects.filter(user=person).count() == 1


# --- tokens that cannot be used ----------------------------------------------------------------


def test_unknown_expired_revoked_and_used_tokens_get_a_clear_page(client, organization, owner):
    assert client.get(page("made-up")).status_code == 404
    assert "not valid" in client.get(page("made-up")).content.decode()
    assert client.get(reverse("accept-invitation")).status_code == 404

    expired, expired_token = invite(organization, email="late@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    revoked, revoked_token = invite(organization, email="gone@example.com")
    invitation_revoke(invitation=revoked, actor=owner)
    _, used_token = invite(organization, email="joiner@example.com")
    client.post(
        page(used_token),
        {"token": used_token, "action": "sign_up", "name": "Jo", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    client.logout()

    for token, words in ((expired_token, "has expired"), (revoked_token, "was withdrawn"), (used_token, "already been used")):
        response = client.get(page(token))
        assert response.status_code == 410 and words in response.content.decode()
        posted = client.post(
            page(token),
            {"token": token, "action": "sign_up", "name": "X", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
        assert posted.status_code == 410
    assert not User.objects.filter(email__in=["late@example.com", "gone@example.com"]).exists()


def test_the_invitation_forms_need_a_csrf_token(organization):
    client = Client(enforce_csrf_checks=True)
    _, token = invite(organization)

    response = client.post(
        page(token),
        {"token": token, "action": "sign_up", "name": "Jo", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 403
    assert not User.objects.filter(email="joiner@example.com").exists()
    shown = client.get(page(token))
    assert 'name="csrfmiddlewaretoken"' in shown.content.decode()


# --- signed in, but a member of nothing ---------------------------------------------------------


def test_a_signed_in_person_with_no_membership_gets_a_clear_page(client):
    client.force_login(UserFactory(email="alone@example.com"))

    response = client.get(reverse("admin:index"), follow=True)

    assert response.status_code == 403
    body = response.content.decode()
    assert "not a member of any organization" in body and "alone@example.com" in body
    assert "invitation" in body


def test_after_leaving_the_last_organization_the_person_gets_the_clear_page(client, organization, owner, member_of):
    member = member_of(organization, Role.MEMBER)
    client.force_login(member)
    assert client.delete(f"/api/v1/organizations/{organization.id}/members/{member.id}/").status_code == 204

    response = client.get(reverse("admin:index"), follow=True)

    assert response.status_code == 403 and "not a member of any organization" in response.content.decode()


def test_a_person_with_no_membership_can_sign_out_from_that_page(client):
    client.force_login(UserFactory(email="alone@example.com"))
    shown = client.get(reverse("admin:login"))
    assert f'action="{reverse("sign-out")}"' in shown.content.decode()

    response = client.post(reverse("sign-out"), {"next": reverse("admin:login")})

    assert response.status_code == 302 and response.url == reverse("admin:login")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:login")).status_code == 200


def test_accepting_never_lowers_a_role_given_since_the_invitation(client, organization, owner):
    person = UserFactory(email="joiner@example.com")
    _, token = invite(organization, role=Role.VIEWER)
    Membership.objects.create(organization=organization, user=person, role=Role.OWNER)
    client.force_login(person)

    response = client.post(page(token), {"token": token, "action": "accept"})

    assert response.status_code == 302
    assert Membership.objects.get(organization=organization, user=person).role == Role.OWNER


def test_a_revoke_decided_on_a_stale_copy_leaves_an_accepted_invitation_accepted(organization):
    # The admin loaded the invitation while it was pending; the invitee accepted before the revoke ran.
    owner = UserFactory()
    invitation, token = invite(organization, email="racer@example.com")
    stale = Invitation.objects.get(pk=invitation.pk)
    joiner = UserFactory(email="racer@example.com")
    invitation_accept(token=token, user=joiner)

    invitation_revoke(invitation=stale, actor=owner)

    stored = Invitation.objects.get(pk=invitation.pk)
    assert stored.accepted_at is not None and stored.revoked_at is None
    assert stale.revoked_at is None
    assert not AuditLogEntry.objects.filter(
        organization_id=organization.id, action=AuditAction.INVITATION_REVOKED
    ).exists()
    assert Membership.objects.filter(organization=organization, user=joiner).exists()
