from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .realtime import CLOSE_UNAUTHENTICATED, HALLWAY_GROUP, user_group


class MemberSocketMixin:
    """Joins the member's personal group and obeys its events; every member socket uses it.

    A lite space socket (spaces/consumers.py) joins no group: the process's room relay hands it
    the same events (``accounts.realtime.LIVE_MEMBERS_GROUP``), and these handlers run them."""

    async def join_member_group(self) -> None:
        self.member_group = user_group(self.scope["user"].pk)
        await self.channel_layer.group_add(self.member_group, self.channel_name)

    async def leave_member_group(self) -> None:
        if getattr(self, "member_group", None):
            await self.channel_layer.group_discard(self.member_group, self.channel_name)

    async def user_disconnect(self, event: dict) -> None:
        await self.close(code=event["code"], reason=event["reason"])

    async def user_left_space(self, event: dict) -> None:
        """The member left a space from another socket; only that space's sockets care."""

    async def user_space_connected(self, event: dict) -> None:
        """The member opened another socket to a space; only that space's sockets care."""

    async def user_notify(self, event: dict) -> None:
        """A notification for the member: /ws/notifications/ shows it, other sockets let it be.

        Without this, a member's space socket had no handler for it and crashed whenever they
        were notified (e.g. their voice tweet became ready) while in a space.
        """


class NotificationConsumer(MemberSocketMixin, AsyncJsonWebsocketConsumer):
    """``/ws/notifications/``: in-app notifications and status updates for the signed-in member,
    and the hallway's changes (docs/protocol.md, "The notification socket")."""

    async def connect(self) -> None:
        await self.accept()
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED, reason="authentication required")
            return
        await self.join_member_group()
        await self.channel_layer.group_add(HALLWAY_GROUP, self.channel_name)
        self.in_hallway = True
        await self.send_json({"type": "hello", "user_id": user.pk})

    async def disconnect(self, code: int) -> None:
        await self.leave_member_group()
        if getattr(self, "in_hallway", False):
            await self.channel_layer.group_discard(HALLWAY_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        # The notification socket is one-way; anything the client says is answered, not acted on.
        await self.send_json({"type": "error", "code": "read_only", "message": "nothing to send"})

    async def user_notify(self, event: dict) -> None:
        await self.send_json({"type": "notification", **event["payload"]})

    async def hallway_changed(self, event: dict) -> None:
        """A space went live or ended: the page fetches its hallway (the member's own view)."""
        await self.send_json({"type": "hallway.changed", "space_id": event["space_id"]})

    async def hallway_count(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "hallway.count",
                "space_id": event["space_id"],
                "participant_count": event["participant_count"],
                "listener_count": event["listener_count"],
            }
        )
