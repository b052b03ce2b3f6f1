from django.apps import AppConfig


class SalonConfig(AppConfig):
    """The project package as an app, so it can hold project-wide commands (serve, seed_demo)."""

    name = "config"
    label = "salon"
    verbose_name = "Salon"

    def ready(self):
        from config.client_address import trusted_proxy_networks

        # A malformed SALON_TRUSTED_PROXIES stops the process at start, not every request later.
        trusted_proxy_networks()
