from django.urls import path
from django.views.generic import RedirectView

from tenancy import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # The link emailed with every invitation (tenancy.services.invitation_link).
    path("invitations/accept", views.accept_invitation, name="accept-invitation"),
]
