"""Lookglass settings. Every value comes from the environment through `config.env.env`.

`.env.example` documents each variable; production refuses to start without its secrets.
"""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config import compiled
from config.env import env
from config.export_storage import export_storages, parse_export_storage_urls
from config.regions import parse_data_regions, parse_region_urls, parse_serve_regions, region_alias

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.bool("DEBUG", default=False)
# The ingest hot path as compiled extensions where built and current (config/compiled.py). Routed
# here because settings load before any app module, so no hot-path module is imported yet.
COMPILED_MODULES = env.str("COMPILED_MODULES", default="auto")
COMPILED_MODULES_LOADED = compiled.install(COMPILED_MODULES)
VERSION = "0.1.0"

SECRET_KEY = env.str("SECRET_KEY", default="")
API_KEY_PEPPER = env.str("API_KEY_PEPPER", default="")
if not DEBUG:
    missing = [name for name, value in (("SECRET_KEY", SECRET_KEY), ("API_KEY_PEPPER", API_KEY_PEPPER)) if not value]
    if missing:
        raise ImproperlyConfigured(
            f"{' and '.join(missing)} must be set in production (DEBUG is off). "
            "Generate with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
else:
    # Development only: fixed, well-known values so a debug shell starts without ceremony.
    SECRET_KEY = SECRET_KEY or "insecure-dev-secret-key-do-not-use-in-production"
    API_KEY_PEPPER = API_KEY_PEPPER or "insecure-dev-pepper"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000")
# Tenant-chosen outbound URLs (webhooks, LLM connections): internal addresses are refused
# unless allowed here (tenancy/outbound.py).
OUTBOUND_ALLOW_PRIVATE = env.bool("OUTBOUND_ALLOW_PRIVATE", default=False)
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])
# Keys that encrypt LLM-connection secrets at rest (evals/secrets.py, MultiFernet): the first
# encrypts, all decrypt, so a new key goes first and the old one stays until `manage.py
# rotate_llm_secrets` has re-encrypted. Unset: one key derived from SECRET_KEY.
LLM_SECRET_KEYS = env.list("LLM_SECRET_KEYS", default=[])
# Evaluations (evals/): judge calls in flight per job batch, and targets per job batch.
EVAL_JUDGE_CONCURRENCY = env.int("EVAL_JUDGE_CONCURRENCY", default=32)
EVAL_JOB_BATCH = env.int("EVAL_JOB_BATCH", default=200)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "tenancy",
    "pricing",
    "privacy",
    "scores",
    "traces",
    "ingest",
    "prompts",
    "evals",
    "feedback",
    "billing",
    "monitoring",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, with a plain response's policy built once (tenancy/csp.py).
    "tenancy.csp.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: a chunked body must be readable before anything parses request.POST.
    "tenancy.chunked.ChunkedBodyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Django's, with the message storage made when first used (tenancy/middleware.py).
    "tenancy.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenancy.middleware.DatabaseUnavailableMiddleware",
    # Innermost: a project of a region this node does not serve is redirected before any view runs.
    "config.region_routing.RegionRoutingMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "tenancy.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The Langfuse SDKs POST to routes without a trailing slash; a redirect would break them.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "billing.context.quota_warnings",
            ],
        },
    },
]

# --- Databases: control plane on `default`, one data-plane database per region --------------
DB_POOL = env.bool("DB_POOL", default=True)
DB_POOL_MAX = env.int("DB_POOL_MAX", default=8)


# --- Database timeouts: no request waits long on a slow, locked, frozen or unreachable database ---
# Seconds to establish a connection (libpq's minimum is 2).
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=2)
# Seconds a request waits for a free pooled connection before it answers 503.
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=2.0)
# Server-side limits for web requests (milliseconds); a timeout answers 503 + Retry-After.
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=30_000)
DB_LOCK_TIMEOUT_MS = env.int("DB_LOCK_TIMEOUT_MS", default=5_000)
# Celery workers (purges, backfills) replace those with their own, longer, limits.
DB_WORKER_STATEMENT_TIMEOUT_MS = env.int("DB_WORKER_STATEMENT_TIMEOUT_MS", default=600_000)
DB_WORKER_LOCK_TIMEOUT_MS = env.int("DB_WORKER_LOCK_TIMEOUT_MS", default=30_000)
# A server that cannot enforce its own timeouts (frozen, cut off): a wait this long makes the pool's
# connections probe the server, and a server silent for DB_PROBE_TIMEOUT_SECONDS gets them cut
# (config/db.py).
DB_STALL_SECONDS = env.float("DB_STALL_SECONDS", default=1.0)
DB_PROBE_TIMEOUT_SECONDS = env.float("DB_PROBE_TIMEOUT_SECONDS", default=0.75)
# `GET /api/public/health?failIfDatabaseUnavailable=true` answers 503 when its probe takes longer.
HEALTH_DATABASE_TIMEOUT_SECONDS = env.float("HEALTH_DATABASE_TIMEOUT_SECONDS", default=1.5)


