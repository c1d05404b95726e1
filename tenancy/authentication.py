"""Machine authentication with project API keys.

- `Authorization: Basic base64(pk-lg-…:sk-lg-…)`: what the Langfuse SDKs send; full project access.
- `Authorization: Bearer sk-lg-…`: the same, for curl and OTLP exporters.
- `Authorization: Bearer pk-lg-…`: the public key alone; browser-safe endpoints only (feedback).

An unknown public key and a wrong secret take the same path and cost the same HMAC, so timing
does not reveal which public keys exist.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions

from tenancy import keycache
from tenancy.keys import DUMMY_HASH, PUBLIC_PREFIX, SECRET_PREFIX, hash_secret, secret_matches
from tenancy.models import ApiKey, Project

INVALID_CREDENTIALS = (
    "Invalid credentials. Check that the host is this Lookglass server, that the public key (pk-lg-…) "
    "and secret key (sk-lg-…) belong to the same project, and that the key pair is not revoked or expired."
)
MISSING_CREDENTIALS = (
    "No credentials. Send HTTP Basic auth with the project's public key as username and secret key as "
    "password, or `Authorization: Bearer <secret key>`."
)
PUBLIC_KEY_NOT_ENOUGH = (
    "A public key alone only authorizes browser feedback. Use the secret key (Basic pk:sk or Bearer sk-lg-…) here."
)


class AuthenticationFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class KeyPrincipal:
    api_key: ApiKey
    project: Project
    public_only: bool

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    is_active = True
    pk = None
    id = None

    def __str__(self) -> str:
        return f"api key {self.api_key.public_key}"


def _active_or_fail(api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.revoked_at is not None:
        raise AuthenticationFailed("This API key was revoked. Create a new key pair for the project.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise AuthenticationFailed("This API key has expired. Create a new key pair for the project.")


def touch_last_used(api_key: ApiKey) -> None:
    """Record use at most once a minute per key, so authentication does not write on every request."""
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is not None and now - api_key.last_used_at < resolution:
        return
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - resolution)
    ).update(last_used_at=now)
    api_key.last_used_at = now


def _lookup_public(public_key: str) -> ApiKey | None:
    if not public_key.startswith(PUBLIC_PREFIX) or len(public_key) > 64:
        return None
    api_key = keycache.get("public", public_key)
    if api_key is keycache.MISS:
        api_key = ApiKey.objects.select_related("project__organization").filter(public_key=public_key).first()
        keycache.put("public", public_key, api_key)
    return api_key


def _lookup_secret(secret: str) -> ApiKey | None:
    # Looked up by its keyed hash on a unique index: no comparison of secret bytes happens.
    secret_hash = hash_secret(secret)
    api_key = keycache.get("secret", secret_hash)
    if api_key is keycache.MISS:
        api_key = ApiKey.objects.select_related("project__organization").filter(secret_hash=secret_hash).first()
        keycache.put("secret", secret_hash, api_key)
    return api_key


def authenticate_header(header: str | None, *, allow_public_only: bool = False) -> KeyPrincipal:
    """Resolve an Authorization header to a key principal, or raise AuthenticationFailed."""
    if not header:
        raise AuthenticationFailed(MISSING_CREDENTIALS)
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthenticationFailed(
                "Malformed Basic credentials: expected base64 of `public_key:secret_key`."
            ) from None
        public_key, sep, secret = decoded.partition(":")
        if not sep or not public_key or not secret:
            raise AuthenticationFailed("Basic credentials must be `public_key:secret_key`, both non-empty.")
        api_key = _lookup_public(public_key)
        ok = secret_matches(secret, api_key.secret_hash if api_key else DUMMY_HASH)
        if api_key is None or not ok:
            raise AuthenticationFailed(INVALID_CREDENTIALS)
        _active_or_fail(api_key)
        touch_last_used(api_key)
        return KeyPrincipal(api_key=api_key, project=api_key.project, public_only=False)
    if scheme == "bearer":
        if credentials.startswith(SECRET_PREFIX):
            api_key = _lookup_secret(credentials)
            if api_key is None:
                raise AuthenticationFailed(INVALID_CREDENTIALS)
            _active_or_fail(api_key)
            touch_last_used(api_key)
            return KeyPrincipal(api_key=api_key, project=api_key.project, public_only=False)
        if credentials.startswith(PUBLIC_PREFIX):
            if not allow_public_only:
                raise AuthenticationFailed(PUBLIC_KEY_NOT_ENOUGH)
            api_key = _lookup_public(credentials)
            if api_key is None:
                raise AuthenticationFailed(INVALID_CREDENTIALS)
            _active_or_fail(api_key)
            touch_last_used(api_key)
            return KeyPrincipal(api_key=api_key, project=api_key.project, public_only=True)
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    raise AuthenticationFailed(f"Unsupported authorization scheme {scheme!r}; use Basic or Bearer.")


def _looks_like_key_auth(header: str) -> bool:
    scheme = header.split(" ", 1)[0].lower()
    return scheme in {"basic", "bearer"}


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication with a secret key. Returns (principal, principal)."""

    allow_public_only = False

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header or not _looks_like_key_auth(header):
            return None
        try:
            principal = authenticate_header(header, allow_public_only=self.allow_public_only)
        except AuthenticationFailed as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return principal, principal

    def authenticate_header(self, request):
        return 'Basic realm="lookglass"'


class PublicKeyAuthentication(ApiKeyAuthentication):
    """Also accepts `Bearer pk-lg-…`, for endpoints a browser may call directly."""

    allow_public_only = True
