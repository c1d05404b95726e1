"""API key material: generation, HMAC with the server-side pepper, constant-time checks."""

import hashlib
import hmac
import secrets

from django.conf import settings

PUBLIC_PREFIX = "pk-lg-"
SECRET_PREFIX = "sk-lg-"


def new_public_key() -> str:
    return PUBLIC_PREFIX + secrets.token_hex(16)


def new_secret_key() -> str:
    # 32 bytes from the OS CSPRNG: unguessable, so a fast keyed hash is enough (no salt, no KDF).
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hmac.new(settings.API_KEY_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


# Compared against when the public key is unknown, so that case costs the same as a wrong secret.
DUMMY_HASH = "0" * 64


def hash_token(token: str) -> str:
    """Same keyed hash for other bearer tokens we issue (invitation links)."""
    return hash_secret(token)
