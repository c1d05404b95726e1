"""Outbound HTTP to addresses a tenant chose (alert webhooks, Slack, LLM connections).

A tenant-supplied URL is a way into our own network: a webhook pointed at
169.254.169.254 reads cloud credentials, one pointed at 10.x reaches internal services.
Every such URL is checked here, once, both when it is saved (a clear 400) and again
right before each request (DNS may have changed since it was saved). Private,
loopback, link-local, multicast, reserved and unspecified addresses are refused unless
the operator opts in with OUTBOUND_ALLOW_PRIVATE (a self-hosted vLLM/Ollama on the LAN)
or lists the host in OUTBOUND_ALLOWED_HOSTS.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx
from django.conf import settings

# Cloud metadata endpoints, named so the error says why (they are link-local or
# private anyway, so the address check below already refuses them).
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class UnsafeURL(ValueError):
    """A tenant-chosen URL that must not be called; the message is safe to show."""


def _allowed_host(host: str) -> bool:
    allowed = {h.lower() for h in getattr(settings, "OUTBOUND_ALLOWED_HOSTS", [])}
    return host.lower() in allowed


def _address_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attr, what in (
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local (cloud metadata)"),
        ("is_private", "a private"),
        ("is_multicast", "a multicast"),
        ("is_reserved", "a reserved"),
        ("is_unspecified", "an unspecified"),
    ):
        if getattr(ip, attr):
            return what
    return None


def check_url(url: str, *, resolve: bool = True) -> str:
    """Return the URL if it may be called; raise UnsafeURL (message for the user) if not.

    `resolve=False` checks only the shape and literal addresses (used where DNS must not
    be touched, e.g. validating a form offline); the request path always resolves.
    """
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("The URL is empty.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"The URL is not valid: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Only http and https URLs are allowed.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("Credentials in the URL are not allowed; use the secret field.")
    if getattr(settings, "OUTBOUND_ALLOW_PRIVATE", False) or _allowed_host(host):
        return url.strip()
    if host.lower() in _METADATA_HOSTS:
        raise UnsafeURL(f"{host} is a cloud metadata address.")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return url.strip()
    else:
        try:
            infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80),
                                       type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            raise UnsafeURL(f"The host {host} could not be resolved.") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    for ip in addresses:
        what = _address_refused(ip)
        if what:
            raise UnsafeURL(
                f"{host} resolves to {what} address ({ip}); outbound calls to internal "
                "addresses are refused (an operator can allow them with OUTBOUND_ALLOW_PRIVATE "
                "or OUTBOUND_ALLOWED_HOSTS)."
            )
    return url.strip()


def _check_request(request: httpx.Request) -> None:
    check_url(str(request.url))


def client(*, timeout: float = 10.0, **kwargs) -> httpx.Client:
    """An httpx client that re-checks every request (redirects included) against the rules.

    Redirects are not followed: a public URL answering 302 to an internal one is the
    classic bypass.
    """
    hooks = kwargs.pop("event_hooks", {})
    hooks = {**hooks, "request": [_check_request, *hooks.get("request", [])]}
    return httpx.Client(timeout=timeout, follow_redirects=False, event_hooks=hooks, **kwargs)
