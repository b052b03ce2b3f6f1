from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

# REST API of the spaces app, mounted under /api/v1/.
router = SimpleRouter()
router.register("spaces", api.SpaceViewSet, basename="api-space")
urlpatterns = [
    path("notifications/", api.NotificationListView.as_view(), name="api-notifications"),
    path(
        "notifications/read-all/",
        api.NotificationsReadAllView.as_view(),
        name="api-notifications-read-all",
    ),
    *router.urls,
]
