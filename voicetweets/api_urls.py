from django.urls import path  # noqa: F401

# REST API of the voicetweets app, mounted under /api/v1/.
urlpatterns: list = []
