"""`tenancy.middleware.LazyMessageMiddleware` makes a request's message storage only when it is used
(issue 13): every response must carry what Django's MessageMiddleware gives it — a message added, a
message read and so cleared, an incoming cookie left alone — and a request that never touches
messages (every ingestion and API call) must not make the storage at all."""

from __future__ import annotations

import pytest
from django.contrib import messages
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.functional import empty

from tenancy.middleware import LazyMessageMiddleware


def _view(kind: str):
    def view(request):
        if kind == "add":
            messages.success(request, "saved")
            messages.warning(request, "but check it")
        elif kind == "read":
            list(messages.get_messages(request))
        elif kind == "add-and-read":
            messages.info(request, "one")
            list(messages.get_messages(request))
        elif kind == "level":
            messages.set_level(request, messages.WARNING)
            messages.info(request, "below the level")
        return HttpResponse("ok")

    return view


def _cookie_of(response) -> tuple | None:
    cookie = response.cookies.get("messages")
    return None if cookie is None else (cookie.value, cookie["max-age"], cookie["expires"])


def _messages_cookie(middleware_class, kind: str, incoming: str | None):
    from django.contrib.messages.storage.cookie import CookieStorage

    request = RequestFactory().get("/console/")
    if incoming is not None:
        # A cookie as a previous response set it (Django's own storage encodes it).
        carrier = RequestFactory().get("/")
        storage = CookieStorage(carrier)
        storage.add(messages.INFO, incoming)
        response = HttpResponse()
        storage.update(response)
        request.COOKIES["messages"] = response.cookies["messages"].value
    handler = SessionMiddleware(middleware_class(_view(kind)))
    response = handler(request)
    return _cookie_of(response), [str(m) for m in messages.get_messages(request)]


@pytest.mark.parametrize("incoming", [None, "from before"])
@pytest.mark.parametrize("kind", ["none", "add", "read", "add-and-read", "level"])
def test_responses_carry_what_djangos_middleware_gives_them(kind, incoming):
    lazy = _messages_cookie(LazyMessageMiddleware, kind, incoming)
    assert lazy == _messages_cookie(MessageMiddleware, kind, incoming)
    if kind == "add":
        assert lazy[0] is not None and lazy[0][0]  # a cookie holding the messages was set
    if kind == "read" and incoming:
        assert lazy[0] is not None and lazy[0][0] == ""  # the read messages' cookie was cleared


def test_a_request_that_never_touches_messages_makes_no_storage():
    request = RequestFactory().post("/api/public/ingestion")
    response = SessionMiddleware(LazyMessageMiddleware(_view("none")))(request)
    assert response.status_code == 200
    assert request._messages._wrapped is empty


def test_an_ingestion_call_through_the_whole_stack_makes_no_storage(client, api_key):
    response = client.post(
        "/api/public/ingestion", data={"batch": []}, content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert response.status_code in (200, 207)
    assert response.wsgi_request._messages._wrapped is empty
    assert "messages" not in response.cookies
