from django.apps import AppConfig
from django.core import checks


class SalonConfig(AppConfig):
    """The project package as an app, so it can hold project-wide commands (serve, seed_demo)."""

    name = "config"
    label = "salon"
    verbose_name = "Salon"

    def ready(self):
        from .client_address import trusted_proxy_networks
        from .private_media import check_media_roots

        checks.register(check_media_roots, checks.Tags.security)
        # A malformed SALON_TRUSTED_PROXIES stops the process at start, not every request later.
        trusted_proxy_networks()
