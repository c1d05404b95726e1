"""The console at /admin/: members log in without is_staff, see only their organizations' rows, and
do what their role allows; writes go through tenancy.services (audited)."""

import uuid

import pytest
from django.core import mail
from django.urls import reverse

from tenancy.keys import hash_secret
from tenancy.models import ApiKey, AuditLogEntry, Invitation, Membership, Project, Role
from tenancy.services import audit_record, invitation_create
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

PASSWORD = "correct horse battery staple"


def url(name, *args):
    return reverse(f"admin:{name}", args=args)


def console_models(response) -> set[str]:
    return {model["object_name"] for app in response.context["app_list"] for model in app["models"]}


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def is_missing_object_redirect(response) -> bool:
    """The admin's answer to an unknown id: a redirect to the index with a "doesn't exist" note."""
    return response.status_code == 302 and response.url == url("index")


# --- login ------------------------------------------------------------------------------------


def test_a_member_without_staff_flag_logs_in_with_email(client, organization, member_of):
    viewer = member_of(organization, Role.VIEWER)
    assert not viewer.is_staff

    response = client.post(url("login"), {"username": viewer.email.upper(), "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get(url("index")).status_code == 200


def test_it_refuses_login_to_a_user_without_any_membership(client):
    stranger = UserFactory()

    response = client.post(url("login"), {"username": stranger.email, "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get(url("index")).status_code == 302


def test_it_sends_a_logged_in_user_without_membership_to_the_login_page(client):
    client.force_login(UserFactory())
    response = client.get(url("index"))
    assert response.status_code == 302 and response.url.startswith(url("login"))


def test_it_refuses_an_inactive_member(client, organization, member_of):
    member = member_of(organization, Role.OWNER)
    member.is_active = False
    member.save()
    client.force_login(member)
    assert client.get(url("index")).status_code == 302


def test_a_superuser_is_admitted_without_membership(client, superuser):
    client.force_login(superuser)
    response = client.get(url("index"))
    assert response.status_code == 200
    assert {"Organization", "Project", "ApiKey", "AuditLogEntry", "User"} <= console_models(response)


# --- what each role sees and may do -------------------------------------------------------------

# model name → (roles that may list it, roles that may add it)
ROLE_MATRIX = {
    "organization": ({"viewer", "member", "admin", "owner"}, set()),
    "membership": ({"viewer", "member", "admin", "owner"}, {"owner"}),
    "invitation": ({"admin", "owner"}, {"owner"}),
    "project": ({"viewer", "member", "admin", "owner"}, {"admin", "owner"}),
    "apikey": ({"admin", "owner"}, {"admin", "owner"}),
    "auditlogentry": ({"admin", "owner"}, set()),
    "user": ({"viewer", "member", "admin", "owner"}, set()),
}


@pytest.mark.parametrize("role", ["viewer", "member", "admin", "owner"])
@pytest.mark.parametrize("model", sorted(ROLE_MATRIX))
def test_each_role_lists_and_adds_what_its_role_allows(client, organization, project, member_of, role, model):
    client.force_login(member_of(organization, role))
    can_view, can_add = ROLE_MATRIX[model]

    assert client.get(url(f"tenancy_{model}_changelist")).status_code == (200 if role in can_view else 403)
    assert client.get(url(f"tenancy_{model}_add")).status_code == (200 if role in can_add else 403)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", {"Organization", "Membership", "Project", "User", "traces_trace_list"}),
        ("member", {"Organization", "Membership", "Project", "User", "traces_trace_list"}),
        ("admin", {"Organization", "Membership", "Project", "User", "traces_trace_list", "Invitation", "ApiKey",
                   "AuditLogEntry"}),
    ],
)
def test_the_index_lists_only_what_the_role_can_open(client, organization, member_of, role, expected):
    client.force_login(member_of(organization, role))
    response = client.get(url("index"))
    # Other apps (billing) add their own pages; this test is about the tenancy console and traces.
    ours = {"Organization", "Membership", "Invitation", "Project", "ApiKey", "AuditLogEntry", "User",
            "traces_trace_list"}
    assert console_models(response) & ours == expected


@pytest.mark.parametrize(("role", "can_change"), [("viewer", False), ("admin", False), ("owner", True)])
def test_only_owners_may_change_the_organization(client, organization, member_of, role, can_change):
    client.force_login(member_of(organization, role))
    change_url = url("tenancy_organization_change", organization.pk)

    page = client.get(change_url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is can_change

    response = client.post(change_url, {"name": "Acme Renamed"})
    organization.refresh_from_db()
    if can_change:
        assert response.status_code == 302
        assert organization.name == "Acme Renamed"
        assert AuditLogEntry.objects.filter(organization_id=organization.id, action="organization.updated").exists()
    else:
        assert response.status_code == 403
        assert organization.name == "Acme"


def test_a_superuser_creates_an_organization_and_owns_it(client, superuser):
    client.force_login(superuser)
    response = client.post(url("tenancy_organization_add"), {"name": "Initech"})
    assert response.status_code == 302
    membership = Membership.objects.get(organization__name="Initech")
    assert membership.user == superuser and membership.role == Role.OWNER
    assert AuditLogEntry.objects.filter(organization_name="Initech", action="organization.created").exists()


# --- projects ---------------------------------------------------------------------------------


def test_an_admin_creates_a_project_through_the_service(client, organization, member_of):
    admin_user = member_of(organization, Role.ADMIN)
    client.force_login(admin_user)

    response = client.post(
        url("tenancy_project_add"), {"organization": organization.pk, "name": "new-bot", "region": "us"}
    )

    assert response.status_code == 302
    project = Project.objects.get(organization=organization, name="new-bot")
    assert project.region == "us"
    entry = AuditLogEntry.objects.get(action="project.created", target_id=str(project.id))
    assert entry.actor_id == admin_user.id


def test_project_form_offers_only_organizations_where_the_person_is_admin(
    client, organization, other_organization, member_of
):
    admin_user = member_of(organization, Role.ADMIN)
    third = OrganizationFactory(name="Umbrella")
    MembershipFactory(organization=third, user=admin_user, role=Role.VIEWER)
    client.force_login(admin_user)

    form = client.get(url("tenancy_project_add")).context["adminform"].form
    assert list(form.fields["organization"].queryset) == [organization]

    response = client.post(
        url("tenancy_project_add"), {"organization": other_organization.pk, "name": "sneaky", "region": "eu"}
    )
    assert response.status_code == 200
    assert "organization" in response.context["adminform"].form.errors
    assert not Project.objects.filter(name="sneaky").exists()


def test_a_member_cannot_create_a_project(client, organization, member_of):
    client.force_login(member_of(organization, Role.MEMBER))
    response = client.post(url("tenancy_project_add"), {"organization": organization.pk, "name": "x", "region": "eu"})
    assert response.status_code == 403
    assert not Project.objects.filter(name="x").exists()


def test_project_region_is_read_only_after_creation(client, organization, project, member_of):
    client.force_login(member_of(organization, Role.ADMIN))
    change_url = url("tenancy_project_change", project.pk)

    assert "region" not in client.get(change_url).context["adminform"].form.fields
    response = client.post(change_url, {"name": "renamed-bot", "region": "us"})

    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.region) == ("renamed-bot", "eu")
    assert AuditLogEntry.objects.filter(action="project.updated", target_id=str(project.id)).exists()


def test_renaming_a_project_to_a_taken_name_is_a_form_error(client, organization, project, member_of):
    Project.objects.create(organization=organization, name="taken", region="eu")
    client.force_login(member_of(organization, Role.ADMIN))
    response = client.post(url("tenancy_project_change", project.pk), {"name": "taken"})
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors


def test_project_filters_do_not_list_other_tenants(client, organization, project, member_of):
    client.force_login(member_of(organization, Role.VIEWER))
    response = client.get(url("tenancy_project_changelist"))
    assert listed(response) == [project]
    assert b"Globex" not in response.content


# --- API keys ---------------------------------------------------------------------------------


def test_creating_an_api_key_shows_the_secret_once_and_stores_only_its_hash(client, organization, project, member_of):
    admin_user = member_of(organization, Role.ADMIN)
    client.force_login(admin_user)

    response = client.post(url("tenancy_apikey_add"), {"project": project.pk, "note": "ci"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = response.context["secret"]
    assert secret.startswith("sk-lg-") and secret in response.content.decode()
    api_key = ApiKey.objects.get(project=project, note="ci")
    assert api_key.secret_hash == hash_secret(secret)
    assert api_key.created_by == admin_user
    assert AuditLogEntry.objects.filter(action="api_key.created", target_id=str(api_key.id)).exists()

    page = client.get(url("tenancy_apikey_change", api_key.pk)).content.decode()
    assert api_key.public_key in page and api_key.display_secret in page
    assert secret not in page
    assert api_key.secret_hash not in page


def test_api_key_form_offers_only_projects_where_the_person_is_admin(client, organization, project, other_project,
                                                                     member_of):
    client.force_login(member_of(organization, Role.ADMIN))
    form = client.get(url("tenancy_apikey_add")).context["adminform"].form
    assert list(form.fields["project"].queryset) == [project]

    response = client.post(url("tenancy_apikey_add"), {"project": other_project.pk, "note": "x"})
    assert response.status_code == 200
    assert not ApiKey.objects.filter(note="x").exists()


def test_an_admin_revokes_a_key_from_its_page(client, organization, api_key, member_of):
    client.force_login(member_of(organization, Role.ADMIN))
    change_url = url("tenancy_apikey_change", api_key.key.pk)
    assert client.get(change_url).context["can_revoke"] is True

    # Shown back first: the key is revoked only once that is confirmed.
    response = client.post(url("tenancy_apikey_revoke", api_key.key.pk))
    assert response.status_code == 200 and "Nothing has been done yet" in response.content.decode()
    assert api_key.key.public_key in response.content.decode()
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is None

    response = client.post(url("tenancy_apikey_revoke", api_key.key.pk), {"confirm": "yes"})

    assert response.status_code == 302 and response.url == change_url
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is not None
    assert AuditLogEntry.objects.filter(action="api_key.revoked", target_id=str(api_key.key.id)).exists()
    assert client.get(change_url).context["can_revoke"] is False


def test_an_admin_revokes_keys_with_the_list_action(client, organization, api_key, member_of):
    client.force_login(member_of(organization, Role.ADMIN))
    data = {"action": "revoke_keys", "_selected_action": [api_key.key.pk]}
    response = client.post(url("tenancy_apikey_changelist"), data)
    assert response.status_code == 200 and "Revoke 1 API key(s)?" in response.content.decode()
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is None
    response = client.post(url("tenancy_apikey_changelist"), {**data, "confirm": "yes"})
    assert response.status_code == 302
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is not None


def test_keys_cannot_be_edited_or_deleted(client, organization, api_key, member_of):
    client.force_login(member_of(organization, Role.OWNER))
    assert client.post(url("tenancy_apikey_change", api_key.key.pk), {"note": "changed"}).status_code == 403
    assert client.post(url("tenancy_apikey_delete", api_key.key.pk), {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=api_key.key.pk, note="").exists()


def test_revoking_another_tenants_key_answers_like_a_missing_one(client, organization, other_api_key, member_of):
    client.force_login(member_of(organization, Role.OWNER))

    response = client.post(url("tenancy_apikey_revoke", other_api_key.key.pk))
    missing = client.post(url("tenancy_apikey_revoke", uuid.uuid4()))

    assert is_missing_object_redirect(response) and is_missing_object_redirect(missing)
    other_api_key.key.refresh_from_db()
    assert other_api_key.key.revoked_at is None


# --- members and invitations ------------------------------------------------------------------


def test_an_owner_changes_a_role_through_the_service(client, organization, owner, member_of):
    member = member_of(organization, Role.MEMBER)
    membership = Membership.objects.get(user=member)
    client.force_login(owner)

    response = client.post(url("tenancy_membership_change", membership.pk), {"role": Role.ADMIN})

    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    entry = AuditLogEntry.objects.get(action="member.role_changed", target_id=str(membership.pk))
    assert entry.data["role"] == ["member", "admin"] and entry.actor_id == owner.id


def test_the_last_owner_cannot_be_demoted(client, organization, owner):
    membership = Membership.objects.get(user=owner)
    client.force_login(owner)

    response = client.post(url("tenancy_membership_change", membership.pk), {"role": Role.ADMIN}, follow=True)

    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert any("at least one owner" in str(m) for m in response.context["messages"])


def test_an_owner_removes_a_member_through_the_service(client, organization, owner, member_of):
    membership = Membership.objects.get(user=member_of(organization, Role.VIEWER))
    client.force_login(owner)

    response = client.post(url("tenancy_membership_delete", membership.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditLogEntry.objects.filter(action="member.removed", target_id=str(membership.pk)).exists()


def test_bulk_removal_by_an_owner_goes_through_the_service(client, organization, owner, member_of):
    memberships = [Membership.objects.get(user=member_of(organization, role)) for role in ("viewer", "member")]
    client.force_login(owner)

    response = client.post(
        url("tenancy_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [m.pk for m in memberships], "post": "yes"},
    )

    assert response.status_code == 302
    assert not Membership.objects.filter(pk__in=[m.pk for m in memberships]).exists()
    removed = AuditLogEntry.objects.filter(action="member.removed").values_list("target_id", flat=True)
    assert set(removed) == {str(m.pk) for m in memberships}


def test_an_admin_cannot_change_or_remove_members(client, organization, owner, member_of):
    client.force_login(member_of(organization, Role.ADMIN))
    membership = Membership.objects.get(user=owner)
    assert client.post(url("tenancy_membership_change", membership.pk), {"role": "viewer"}).status_code == 403
    assert client.post(url("tenancy_membership_delete", membership.pk), {"post": "yes"}).status_code == 403
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_bulk_removal_refuses_members_of_an_organization_the_person_does_not_own(
    client, organization, other_organization, owner, member_of
):
    # Owner of Acme, mere viewer of Globex: may see Globex members but not remove them.
    MembershipFactory(organization=other_organization, user=owner, role=Role.VIEWER)
    globex_member = Membership.objects.get(user=member_of(other_organization, Role.MEMBER))
    client.force_login(owner)

    response = client.post(
        url("tenancy_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [globex_member.pk], "post": "yes"},
    )

    assert response.status_code == 403
    assert Membership.objects.filter(pk=globex_member.pk).exists()


def test_membership_form_offers_only_people_and_organizations_of_the_owner(client, organization, owner, member_of):
    colleague = member_of(organization, Role.VIEWER)
    client.force_login(owner)
    form = client.get(url("tenancy_membership_add")).context["adminform"].form
    assert list(form.fields["organization"].queryset) == [organization]
    assert set(form.fields["user"].queryset) == {owner, colleague}


def test_an_owner_invites_someone(client, organization, owner, django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url("tenancy_invitation_add"), {"organization": organization.pk, "email": "new@example.com", "role": "member"}
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="new@example.com")
    assert invitation.invited_by == owner
    assert AuditLogEntry.objects.filter(action="invitation.created", target_id=str(invitation.id)).exists()
    assert [m.to for m in mail.outbox] == [["new@example.com"]]


def test_inviting_an_existing_member_is_a_form_error(client, organization, owner):
    client.force_login(owner)
    response = client.post(
        url("tenancy_invitation_add"), {"organization": organization.pk, "email": owner.email, "role": "member"}
    )
    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors


def test_an_owner_revokes_an_invitation_and_an_admin_cannot(client, organization, owner, member_of):
    invitation, _ = invitation_create(organization=organization, email="x@example.com", role="member", invited_by=owner)
    data = {"action": "revoke_invitations", "_selected_action": [invitation.pk]}

    client.force_login(member_of(organization, Role.ADMIN))
    client.post(url("tenancy_invitation_changelist"), data)
    invitation.refresh_from_db()
    assert invitation.revoked_at is None

    client.force_login(owner)
    client.post(url("tenancy_invitation_changelist"), {**data, "confirm": "yes"})
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_revoking_invitations_says_which_and_how_many_first_and_revokes_once_confirmed(
    client, organization, owner
):
    pending = [invitation_create(organization=organization, email=f"p{n}@example.com", role="member",
                                 invited_by=owner)[0] for n in range(2)]
    accepted = invitation_create(organization=organization, email="done@example.com", role="member",
                                 invited_by=owner)[0]
    Invitation.objects.filter(pk=accepted.pk).update(accepted_at=accepted.created_at)
    data = {"action": "revoke_invitations", "_selected_action": [i.pk for i in [*pending, accepted]]}
    client.force_login(owner)

    response = client.post(url("tenancy_invitation_changelist"), data)

    page = response.content.decode()
    assert response.status_code == 200 and "Revoke 2 pending invitation(s)?" in page
    assert "p0@example.com to Acme as member" in page and "p1@example.com" in page
    assert "1 other selected invitation(s) are no longer pending" in page
    assert "Nothing has been done yet" in page and "The links in their emails stop working" in page
    # The confirmation posts the same selection again, to the same list.
    assert 'name="confirm" value="yes"' in page and f'value="{pending[0].pk}"' in page
    assert not Invitation.objects.filter(revoked_at__isnull=False).exists()
    assert not AuditLogEntry.objects.filter(action="invitation.revoked").exists()

    response = client.post(url("tenancy_invitation_changelist"), {**data, "confirm": "yes"})

    assert response.status_code == 302
    assert set(Invitation.objects.filter(revoked_at__isnull=False)) == set(pending)
    assert AuditLogEntry.objects.filter(action="invitation.revoked").count() == 2


def test_revoking_nothing_pending_asks_nothing(client, organization, owner):
    invitation = invitation_create(organization=organization, email="x@example.com", role="member", invited_by=owner)[0]
    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=invitation.created_at)
    client.force_login(owner)

    response = client.post(url("tenancy_invitation_changelist"),
                           {"action": "revoke_invitations", "_selected_action": [invitation.pk]}, follow=True)

    assert "None of the selected invitations is pending" in response.content.decode()
    assert "Nothing has been done yet" not in response.content.decode()


def test_revoking_another_tenants_invitation_answers_like_a_missing_one(
    client, organization, owner, other_organization, other_owner
):
    theirs = invitation_create(organization=other_organization, email="theirs@example.com", role="member",
                               invited_by=other_owner)[0]
    client.force_login(owner)

    def revoke(pk, **extra):
        return client.post(url("tenancy_invitation_changelist"),
                           {"action": "revoke_invitations", "_selected_action": [pk], **extra}, follow=True)

    for extra in ({}, {"confirm": "yes"}):
        response, missing = revoke(theirs.pk, **extra), revoke(uuid.uuid4(), **extra)
        assert response.status_code == missing.status_code == 200
        assert response.redirect_chain == missing.redirect_chain
        assert "None of the selected invitations is pending" in response.content.decode()
        assert "theirs@example.com" not in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# --- audit log --------------------------------------------------------------------------------


def test_the_audit_log_shows_only_the_organizations_own_entries(client, organization, other_organization, member_of):
    own = audit_record(organization=organization, actor=None, action="project.created", target_type="project",
                       target_id="a")
    audit_record(organization=other_organization, actor=None, action="project.created", target_type="project",
                 target_id="b")
    client.force_login(member_of(organization, Role.ADMIN))

    response = client.get(url("tenancy_auditlogentry_changelist"))

    entries = listed(response)
    assert own in entries
    assert {e.organization_id for e in entries} == {organization.id}
    assert b"Globex" not in response.content


def test_the_audit_log_is_read_only_even_for_superusers(client, organization, superuser):
    entry = audit_record(organization=organization, actor=None, action="project.created", target_type="project",
                         target_id="a")
    client.force_login(superuser)

    change_url = url("tenancy_auditlogentry_change", entry.pk)
    assert client.get(change_url).context["has_change_permission"] is False
    assert client.post(change_url, {"action": "project.deleted"}).status_code == 403
    assert client.post(url("tenancy_auditlogentry_delete", entry.pk), {"post": "yes"}).status_code == 403
    assert client.get(url("tenancy_auditlogentry_add")).status_code == 403
    changelist = client.get(url("tenancy_auditlogentry_changelist"))
    assert changelist.context["action_form"] is None  # not even "delete selected"
    entry.refresh_from_db()
    assert entry.action == "project.created"


# --- users ------------------------------------------------------------------------------------


def test_members_see_only_people_of_their_organizations_read_only(client, organization, owner, other_owner, member_of):
    viewer = member_of(organization, Role.VIEWER)
    client.force_login(viewer)

    response = client.get(url("tenancy_user_changelist"))
    assert set(listed(response)) == {owner, viewer}
    assert other_owner.email.encode() not in response.content

    page = client.get(url("tenancy_user_change", owner.pk))
    assert page.context["has_change_permission"] is False
    assert client.post(url("tenancy_user_change", owner.pk), {"email": owner.email, "name": "x"}).status_code == 403
    password_url = url("tenancy_user_change", owner.pk).replace("/change/", "/password/")
    assert client.get(password_url).status_code == 403


def test_an_owner_cannot_edit_users(client, organization, owner, member_of):
    colleague = member_of(organization, Role.VIEWER)
    client.force_login(owner)
    response = client.post(url("tenancy_user_change", colleague.pk), {"email": colleague.email, "name": "Renamed"})
    assert response.status_code == 403


def test_a_superuser_edits_a_user(client, superuser, other_owner):
    client.force_login(superuser)
    response = client.post(
        url("tenancy_user_change", other_owner.pk),
        {"email": other_owner.email, "name": "New Name", "is_active": "on"},
    )
    assert response.status_code == 302
    other_owner.refresh_from_db()
    assert other_owner.name == "New Name"


def test_a_superuser_deleting_a_user_removes_memberships_through_the_service(
    client, superuser, organization, owner, member_of
):
    colleague = member_of(organization, Role.ADMIN)
    membership_id = Membership.objects.get(user=colleague).pk
    client.force_login(superuser)

    assert client.post(url("tenancy_user_delete", colleague.pk), {"post": "yes"}).status_code == 302

    assert not type(colleague).objects.filter(pk=colleague.pk).exists()
    assert AuditLogEntry.objects.filter(action="member.removed", target_id=str(membership_id)).exists()


def test_a_superuser_cannot_delete_an_organizations_last_owner(client, superuser, organization, owner):
    client.force_login(superuser)
    response = client.post(url("tenancy_user_delete", owner.pk), {"post": "yes"}, follow=True)
    assert type(owner).objects.filter(pk=owner.pk).exists()
    assert Membership.objects.filter(user=owner, role=Role.OWNER).exists()
    assert any("at least one owner" in str(m) for m in response.context["messages"])


# --- isolation by URL ---------------------------------------------------------------------------


def _other_tenant_object(model, other_organization, other_project, other_owner, other_api_key):
    if model == "organization":
        return other_organization
    if model == "project":
        return other_project
    if model == "apikey":
        return other_api_key.key
    if model == "membership":
        return Membership.objects.get(user=other_owner)
    if model == "invitation":
        return invitation_create(organization=other_organization, email="o@example.com", role="member",
                                 invited_by=other_owner)[0]
    if model == "auditlogentry":
        return AuditLogEntry.objects.filter(organization_id=other_organization.id).first()
    if model == "user":
        return other_owner
    raise AssertionError(model)


@pytest.mark.parametrize("model", sorted(ROLE_MATRIX))
@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_another_tenants_object_answers_like_a_missing_one(
    client, organization, member_of, other_organization, other_project, other_owner, other_api_key, model, view
):
    client.force_login(member_of(organization, Role.OWNER))
    obj = _other_tenant_object(model, other_organization, other_project, other_owner, other_api_key)
    assert obj is not None

    response = client.get(url(f"tenancy_{model}_{view}", obj.pk))
    missing_pk = 10**12 if model in ("membership", "auditlogentry") else uuid.uuid4()
    missing = client.get(url(f"tenancy_{model}_{view}", missing_pk))

    if view == "delete" and model not in ("membership",):
        # Nobody may delete these, so the page is refused before any lookup, for both ids alike.
        assert response.status_code == missing.status_code == 403
    else:
        assert is_missing_object_redirect(response), response.status_code
        assert is_missing_object_redirect(missing)


def test_the_unscoped_view_on_site_shortcut_is_not_served(client, organization, other_project, member_of):
    # It looks objects up by content type and id with no tenant scope; no console model needs it.
    from django.contrib.contenttypes.models import ContentType
    from django.urls import resolve

    path = f"/admin/r/{ContentType.objects.get_for_model(Project).pk}/{other_project.pk}/"
    assert resolve(path).url_name != "view_on_site"
    client.force_login(member_of(organization, Role.VIEWER))
    assert client.get(path).status_code == 404


def test_a_superuser_sees_every_organization(
    client, superuser, organization, project, other_project, far_project
):
    client.force_login(superuser)
    assert set(listed(client.get(url("tenancy_project_changelist")))) == {project, other_project, far_project}
    form = client.get(url("tenancy_project_add")).context["adminform"].form
    assert set(form.fields["organization"].queryset) == {
        organization,
        other_project.organization,
        far_project.organization,
    }


# Every other console model holding a tenant's rows (the tenancy ones are in ROLE_MATRIX, above):
# app_model → how to make one in a project of another organization.
def _their_price(project):
    from pricing.models import ModelPrice

    return ModelPrice.objects.create(project=project, provider="openai", model_name="iso-theirs",
                                     match_pattern="^iso-theirs$", input_price=1, output_price=2)


def _their_alert_event(project):
    from django.utils import timezone

    from monitoring.alerts_models import AlertEvent

    now = timezone.now()
    return AlertEvent.objects.create(rule=project.alert_rules.get(seed_key="refusal_rate_5pct"), project=project,
                                     from_state="ok", to_state="firing", value=0.5, limit=0.05, calls=10,
                                     window_start=now, window_end=now, message="theirs")


def _their_subscription(project):
    # A plan of its own: the seeded ones are gone after any test that flushes the tables.
    from tests.billing.support import make_plan, subscribe

    return subscribe(project.organization, make_plan())


def _their_rejected_events(project):
    from django.utils import timezone

    from billing.models import RejectedEvents

    return RejectedEvents.objects.create(organization=project.organization, project_id=project.id,
                                         day=timezone.now().date(), reason="quota", requests=1, events=1)


def _scoped_model_factories():
    from evals.eval_services import connection_upsert, evaluator_create
    from evals.evaluation_models import EvaluationRule
    from evals.review_services import review_rule_create
    from feedback.services import feedback_settings_update
    from monitoring.alerts_services import alert_channel_create
    from monitoring.sampling_models import SamplingPolicy
    from privacy.models import RedactionPolicy, RetentionPolicy, RetentionRun
    from privacy.services import erasure_request_create
    from scores.services import score_config_create

    return {
        "pricing_modelprice": _their_price,
        "privacy_redactionpolicy": lambda p: RedactionPolicy.objects.get_or_create(project=p)[0],
        "privacy_erasurerequest": lambda p: erasure_request_create(project=p, kind="user", subjects=["u"], via="api"),
        "privacy_retentionpolicy": lambda p: RetentionPolicy.objects.get_or_create(project=p, defaults={"days": 30})[0],
        "privacy_retentionrun": lambda p: RetentionRun.objects.create(project=p),
        "scores_scoreconfig": lambda p: score_config_create(project=p, actor=None, name="iso", data_type="NUMERIC"),
        "evals_llmconnection": lambda p: connection_upsert(project=p, provider="iso", adapter="openai",
                                                           secret_key="sk-iso-123456789")[0],
        "evals_evaluator": lambda p: evaluator_create(project=p, data={"name": "iso", "template": "helpfulness"}),
        "evals_evaluationrule": lambda p: EvaluationRule.objects.create(project=p, name="iso", enabled=False),
        "evals_reviewrule": lambda p: review_rule_create(project=p, actor=None, name="iso", dataset_name="iso",
                                                         value=0),
        "feedback_feedbacksettings": lambda p: feedback_settings_update(project=p, actor=None,
                                                                        allowed_origins=["https://globex.example"]),
        "billing_subscription": _their_subscription,
        "billing_rejectedevents": _their_rejected_events,
        "monitoring_alertrule": lambda p: p.alert_rules.get(seed_key="refusal_rate_5pct"),
        # A public address literal: passes the SSRF check without DNS; nothing is sent to it here.
        "monitoring_alertchannel": lambda p: alert_channel_create(project=p, actor=None, name="iso", kind="webhook",
                                                                  url="https://93.184.216.34/hook"),
        "monitoring_alertevent": _their_alert_event,
        "monitoring_samplingpolicy": lambda p: SamplingPolicy.objects.get_or_create(project=p)[0],
    }


SCOPED_MODELS = sorted([
    "pricing_modelprice", "privacy_redactionpolicy", "privacy_erasurerequest", "privacy_retentionpolicy",
    "privacy_retentionrun", "scores_scoreconfig", "evals_llmconnection", "evals_evaluator", "evals_evaluationrule",
    "evals_reviewrule", "feedback_feedbacksettings", "billing_subscription", "billing_rejectedevents",
    "monitoring_alertrule", "monitoring_alertchannel", "monitoring_alertevent", "monitoring_samplingpolicy",
])


def test_every_console_model_with_tenant_rows_is_walked_by_the_isolation_test():
    from tenancy.admin_site import admin_site

    registered = {f"{m._meta.app_label}_{m._meta.model_name}": a for m, a in admin_site._registry.items()}
    scoped = {name for name, model_admin in registered.items()
              if getattr(model_admin, "organization_path", None) is not None} | {"pricing_modelprice"}
    tenancy = {f"tenancy_{model}" for model in ROLE_MATRIX}
    assert scoped - tenancy == set(SCOPED_MODELS) == set(_scoped_model_factories())


def _missing_pk(model):
    return 10**12 if model._meta.pk.get_internal_type() in ("AutoField", "BigAutoField", "IntegerField") \
        else uuid.uuid4()


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_another_tenants_row_of_every_app_answers_like_a_missing_one(
    client, organization, member_of, other_project, model
):
    obj = _scoped_model_factories()[model](other_project)
    client.force_login(member_of(organization, Role.OWNER))

    def row():
        return list(type(obj)._default_manager.filter(pk=obj.pk).values())

    before = row()
    assert before
    for view in ("change", "delete", "history"):
        theirs = client.get(url(f"{model}_{view}", obj.pk))
        missing = client.get(url(f"{model}_{view}", _missing_pk(type(obj))))
        assert (theirs.status_code, theirs.get("Location")) == (missing.status_code, missing.get("Location")), view
        assert theirs.status_code == 403 or is_missing_object_redirect(theirs), (view, theirs.status_code)
        assert other_project.name.encode() not in theirs.content
    for view in ("change", "delete"):
        response = client.post(url(f"{model}_{view}", obj.pk), {"post": "yes", "_save": "Save"})
        assert response.status_code == 403 or is_missing_object_redirect(response), (view, response.status_code)
    assert row() == before
