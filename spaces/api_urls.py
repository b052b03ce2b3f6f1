from django.urls import path  # noqa: F401

# REST API of the spaces app, mounted under /api/v1/.
urlpatterns: list = []
