"""Where higher apps put limits on what an organization may create (projects, members).

Tenancy sits below billing, so it cannot ask billing for the plan; billing registers a check here
when it loads (billing/apps.py), and the tenancy services call `enforce` before creating the row.
A check raises django.core.exceptions.ValidationError, which every caller already answers with a
400 (API) or a form error (admin). Without billing installed nothing is limited.
"""

from __future__ import annotations

from collections.abc import Callable

PROJECTS = "projects"
MEMBERS = "members"

_checks: list[Callable] = []


def register(check: Callable) -> None:
    if check not in _checks:
        _checks.append(check)


def enforce(kind: str, organization) -> None:
    for check in _checks:
        check(kind, organization)
