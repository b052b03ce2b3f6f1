"""Realtime plumbing shared by every consumer a member holds open.

Each of a member's websockets joins the member's personal group, so a service can reach all of
them at once: to push a notification, or to close them when the member is suspended. A lite
space socket (a listener joined with a ticket) has no channel and joins no group: what a space
socket must obey also goes, with the member's id, to ``LIVE_MEMBERS_GROUP``, which holds one
channel per server process (spaces/live/relay.py).
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

# Close codes every Salon socket uses; docs/protocol.md lists them.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


# Every member's notification socket is in it: spaces going live, ending, their counts.
HALLWAY_GROUP = "hallway"
# Each server process's room relay: messages to members that their lite space sockets obey.
LIVE_MEMBERS_GROUP = "live-members"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def _send(user_id: int, message: dict, *, to_space_sockets: bool = False) -> None:
    async_to_sync(send_to_member)(user_id, message, to_space_sockets=to_space_sockets)


async def send_to_member(user_id: int, message: dict, *, to_space_sockets: bool = False) -> None:
    """``message`` to every socket of the member with a channel; ``to_space_sockets``: to their
    lite space sockets too (rare messages only: every process receives those)."""
    layer = get_channel_layer()
    await layer.group_send(user_group(user_id), message)
    if to_space_sockets:
        await layer.group_send(LIVE_MEMBERS_GROUP, {**message, "user_id": user_id})


def notify_user(*, user_id: int, payload: dict) -> None:
    """Push ``payload`` to every open socket of the member once the current transaction commits."""
    transaction.on_commit(lambda: _send(user_id, {"type": "user.notify", "payload": payload}))


def disconnect_user(*, user_id: int, code: int, reason: str) -> None:
    """Close every open socket of the member once the current transaction commits."""
    message = {"type": "user.disconnect", "code": code, "reason": reason}
    transaction.on_commit(lambda: _send(user_id, message, to_space_sockets=True))


def member_left_space(*, user_id: int, space_id: int) -> None:
    """The member left a space on purpose: their other sockets in it close too."""
    message = {"type": "user.left_space", "space_id": space_id}
    transaction.on_commit(lambda: _send(user_id, message, to_space_sockets=True))
