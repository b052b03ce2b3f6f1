from django.apps import AppConfig
from django.core import checks


class SalonConfig(AppConfig):
    """The project package as an app, so it can hold project-wide commands (serve, seed_demo)."""

    name = "config"
    label = "salon"
    verbose_name = "Salon"

    def ready(self):
        from .private_media import check_media_roots

        checks.register(check_media_roots, checks.Tags.security)
