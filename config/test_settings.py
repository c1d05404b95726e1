"""Test settings: the real settings, plus two data regions on two databases of the same server.

Region isolation is only proven when an `eu` and a `us` database both exist, so the suite always
runs with both unless DATA_REGIONS is given explicitly.
"""

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("API_KEY_PEPPER", "test-pepper")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("DB_POOL", "false")

if not os.environ.get("DATA_REGIONS"):
    from urllib.parse import urlsplit, urlunsplit

    _url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:54329/lookglass"))
    os.environ["DATA_REGIONS"] = ",".join(
        f"{name}={urlunsplit(_url._replace(path=f'/lookglass_{name}'))}" for name in ("eu", "us")
    )
    os.environ.setdefault("DEFAULT_REGION", "eu")

from config.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,  # noqa: F405 - the per-region export storages (config/export_storage.py)
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
