"""Pages outside the console: the invitation link a person opens from their email.

`GET /invitations/accept?token=…` shows the organization and role. Then, on the same page:

- signed in with the invited address: one button accepts;
- signed in with another address: sign out first (the invitation is for someone else);
- not signed in, an account exists for the address: its password signs in and accepts;
- not signed in, no account yet: a name and a password create it and accept.

Every way ends in the console (/admin/), which shows only the organizations the person belongs to.
Unknown, expired, revoked and used tokens get a page that says which. Writes are in
`tenancy.services` (audited); the page is never cached, since its URL carries the token.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tenancy import selectors, services
from tenancy.admin_site import admin_site
from tenancy.forms import InvitationSignInForm, InvitationSignUpForm
from tenancy.models import Invitation

ACCEPT, WRONG_ACCOUNT, SIGN_IN, SIGN_UP = "accept", "wrong_account", "sign_in", "sign_up"


def _page(request, template: str, context: dict, *, status: int = 200) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin_site.each_context(request), **context}, status=status)


def _unusable(request, invitation: Invitation | None) -> TemplateResponse:
    if invitation is None:
        state, status = "unknown", 404
    elif invitation.accepted_at is not None:
        state, status = "accepted", 410
    elif invitation.revoked_at is not None:
        state, status = "revoked", 410
    else:
        state, status = "expired", 410
    return _page(
        request,
        "tenancy/invitation_unusable.html",
        {"title": "Invitation not valid", "invitation": invitation, "state": state},
        status=status,
    )


def _joined(request, membership) -> HttpResponseRedirect:
    messages.success(
        request, f"You joined {membership.organization.name} as {membership.get_role_display().lower()}."
    )
    return HttpResponseRedirect(reverse("admin:index"))


@never_cache
@require_http_methods(["GET", "POST"])
def accept_invitation(request):
    token = request.POST.get("token") or request.GET.get("token") or ""
    invitation = selectors.invitation_for_token(token=token)
    if invitation is None or not invitation.is_pending:
        return _unusable(request, invitation)

    user = request.user if request.user.is_authenticated else None
    if user is not None:
        mode = ACCEPT if user.email.lower() == invitation.email.lower() else WRONG_ACCOUNT
    else:
        mode = SIGN_IN if selectors.user_with_email(email=invitation.email) else SIGN_UP

    form, errors = None, []
    if mode == SIGN_IN:
        form = InvitationSignInForm(request, email=invitation.email)
    elif mode == SIGN_UP:
        form = InvitationSignUpForm(email=invitation.email)

    # A POST made for another mode (the page went stale: signed out, account created meanwhile)
    # just shows the page again as it is now.
    if request.method == "POST" and request.POST.get("action") == mode:
        try:
            if mode == ACCEPT:
                return _joined(request, services.invitation_accept(token=token, user=user))
            if mode == SIGN_IN:
                form = InvitationSignInForm(request, email=invitation.email, data=request.POST)
                if form.is_valid():
                    membership = services.invitation_accept(token=token, user=form.get_user())
                    login(request, form.get_user())
                    return _joined(request, membership)
            if mode == SIGN_UP:
                form = InvitationSignUpForm(email=invitation.email, data=request.POST)
                if form.is_valid():
                    membership = services.invitation_sign_up(
                        token=token, name=form.cleaned_data["name"], password=form.cleaned_data["password1"]
                    )
                    login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
                    return _joined(request, membership)
        except ValidationError as error:
            invitation = selectors.invitation_for_token(token=token)
            if invitation is None or not invitation.is_pending:
                return _unusable(request, invitation)
            errors = error.messages

    return _page(
        request,
        "tenancy/invitation_accept.html",
        {
            "title": f"Join {invitation.organization.name}",
            "invitation": invitation,
            "token": token,
            "mode": mode,
            "form": form,
            "errors": errors,
            "expires_in": invitation.expires_at - timezone.now(),
        },
    )
