"""Reads of notifications: the bell's count and the member's list."""

from __future__ import annotations

from .models import Notification


def notifications_unread_count(*, user) -> int:
    """The bell's number: the member's unread notifications (one query, a partial index)."""
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_for(*, user, limit: int = 50) -> list[Notification]:
    """The member's newest notifications, unread and read."""
    return list(Notification.objects.filter(user=user).order_by("-created_at", "-pk")[:limit])
