"""Reads of model prices. Cost computation does not read through here: see pricing.pricing."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from pricing.models import ModelPrice
from tenancy.models import Project, Role, User
from tenancy.selectors import organization_ids_with_role


def catalog_prices(*, provider: str | None = None, model: str | None = None) -> QuerySet[ModelPrice]:
    queryset = ModelPrice.objects.filter(project__isnull=True)
    if provider:
        queryset = queryset.filter(provider__iexact=provider.strip())
    if model:
        queryset = queryset.filter(model_name__icontains=model.strip())
    return queryset


def project_price_overrides(*, project: Project) -> QuerySet[ModelPrice]:
    return ModelPrice.objects.filter(project=project)


def prices_visible_to(*, user: User) -> QuerySet[ModelPrice]:
    """The catalog plus the overrides of every project in the user's organizations."""
    queryset = ModelPrice.objects.select_related("project__organization")
    if user.is_superuser:
        return queryset
    org_ids = organization_ids_with_role(user=user, role=Role.VIEWER)
    return queryset.filter(Q(project__isnull=True) | Q(project__organization_id__in=org_ids))


def projects_for_price_overrides(*, user: User) -> QuerySet[Project]:
    """Projects whose overrides the user may add or change: admin and owner roles."""
    queryset = Project.objects.select_related("organization")
    if user.is_superuser:
        return queryset
    return queryset.filter(organization_id__in=organization_ids_with_role(user=user, role=Role.ADMIN))
