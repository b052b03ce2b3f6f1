"""The bell over the REST API: thin adapters over notifications' selectors and services."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    text = serializers.CharField()
    url = serializers.CharField(help_text="where it leads, or empty")
    created_at = serializers.DateTimeField()
    read = serializers.BooleanField()


class NotificationListSerializer(serializers.Serializer):
    unread_count = serializers.IntegerField()
    results = NotificationSerializer(many=True)


class NotificationsReadSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="notifications that were unread")
    unread_count = serializers.IntegerField()


def notification_data(notification) -> dict:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "text": notification.text,
        "url": notification.url,
        "created_at": notification.created_at,
        "read": notification.read_at is not None,
    }


class NotificationListView(APIView):
    """The member's notifications (the bell): the newest 50 and the unread count. New ones
    arrive live on /ws/notifications/ (docs/protocol.md)."""

    @extend_schema(responses=NotificationListSerializer)
    def get(self, request):
        data = {
            "unread_count": selectors.notifications_unread_count(user=request.user),
            "results": [
                notification_data(n) for n in selectors.notifications_for(user=request.user)
            ],
        }
        return Response(NotificationListSerializer(data).data)


class NotificationsReadAllView(APIView):
    """Mark every notification read; the member's other pages' bells go to 0 as well."""

    @extend_schema(request=None, responses=NotificationsReadSerializer)
    def post(self, request):
        marked = services.notifications_mark_all_read(user=request.user)
        return Response({"marked": marked, "unread_count": 0})


class NotificationReadView(APIView):
    """Mark one notification read (404 unless it is the member's and unread); the member's
    pages' bells show the new count."""

    @extend_schema(request=None, responses=NotificationsReadSerializer)
    def post(self, request, pk: int):
        if not services.notification_mark_read(user=request.user, notification_id=pk):
            raise Http404
        count = selectors.notifications_unread_count(user=request.user)
        return Response({"marked": 1, "unread_count": count})
