"""Settings of the example site: a small shop's pages with the voice widget dropped in.

Configured from the environment with django-environ; a ``.env`` file beside
``manage.py`` is read when present (see ``.env.example``). With nothing set it
runs in DEBUG on a SQLite file and talks to ``livekit-server --dev``.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, True),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost"]),
    CSRF_TRUSTED_ORIGINS=(list, []),
)
ENV_FILE = BASE_DIR / ".env"
# Only when present: django-environ would log ".env not found" in every process otherwise,
# the worker's job processes included.
if ENV_FILE.is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env("DEBUG")
# The fallback key only ever serves a DEBUG laptop: it is published, so anyone could sign
# page context (and sessions) with it. Without DEBUG the site refuses to start without one.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off the example site needs its own secret key "
            "in the SECRET_KEY environment variable (or .env), e.g. from "
            "python -c 'from django.core.management.utils import get_random_secret_key; "
            "print(get_random_secret_key())'."
        )
    SECRET_KEY = "insecure-example-site-key-for-local-development-only"
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "voice_widget",
    # The worker's app: safe in every process, it imports livekit.agents only when it runs.
    "agent_runner",
    "example_site.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_site.urls"

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
            ],
        },
    },
]

ASGI_APPLICATION = "example_site.asgi.application"
WSGI_APPLICATION = "example_site.wsgi.application"

DATABASES = {
    # An empty DATABASE_URL means "not set": the SQLite file beside manage.py.
    "default": environ.Env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A burst of visitors used to meet "database is locked": writers now wait for the lock
    # (timeout, seconds), take it when their transaction begins (IMMEDIATE, so a reader
    # never has to upgrade and fail), and WAL lets readers go on while one writes.
    # Fine for a demo; PostgreSQL is still the database for production.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )
elif DATABASES["default"]["ENGINE"].endswith((".postgresql", ".postgis")):
    # Each process keeps a pool of connections (Django's, psycopg_pool; opened on first query)
    # and every request borrows one: opening a connection per request cost 20% of a worker's
    # time. Not CONN_MAX_AGE: under ASGI (daphne) each request's sync code runs on a thread
    # of its own, so a kept connection was never reused and lingered until garbage collection
    # ("too many clients already"). A process holds at most DATABASE_POOL_MAX_SIZE
    # connections; a request finding none free waits up to DATABASE_POOL_TIMEOUT seconds.
    # Health checks: Django has the pool check a connection before lending it.
    # DATABASE_POOL_MAX_SIZE=0 turns the pool off: then CONN_MAX_AGE applies (WSGI only).
    _pool_max_size = env.int("DATABASE_POOL_MAX_SIZE", default=10)
    if _pool_max_size > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", default=1), _pool_max_size),
            "max_size": _pool_max_size,
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    # Another server database (MySQL…) has no pool in Django. CONN_MAX_AGE (seconds a
    # connection is kept) pays off under WSGI only: under ASGI a kept connection is never
    # reused (see above), so the default, for the daphne-served example, is 0.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# The session endpoint's throttles count in the default cache. One process can count in its
# own memory (Django's default), but several processes must share one cache with atomic
# increments, or each counts alone: set REDIS_URL (e.g. redis://127.0.0.1:6379/0) for them.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "example_site" / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "django-voice-widget API",
    "VERSION": "1",
}

# CORS for the widget's API is decided per persona by voice_widget (see its README section);
# nothing else on this site is shared with other origins.
CORS_URLS_REGEX = r"^/voice-widget/api/.*$"
# Embedding sites call the API without the visitor's cookies; a session (and its CSRF
# check) only applies on this site's own pages. See the README's "Origins, CORS and CSRF".
CORS_ALLOW_CREDENTIALS = False

# The channel layer carries the worker's transcript lines to the admin's live conversation
# page. With REDIS_URL (e.g. redis://127.0.0.1:6379/0) it is channels_redis, shared by the
# web processes and the workers; without it, channels' in-memory layer, which cannot reach
# another process: the live page then reads new lines from the database every second.
REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYERS = {
    "default": (
        {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}

VOICE_WIDGET = {
    "LIVEKIT_URL": env("LIVEKIT_URL", default=None),
    "LIVEKIT_API_KEY": env("LIVEKIT_API_KEY", default=None),
    "LIVEKIT_API_SECRET": env("LIVEKIT_API_SECRET", default=None),
    "AGENT_NAME": env("VOICE_WIDGET_AGENT_NAME", default="voice-widget"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "voice_widget": {
            "handlers": ["console"],
            "level": env("VOICE_WIDGET_LOG_LEVEL", default="INFO"),
            # Not also through the root logger's handler (daphne adds one): one line a record.
            "propagate": False,
        },
        "agent_runner": {
            "handlers": ["console"],
            "level": env("VOICE_WIDGET_LOG_LEVEL", default="INFO"),
            # Not also through the root logger's handler (daphne adds one): one line a record.
            "propagate": False,
        },
    },
}
