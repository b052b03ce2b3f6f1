from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A Salon member. Custom from the first migration so profile fields can live here."""

    # Shown instead of the username wherever people are listed; may contain spaces and emoji.
    display_name = models.CharField(max_length=50, blank=True)
    bio = models.CharField(max_length=160, blank=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def name(self) -> str:
        return self.display_name or self.username
