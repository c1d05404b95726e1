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

# `make test` runs the suite on pytest-xdist workers (gw0, gw1, …). pytest-django gives each worker its
# own test databases (test_lookglass_gw0, test_lookglass_eu_gw0, …); Redis needs the same, or one
# worker's cache, rate-limit windows, key-cache stamps and broker queues would show in another's tests.
# Each worker takes its own logical database (1, 2, …; a serial run keeps 0). Set in the environment, so
# the servers a test starts (gunicorn, serve-regions nodes) inherit it too.
if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    from urllib.parse import urlsplit, urlunsplit

    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:63799/0")  # config/settings.py's default
    _redis_db = int(os.environ["PYTEST_XDIST_WORKER"][2:]) + 1
    for _name in ("REDIS_URL", "CELERY_BROKER_URL"):
        if os.environ.get(_name):
            os.environ[_name] = urlunsplit(urlsplit(os.environ[_name])._replace(path=f"/{_redis_db}"))

from config.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,  # noqa: F405 - the per-region export storages (config/export_storage.py)
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
