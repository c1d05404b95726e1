"""Management API (/api/v1): organizations, members, invitations, projects, API keys, audit log, me.

Every test runs with a second organization (Globex) present; its rows must never show up here.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.middleware.csrf import get_token
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.models import ApiKey, AuditAction, AuditLogEntry, Invitation, Membership, Organization, Project
from tenancy.services import invitation_create, project_create
from tests.factories import ApiKeyPair, MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

V1 = "/api/v1"


@pytest.fixture
def client_for():
    def make(user=None, **kwargs):
        client = APIClient(**kwargs)
        if user is not None:
            client.force_login(user)
        return client

    return make


def org_url(organization, suffix=""):
    return f"{V1}/organizations/{organization.id}/{suffix}"


def project_url(project, suffix=""):
    return f"{V1}/organizations/{project.organization_id}/projects/{project.id}/{suffix}"


def audit(organization, action):
    return AuditLogEntry.objects.filter(organization_id=organization.id, action=action)


def results(response):
    return response.json()["results"]


# --- Authentication --------------------------------------------------------------------------


def test_it_answers_401_with_a_challenge_to_anonymous_callers(organization, client_for):
    for url in (f"{V1}/me", f"{V1}/organizations/", org_url(organization, "projects/")):
        response = client_for().get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == 'Basic realm="lookglass"'


def test_session_writes_need_the_csrf_token(organization, owner, client_for):
    client = client_for(owner, enforce_csrf_checks=True)
    refused = client.post(org_url(organization, "projects/"), {"name": "csrf-less"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Project.objects.filter(name="csrf-less").exists()

    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies[settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]
    accepted = client.post(
        org_url(organization, "projects/"), {"name": "with-csrf"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 201


def test_it_refuses_api_keys_on_management_endpoints_even_for_their_own_project(
    organization, project, api_key, client_for
):
    client = client_for()
    for header in (api_key.basic, api_key.bearer):
        client.credentials(HTTP_AUTHORIZATION=header)
        for url in (
            org_url(organization),
            org_url(organization, "projects/"),
            project_url(project, "api-keys/"),
        ):
            assert client.get(url).status_code == 404, url
        assert client.post(project_url(project, "api-keys/"), {}, format="json").status_code == 404
        for url in (f"{V1}/me", f"{V1}/organizations/"):
            response = client.get(url)
            assert response.status_code == 403
            assert "API keys cannot use the management API" in response.json()["detail"]
    assert ApiKey.objects.filter(project=project).count() == 1


def test_a_bad_api_key_is_401_not_a_fallback_to_the_session(organization, owner, client_for):
    client = client_for(owner)
    client.credentials(HTTP_AUTHORIZATION="Bearer sk-lg-not-a-real-key")
    assert client.get(org_url(organization)).status_code == 401


# --- Organizations ---------------------------------------------------------------------------


def test_it_lists_only_the_callers_organizations_with_their_role(
    organization, owner, other_organization, client_for, django_assert_max_num_queries
):
    for n in range(5):
        MembershipFactory(organization=OrganizationFactory(name=f"Side {n}"), user=owner, role="viewer")
    client = client_for(owner)
    with django_assert_max_num_queries(5):
        response = client.get(f"{V1}/organizations/")
    assert response.status_code == 200
    rows = results(response)
    assert [row["name"] for row in rows] == ["Acme", "Side 0", "Side 1", "Side 2", "Side 3", "Side 4"]
    assert rows[0]["role"] == "owner" and rows[1]["role"] == "viewer"
    assert str(other_organization.id) not in response.content.decode()


def test_superusers_see_every_organization(organization, other_organization, superuser, client_for):
    names = {row["name"] for row in results(client_for(superuser).get(f"{V1}/organizations/"))}
    assert {"Acme", "Globex"} <= names


def test_creating_an_organization_makes_the_caller_its_owner(client_for):
    person = UserFactory()
    response = client_for(person).post(f"{V1}/organizations/", {"name": "  Initech "}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "Initech" and response.json()["role"] == "owner"
    organization = Organization.objects.get(name="Initech")
    assert Membership.objects.get(organization=organization, user=person).role == "owner"
    assert audit(organization, AuditAction.ORGANIZATION_CREATED).get().actor_email == person.email
    assert audit(organization, AuditAction.MEMBER_ADDED).exists()


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 201}])
def test_it_rejects_an_invalid_organization_name_with_a_field_message(body, client_for):
    response = client_for(UserFactory()).post(f"{V1}/organizations/", body, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_it_rejects_a_duplicate_organization_name(organization, client_for):
    response = client_for(UserFactory()).post(f"{V1}/organizations/", {"name": "Acme"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_any_member_can_read_the_organization(organization, member_of, client_for):
    response = client_for(member_of(organization, "viewer")).get(org_url(organization))
    assert response.status_code == 200
    assert response.json() == {
        "id": str(organization.id),
        "name": "Acme",
        "created_at": response.json()["created_at"],
        "role": "viewer",
    }


def test_only_the_owner_renames_the_organization(organization, owner, member_of, client_for):
    admin = member_of(organization, "admin")
    refused = client_for(admin).patch(org_url(organization), {"name": "Acme Corp"}, format="json")
    assert refused.status_code == 403
    response = client_for(owner).patch(org_url(organization), {"name": "Acme Corp"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Acme Corp"
    organization.refresh_from_db()
    assert organization.name == "Acme Corp"
    assert audit(organization, AuditAction.ORGANIZATION_UPDATED).get().data == {"name": ["Acme", "Acme Corp"]}


def test_the_owner_deletes_an_organization_only_once_it_has_no_projects(
    organization, project, owner, client_for
):
    client = client_for(owner)
    refused = client.delete(org_url(organization))
    assert refused.status_code == 400
    assert "delete its projects first" in str(refused.json())
    assert client.delete(project_url(project)).status_code == 204
    assert client.delete(org_url(organization)).status_code == 204
    assert not Organization.objects.filter(pk=organization.pk).exists()
    # History survives the organization it describes.
    assert audit(organization, "organization.deleted").get().actor_email == owner.email


def test_an_admin_cannot_delete_the_organization(organization, member_of, client_for):
    assert client_for(member_of(organization, "admin")).delete(org_url(organization)).status_code == 403
    assert Organization.objects.filter(pk=organization.pk).exists()


def test_a_non_member_gets_404_for_an_organization(organization, client_for):
    assert client_for(UserFactory()).get(org_url(organization)).status_code == 404


# --- Members ---------------------------------------------------------------------------------


def test_any_member_lists_members_without_n_plus_one(
    organization, owner, member_of, client_for, django_assert_max_num_queries
):
    viewer = member_of(organization, "viewer")
    for _ in range(8):
        member_of(organization, "member")
    client = client_for(viewer)
    with django_assert_max_num_queries(6):
        response = client.get(org_url(organization, "members/"))
    assert response.status_code == 200
    rows = results(response)
    assert len(rows) == 10
    assert {row["id"] for row in rows} >= {str(owner.id), str(viewer.id)}
    assert set(rows[0]) == {"id", "email", "name", "role", "joined_at"}


def test_the_owner_changes_a_members_role_and_it_is_audited(organization, owner, member_of, client_for):
    member = member_of(organization, "member")
    response = client_for(owner).patch(
        org_url(organization, f"members/{member.id}/"), {"role": "admin"}, format="json"
    )
    assert response.status_code == 200 and response.json()["role"] == "admin"
    assert Membership.objects.get(organization=organization, user=member).role == "admin"
    entry = audit(organization, AuditAction.MEMBER_ROLE_CHANGED).get()
    assert (
        entry.data == {"user": member.email, "role": ["member", "admin"]} and entry.actor_email == owner.email
    )


def test_an_admin_cannot_change_roles(organization, member_of, client_for):
    admin, member = member_of(organization, "admin"), member_of(organization, "member")
    response = client_for(admin).patch(
        org_url(organization, f"members/{member.id}/"), {"role": "admin"}, format="json"
    )
    assert response.status_code == 403
    assert Membership.objects.get(organization=organization, user=member).role == "member"


def test_it_rejects_an_unknown_role(organization, owner, member_of, client_for):
    member = member_of(organization, "member")
    response = client_for(owner).patch(
        org_url(organization, f"members/{member.id}/"), {"role": "god"}, format="json"
    )
    assert response.status_code == 400 and "role" in response.json()


def test_the_last_owner_cannot_be_demoted(organization, owner, client_for):
    response = client_for(owner).patch(
        org_url(organization, f"members/{owner.id}/"), {"role": "admin"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"role": ["an organization must keep at least one owner"]}
    assert Membership.objects.get(organization=organization, user=owner).role == "owner"
    assert not audit(organization, AuditAction.MEMBER_ROLE_CHANGED).exists()


def test_an_owner_can_step_down_once_there_is_another_owner(organization, owner, member_of, client_for):
    client = client_for(owner)
    second = member_of(organization, "admin")
    assert (
        client.patch(
            org_url(organization, f"members/{second.id}/"), {"role": "owner"}, format="json"
        ).status_code
        == 200
    )
    response = client.patch(org_url(organization, f"members/{owner.id}/"), {"role": "viewer"}, format="json")
    assert response.status_code == 200
    assert Membership.objects.get(organization=organization, user=owner).role == "viewer"


def test_the_owner_removes_a_member_and_it_is_audited(organization, owner, member_of, client_for):
    member = member_of(organization, "member")
    assert client_for(owner).delete(org_url(organization, f"members/{member.id}/")).status_code == 204
    assert not Membership.objects.filter(organization=organization, user=member).exists()
    assert audit(organization, AuditAction.MEMBER_REMOVED).get().data == {
        "user": member.email,
        "role": "member",
    }


def test_a_member_can_leave_but_not_remove_others(organization, member_of, client_for):
    leaver, other = member_of(organization, "viewer"), member_of(organization, "member")
    client = client_for(leaver)
    refused = client.delete(org_url(organization, f"members/{other.id}/"))
    assert refused.status_code == 403
    assert Membership.objects.filter(organization=organization, user=other).exists()
    assert client.delete(org_url(organization, f"members/{leaver.id}/")).status_code == 204
    assert not Membership.objects.filter(organization=organization, user=leaver).exists()
    # Having left, the organization is gone for them.
    assert client.get(org_url(organization)).status_code == 404


def test_the_last_owner_cannot_leave(organization, owner, client_for):
    response = client_for(owner).delete(org_url(organization, f"members/{owner.id}/"))
    assert response.status_code == 400
    assert "at least one owner" in str(response.json())
    assert Membership.objects.filter(organization=organization, user=owner).exists()


def test_member_ids_of_other_organizations_or_malformed_ones_are_404(
    organization, owner, other_owner, client_for
):
    client = client_for(owner)
    for member_id in (other_owner.id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert client.get(org_url(organization, f"members/{member_id}/")).status_code == 404
        patch = client.patch(
            org_url(organization, f"members/{member_id}/"), {"role": "viewer"}, format="json"
        )
        assert patch.status_code == 404
    assert Membership.objects.get(user=other_owner).role == "owner"


# --- Invitations -----------------------------------------------------------------------------


def _token_from_outbox(email: str) -> str:
    message = next(m for m in reversed(mail.outbox) if m.to == [email])
    return re.search(r"Token: (\S+)", message.body).group(1)


def test_the_owner_invites_by_email_and_the_token_travels_only_by_email(
    organization, owner, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(
            org_url(organization, "invitations/"),
            {"email": "New.Person@Example.com", "role": "admin"},
            format="json",
        )
    assert response.status_code == 201
    body = response.json()
    assert (
        body["email"] == "new.person@example.com" and body["role"] == "admin" and body["status"] == "pending"
    )
    assert body["invited_by"] == owner.email
    token = _token_from_outbox("new.person@example.com")
    assert token not in response.content.decode()
    assert "token" not in body and "token_hash" not in body
    assert audit(organization, AuditAction.INVITATION_CREATED).get().data == {
        "email": "new.person@example.com",
        "role": "admin",
    }


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_only_owners_manage_invitations(organization, member_of, client_for, role):
    client = client_for(member_of(organization, role))
    assert client.get(org_url(organization, "invitations/")).status_code == 403
    assert (
        client.post(
            org_url(organization, "invitations/"), {"email": "a@example.com"}, format="json"
        ).status_code
        == 403
    )
    assert not Invitation.objects.filter(organization=organization).exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "role": "boss"}, "role"),
        ({}, "email"),
    ],
)
def test_it_rejects_invalid_invitations(organization, owner, client_for, body, field):
    response = client_for(owner).post(org_url(organization, "invitations/"), body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_it_refuses_to_invite_an_existing_member(organization, owner, member_of, client_for):
    member = member_of(organization, "member")
    response = client_for(owner).post(
        org_url(organization, "invitations/"), {"email": member.email}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"email": ["this person is already a member of the organization"]}


def test_the_owner_lists_and_revokes_invitations(organization, owner, other_organization, client_for):
    invitation, _ = invitation_create(
        organization=organization, email="x@example.com", role="member", invited_by=owner
    )
    invitation_create(organization=other_organization, email="y@example.com", role="member", invited_by=None)
    client = client_for(owner)
    listed = client.get(org_url(organization, "invitations/"))
    assert [row["email"] for row in results(listed)] == ["x@example.com"]
    assert client.delete(org_url(organization, f"invitations/{invitation.id}/")).status_code == 204
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert client.get(org_url(organization, f"invitations/{invitation.id}/")).json()["status"] == "revoked"
    assert audit(organization, AuditAction.INVITATION_REVOKED).count() == 1


def test_invitation_lists_have_no_n_plus_one(
    organization, owner, member_of, client_for, django_assert_max_num_queries
):
    inviters = [owner, member_of(organization, "owner"), member_of(organization, "owner")]
    for n in range(9):
        invitation_create(
            organization=organization, email=f"p{n}@example.com", role="member", invited_by=inviters[n % 3]
        )
    client = client_for(owner)
    with django_assert_max_num_queries(6):
        response = client.get(org_url(organization, "invitations/"))
    rows = results(response)
    assert len(rows) == 9 and {row["invited_by"] for row in rows} == {u.email for u in inviters}
    assert {row["status"] for row in rows} == {"pending"}


def test_an_accepted_invitation_cannot_be_revoked(organization, owner, client_for):
    person = UserFactory(email="joiner@example.com")
    invitation, token = invitation_create(
        organization=organization, email=person.email, role="viewer", invited_by=owner
    )
    assert (
        client_for(person).post(f"{V1}/invitations/accept", {"token": token}, format="json").status_code
        == 200
    )
    response = client_for(owner).delete(org_url(organization, f"invitations/{invitation.id}/"))
    assert response.status_code == 400
    assert "already accepted" in str(response.json())


def test_the_invited_person_accepts_with_the_token(organization, owner, client_for):
    person = UserFactory(email="joiner@example.com")
    _, token = invitation_create(
        organization=organization, email="joiner@example.com", role="admin", invited_by=owner
    )
    response = client_for(person).post(f"{V1}/invitations/accept", {"token": token}, format="json")
    assert response.status_code == 200
    assert response.json()["organization"] == {"id": str(organization.id), "name": "Acme"}
    assert response.json()["role"] == "admin"
    assert Membership.objects.get(organization=organization, user=person).role == "admin"
    assert audit(organization, AuditAction.INVITATION_ACCEPTED).exists()
    again = client_for(person).post(f"{V1}/invitations/accept", {"token": token}, format="json")
    assert again.status_code == 400 and "token" in again.json()


def test_an_invitation_works_only_for_its_email_address(organization, owner, client_for):
    _, token = invitation_create(
        organization=organization, email="joiner@example.com", role="admin", invited_by=owner
    )
    intruder = UserFactory(email="intruder@example.com")
    response = client_for(intruder).post(f"{V1}/invitations/accept", {"token": token}, format="json")
    assert response.status_code == 400
    assert response.json() == {"token": ["this invitation was sent to another email address"]}
    assert not Membership.objects.filter(organization=organization, user=intruder).exists()


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": "made-up"}])
def test_it_rejects_missing_or_unknown_invitation_tokens(body, client_for):
    response = client_for(UserFactory()).post(f"{V1}/invitations/accept", body, format="json")
    assert response.status_code == 400 and "token" in response.json()


def test_a_revoked_invitation_cannot_be_accepted(organization, owner, client_for):
    person = UserFactory(email="joiner@example.com")
    invitation, token = invitation_create(
        organization=organization, email=person.email, role="admin", invited_by=owner
    )
    assert client_for(owner).delete(org_url(organization, f"invitations/{invitation.id}/")).status_code == 204
    assert (
        client_for(person).post(f"{V1}/invitations/accept", {"token": token}, format="json").status_code
        == 400
    )
    assert not Membership.objects.filter(organization=organization, user=person).exists()


# --- Projects --------------------------------------------------------------------------------


def test_viewers_list_projects_without_n_plus_one(
    organization, project, member_of, client_for, django_assert_max_num_queries
):
    for n in range(6):
        ProjectFactory(organization=organization, name=f"extra-{n}")
    viewer = member_of(organization, "viewer")
    client = client_for(viewer)
    with django_assert_max_num_queries(6):
        response = client.get(org_url(organization, "projects/"))
    assert response.status_code == 200
    names = [row["name"] for row in results(response)]
    assert names == sorted(names) and len(names) == 7 and "globex-bot" not in names


def test_an_admin_creates_a_project_in_the_default_region(organization, member_of, client_for):
    admin = member_of(organization, "admin")
    response = client_for(admin).post(org_url(organization, "projects/"), {"name": "chat"}, format="json")
    assert response.status_code == 201
    assert response.json()["region"] == settings.DEFAULT_REGION == "eu"
    project = Project.objects.get(organization=organization, name="chat")
    entry = audit(organization, AuditAction.PROJECT_CREATED).get()
    assert entry.target_id == str(project.id) and entry.actor_email == admin.email


def test_a_project_can_be_created_in_another_configured_region(organization, owner, client_for):
    response = client_for(owner).post(
        org_url(organization, "projects/"), {"name": "us-bot", "region": "us"}, format="json"
    )
    assert response.status_code == 201 and response.json()["region"] == "us"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "region": "mars"}, "region"),
        ({}, "name"),
        ({"name": " "}, "name"),
        ({"name": "support-bot"}, "name"),
    ],
)
def test_it_rejects_invalid_projects_with_field_messages(
    organization, project, owner, client_for, body, field
):
    response = client_for(owner).post(org_url(organization, "projects/"), body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert Project.objects.filter(organization=organization).count() == 1


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_create_change_or_delete_projects(
    organization, project, member_of, client_for, role
):
    client = client_for(member_of(organization, role))
    assert client.get(project_url(project)).status_code == 200
    assert client.post(org_url(organization, "projects/"), {"name": "nope"}, format="json").status_code == 403
    assert client.patch(project_url(project), {"name": "renamed"}, format="json").status_code == 403
    assert client.delete(project_url(project)).status_code == 403
    project.refresh_from_db()
    assert project.name == "support-bot"


def test_an_admin_renames_a_project(organization, project, member_of, client_for):
    response = client_for(member_of(organization, "admin")).patch(
        project_url(project), {"name": "helpdesk"}, format="json"
    )
    assert response.status_code == 200 and response.json()["name"] == "helpdesk"
    project.refresh_from_db()
    assert project.name == "helpdesk"
    assert audit(organization, AuditAction.PROJECT_UPDATED).get().data == {
        "name": ["support-bot", "helpdesk"]
    }


def test_a_project_cannot_move_region(organization, project, owner, client_for):
    client = client_for(owner)
    response = client.patch(project_url(project), {"name": "moved", "region": "us"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"region": ["a project cannot move region"]}
    project.refresh_from_db()
    assert (project.name, project.region) == ("support-bot", "eu")
    # Sending the current region back (as a form would) is not a move.
    same = client.patch(project_url(project), {"name": "kept", "region": "eu"}, format="json")
    assert same.status_code == 200 and same.json()["region"] == "eu"


def test_put_is_not_offered_for_projects(project, owner, client_for):
    assert client_for(owner).put(project_url(project), {"name": "x"}, format="json").status_code == 405


def test_an_admin_deletes_a_project(organization, project, member_of, client_for):
    assert client_for(member_of(organization, "admin")).delete(project_url(project)).status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()
    assert audit(organization, AuditAction.PROJECT_DELETED).exists()


def test_another_organizations_project_under_my_organization_is_404(
    organization, owner, other_project, client_for
):
    url = f"{V1}/organizations/{organization.id}/projects/{other_project.id}/"
    client = client_for(owner)
    assert client.get(url).status_code == 404
    assert client.patch(url, {"name": "hijacked"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    other_project.refresh_from_db()
    assert other_project.name == "globex-bot"


# --- API keys --------------------------------------------------------------------------------


def test_an_admin_creates_a_key_and_sees_the_secret_exactly_once(
    organization, project, member_of, client_for
):
    admin = member_of(organization, "admin")
    client = client_for(admin)
    response = client.post(project_url(project, "api-keys/"), {"note": "ci"}, format="json")
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["public_key"].startswith("pk-lg-") and body["secret_key"].startswith("sk-lg-")
    assert body["display_secret"] == f"sk-lg-…{body['secret_key'][-4:]}"
    assert body["note"] == "ci" and body["created_by"] == admin.email and body["is_active"] is True
    principal = authenticate_header(f"Bearer {body['secret_key']}")
    assert principal.project == project

    detail = client.get(project_url(project, f"api-keys/{body['id']}/"))
    listed = client.get(project_url(project, "api-keys/"))
    for response in (detail, listed):
        text = response.content.decode()
        assert body["secret_key"] not in text
        assert "secret_key" not in text and "secret_hash" not in text
        assert ApiKey.objects.get(pk=body["id"]).secret_hash not in text
    assert set(detail.json()) == {
        "id",
        "public_key",
        "display_secret",
        "note",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "is_active",
    }
    entry = audit(organization, AuditAction.API_KEY_CREATED).get(target_id=body["id"])
    assert entry.actor_email == admin.email and body["secret_key"] not in str(entry.data)


def test_api_key_lists_have_no_n_plus_one(project, owner, client_for, django_assert_max_num_queries):
    creators = [UserFactory() for _ in range(4)]
    for n in range(8):
        ApiKeyPair.issue(project, actor=creators[n % 4], note=f"key {n}")
    client = client_for(owner)
    with django_assert_max_num_queries(7):
        response = client.get(project_url(project, "api-keys/"))
    assert response.status_code == 200
    rows = results(response)
    assert len(rows) == 8
    assert {row["created_by"] for row in rows} == {c.email for c in creators}


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_see_or_create_keys(project, api_key, member_of, client_for, role):
    client = client_for(member_of(project.organization, role))
    assert client.get(project_url(project, "api-keys/")).status_code == 403
    assert client.post(project_url(project, "api-keys/"), {}, format="json").status_code == 403
    assert client.post(project_url(project, f"api-keys/{api_key.key.id}/revoke")).status_code == 403
    assert ApiKey.objects.filter(project=project).count() == 1


def test_key_expiry_must_be_in_the_future(project, owner, client_for):
    client = client_for(owner)
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = client.post(project_url(project, "api-keys/"), {"expires_at": past}, format="json")
    assert response.status_code == 400 and response.json() == {"expires_at": ["must be in the future"]}
    garbage = client.post(project_url(project, "api-keys/"), {"expires_at": "soon"}, format="json")
    assert garbage.status_code == 400 and "expires_at" in garbage.json()
    future = timezone.now() + timedelta(days=30)
    created = client.post(
        project_url(project, "api-keys/"), {"expires_at": future.isoformat()}, format="json"
    )
    assert created.status_code == 201
    assert ApiKey.objects.get(pk=created.json()["id"]).expires_at == future


def test_revoking_a_key_keeps_the_row_and_stops_the_key(organization, project, api_key, owner, client_for):
    response = client_for(owner).post(project_url(project, f"api-keys/{api_key.key.id}/revoke"))
    assert response.status_code == 200
    assert response.json()["is_active"] is False and response.json()["revoked_at"] is not None
    assert ApiKey.objects.get(pk=api_key.key.id).revoked_at is not None
    with pytest.raises(AuthenticationFailed, match="revoked"):
        authenticate_header(api_key.bearer)
    entry = audit(organization, AuditAction.API_KEY_REVOKED).get()
    assert entry.target_id == str(api_key.key.id) and entry.actor_email == owner.email
    # Revoking again changes nothing and writes no second entry.
    assert (
        client_for(owner).post(project_url(project, f"api-keys/{api_key.key.id}/revoke")).status_code == 200
    )
    assert audit(organization, AuditAction.API_KEY_REVOKED).count() == 1


def test_deleting_a_key_revokes_it_and_keeps_the_row(organization, project, api_key, owner, client_for):
    assert client_for(owner).delete(project_url(project, f"api-keys/{api_key.key.id}/")).status_code == 204
    row = ApiKey.objects.get(pk=api_key.key.id)
    assert row.revoked_at is not None
    assert audit(organization, AuditAction.API_KEY_REVOKED).count() == 1


def test_another_projects_key_under_my_project_is_404(project, owner, other_api_key, client_for):
    client = client_for(owner)
    for url in (
        project_url(project, f"api-keys/{other_api_key.key.id}/"),
        project_url(project, f"api-keys/{other_api_key.key.id}/revoke"),
    ):
        assert client.post(url).status_code in (404, 405)
        assert client.get(url).status_code in (404, 405)
    assert client.delete(project_url(project, f"api-keys/{other_api_key.key.id}/")).status_code == 404
    assert ApiKey.objects.get(pk=other_api_key.key.id).revoked_at is None


def test_a_project_in_my_organization_does_not_expose_keys_of_a_sibling_project(
    organization, project, api_key, owner, client_for
):
    sibling = project_create(organization=organization, name="sibling", actor=owner)
    client = client_for(owner)
    assert results(client.get(project_url(sibling, "api-keys/"))) == []
    assert client.get(project_url(sibling, f"api-keys/{api_key.key.id}/")).status_code == 404


# --- Audit log -------------------------------------------------------------------------------


def test_owners_and_admins_read_the_audit_log_newest_first(
    organization, project, owner, member_of, client_for, django_assert_max_num_queries
):
    admin = member_of(organization, "admin")
    for n in range(5):
        ApiKeyPair.issue(project, actor=owner, note=f"k{n}")
    client = client_for(admin)
    with django_assert_max_num_queries(6):
        response = client.get(org_url(organization, "audit-log/"))
    assert response.status_code == 200
    rows = results(response)
    times = [row["created_at"] for row in rows]
    assert times == sorted(times, reverse=True) and len(rows) >= 5
    assert rows[0]["action"] == "api_key.created" and rows[0]["data"]["note"] == "k4"
    assert client_for(owner).get(org_url(organization, "audit-log/")).status_code == 200


def test_the_audit_log_is_paginated_and_filters_by_action(organization, project, owner, client_for):
    for _ in range(3):
        ApiKeyPair.issue(project, actor=owner)
    client = client_for(owner)
    page = client.get(org_url(organization, "audit-log/"), {"limit": 2})
    assert len(page.json()["results"]) == 2 and page.json()["next"] is not None
    filtered = client.get(org_url(organization, "audit-log/"), {"action": "api_key.created"})
    rows = results(filtered)
    assert len(rows) == 3 and {row["action"] for row in rows} == {"api_key.created"}
    bad = client.get(org_url(organization, "audit-log/"), {"action": "nonsense"})
    assert bad.status_code == 400 and "action" in bad.json()


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_read_the_audit_log(organization, member_of, client_for, role):
    assert (
        client_for(member_of(organization, role)).get(org_url(organization, "audit-log/")).status_code == 403
    )


def test_the_audit_log_is_read_only_and_never_shows_other_organizations(
    organization, owner, other_organization, other_owner, client_for
):
    project_create(organization=other_organization, name="globex-secret", actor=other_owner)
    client = client_for(owner)
    response = client.get(org_url(organization, "audit-log/"))
    assert "globex" not in response.content.decode().lower()
    assert client.post(org_url(organization, "audit-log/"), {}, format="json").status_code == 405
    assert client.delete(org_url(organization, "audit-log/")).status_code == 405


# --- Me --------------------------------------------------------------------------------------


def test_me_shows_the_caller_and_their_memberships(
    organization, owner, client_for, django_assert_max_num_queries
):
    for n in range(4):
        MembershipFactory(organization=OrganizationFactory(name=f"Zeta {n}"), user=owner, role="member")
    client = client_for(owner)
    with django_assert_max_num_queries(3):
        response = client.get(f"{V1}/me")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(owner.id) and body["email"] == owner.email and body["is_superuser"] is False
    assert [(m["organization"]["name"], m["role"]) for m in body["memberships"]] == [
        ("Acme", "owner"),
        ("Zeta 0", "member"),
        ("Zeta 1", "member"),
        ("Zeta 2", "member"),
        ("Zeta 3", "member"),
    ]
    assert "Globex" not in response.content.decode()
