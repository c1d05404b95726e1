"""An organization name holding a line break made the invitation mail's Subject header invalid: the
invitation was stored, then sending it raised BadHeaderError and the API answered 500. Found by
tests/fuzz/test_fuzz_api.py (a PATCHed organization name, then an invitation)."""

import json

from django.core import mail


def test_an_invitation_from_an_organization_named_over_two_lines_is_sent(
    client, owner, organization, django_capture_on_commit_callbacks
):
    organization.name = "Acme\r\nBcc: everyone@example.com"
    organization.save()
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/organizations/{organization.id}/invitations/",
            json.dumps({"email": "new@example.com", "role": "member"}),
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "You are invited to Acme Bcc: everyone@example.com on Lookglass"
    assert mail.outbox[0].to == ["new@example.com"]
