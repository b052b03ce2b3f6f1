from django.urls import path

from accounts.consumers import NotificationConsumer
from spaces.routing import websocket_urlpatterns as spaces_websocket_urlpatterns

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    *spaces_websocket_urlpatterns,
]
