from django.urls import path  # noqa: F401

# REST API of the accounts app, mounted under /api/v1/.
urlpatterns: list = []
