"""Fleetdeck settings, read from the environment only (12-factor).

Two ways to run (DESIGN.md): the embedded default needs nothing but Python (SQLite under var/,
kombu's filesystem broker); FLEETDECK_ENV=production selects safe production defaults and refuses
to start without SECRET_KEY and ALLOWED_HOSTS. Every variable is listed in the README.
"""

from pathlib import Path

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured

from .env import get_bool, get_from_env, get_int, get_list

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(get_from_env("FLEETDECK_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

FLEETDECK_ENV = get_from_env("FLEETDECK_ENV", "development")
PRODUCTION = FLEETDECK_ENV == "production"

if PRODUCTION:
    SECRET_KEY = get_from_env("SECRET_KEY", required=True, purpose="signing sessions, CSRF tokens and audit hashes")
    ALLOWED_HOSTS = get_list("ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        get_from_env("ALLOWED_HOSTS", required=True, purpose="the host names this server answers to (comma-separated)")
else:
    # A development key: fine on a laptop, refused in production where SECRET_KEY is required.
    SECRET_KEY = get_from_env("SECRET_KEY", "dev-insecure-fleetdeck-key-change-me-0123456789-abcdefghijklmnop")
    ALLOWED_HOSTS = get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

DEBUG = get_bool("DEBUG", not PRODUCTION)
CSRF_TRUSTED_ORIGINS = get_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "mozilla_django_oidc",
    "django_celery_beat",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.catalog",
    "apps.governance",
    "apps.tools",
    "apps.prompts",
    "apps.agents",
    "apps.context",
    "apps.runtime",
    "apps.observability",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.AccessDeniedMiddleware",
]

ROOT_URLCONF = "platform_site.urls"
WSGI_APPLICATION = "platform_site.wsgi.application"
ASGI_APPLICATION = "platform_site.asgi.application"

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
                "apps.core.context_processors.shell",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = get_from_env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'fleetdeck.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=get_int("DATABASE_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while the other writes; IMMEDIATE transactions
    # take the write lock up front so two writers queue instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis ------------------------------------------------------------------------
REDIS_URL = get_from_env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------------------------
# Configured for no lost work: a task is acknowledged only after it finished, a task whose worker
# died goes back to the queue, each worker takes one task at a time, and the broker's visibility
# timeout is longer than the hard time limit of any task, so Redis never redelivers a running one.
CELERY_BROKER_URL = get_from_env("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_TASK_HARD_TIME_LIMIT = get_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = get_int(
    "CELERY_TASK_SOFT_TIME_LIMIT", CELERY_TASK_HARD_TIME_LIMIT - min(60, CELERY_TASK_HARD_TIME_LIMIT // 10)
)
CELERY_VISIBILITY_TIMEOUT = get_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_HARD_TIME_LIMIT * 2)
if PRODUCTION and CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_HARD_TIME_LIMIT:
    # Redis would hand a still-running task to a second worker: the same work done twice.
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT} s) must be longer than CELERY_TASK_TIME_LIMIT "
        f"({CELERY_TASK_HARD_TIME_LIMIT} s), or Redis redelivers running tasks. Raise it or lower the time limit."
    )
CELERY_BROKER_DIR = VAR_DIR / "broker"
CELERY_WORKER_HEARTBEAT_SECONDS = get_int("FLEETDECK_WORKER_HEARTBEAT_SECONDS", 10)
CELERY_WORKER_HEARTBEAT_STALE_SECONDS = get_int("FLEETDECK_WORKER_HEARTBEAT_STALE_SECONDS", 60)

# --- Authentication -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"

