"""The soft-limit banner: owners and admins see, on every console page, that their organization is
near (or at) its plan's included units — before ingestion is refused, not after."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from billing.selectors import soft_limit_states


def quota_warnings(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not request.path.startswith(("/admin", "/console")):
        return {}
    from tenancy.admin_site import console_roles
    from tenancy.models import Role

    if user.is_superuser:
        # The console reads no roles for superusers (they are not scoped), but an operator who also
        # owns an organization must be warned like any other owner: one query, only for them.
        from tenancy.models import Membership

        organization_ids = list(Membership.objects.filter(user=user, role__in=(Role.OWNER, Role.ADMIN))
                                .values_list("organization_id", flat=True))
    else:
        # The roles the console already read for this request: no query of our own on every page.
        organization_ids = [org for org, role in console_roles(request).items() if role in (Role.OWNER, Role.ADMIN)]
    warnings = []
    try:
        url = reverse("admin:billing_usage")
    except NoReverseMatch:
        url = ""
    # In bulk: an owner of many organizations costs no query per organization (`soft_limit_states`).
    for state in soft_limit_states(organization_ids=organization_ids):
        organization_id, name = state["organization_id"], state["name"]
        org = name.splitlines()[0][:80] if name else "Your organization"
        if state["hard"] and state["usage"] >= state["included"]:
            text = (f"{org} has used all {state['included']:,} included units of plan {state['plan']!r}: "
                    f"ingestion is refused (429) until {state['period_end']:%Y-%m-%d} or a plan change.")
        else:
            text = (f"{org} has used {state['usage']:,} of {state['included']:,} included units of plan "
                    f"{state['plan']!r} this period (ends {state['period_end']:%Y-%m-%d}).")
        warnings.append({"text": text, "url": f"{url}?organization={organization_id}" if url else ""})
    return {"quota_warnings": warnings}
