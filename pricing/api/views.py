"""Model price API: the global catalog (read-only, any signed-in person) and per-project overrides.

Tenant resolution and role checks happen in `tenancy.api.base`; writes in `pricing.services`.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from pricing import pricing, selectors, services
from pricing.api import serializers as s
from pricing.models import ModelPrice
from tenancy.api.base import MANAGEMENT_AUTHENTICATION, ProjectScopedViewSet
from tenancy.api.exceptions import as_api_errors
from tenancy.authentication import KeyPrincipal
from tenancy.models import Role

_PRICE_ID = OpenApiParameter("price_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
_PROJECT_PATH = [
    OpenApiParameter("organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
    OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
]


@extend_schema_view(
    list=extend_schema(
        summary="The global model price catalog",
        parameters=[
            OpenApiParameter("provider", OpenApiTypes.STR, description="exact provider, e.g. openai"),
            OpenApiParameter("model", OpenApiTypes.STR, description="part of the canonical model name"),
        ],
    ),
    retrieve=extend_schema(summary="One catalog price", parameters=[_PRICE_ID]),
    create=extend_schema(
        summary="Add a catalog price (superusers)", request=s.ModelPriceWriteSerializer,
        responses={201: s.ModelPriceSerializer},
    ),
    update=extend_schema(
        summary="Replace a catalog price (superusers); it becomes `custom`, so the loader keeps it",
        parameters=[_PRICE_ID], request=s.ModelPriceWriteSerializer, responses={200: s.ModelPriceSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a catalog price (superusers); it becomes `custom`, so the loader keeps it",
        parameters=[_PRICE_ID], request=s.ModelPriceWriteSerializer, responses={200: s.ModelPriceSerializer},
    ),
    destroy=extend_schema(summary="Delete a catalog price (superusers)", parameters=[_PRICE_ID]),
)
class CatalogPriceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Everyone signed in reads the catalog; only superusers change it, as in the console
    (pricing/admin.py). A project's admins override a price for their project instead."""

    authentication_classes = MANAGEMENT_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    # People only (keys are refused in `initial`); also keeps the schema from offering key auth here.
    allow_api_keys = False
    serializer_class = s.ModelPriceSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "price_id"
    filter_backends: list = []

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, KeyPrincipal):
            raise PermissionDenied("API keys cannot use the management API; sign in as a person.")

    def get_queryset(self):
        # Only catalog rows: a project's override is never reachable here, whatever its id.
        return selectors.catalog_prices(
            provider=self.request.query_params.get("provider"), model=self.request.query_params.get("model")
        ).order_by("provider", "model_name", "-effective_from", "id")

    def get_object(self):
        # A malformed id answers the same JSON 404 as a missing one, not a database error.
        try:
            uuid.UUID(str(self.kwargs.get(self.lookup_url_kwarg)))
        except ValueError:
            raise Http404 from None
        return super().get_object()

    def _superusers_only(self) -> None:
        if not self.request.user.is_superuser:
            raise PermissionDenied(CATALOG_WRITE_REFUSED)

    def create(self, request, *args, **kwargs):
        self._superusers_only()
        payload = s.ModelPriceWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        with transaction.atomic():  # as for overrides: rendering failures roll the write back
            try:
                price = services.model_price_create(project=None, actor=request.user, data=payload.validated_data)
            except DjangoValidationError as exc:
                raise as_api_errors(exc) from None
            body = self.get_serializer(price).data
        return Response(body, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        price = self.get_object()  # first: an id that is not a catalog row is a 404 for everyone
        self._superusers_only()
        payload = s.ModelPriceWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        data = _replacing(dict(payload.validated_data), partial=partial)
        with transaction.atomic():
            try:
                price = services.model_price_update(price=price, actor=request.user, data=data)
            except DjangoValidationError as exc:
                raise as_api_errors(exc) from None
            body = self.get_serializer(price).data
        return Response(body)

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        price = self.get_object()
        self._superusers_only()
        services.model_price_delete(price=price, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


CATALOG_WRITE_REFUSED = (
    "only superusers change the global catalog; a project's admins add a price override to the project instead"
)


def _replacing(data: dict, *, partial: bool) -> dict:
    if not partial:
        # PUT replaces: optional prices left out are cleared, an omitted pattern becomes the exact name.
        for name in ("cached_input_price", "cache_write_price", "reasoning_price"):
            data.setdefault(name, None)
        data.setdefault("match_pattern", "")
    return data


@extend_schema_view(
    list=extend_schema(summary="Price overrides of the project (viewer)", parameters=_PROJECT_PATH),
    retrieve=extend_schema(summary="One price override (viewer)", parameters=[*_PROJECT_PATH, _PRICE_ID]),
    create=extend_schema(
        summary="Add a price override (admin)", parameters=_PROJECT_PATH,
        request=s.ModelPriceWriteSerializer, responses={201: s.ModelPriceSerializer},
    ),
    update=extend_schema(
        summary="Replace a price override (admin)", parameters=[*_PROJECT_PATH, _PRICE_ID],
        request=s.ModelPriceWriteSerializer, responses={200: s.ModelPriceSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a price override (admin)", parameters=[*_PROJECT_PATH, _PRICE_ID],
        request=s.ModelPriceWriteSerializer, responses={200: s.ModelPriceSerializer},
    ),
    destroy=extend_schema(summary="Delete a price override (admin)", parameters=[*_PROJECT_PATH, _PRICE_ID]),
    resolve=extend_schema(
        summary="The price that applies to a model name at a time (viewer)",
        parameters=[
            *_PROJECT_PATH,
            OpenApiParameter("model", OpenApiTypes.STR, required=True, description="model name as sent"),
            OpenApiParameter("at", OpenApiTypes.DATETIME, description="default: now"),
        ],
        responses={200: s.ResolveResponseSerializer},
    ),
)
class ProjectPriceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = ModelPrice.objects.all()
    serializer_class = s.ModelPriceSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "price_id"
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    filter_backends: list = []

    def scope_queryset(self, queryset):
        return queryset.order_by("provider", "model_name", "-effective_from", "id")

    def create(self, request, *args, **kwargs):
        payload = s.ModelPriceWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        # The response is rendered inside the write's transaction: a value that cannot be shown back
        # (once, a date that overflowed in rendering) must roll the write back, not answer 400 after
        # the commit and leave the row behind.
        with transaction.atomic():
            try:
                price = services.model_price_create(
                    project=self.project, actor=request.user, data=payload.validated_data
                )
            except DjangoValidationError as exc:
                raise as_api_errors(exc) from None
            body = self.get_serializer(price).data
        return Response(body, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        price = self.get_object()
        payload = s.ModelPriceWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        data = _replacing(dict(payload.validated_data), partial=partial)
        with transaction.atomic():  # as in create: rendering failures roll the write back
            try:
                price = services.model_price_update(price=price, actor=request.user, data=data)
            except DjangoValidationError as exc:
                raise as_api_errors(exc) from None
            body = self.get_serializer(price).data
        return Response(body)

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.model_price_delete(price=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=False, methods=["get"])
    def resolve(self, request, *args, **kwargs):
        query = s.ResolveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        model = query.validated_data["model"]
        at = query.validated_data.get("at") or timezone.now()
        price = pricing.price_for(project_id=self.project.id, model=model, at=at)
        body = {
            "model": model,
            "at": at,
            "applies": None if price is None else ("override" if price.is_override else "catalog"),
            "price": price,
        }
        return Response(s.ResolveResponseSerializer(body).data)
