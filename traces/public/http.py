"""The plumbing every public read endpoint shares: key auth, JSON rendering, Langfuse-style errors."""

from __future__ import annotations

import orjson
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from tenancy.authentication import MISSING_CREDENTIALS, ApiKeyAuthentication
from tenancy.http.errors import dumps
from traces.public.params import InvalidParams, QueryParams


class NotFound(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class JSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return dumps(data, option=orjson.OPT_UTC_Z)


class AlwaysJSON(BaseContentNegotiation):
    """The SDKs send assorted Accept headers; the answer is JSON regardless, never a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def error_response(status_code: int, message: str, error: str, headers=None) -> Response:
    return Response({"message": message, "error": error}, status=status_code, headers=headers)


class PublicReadView(APIView):
    # Basic pk:sk or Bearer sk; a public key alone is refused, since these endpoints return content.
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON
    http_method_names = ["get"]

    @property
    def project(self):
        return self.request.user.project

    def params(self) -> QueryParams:
        return QueryParams(self.request.query_params)

    def initial(self, request, *args, **kwargs):
        # A wrong method is a 405 whoever asks, before credentials are looked at.
        if request.method.lower() not in self.http_method_names:
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
        # Postgres text cannot hold NUL, so such an id cannot exist and such a filter cannot run.
        for name, value in kwargs.items():
            if "\x00" in value:
                raise NotFound(f"{name} {value!r} not found within authorized project")
        for name, values in request.query_params.lists():
            if any("\x00" in value for value in values):
                raise InvalidParams(f"{name} must not contain NUL characters")

    def handle_exception(self, exc):
        if isinstance(exc, InvalidParams):
            return error_response(status.HTTP_400_BAD_REQUEST, exc.message, "InvalidRequestError")
        if isinstance(exc, NotFound):
            return error_response(status.HTTP_404_NOT_FOUND, exc.message, "LangfuseNotFoundError")
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            # No usable Authorization header at all reaches here as DRF's NotAuthenticated.
            message = MISSING_CREDENTIALS if isinstance(exc, exceptions.NotAuthenticated) else str(exc.detail)
            return error_response(
                status.HTTP_401_UNAUTHORIZED,
                message,
                "UnauthorizedError",
                headers={"WWW-Authenticate": self.get_authenticate_header(self.request)},
            )
        if isinstance(exc, exceptions.MethodNotAllowed):
            allowed = ", ".join(m.upper() for m in self.http_method_names)
            return error_response(
                status.HTTP_405_METHOD_NOT_ALLOWED,
                f"Method {self.request.method} not allowed; this endpoint only answers {allowed}",
                "MethodNotAllowedError",
                headers={"Allow": allowed},
            )
        if isinstance(exc, exceptions.APIException):
            return error_response(exc.status_code, str(exc.detail), type(exc).__name__)
        return super().handle_exception(exc)