def _database(url: str) -> dict:
    config = env.db_url_config(url)
    config.setdefault("OPTIONS", {})
    config["CONN_HEALTH_CHECKS"] = True
    if DB_POOL:
        from config.db import DeadlineConnection

        config["OPTIONS"]["pool"] = {
            "min_size": 1, "max_size": DB_POOL_MAX, "timeout": DB_POOL_TIMEOUT,
            "connection_class": DeadlineConnection,
        }
    else:
        config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    config["OPTIONS"].setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
    config["OPTIONS"].setdefault(
        "options", f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS} -c lock_timeout={DB_LOCK_TIMEOUT_MS}"
    )
    return config


DATABASE_URL = env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:54329/lookglass")
DATABASES = {"default": _database(DATABASE_URL)}

# DATA_REGIONS="eu=postgres://…/lookglass_eu,us=postgres://…/lookglass_us". Without it there is one
# region, `default`, stored on the default database.
DATA_REGIONS = parse_data_regions(env.str("DATA_REGIONS", default=""))
# SERVE_REGIONS="eu": the regions this node serves (default: all). It connects only to their databases,
# its Celery workers consume only their queues, and a request for a project of another region is
# answered 307 to that region's base URL in REGION_URLS ("eu=https://eu.example,us=https://us.example";
# 421 when none is configured) without ever touching that region's database (config/region_routing.py).
SERVE_REGIONS = parse_serve_regions(env.str("SERVE_REGIONS", default=""), DATA_REGIONS)
REGION_URLS = parse_region_urls(env.str("REGION_URLS", default=""), DATA_REGIONS)
for _name, _url in DATA_REGIONS.items():
    if _url is not None and _name in SERVE_REGIONS:
        DATABASES[region_alias(_name)] = _database(_url)
DEFAULT_REGION = env.str("DEFAULT_REGION", default=next(iter(DATA_REGIONS)))
if DEFAULT_REGION not in DATA_REGIONS:
    raise ImproperlyConfigured(f"DEFAULT_REGION={DEFAULT_REGION!r} is not one of DATA_REGIONS {list(DATA_REGIONS)}")
DATABASE_ROUTERS = ["config.db_router.PlaneRouter"]

# --- Redis, cache, Celery ----------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:63799/0")
# Every Redis client gives up after these many seconds (connect, then each reply), so a stalled Redis
# costs a request at most that long: the cache users fall back to the database or fail open.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=0.5)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
# After a Redis command timed out or could not connect, cache calls fail at once for this long.
REDIS_RETRY_AFTER_SECONDS = env.float("REDIS_RETRY_AFTER_SECONDS", default=1.0)
CACHES = {
    "default": {
        # Django's RedisCache, refusing commands at once for a moment after Redis failed to answer.
        "BACKEND": "config.cache.FailFastRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "lg",
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT},
    }
}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
# A visibility timeout longer than the hard time limit, so acks_late tasks are not redelivered
# while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # Publishing (on the web path, after commit) must not hang on a stalled broker.
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=2.0),
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
# One quick retry (a dropped idle connection), then the publisher gives up (tenancy/tasks.py).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Auth, sessions, security -------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (django-csp). Our templates mark their inline <style> and
# <script> with `request.csp_nonce`; nothing inline runs without it. The hash allows the one inline
# <style> of Django's own admin change list (tests/tenancy/test_csp.py checks it against the installed Django).
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE, "'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='"],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Lookglass <noreply@localhost>")
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)

