"""``/ws/spaces/<id>/``: the live control channel of a space (docs/protocol.md).

The consumer is an adapter: it authorizes through ``services.participant_join``, turns client
messages into service calls and channel-layer events into JSON frames. It keeps no rule of its
own and caches no role: every command reloads the participant inside its service.
"""

from __future__ import annotations

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.consumers import MemberSocketMixin

from . import errors, services
from .models import Space
from .protocol import COMMANDS
from .selectors import space_snapshot

logger = logging.getLogger(__name__)


def _user_id_command(service):
    async def run(consumer, message):
        await consumer.call(service, space=consumer.space, by=consumer.user, **message)

    return run


class SpaceConsumer(MemberSocketMixin, AsyncJsonWebsocketConsumer):
    space: Space | None = None
    joined = False
    heartbeat_task: asyncio.Task | None = None

    # --- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        # Accept first so a refusal carries a close code and a reason the client can show.
        await self.accept()
        self.user = self.scope["user"]
        self.space_id = int(self.scope["url_route"]["kwargs"]["space_id"])
        if not self.user.is_authenticated:
            if self.scope.get("auth_refused") == "suspended":
                await self.close(code=errors.CLOSE_FORBIDDEN, reason="your account is suspended")
            else:
                await self.close(
                    code=errors.CLOSE_UNAUTHENTICATED, reason="authentication required"
                )
            return
        self.group = services.space_group(self.space_id)
        # Join the groups before joining the space, so no event after the snapshot is missed;
        # channel-layer events are only handled once connect() returns, i.e. after the snapshot.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.join_member_group()
        try:
            snapshot = await self._join()
        except errors.SpaceError as error:
            await self._leave_groups()
            await self.close(code=error.close_code, reason=error.message)
            return
        self.joined = True
        await self.send_json(snapshot)
        self.heartbeat_task = asyncio.create_task(self._heartbeat())

    @database_sync_to_async
    def _join(self) -> dict:
        participant = services.participant_join(space_id=self.space_id, user=self.user)
        self.space = participant.space
        return space_snapshot(space=self.space, user=self.user)

    async def _heartbeat(self) -> None:
        interval = settings.SALON_SPACE_HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                present = await database_sync_to_async(services.participant_heartbeat)(
                    space_id=self.space_id, user_id=self.user.pk
                )
            except Exception:  # a failed beat must not kill the socket; the next one retries
                logger.exception("space %s: heartbeat failed", self.space_id)
                continue
            if not present:
                # The sweep already removed this participant (e.g. the database was out of
                # reach for too long): the client should reconnect to rejoin.
                await self._close_now(errors.CLOSE_LEFT, "no longer in the space; reconnect")
                return

    async def _leave_groups(self) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.leave_member_group()

    async def disconnect(self, code: int) -> None:
        if self.heartbeat_task:
            self.heartbeat_task.cancel()
        await self._leave_groups()
        if self.joined:
            self.joined = False
            await database_sync_to_async(services.participant_disconnect)(
                space_id=self.space_id, user_id=self.user.pk
            )

    # --- client → server ----------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if bytes_data is not None:
            # Binary frames are audio; the audio engine's step handles them here.
            await self.send_error("unsupported", "binary frames are not accepted yet")
            return
        try:
            content = json.loads(text_data)
        except (TypeError, ValueError):
            await self.send_error("malformed", "messages are JSON objects")
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs) -> None:
        request_id = content.get("request_id") if isinstance(content, dict) else None
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("malformed", "a message is an object with a type")
            return
        kind = content["type"]
        if kind not in COMMANDS:
            await self.send_error("unknown_type", f"unknown message type {kind!r}", request_id)
            return
        missing = COMMANDS[kind] - content.keys()
        if missing:
            await self.send_error(
                "malformed", f"{kind} needs {', '.join(sorted(missing))}", request_id
            )
            return
        if not self.joined:
            return
        arguments = {key: content[key] for key in COMMANDS[kind]}
        if kind == "participant.remove":
            arguments["ban"] = content.get("ban") is True
        try:
            await self.COMMAND_HANDLERS[kind](self, arguments)
        except errors.SpaceError as error:
            await self.send_error(error.code, error.message, request_id)

    async def call(self, service, **kwargs):
        return await database_sync_to_async(service)(**kwargs)

    async def send_error(self, code: str, message: str, request_id=None) -> None:
        await self.send_json(
            {"type": "error", "code": code, "message": message, "request_id": request_id}
        )

    async def _self(self, service, **kwargs):
        await self.call(service, space=self.space, user=self.user, **kwargs)

    async def _leave(self, message):
        await self.call(services.participant_leave, space=self.space, user=self.user)

    async def _end(self, message):
        await self.call(services.space_end, space=self.space, by=self.user, reason="ended")

    COMMAND_HANDLERS = {
        "hand.raise": lambda c, m: c._self(services.hand_raise),
        "hand.lower": lambda c, m: c._self(services.hand_lower),
        "hand.approve": _user_id_command(services.hand_approve),
        "hand.dismiss": _user_id_command(services.hand_dismiss),
        "speak.invite": _user_id_command(services.speak_invite),
        "speak.accept": lambda c, m: c._self(services.speak_invite_accept),
        "speak.decline": lambda c, m: c._self(services.speak_invite_decline),
        "mute.set": lambda c, m: c._self(services.participant_set_muted, **m),
        "speaker.mute": _user_id_command(services.speaker_mute),
        "speakers.mute_all": _user_id_command(services.speakers_mute_all),
        "speaker.move_to_listeners": _user_id_command(services.speaker_move_to_listeners),
        "participant.remove": _user_id_command(services.participant_remove),
        "cohost.add": _user_id_command(services.cohost_add),
        "cohost.remove": _user_id_command(services.cohost_remove),
        "pin.set": _user_id_command(services.space_pin_tweet),
        "recording.set": _user_id_command(services.space_set_recording),
        "reaction.send": lambda c, m: c._self(services.reaction_send, **m),
        "space.end": _end,
        "leave": _leave,
    }

    # --- server → client: channel-layer events ("space.hand_raised" → space_hand_raised) -------

    async def forward(self, message: dict) -> None:
        await self.send_json(message["event"])

    space_participant_joined = forward
    space_role_changed = forward
    space_hand_raised = forward
    space_hand_lowered = forward
    space_speak_invited = forward
    space_speak_declined = forward
    space_mute_changed = forward
    space_reaction = forward
    space_pin_changed = forward
    space_recording_changed = forward

    async def space_participant_left(self, message: dict) -> None:
        await self.forward(message)
        if message["event"]["user_id"] == self.user.pk and message["event"]["reason"] == "left":
            # The member left from another tab: this one goes too.
            await self._close_now(errors.CLOSE_LEFT, "you left the space")

    async def space_participant_removed(self, message: dict) -> None:
        event = message["event"]
        if event["user_id"] != self.user.pk:
            await self.forward(message)
            return
        await self.forward(message)
        if event["banned"]:
            await self._close_now(errors.CLOSE_BANNED, "you were removed and banned")
        else:
            await self._close_now(errors.CLOSE_REMOVED, "you were removed from the space")

    async def space_space_ended(self, message: dict) -> None:
        await self.forward(message)
        await self._close_now(errors.CLOSE_ENDED, "the space has ended")

    async def _close_now(self, code: int, reason: str) -> None:
        # The participant row is already gone: nothing to decrement on disconnect.
        self.joined = False
        if self.heartbeat_task:
            self.heartbeat_task.cancel()
        await self.close(code=code, reason=reason)
