"""Turns a database that is down into 503 + Retry-After instead of a 500, for every endpoint, and a
value the database cannot hold (a NUL character, a number out of range) into 400.

Views with a wire format of their own (OTLP's google.rpc.Status, Langfuse's 207) answer outages
themselves; this catches everything else — key lookups on the control plane included — so no
route can turn an outage into a 500 that clients would not retry.

`LazyMessageMiddleware` stands in for Django's MessageMiddleware (see its docstring).
"""

import logging
from functools import partial

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.db import DataError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils.functional import SimpleLazyObject, empty
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DataError):
            # Only client input reaches the database unchecked this way: say so instead of a 500.
            logger.info("rejected input for %s %s: %s", request.method, request.path, exception)
            first_line = str(exception).partition("\n")[0]  # the lines after it quote the statement
            return JsonResponse(
                {
                    "error": "InvalidRequestError",
                    "message": "A value in the request cannot be stored or searched for "
                    f"(e.g. a NUL character or a number out of range): {first_line}",
                },
                status=400,
            )
        if isinstance(exception, RedisError):
            # Cache users fall back or fail open; one that cannot (e.g. a prompt cache write) must
            # still not turn a Redis outage into a 500.
            logger.warning("redis unavailable for %s %s: %s", request.method, request.path, exception)
            message = "A backing service is unavailable; retry shortly."
        elif isinstance(exception, (OperationalError, InterfaceError)):
            # Outages, and statement/lock timeouts (QueryCanceled, LockNotAvailable are operational
            # errors too): the transaction was rolled back, so a retry is safe.
            logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
            message = "The database is unavailable; nothing was changed. Retry shortly."
        else:
            return None
        response = JsonResponse({"error": "ServiceUnavailableError", "message": message}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class LazyMessageMiddleware(MessageMiddleware):
    """Django's MessageMiddleware, with the request's message storage made when first used. Django
    makes it for every request (a cookie signer and two storages): ≈ 25 µs of CPU per ingestion or
    API request, which never use it (issue 13). A storage nothing touched would store nothing at the
    end (`BaseStorage.update` writes only when messages were read or added), so then the response is
    left alone; a touched one is updated as Django does."""

    def process_request(self, request):
        request._messages = SimpleLazyObject(partial(default_storage, request))

    def process_response(self, request, response):
        messages = request.__dict__.get("_messages")
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
