"""Fixtures every console test file uses (the shared ones of all apps are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tenancy.models import Role


@pytest.fixture
def member(client, organization, member_of):
    """A member of the organization, signed in on the test client."""
    user = member_of(organization, Role.MEMBER)
    client.force_login(user)
    return user
