from django.contrib.auth.views import LogoutView
from django.urls import path
from django.views.generic import RedirectView

from tenancy import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # The link emailed with every invitation (tenancy.services.invitation_link).
    path("invitations/accept", views.accept_invitation, name="accept-invitation"),
    # The console's own logout answers only people it admits, so someone who belongs to no
    # organization (or is signed in with the wrong account for an invitation) signs out here.
    path("sign-out", LogoutView.as_view(next_page="/admin/login/"), name="sign-out"),
]
