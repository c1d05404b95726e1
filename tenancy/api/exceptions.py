"""Turn the errors services raise into clear 4xx responses instead of 500s."""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler


def as_api_errors(exc: DjangoValidationError) -> ValidationError:
    """A model/service ValidationError as DRF's, with field messages and DRF's non-field key."""
    if not hasattr(exc, "error_dict"):
        return ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
    errors = exc.message_dict
    if NON_FIELD_ERRORS in errors:
        errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop(NON_FIELD_ERRORS)
    return ValidationError(errors)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = ValidationError(detail=detail)
    elif isinstance(exc, RecursionError):
        # A backstop: the parser refuses bodies nested deeper than MAX_BODY_DEPTH (tenancy/api/parsers.py),
        # far above where DRF's re-encoding of a JSONField could exhaust the stack: client input.
        return Response(
            {"detail": "the request body is nested too deeply"}, status=status.HTTP_400_BAD_REQUEST
        )
    elif isinstance(exc, IntegrityError):
        return Response(
            {"detail": "this conflicts with an existing object (a name or key must be unique)"},
            status=status.HTTP_409_CONFLICT,
        )
    return drf_exception_handler(exc, context)