OIDC_RP_CLIENT_ID = get_from_env("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_ENABLED:
    _oidc = "the OpenID Connect login (see README, 'Single sign-on')"
    OIDC_RP_CLIENT_SECRET = get_from_env("OIDC_RP_CLIENT_SECRET", required=True, purpose=_oidc)
    OIDC_OP_AUTHORIZATION_ENDPOINT = get_from_env("OIDC_OP_AUTHORIZATION_ENDPOINT", required=True, purpose=_oidc)
    OIDC_OP_TOKEN_ENDPOINT = get_from_env("OIDC_OP_TOKEN_ENDPOINT", required=True, purpose=_oidc)
    OIDC_OP_USER_ENDPOINT = get_from_env("OIDC_OP_USER_ENDPOINT", required=True, purpose=_oidc)
    OIDC_OP_JWKS_ENDPOINT = get_from_env("OIDC_OP_JWKS_ENDPOINT", required=True, purpose=_oidc)
OIDC_OP_LOGOUT_URL = get_from_env("OIDC_OP_LOGOUT_ENDPOINT")
OIDC_RP_SIGN_ALGO = get_from_env("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = get_from_env("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_USE_PKCE = get_bool("OIDC_USE_PKCE", True)
OIDC_OP_LOGOUT_URL_METHOD = "apps.accounts.oidc.provider_logout_url"
OIDC_STORE_ID_TOKEN = bool(OIDC_OP_LOGOUT_URL)
OIDC_CALLBACK_CLASS = "apps.accounts.oidc.AuditedCallbackView"
OIDC_AUTHENTICATE_CLASS = "apps.accounts.oidc.SsoAuthenticateView"
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
# The claim that carries group names, and how group names become roles (README, 'Single sign-on').
FLEETDECK_OIDC_GROUPS_CLAIM = get_from_env("FLEETDECK_OIDC_GROUPS_CLAIM", "groups")
FLEETDECK_OIDC_GROUP_PREFIX = get_from_env("FLEETDECK_OIDC_GROUP_PREFIX", "fleetdeck")

# Password login: "all" (every local account), "break-glass" (only accounts marked break-glass) or "off".
FLEETDECK_PASSWORD_LOGIN = get_from_env("FLEETDECK_PASSWORD_LOGIN", "break-glass" if PRODUCTION else "all")
FLEETDECK_LOGIN_MAX_FAILURES = get_int("FLEETDECK_LOGIN_MAX_FAILURES", 5)
FLEETDECK_LOGIN_WINDOW_SECONDS = get_int("FLEETDECK_LOGIN_WINDOW_SECONDS", 900)

AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.LocalPasswordBackend",
    "guardian.backends.ObjectPermissionBackend",
]
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.insert(0, "apps.accounts.oidc.FleetdeckOIDCBackend")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: anonymous visitors get nothing

# --- Secrets ----------------------------------------------------------------------------------
# Fernet keys, comma-separated, newest first (apps/governance/crypto.py). Required in production;
# in development a key is derived from SECRET_KEY. Rotate: put a new key first, run
# `manage.py rotate_secret_key`, then drop the old one.
FLEETDECK_SECRET_KEYS = get_list("FLEETDECK_SECRET_KEYS")

# --- Runtime (apps/runtime) -------------------------------------------------------------------
# Hosts (names or IP literals, optionally host:port) that HTTP and MCP tools may reach although
# they resolve to loopback or private addresses. Everything else internal is refused (SSRF guard).
FLEETDECK_ALLOWED_INTERNAL_HOSTS = get_list("FLEETDECK_ALLOWED_INTERNAL_HOSTS")
# Programs that MCP tools with the stdio transport may start on a worker (program names, not paths).
FLEETDECK_MCP_STDIO_COMMANDS = get_list("FLEETDECK_MCP_STDIO_COMMANDS")
# How many times a run may call the same tool with the same arguments before the loop breaker stops it.
FLEETDECK_LOOP_BREAKER_REPEATS = get_int("FLEETDECK_LOOP_BREAKER_REPEATS", 3)
# How deep handoffs may nest (a run handing to an agent that hands on ...).
FLEETDECK_MAX_HANDOFF_DEPTH = get_int("FLEETDECK_MAX_HANDOFF_DEPTH", 3)
# How long a tool call waits for a person before its approval expires.
FLEETDECK_APPROVAL_TTL_SECONDS = get_int("FLEETDECK_APPROVAL_TTL_SECONDS", 24 * 3600)
# Webhook requests must be signed within this many seconds of their timestamp.
FLEETDECK_WEBHOOK_TOLERANCE_SECONDS = get_int("FLEETDECK_WEBHOOK_TOLERANCE_SECONDS", 300)

# --- Observability (apps/observability) -------------------------------------------------------
# Also send every span (runs, steps, Django requests, Celery tasks) to this OpenTelemetry
# collector over OTLP/HTTP; the SDK reads OTEL_EXPORTER_OTLP_HEADERS and the other standard variables.
OTEL_EXPORTER_OTLP_ENDPOINT = get_from_env("OTEL_EXPORTER_OTLP_ENDPOINT", "")
# How the runtime's spans reach the span store: batch (a background thread), sync (tests) or off.
FLEETDECK_TRACE_EXPORT = get_from_env("FLEETDECK_TRACE_EXPORT", "batch")
if FLEETDECK_TRACE_EXPORT not in {"batch", "sync", "off"}:
    raise ImproperlyConfigured("FLEETDECK_TRACE_EXPORT must be batch, sync or off.")
# Open spans for Django requests and Celery tasks (they go to the external collector only).
FLEETDECK_INSTRUMENT_FRAMEWORKS = get_bool("FLEETDECK_INSTRUMENT_FRAMEWORKS", True)
# Raw spans older than this are deleted by the hourly cleanup; hourly rollups are kept longer.
FLEETDECK_SPAN_RETENTION_DAYS = get_int("FLEETDECK_SPAN_RETENTION_DAYS", 30)
FLEETDECK_ROLLUP_RETENTION_DAYS = get_int("FLEETDECK_ROLLUP_RETENTION_DAYS", 400)
# OTLP ingest: the largest request body accepted, compressed and after decompression (bytes).
FLEETDECK_INGEST_MAX_BYTES = get_int("FLEETDECK_INGEST_MAX_BYTES", 4 * 1024 * 1024)
FLEETDECK_INGEST_MAX_DECOMPRESSED_BYTES = get_int("FLEETDECK_INGEST_MAX_DECOMPRESSED_BYTES", 16 * 1024 * 1024)
# The fleet dashboard flags the week's cost when it rose more than this percentage over last week's.
FLEETDECK_COST_RISE_PERCENT = get_int("FLEETDECK_COST_RISE_PERCENT", 20)
# This server's public address (https://fleet.example.com), for absolute links in alert webhooks.
FLEETDECK_BASE_URL = get_from_env("FLEETDECK_BASE_URL", "").rstrip("/")
# Prometheus scrapes /metrics with "Authorization: Bearer <this>"; unset, only platform admins may read it.
FLEETDECK_METRICS_TOKEN = get_from_env("FLEETDECK_METRICS_TOKEN", "")

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.api.permissions.TokenScopePermission"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Fleetdeck API",
    "DESCRIPTION": "Control plane for an organisation's AI agents. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Internationalisation, static files ------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = get_from_env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(get_from_env("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Third-party browser code comes from installed packages, never from a CDN or copied files:
# plotly.js from the plotly wheel, Swagger UI and ReDoc from drf-spectacular-sidecar.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(plotly.__file__).parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = get_int("SESSION_COOKIE_AGE", 8 * 3600)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
DATA_UPLOAD_MAX_MEMORY_SIZE = get_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
if PRODUCTION:
    SESSION_COOKIE_SECURE = get_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = get_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = get_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = get_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = get_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = get_bool("SECURE_HSTS_PRELOAD", True)
    if get_bool("FLEETDECK_BEHIND_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "apps.core.logging.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": get_from_env("LOG_LEVEL", "INFO")},
    # The model SDKs' HTTP clients log one line per call at INFO: noise that costs time on every step.
    "loggers": {
        name: {"level": "WARNING"}
        for name in ("django.db.backends", "httpx", "httpcore", "httpx2", "httpcore2", "openai", "anthropic", "mcp")
    },
}
