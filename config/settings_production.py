"""Deployment settings: ``DJANGO_SETTINGS_MODULE=config.settings_production``.

Requires ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``; expects TLS to end at a proxy that
sets ``X-Forwarded-Proto``.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403
from .settings import env_bool, env_int

DEBUG = False

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a random string of 50+ characters")
if not os.environ.get("DJANGO_ALLOWED_HOSTS"):
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the host names Salon serves")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Behind nginx (docs/deploy.md) private audio goes out through its internal location; set it empty
# to have Django stream the files instead, behind a proxy that does not know X-Accel-Redirect.
SALON_PRIVATE_MEDIA_ACCEL_PREFIX = os.environ.get("SALON_PRIVATE_MEDIA_ACCEL_PREFIX", "/_private/")
