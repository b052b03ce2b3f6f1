"""Settings for a test server with a way to block its event loop (tests/blocking_urls.py)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.blocking_urls"