# --- Sign-in throttling (django-axes; hooks in tenancy/login_throttle.py) -----------------
# Failed sign-ins (console login, invitation page) are counted per account and per client address,
# separately. LOGIN_FAILURE_LIMIT failures on either refuse sign-in, right password or not, until
# LOGIN_COOLOFF_MINUTES pass without a new failure; a successful sign-in clears that account's count.
# Unlock early with `manage.py axes_reset_username <email>` or `axes_reset_ip <address>`.
INSTALLED_APPS = [*INSTALLED_APPS, "axes"]
MIDDLEWARE = [*MIDDLEWARE, "axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "tenancy.login_throttle.LoginThrottleHandler"
# Sign-in forms post the email as `username` (Django's AuthenticationForm), not as the model's `email`.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "tenancy.login_throttle.username"
AXES_CLIENT_IP_CALLABLE = "tenancy.login_throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "tenancy.login_throttle.lockout_response"
# Never store passwords or invitation tokens in the failed-attempt rows.
AXES_SENSITIVE_PARAMETERS = [
    "username", "ip_address", "password1", "password2", "token", "csrfmiddlewaretoken"
]
# Only failures are kept (they expire); no per-login history table growing forever.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
# Proxies in front of Lookglass that append the client address to X-Forwarded-For (the client is the
# entry that many from the right). Default: 1 with BEHIND_TLS_PROXY, else 0 (the socket address).
LOGIN_TRUSTED_PROXY_HOPS = env.int(
    "LOGIN_TRUSTED_PROXY_HOPS", default=1 if env.bool("BEHIND_TLS_PROXY", default=False) else 0
)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() < 60 or LOGIN_TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured(
        "LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be at least 1, "
        "LOGIN_TRUSTED_PROXY_HOPS at least 0"
    )

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "tenancy.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # orjson: deep nesting is a 400, not a RecursionError (tenancy/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "tenancy.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "tenancy.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lookglass API",
    "DESCRIPTION": "Management API (/api/v1) and Langfuse-compatible public API (/api/public).",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The wire-compatible endpoints are plain Django views; config/openapi_wire.py describes them.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi_wire.add_wire_endpoints",
    ],
    # The Swagger UI assets come from a pinned package and are served as our own static files, so
    # /api/docs/ works on an air-gapped host (a CDN `@latest` made it blank offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for the privacy jobs' status (privacy.models.JobStatus: erasure requests and exports).
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": ["queued", "running", "done", "failed"]},
}

# CORS: browser feedback is the only cross-origin use, with origins allowed per project, so
# `feedback/cors.py` answers it rather than a global middleware.

# Request bodies: the ingest views enforce their own, larger, limits after decompression.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60

# --- Static files, i18n, logging ---------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact_secrets": {"()": "tenancy.logging.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Ingestion ---------------------------------------------------------------------------
# Largest request body the ingest endpoints accept, counted after decompression (gzip bombs stop here).
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=5 * 1024 * 1024)
# OTLP/HTTP trace exports (`/v1/traces`, `/api/public/otel/v1/traces`): the OTLP spec's recommended cap
# and the Langfuse v5 SDK's default batch limit, after decompression; larger bodies get 413.
OTLP_MAX_BODY_BYTES = env.int("OTLP_MAX_BODY_BYTES", default=64 * 1024 * 1024)
# The ingest writer's statements are server-side prepared on the pooled connection (planned once, not per
# request; ingest/writer.py). Turn off behind a transaction-mode pooler that cannot hold prepared statements
# (PgBouncer before 1.22 or without `max_prepared_statements`): its next transaction may run on another server.
INGEST_PREPARED_STATEMENTS = env.bool("INGEST_PREPARED_STATEMENTS", default=True)

# --- Prompt registry ---------------------------------------------------------------------
# Prompt fetches are served from Redis (invalidated on every write) and, in front of it, a small
# per-process LRU whose entries other processes may serve for at most its TTL after a write.
PROMPT_CACHE_TTL_SECONDS = env.int("PROMPT_CACHE_TTL_SECONDS", default=600)
PROMPT_CACHE_LOCAL_TTL_SECONDS = env.float("PROMPT_CACHE_LOCAL_TTL_SECONDS", default=2.0)
PROMPT_CACHE_LOCAL_MAX_ENTRIES = env.int("PROMPT_CACHE_LOCAL_MAX_ENTRIES", default=2048)

