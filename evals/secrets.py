"""LLM-connection secret keys at rest: MultiFernet over `LLM_SECRET_KEYS` (the first key encrypts,
every key decrypts, so keys rotate without downtime; `rotate` re-encrypts a token under the first).

A key in the setting may be any string: it is stretched with SHA-256 into a Fernet key, so an
operator can paste `secrets.token_urlsafe(48)` (what `make run` generates). Plain secrets never leave
this module except to the SDK client that needs them; logs and API answers get `mask(...)`.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted under a key that is no longer configured."""


def _fernet_key(material: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


@lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(k)) for k in keys])


def cipher() -> MultiFernet:
    keys = tuple(k for k in settings.LLM_SECRET_KEYS if k) or ("llm-secrets:" + settings.SECRET_KEY,)
    return _cipher(keys)


def encrypt(secret: str) -> str:
    return cipher().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "the stored secret key cannot be decrypted with the configured LLM_SECRET_KEYS; enter it again"
        ) from None


def rotate(token: str) -> str:
    """The same secret, encrypted under the first (newest) key."""
    try:
        return cipher().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the stored secret key cannot be decrypted with the configured keys") from None


def mask(secret: str) -> str:
    """What a person may see: enough to recognise the key, never enough to use it."""
    secret = secret or ""
    if len(secret) <= 8:
        return "•" * len(secret)
    return f"{secret[:3]}…{secret[-4:]}"
