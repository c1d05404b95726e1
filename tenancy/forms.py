"""Forms of the invitation pages (the console's own forms live in tenancy/admin.py)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin

from tenancy.models import User


class InvitationSignInForm(AuthenticationForm):
    """Django's sign-in form with the email fixed to the invitation's: only the password is asked.

    It goes through `authenticate(request, …)`, so failed attempts count towards the login
    throttle exactly like the console's login page.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That password is not correct for %(username)s.",
    }

    def __init__(self, request, *, email: str, data=None):
        if data is not None:
            data = data.copy()
            data["username"] = email
        super().__init__(request, data=data)
        self.fields["username"].widget = forms.HiddenInput()
        self.fields["password"].widget.attrs["autofocus"] = True
        self.email = email

    def get_invalid_login_error(self):
        return forms.ValidationError(
            self.error_messages["invalid_login"], code="invalid_login", params={"username": self.email}
        )


class InvitationSignUpForm(SetPasswordMixin, forms.Form):
    """A new account for the invited address: a name and a password (checked by the configured
    password validators, against the name and email too). The email is not a field: it is the
    invitation's."""

    name = forms.CharField(
        label="Your name", max_length=200, widget=forms.TextInput(attrs={"autofocus": True})
    )
    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, *, email: str, data=None):
        super().__init__(data=data)
        self.email = email

    def clean(self):
        self.validate_passwords()
        self.validate_password_for_user(User(email=self.email, name=self.cleaned_data.get("name", "")))
        return super().clean()
