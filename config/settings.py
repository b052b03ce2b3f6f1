"""Salon settings, read from the environment.

With nothing set, Salon runs embedded: SQLite, the in-memory channel layer, Celery tasks executed
in-process, a local-memory cache and media under ``var/``. ``DATABASE_URL`` switches the database to
PostgreSQL; ``REDIS_URL`` switches the channel layer, the Celery broker and the cache to Redis.
``config.settings_production`` hardens this module for deployment.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
# Everything Salon writes at run time (SQLite file, media, collected static) lives here.
DATA_DIR = Path(os.environ.get("SALON_DATA_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DJANGO_DEBUG", True)
# The fallback key only serves the embedded default; config.settings_production refuses it.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-embedded-default-key-do-not-use-in-production"
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # daphne first: it replaces runserver with an ASGI server that speaks websockets.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "config.apps.SalonConfig",
    "accounts",
    "voicetweets",
    "spaces",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # Persistent connections: websocket consumers make many short database calls, and a new
    # PostgreSQL connection for each (CONN_MAX_AGE=0) cost more than the queries themselves.
    # No health check by default: Channels closes stale connections around every
    # database_sync_to_async call, so a check would add a ``SELECT 1`` round trip to each of
    # them (a seventh of a websocket join's database time). A connection broken by a database
    # restart fails one call, is then closed because of that error, and the next call
    # reconnects.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("SALON_DB_CONN_MAX_AGE", 300),
            conn_health_checks=env_bool("SALON_DB_HEALTH_CHECKS", False),
        )
    }
    # Websocket consumers' database calls run on this many threads per process, each with its
    # own connection (config/db.py). PostgreSQL only: SQLite has one writer anyway.
    SALON_DB_THREADS = env_int("SALON_DB_THREADS", 4)
    if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...)")
else:
    SALON_DB_THREADS = 0  # Channels' single database thread
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "salon.sqlite3",
            "OPTIONS": {
                # One process, many threads: WAL lets readers run beside the writer, and
                # IMMEDIATE takes the write lock up front instead of failing mid-transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker ---------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED = not REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: a group message is one PUBLISH that Redis fans out to the subscribed
            # processes, instead of one list write per channel in the group (RedisChannelLayer).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "salon"},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "salon",
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # The test suite runs on Redis but executes tasks where they are queued (see config.background).
    CELERY_TASK_ALWAYS_EAGER = env_bool("SALON_CELERY_EAGER", False)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    # Embedded: tasks run in this process, on config.background's threads.
    CELERY_TASK_ALWAYS_EAGER = True

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {}
# With eager Celery: run queued tasks on the caller's thread (tests) instead of a background pool.
SALON_TASKS_SYNCHRONOUS = env_bool("SALON_TASKS_SYNCHRONOUS", False)

# --- Auth and accounts ----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
# allauth's rate limits stay at their defaults (they are on unless set to False); they count
# in the cache, which is Redis in real mode so every process shares the counters.
# Reverse proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For is believed.
# Every limit keyed on an address (DRF throttles, allauth's, our forms') asks config.client_address
# for it; with none configured the header is ignored and the TCP peer is the client.
SALON_TRUSTED_PROXIES = env_list("SALON_TRUSTED_PROXIES", "")

# --- Email ----------------------------------------------------------------------------------
if os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Salon <salon@localhost>")
# Whether real email goes out; features that mail people (reminders) check this.
EMAIL_CONFIGURED = bool(os.environ.get("EMAIL_HOST"))

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # DRF's, refusing malformed keys (e.g. with a NUL byte) before the database sees them.
        "accounts.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonRateThrottle",
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": "60/minute", "user": "1200/minute"},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 20,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Salon API",
    "DESCRIPTION": "Live audio spaces, voice tweets and invite-only membership.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "state"; name each set of choices after its model.
    "ENUM_NAME_OVERRIDES": {
        "ReportStateEnum": "accounts.models.Report.State",
        "RecordingStateEnum": "voicetweets.models.Recording.State",
    },
}

# --- Websockets (served by daphne through `manage.py serve`) --------------------------------
# The largest websocket message daphne accepts; larger ones close the socket with 1009.
# Audio frames are a few hundred bytes and control messages a few kilobytes.
SALON_WEBSOCKET_MAX_MESSAGE_SIZE = env_int("SALON_WEBSOCKET_MAX_MESSAGE_SIZE", 16 * 1024)
SALON_WEBSOCKET_MAX_FRAME_SIZE = env_int("SALON_WEBSOCKET_MAX_FRAME_SIZE", 16 * 1024)
# The largest HTTP request body anywhere (avatars, forms); uploads of audio have their own cap in
# SALON_REQUEST_BODY_LIMITS. Enforced before Django reads the body (config.http).
SALON_MAX_REQUEST_BYTES = env_int("SALON_MAX_REQUEST_BYTES", 10 * 1024 * 1024)

# --- Accounts (invitations, profiles, follows, blocks, suspension) ---------------------------
# Invitations a new member can give; admins grant more from the Django admin.
SALON_INVITATION_QUOTA = env_int("SALON_INVITATION_QUOTA", 2)
SALON_INVITATION_TTL_DAYS = env_int("SALON_INVITATION_TTL_DAYS", 14)
# Signup is only open to holders of a valid invitation (accounts.adapter).
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Avatars: uploads larger than this are refused before decoding; stored as a square WebP.
SALON_AVATAR_MAX_BYTES = env_int("SALON_AVATAR_MAX_BYTES", 5 * 1024 * 1024)
SALON_AVATAR_MAX_PIXELS = 40_000_000
SALON_AVATAR_SIZE = 256
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(
    {
        "invitation_create": "10/hour",
        "profile_list": "120/minute",
        "auth_token": "10/minute",
        "waitlist_join": "5/hour",
        "report_create": "30/hour",
    }
)
# Expired invitations go back to their inviters' quota within the hour.
CELERY_BEAT_SCHEDULE["accounts-expire-invitations"] = {
    "task": "accounts.expire_invitations",
    "schedule": 3600.0,
}

# --- Voice tweets and voice messages: one pipeline ------------------------------------------
SALON_VOICETWEET_MAX_SECONDS = 140
# Longest recording accepted with "post as thread" (split into 140 s parts).
SALON_VOICETWEET_MAX_THREAD_SECONDS = env_int("SALON_VOICETWEET_MAX_THREAD_SECONDS", 15 * 60)
# 64 MB holds 15 minutes of anything compressed, or 11 minutes of 48 kHz mono WAV.
SALON_VOICETWEET_MAX_UPLOAD_BYTES = env_int("SALON_VOICETWEET_MAX_UPLOAD_BYTES", 64 * 1024 * 1024)
# Processing runs in a child process with these bounds; a child that dies rejects the tweet.
SALON_VOICETWEET_PROCESS_SECONDS = env_int("SALON_VOICETWEET_PROCESS_SECONDS", 120)
SALON_VOICETWEET_PROCESS_MEMORY_BYTES = env_int(
    "SALON_VOICETWEET_PROCESS_MEMORY_BYTES", 1536 * 1024 * 1024
)
# A tweet still processing after this long is queued again (its worker died), at most twice.
SALON_VOICETWEET_STALLED_SECONDS = env_int("SALON_VOICETWEET_STALLED_SECONDS", 600)
SALON_VOICETWEET_MAX_ATTEMPTS = 2
# Voice messages go through the same pipeline, with the same caps.
SALON_REQUEST_BODY_LIMITS = {
    "/api/v1/voicetweets/": SALON_VOICETWEET_MAX_UPLOAD_BYTES,
    "/voicetweets/": SALON_VOICETWEET_MAX_UPLOAD_BYTES,
    "/api/v1/conversations/": SALON_VOICETWEET_MAX_UPLOAD_BYTES,
    "/messages/": SALON_VOICETWEET_MAX_UPLOAD_BYTES,
}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(
    {"voicetweet_create": "60/hour", "voicemessage_send": "60/hour"}
)
CELERY_TASK_ROUTES = {
    "voicetweets.process": {"queue": "audio"},
    "voicetweets.process_message": {"queue": "audio"},
}
CELERY_BEAT_SCHEDULE["voicetweets.requeue-stalled"] = {
    "task": "voicetweets.requeue_stalled",
    "schedule": timedelta(minutes=1),
}

# --- Spaces and the live audio engine -------------------------------------------------------
# Staged rollout of hosting: members holding spaces.host_space (the "Space hosts" group admins
# manage) may create spaces; this opens hosting to every member.
SALON_SPACES_HOSTING_OPEN = env_bool("SALON_SPACES_HOSTING_OPEN", False)
SALON_SPACE_MAX_COHOSTS = env_int("SALON_SPACE_MAX_COHOSTS", 2)
SALON_SPACE_MAX_SPEAKERS = env_int("SALON_SPACE_MAX_SPEAKERS", 10)
# Listeners a space admits beyond its host, co-hosts and speakers.
SALON_SPACE_CAPACITY = env_int("SALON_SPACE_CAPACITY", 5000)
SALON_SPACE_MAX_SCHEDULE_DAYS = 14
# Live plus scheduled spaces one member may host at once: a host with dozens could flood the
# hallway (and the sweep) for everyone else.
SALON_SPACE_MAX_OPEN_PER_HOST = env_int("SALON_SPACE_MAX_OPEN_PER_HOST", 3)
SALON_SPACE_REMINDER_MINUTES = 30
# Host's last connection dropped: the space ends after this long unless a co-host takes over.
SALON_SPACE_HOST_GRACE_SECONDS = env_int("SALON_SPACE_HOST_GRACE_SECONDS", 300)
# Presence: every open socket refreshes its participant's last_seen on this interval; a
# participant with no connection left is removed after PRESENCE_TIMEOUT, and one whose
# connections stopped refreshing (their process died) after STALE_SECONDS.
SALON_SPACE_HEARTBEAT_SECONDS = env_int("SALON_SPACE_HEARTBEAT_SECONDS", 10)
SALON_SPACE_PRESENCE_TIMEOUT_SECONDS = env_int("SALON_SPACE_PRESENCE_TIMEOUT_SECONDS", 15)
SALON_SPACE_STALE_SECONDS = env_int("SALON_SPACE_STALE_SECONDS", 30)
# Audio frames a speaker may send: 50 a second is real time; the rest absorbs network bursts.
# A socket over the limit is closed (1008): a flooding speaker never slows the room. The burst
# is 3 s of audio because a stalled server (or network) delivers a speaker's backlog at once.
SALON_AUDIO_MAX_FRAMES_PER_SECOND = env_int("SALON_AUDIO_MAX_FRAMES_PER_SECOND", 60)
SALON_AUDIO_FRAME_BURST = env_int("SALON_AUDIO_FRAME_BURST", 150)
# From this many sockets in one room on one process, listeners get the mix two frames per
# message (spaces/fanout.py): half the sends, for 10 ms more latency on average. 0: never.
SALON_AUDIO_BUNDLE_FROM = env_int("SALON_AUDIO_BUNDLE_FROM", 1000)
# Control messages (JSON) a socket may send: far more than any person clicks. Each is a
# transaction and usually an event to every member, so a socket over the limit is closed (1008).
SALON_SPACE_MESSAGES_PER_SECOND = env_int("SALON_SPACE_MESSAGES_PER_SECOND", 10)
SALON_SPACE_MESSAGE_BURST = env_int("SALON_SPACE_MESSAGE_BURST", 50)
# Reactions are ephemeral; each member may send this many per window per space.
SALON_SPACE_REACTION_RATE = (5, 5)  # (reactions, seconds)
CELERY_BEAT_SCHEDULE.update(
    {
        "spaces.sweep": {"task": "spaces.sweep", "schedule": timedelta(seconds=5)},
        "spaces.send-reminders": {
            "task": "spaces.send_reminders",
            "schedule": timedelta(minutes=1),
        },
    }
)

# --- Replays: recordings of spaces ----------------------------------------------------------
# Replays are deleted this many days after their space ended, unless a moderator holds one.
SALON_REPLAY_RETENTION_DAYS = env_int("SALON_REPLAY_RETENTION_DAYS", 30)
# When a space ends, the process mixing it closes its recording within a second. Processing
# waits this long for that before it joins what is on disk (that process may have died).
SALON_REPLAY_CLOSE_GRACE_SECONDS = 15
# Joining the segments runs in a child process, killed after this long (an hour of audio takes
# well under a minute); a replay whose worker died is processed again after this long.
SALON_REPLAY_PROCESS_SECONDS = env_int("SALON_REPLAY_PROCESS_SECONDS", 900)
SALON_REPLAY_MAX_ATTEMPTS = 3
CELERY_TASK_ROUTES["spaces.process_replay"] = {"queue": "audio"}
CELERY_BEAT_SCHEDULE.update(
    {
        "spaces.requeue-stalled-replays": {
            "task": "spaces.requeue_stalled_replays",
            "schedule": timedelta(minutes=1),
        },
        "spaces.delete-expired-replays": {
            "task": "spaces.delete_expired_replays",
            "schedule": timedelta(hours=1),
        },
    }
)

# --- Internationalisation, static and media -------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("SALON_MEDIA_ROOT", DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Without collectstatic (make run), whitenoise serves straight from the finders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_AGE = int(timedelta(days=30).total_seconds())

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SALON_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
