"""Template context every page needs: the bell's unread count in the nav."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from .selectors import notifications_unread_count


def notifications(request) -> dict:
    """``unread_notifications``: counted only when a template shows it (one query)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": SimpleLazyObject(lambda: notifications_unread_count(user=user))}
