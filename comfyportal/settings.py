"""comfyportal settings: everything comes from the environment, with embedded defaults.

Unset ``DATABASE_URL`` means a SQLite file under ``var/``; unset ``REDIS_URL`` means the
embedded Redis that ``make run`` starts on a unix socket under ``var/`` (see
``comfyportal/embedded.py``). Production sets ``DEBUG=0``, ``SECRET_KEY`` and
``ALLOWED_HOSTS`` at least; ``python manage.py check --deploy`` then passes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "")
    if value.strip() == "":
        return default
    return int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return default if value.strip() == "" else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_secret_key(path: Path) -> str:
    """A key generated once into var/ so that sessions survive restarts of a local install.

    Several processes may start together on a fresh folder (web and worker): each writes its
    candidate to a private temporary file and links it into place; os.link fails if the key
    exists, so the first writer wins and every process reads that one key (different keys in
    web and worker make django-q's signed tasks fail with BadSignature).
    """
    if not path.exists():
        candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(50))
            try:
                os.link(candidate, path)
            except FileExistsError:
                pass  # another process won: read its key
        finally:
            candidate.unlink()
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY") or (local_secret_key(VAR_DIR / "secret_key") if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "comfyportal.apps.PortalAdminConfig",  # django.contrib.admin under our name (comfyportal/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # Swagger UI for /api/docs from our static files, not a CDN
    "template_partials",
    "channels",
    # Before django_q: its `qcluster` command replaces django-q2's (a stop that cannot hang).
    "comfyportal",
    "django_q",
    "rest_framework_simplejwt.token_blacklist",
    "accounts",
    "nodes",
    "workflows",
    "jobs",
    "webhooks",
    "usage",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "comfyportal.middleware.ContentSecurityPolicyMiddleware",
    "comfyportal.middleware.RequestLogMiddleware",
    "comfyportal.middleware.ApiJsonErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.BlockedUserMiddleware",
    "accounts.middleware.PagePostRateLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "comfyportal.urls"
ASGI_APPLICATION = "comfyportal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.views.user_menu",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'comfyportal.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A connection pool per process: a web instance's request threads and a runner's
    # database threads each use a connection per thread; the pool bounds and reuses them.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "pool": {"min_size": 1, "max_size": env_int("DB_POOL_SIZE", 10), "timeout": 30},
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # Several processes (web, worker) share the file: wait for locks, take the write
        # lock at BEGIN so that read-then-write transactions do not deadlock.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: channel layer, django-q2 broker, cache --------------------------------------
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env_str("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}"
# Every key, queue and channel this deployment uses in Redis starts with this, so that
# deployments (or test runs) sharing one Redis never take each other's work. Instances of
# one deployment share a DATABASE_URL, hence one namespace.
REDIS_NAMESPACE = (
    env_str("REDIS_NAMESPACE") or hashlib.sha1(str(DATABASES["default"].get("NAME")).encode()).hexdigest()[:8]
)
REDIS_PREFIX = f"cp:{REDIS_NAMESPACE}"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
    }
}

# Redis pub/sub: a group message is one PUBLISH, pushed to the web instances that hold the
# group's sockets. Job events only notify (the job row is the truth; pages poll as a
# fallback), so at-most-once delivery is right, and it saves the list-based layer's several
# round trips per message on both ends.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}:asgi"},
    }
}

JOB_TIMEOUT = env_float("JOB_TIMEOUT", 3600.0)
RUNNER_LEASE = env_int("RUNNER_LEASE", 600)

Q_CLUSTER = {
    "name": f"comfyportal-{REDIS_NAMESPACE}",
    "workers": env_int("Q_WORKERS", 4),
    "recycle": 500,
    # A job runner dispatches for RUNNER_LEASE seconds, then finishes the jobs it holds
    # (each bounded by JOB_TIMEOUT): no task may run longer than that.
    "timeout": int(RUNNER_LEASE + JOB_TIMEOUT + 60),
    "retry": int(RUNNER_LEASE + JOB_TIMEOUT + 120),
    "max_attempts": 1,
    "queue_limit": 50,
    "bulk": 1,
    "catch_up": False,
    "save_limit": 200,
    "ack_failures": True,
    "redis": REDIS_URL,
    "orm": None,
    "sync": env_bool("Q_SYNC", False),
    "poll": 0.2,
    "guard_cycle": 0.5,
    "scheduler": True,
}

# --- Auth -----------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalogue"
LOGOUT_REDIRECT_URL = "login"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("ACCESS_TOKEN_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("REFRESH_TOKEN_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# Site defaults for user limits (a user's own value, when set, wins).
DEFAULT_MAX_CONCURRENT_JOBS = env_int("DEFAULT_MAX_CONCURRENT_JOBS", 4)
DEFAULT_MAX_QUEUED_JOBS = env_int("DEFAULT_MAX_QUEUED_JOBS", 100)
DEFAULT_DAILY_JOB_LIMIT = env_int("DEFAULT_DAILY_JOB_LIMIT", 1000)
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 120)  # requests per minute per user; 0 = off
LOGIN_RATE_LIMIT = env_int("LOGIN_RATE_LIMIT", 10)  # failed logins per 5 minutes per (username, IP) and per IP
LOGIN_USER_RATE_LIMIT = env_int("LOGIN_USER_RATE_LIMIT", 100)  # failed logins per hour per username, from any IP
DEFAULT_STORAGE_QUOTA_MB = env_int("DEFAULT_STORAGE_QUOTA_MB", 2048)  # uploads + results kept per user, MiB

# --- Nodes and jobs -------------------------------------------------------------------
COMFY_NODES = env_list("COMFY_NODES")
# The test nodes `make demo` started, registered as demo-1..N (see nodes.services.register_demo_nodes).
DEMO_NODES = env_list("DEMO_NODES")
NODE_HEALTH_INTERVAL = env_float("NODE_HEALTH_INTERVAL", 10.0)
NODE_OFFLINE_AFTER = env_int("NODE_OFFLINE_AFTER", 2)
NODE_OBJECT_INFO_EVERY = env_float("NODE_OBJECT_INFO_EVERY", 300.0)
NODE_CONNECT_TIMEOUT = env_float("NODE_CONNECT_TIMEOUT", 3.0)
NODE_READ_TIMEOUT = env_float("NODE_READ_TIMEOUT", 30.0)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
JOB_RUNNERS = env_int("JOB_RUNNERS", 2)
RUNNER_STALE_AFTER = env_float("RUNNER_STALE_AFTER", 20.0)
DISPATCH_TICK = env_float("DISPATCH_TICK", 1.0)
# HTTP requests running Django code at once per web instance (see comfyportal/asgi_handler.py).
# Two keep the queue ahead of a busy pool during a burst of submits and leave the cores to the
# runners and the live events; more only compete with them for the interpreter (docs/performance.md).
WEB_REQUEST_THREADS = env_int("WEB_REQUEST_THREADS", 2)
# Connections a web instance's TCP socket queues before accepting them (comfyportal/daphne_backlog.py):
# room for every open page reconnecting at once after a restart.
WEB_LISTEN_BACKLOG = env_int("WEB_LISTEN_BACKLOG", 2048)
# While jobs keep being claimed, a runner's dispatch steps are at least this far apart (a slot
# freed by a fast prompt waits less: jobs.runner.Runner.slot_freed).
DISPATCH_MIN_GAP = env_float("DISPATCH_MIN_GAP", 0.05)
RESULT_RETENTION_DAYS = env_int("RESULT_RETENTION_DAYS", None)
# A worker (manage.py qcluster) told to stop kills whatever of it still runs after this long.
WORKER_STOP_TIMEOUT = env_float("WORKER_STOP_TIMEOUT", 10.0)
# Model affinity (jobs.scheduler): among free able nodes, prefer one that still holds the job's
# model files; a job that waited longer than MODEL_AFFINITY_MAX_WAIT seconds takes any able node.
MODEL_AFFINITY = env_bool("MODEL_AFFINITY", True)
MODEL_AFFINITY_MAX_WAIT = env_float("MODEL_AFFINITY_MAX_WAIT", 5.0)
# How long an Idempotency-Key sent with a submit names its job (jobs/idempotency.py).
IDEMPOTENCY_HOURS = env_int("IDEMPOTENCY_HOURS", 24)
# Webhooks (webhooks/): a URL resolving to a loopback, private or link-local address is refused
# unless this is on (tests and local setups only: it opens the internal network to users).
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)  # seconds per attempt
WEBHOOK_RETRY_HOURS = env_int("WEBHOOK_RETRY_HOURS", 24)  # retries stop this long after the event
# /ws/jobs/ resume (docs/live-events.md): a client whose cursor is older than this many
# changed jobs gets a fresh snapshot (`reset`) instead of the changes.
WS_RESUME_MAX_JOBS = env_int("WS_RESUME_MAX_JOBS", 500)
# Threads (each with a database connection) that read what connecting /ws/jobs/ clients are
# sent (two more log them in), apart from the thread of Django's sync code (jobs/ws_threads.py).
WS_CATCH_UP_THREADS = env_int("WS_CATCH_UP_THREADS", 2)

# --- Files ----------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "/media/"  # never served publicly: files go through auth-checked views
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 25 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 40_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Decoding an upload (up to 3 s for a large image) runs off the request threads, in this many
# threads per web instance; a request waiting for it holds no request slot (core/offload.py).
UPLOAD_DECODE_THREADS = env_int("UPLOAD_DECODE_THREADS", 1)
# Uploads being decoded or waiting for it at once, per user and in all, per web instance; more → 429.
UPLOAD_DECODES_PER_USER = env_int("UPLOAD_DECODES_PER_USER", 2)
UPLOAD_DECODE_QUEUE = env_int("UPLOAD_DECODE_QUEUE", 16)
# A picture of at most this many pixels (by its header) is decoded on the request thread: a few
# ms, less than the hand-over to a decoding thread costs. 0 = every upload goes to those threads.
UPLOAD_INLINE_PIXELS = env_int("UPLOAD_INLINE_PIXELS", 1024 * 1024)
# An upload no job has used is deleted after this many hours (by the hourly clean-up); 0 = kept.
UPLOAD_UNUSED_HOURS = env_int("UPLOAD_UNUSED_HOURS", 24)
# Uploaded video and audio (checked again against each form field's own limits).
MEDIA_UPLOAD_MAX_BYTES = env_int("MEDIA_UPLOAD_MAX_BYTES", 100 * 1024 * 1024)
MEDIA_UPLOAD_MAX_SECONDS = env_float("MEDIA_UPLOAD_MAX_SECONDS", 300.0)
MEDIA_UPLOAD_MAX_PIXELS = env_int("MEDIA_UPLOAD_MAX_PIXELS", 3840 * 2160)
MEDIA_UPLOAD_MAX_FRAMES = env_int("MEDIA_UPLOAD_MAX_FRAMES", 18_000)
# Set to nginx's internal location (e.g. "/protected/") to hand file bodies to nginx with
# X-Accel-Redirect after the owner check, instead of streaming them through Python
# (docs/deploy.md). Empty: Django serves them itself, byte ranges included.
FILES_X_ACCEL_REDIRECT = env_str("FILES_X_ACCEL_REDIRECT") or ""

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
SERVE_STATIC = env_bool("SERVE_STATIC", True)

# --- i18n -----------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_TZ = True

# --- Security (production defaults, each switchable) ------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# Off unless the domain is to be submitted to the browsers' preload list (hard to undo: every
# subdomain must serve HTTPS for good). Django's deploy check warns when it is off (W021); that
# warning is silenced then, on purpose, so that `check --deploy --fail-level WARNING` passes.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
METRICS_TOKEN = env_str("METRICS_TOKEN")
# /metrics names nodes and workflows: without METRICS_TOKEN it is open only for a local look
# (DEBUG=1) and answers 404 in production.
METRICS_OPEN_WITHOUT_TOKEN = DEBUG
# Content-Security-Policy (django-csp) on every answer: scripts, styles and everything else only
# from this site's own files (no inline script, style or event attribute, no eval), WebSockets to
# this host only (added per request by comfyportal.middleware), never framed, no plugins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],  # data: icons in Swagger's CSS; blob: upload previews
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# A running job's progress ticks over /ws/jobs/: at most one per this many seconds (the
# latest waits for the interval's end; the job's end drops it). 0 sends every tick.
PROGRESS_EVENT_INTERVAL = env_float("PROGRESS_EVENT_INTERVAL", 0.25)
# Benchmarks only: progress events carry when they left the runner, Redis and the web tier.
EVENT_TIMESTAMPS = env_bool("EVENT_TIMESTAMPS", False)

# --- Logging: one readable line per request and per job event on stdout -------------------
LOG_FORMAT = env_str("LOG_FORMAT", "text")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "comfyportal.logging.JsonFormatter"},
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django-q": {"level": "WARNING"},
    },
}