# --- End-user feedback -------------------------------------------------------------------
# Browser feedback (`POST /api/v1/feedback`, and `POST /api/public/scores` with the public key alone):
# requests per minute per API key and per client IP, in fixed one-minute windows in Redis (→ 429 with
# Retry-After). 0 turns a limit off. Secret-key callers (a project's own servers) are not limited here.
FEEDBACK_RATE_LIMIT_PER_KEY = env.int("FEEDBACK_RATE_LIMIT_PER_KEY", default=600)
FEEDBACK_RATE_LIMIT_PER_IP = env.int("FEEDBACK_RATE_LIMIT_PER_IP", default=30)
# Largest feedback request body in bytes, after decompression (→ 413).
FEEDBACK_MAX_BODY_BYTES = env.int("FEEDBACK_MAX_BODY_BYTES", default=32 * 1024)
# Reverse proxies in front of Lookglass that append the client address to X-Forwarded-For; the client IP
# is the entry that many hops from the right. 0: the socket address (no proxy, or one that hides clients).
FEEDBACK_TRUSTED_PROXY_HOPS = env.int("FEEDBACK_TRUSTED_PROXY_HOPS", default=0)
for _name in ("FEEDBACK_RATE_LIMIT_PER_KEY", "FEEDBACK_RATE_LIMIT_PER_IP", "FEEDBACK_TRUSTED_PROXY_HOPS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 or more, not {globals()[_name]}")
if FEEDBACK_MAX_BODY_BYTES < 1024:
    raise ImproperlyConfigured(f"FEEDBACK_MAX_BODY_BYTES must be at least 1024, not {FEEDBACK_MAX_BODY_BYTES}")

# --- API key cache -----------------------------------------------------------------------
# Seconds a process may reuse an API key row without asking the database; changes to keys are
# still seen within about a second through a generation stamp in Redis. 0 turns the cache off.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=30)

# --- billing: quotas and ingest rate limits (billing/enforcement.py) ------------------------
# Seconds a process reuses an organization's plan limits (changes are seen within a second anyway).
BILLING_CACHE_SECONDS = env.int("BILLING_CACHE_SECONDS", default=60)
# A token bucket holds this many seconds of an ingest rate limit (bursts up to rate × seconds).
BILLING_RATE_BURST_SECONDS = env.float("BILLING_RATE_BURST_SECONDS", default=2.0)
# Retry-After of a quota refusal: the time until the period resets, at most this many seconds, so
# SDKs and exporters keep retrying (and succeed soon after the plan is raised): an OTLP exporter
# drops a batch at once when Retry-After exceeds what is left of its timeout (10 s by default).
BILLING_QUOTA_RETRY_AFTER_SECONDS = env.int("BILLING_QUOTA_RETRY_AFTER_SECONDS", default=5)
# Minutes after an hour ends before the metering job counts it (writes stamped in the hour may
# still be committing).
METERING_GRACE_MINUTES = env.int("METERING_GRACE_MINUTES", default=10)

# --- privacy operations: erasure, retention, exports (privacy/) --------------------------------
# Days an erasure request stays active after it ran, erasing data for the same subject that arrives
# late (SDK retries, queued exports); after it the region forgets the subject (the receipt keeps a hash).
ERASURE_GRACE_DAYS = env.int("ERASURE_GRACE_DAYS", default=7)
# Seconds a web process reuses a project's redaction policy as the shared cache gave it (one Redis read
# per project and period, not per request): a saved policy applies on every other node within this
# time, at once in the process that saved it. 0 reads the shared cache on every request.
REDACTION_POLICY_LOCAL_SECONDS = env.float("REDACTION_POLICY_LOCAL_SECONDS", default=2.0)
# Exports are built in the project's region and stored there: EXPORT_ROOT/<region>/ on the filesystem
# (each region's workers mount their own volume), linked by a signed URL valid this many seconds.
EXPORT_ROOT = env.path("EXPORT_ROOT", default=str(BASE_DIR / ".data" / "exports"))
EXPORT_LINK_SECONDS = env.int("EXPORT_LINK_SECONDS", default=3600)
# A region may keep its exports in an S3-compatible bucket instead (django-storages, boto3):
# "eu=s3://bucket/prefix?endpoint_url=…&region_name=…,us=s3://…" (config/export_storage.py). Each region
# is a STORAGES entry `exports-<region>`; downloads redirect to a presigned URL expiring with the link.
EXPORT_STORAGE_URLS = parse_export_storage_urls(env.str("EXPORT_STORAGE_URLS", default=""), DATA_REGIONS)
STORAGES.update(export_storages(EXPORT_STORAGE_URLS, root=EXPORT_ROOT, regions=DATA_REGIONS,
                                link_seconds=EXPORT_LINK_SECONDS))
