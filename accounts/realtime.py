"""Realtime plumbing shared by every consumer a member holds open.

Each of a member's websockets joins the member's personal group, so a service can reach all of
them at once: to push a notification, or to close them when the member is suspended.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

# Close codes every Salon socket uses; docs/protocol.md lists them.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


# Every member's notification socket is in it: spaces going live, ending, their counts.
HALLWAY_GROUP = "hallway"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def _send(user_id: int, message: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(user_group(user_id), message)


def notify_user(*, user_id: int, payload: dict) -> None:
    """Push ``payload`` to every open socket of the member once the current transaction commits."""
    transaction.on_commit(lambda: _send(user_id, {"type": "user.notify", "payload": payload}))


def disconnect_user(*, user_id: int, code: int, reason: str) -> None:
    """Close every open socket of the member once the current transaction commits."""
    message = {"type": "user.disconnect", "code": code, "reason": reason}
    transaction.on_commit(lambda: _send(user_id, message))


def member_left_space(*, user_id: int, space_id: int) -> None:
    """The member left a space on purpose: their other sockets in it close too."""
    message = {"type": "user.left_space", "space_id": space_id}
    transaction.on_commit(lambda: _send(user_id, message))
