"""Settings for bench/bench_pages.py's server: Salon's own, with pages_urls as the URLconf."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "pages_urls"
