from django.urls import path  # noqa: F401

# Websocket routes of the spaces app.
websocket_urlpatterns: list = []
