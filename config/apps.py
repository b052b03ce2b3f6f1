from django.apps import AppConfig


class SalonConfig(AppConfig):
    """The project package as an app, so it can hold project-wide commands (serve, seed_demo)."""

    name = "config"
    label = "salon"
    verbose_name = "Salon"
