"""``/ws/spaces/<id>/``: the live control channel of a space (docs/protocol.md).

The consumer is an adapter: it authorizes through ``services.participant_join``, turns client
messages into service calls and channel-layer events into JSON frames. It keeps no rule of its
own and caches no role: every command reloads the participant inside its service.

Lite sockets. A socket that opens with a listener's join ticket (most sockets of a big room)
runs without a channel-layer channel of its own and joins no group: the process's room relay
(spaces/live/relay.py) reads the room's events once per process, the fan-out writes them to
every lite socket (framed once), and the relay hands the events that concern this socket
(its member's role, mute, removal, leave, suspension, another tab speaking, the space's end)
to this consumer's usual handlers, where ``forward`` then writes nothing (it is written).

How it runs without a channel: Channels' ``AsyncConsumer.__call__`` creates a channel
(``new_channel()``, a SUBSCRIBE with the Redis pub/sub layer) before the consumer sees the
socket, and reads it with ``await_many_dispatch``. Whether the socket is lite is known before
that, without a query: ``spaces.auth`` puts the ticket in the scope, and reading it (signature,
expiry, space, role) is pure. So ``__call__`` is overridden: for a listener's ticket (or one
that does not read, which ``connect`` refuses) it keeps the channel layer for what the socket
sends (its announcement when it starts speaking), names the socket with a local key instead of
a channel, and dispatches only what the client sends. Every other socket runs as before.

A lite listener promoted to the stage stays lite: its events already reach it (the relay hands
its role change to it like any other), its publishing is the media plane's, which needs no
channel, and upgrading would mean a new channel and group joins mid-life, with a window in
which events could be missed or come twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
import uuid

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings

from accounts.consumers import MemberSocketMixin
from accounts.realtime import send_to_member
from config.db import db_call

from . import errors, services
from .audio import wire
from .audio.codec import MAX_PACKET_BYTES
from .audio.pacing import MediaTimeLimit
from .live import tickets
from .live.joins import JoinsBusy, join_gate, snapshot_cache
from .live.media import get_media_plane
from .live.presence import listener_batch
from .live.relay import room_relay
from .models import Participant, Space
from .protocol import COMMANDS
from .selectors import participant_data, room_version, space_snapshot_shared

logger = logging.getLogger(__name__)


def _user_id_command(service):
    async def run(consumer, message):
        await consumer.call(service, space=consumer.space, by=consumer.user, **message)

    return run


# Close codes for audio abuse (RFC 6455): a frame too large, and a flood of frames.
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
# The server failed handling something for this socket (RFC 6455): the client reconnects.
CLOSE_INTERNAL = 1011
# The process's join line is full (RFC 6455 "try again later"); the reason says when.
CLOSE_TRY_AGAIN_LATER = 1013
MAX_AUDIO_MESSAGE = wire.HEADER_BYTES + MAX_PACKET_BYTES
# Errors about audio frames are answered at most this often, so a bad client is not flooded.
AUDIO_ERROR_INTERVAL = 5.0


# The wall clock the speakers' flood limit measures media time against (tests replace it).
media_clock = time.monotonic


class FrameRateLimit:
    """Token bucket: ``rate`` messages a second on average, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SpaceConsumer(MemberSocketMixin, AsyncJsonWebsocketConsumer):
    space: Space | None = None
    joined = False
    # Joined with a listener ticket: presence is written in batches (spaces/live/presence.py).
    batched = False
    # A batched listener's participant row exists once its batch is written: set then (or when
    # the batch refuses it). Commands act on that row, so they wait for it.
    written: asyncio.Event | None = None
    media = None
    # What the server decided this member may do with audio; refreshed by their own events.
    role: str = Participant.Role.LISTENER
    is_muted: bool = True
    publishing = False
    # Another connection of the same member joined this space after this one: the member
    # speaks from there (the newest connection wins), this one only listens (docs/protocol.md).
    superseded = False
    frames_forwarded = 0
    frames_dropped = 0
    frames_invalid = 0
    last_audio_error = 0.0
    # Set once the socket is being closed for abuse: nothing it still sends is acted on.
    refusing = False
    # A lite socket (module docstring): no channel, room events through the relay. The ticket
    # as read before the consumer started (or why it does not read).
    lite = False
    read_ticket: tickets.JoinTicket | None = None
    # The relay's events for this socket before it is live (spaces/live/relay.py), and the
    # last relayed event handed to it (they run one at a time).
    relay_pending: list | None = None
    relay_task: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        if not self._lite_scope(scope):
            await super().__call__(scope, receive, send)
            return
        # AsyncConsumer.__call__ without new_channel() (module docstring, "Lite sockets").
        self.scope = scope
        self.lite = True
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        # The socket's key in this process (fan-out, presence, two-tab ties); not a channel.
        self.channel_name = f"lite!{uuid.uuid4().hex}"
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive], self.dispatch)

    def _lite_scope(self, scope) -> bool:
        value = scope.get("join_ticket")
        if value is None:
            return False
        try:
            space_id = int(scope["url_route"]["kwargs"]["space_id"])
            self.read_ticket = tickets.ticket_read(value, space_id=space_id)
        except errors.SpaceError:
            return True  # connect() refuses it: no channel for a socket about to close
        return self.read_ticket.role == Participant.Role.LISTENER

    @property
    def socket_key(self) -> str:
        return self.channel_name

    async def dispatch(self, message: dict) -> None:
        # Channels' dispatch first closes stale database connections, on the single thread
        # that runs every database_sync_to_async call of the process. Each audio frame (and
        # each event to thousands of listeners) would queue behind whatever database work is
        # pending there, e.g. a wave of joins, and arrive in a burst, which the frame limit
        # then takes for a flood. This consumer reaches the database only through
        # db_call (database_sync_to_async), which closes stale connections around every call.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except StopConsumer:
            raise
        except Exception:
            if message["type"] == "websocket.disconnect":
                raise  # already ending
            # A bug or an outage in a handler. Escaping, it would end the consumer without
            # disconnect(): the heartbeat would keep a ghost participant alive for ever.
            logger.exception(
                "space %s: %s failed; closing", getattr(self, "space_id", "?"), message["type"]
            )
            await self._close_after_failure()

    async def _close_after_failure(self) -> None:
        self.refusing = True
        await self._leave_audio()  # also stops refreshing the participant (spaces/live/presence.py)
        await self.close(code=CLOSE_INTERNAL, reason="server error; reconnect")

    # --- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        # Accept first so a refusal carries a close code and a reason the client can show.
        await self.accept()
        self.space_id = int(self.scope["url_route"]["kwargs"]["space_id"])
        try:
            async with join_gate().admit():
                joined = await self._authorize_and_join()
        except JoinsBusy as busy:
            # The client comes back after that long (docs/protocol.md, "Join tickets").
            await self.close(code=CLOSE_TRY_AGAIN_LATER, reason=str(busy))
            return
        if not joined:
            return
        self.frame_limit = MediaTimeLimit(
            backlog=settings.SALON_AUDIO_BACKLOG_SECONDS,
            max_speed=settings.SALON_AUDIO_MAX_SPEED_PERCENT / 100,
            clock=media_clock,
        )
        self.message_limit = FrameRateLimit(
            settings.SALON_SPACE_MESSAGES_PER_SECOND, settings.SALON_SPACE_MESSAGE_BURST
        )
        self.media = await get_media_plane()
        self.publishing = self._may_publish()
        await self.media.attach(
            self.space_id,
            self.channel_name,
            self.base_send,
            user_id=self.user.pk,
            publishing=self.publishing,
            relayed=self.lite,
        )
        if self.lite:
            # In the fan-out now: what came since the snapshot, then the fan-out writes.
            await room_relay().go_live(self)
        if not self.batched:
            # This process refreshes its participants in one query per room
            # (spaces/live/presence.py); a batched listener from when its batch is written
            # (_admitted).
            self.media.heartbeats.add(self.space_id, self.channel_name, self.user.pk, self._gone)
        if self.publishing:
            await self._announce_stream()

    async def _authorize_and_join(self) -> bool:
        """Authenticate, join and send the snapshot; False when the socket was closed instead."""
        ticket = None
        if self.scope.get("join_ticket") is not None:
            try:
                ticket = await tickets.ticket_check(
                    self.scope["join_ticket"], space_id=self.space_id, read=self.read_ticket
                )
            except errors.SpaceError as error:
                await self.close(code=error.close_code, reason=error.message)
                return False
            self.user = tickets.ticket_member(ticket)
            self.scope["user"] = self.user
        else:
            self.user = self.scope["user"]
        if not self.user.is_authenticated:
            if self.scope.get("auth_refused") == "suspended":
                await self.close(code=errors.CLOSE_FORBIDDEN, reason="your account is suspended")
            else:
                await self.close(
                    code=errors.CLOSE_UNAUTHENTICATED, reason="authentication required"
                )
            return False
        # Join the groups (or the relay) before joining the space, so no event after the
        # snapshot is missed; channel-layer events are only handled once connect() returns,
        # i.e. after the snapshot, and the relay keeps a lite socket's until it is live.
        if self.lite:
            await room_relay().add(self)
        else:
            self.group = services.space_group(self.space_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.join_member_group()
        try:
            if ticket is not None and ticket.role == Participant.Role.LISTENER:
                frame = await self._join_listener(ticket)
            else:
                frame = await self._join()
        except errors.SpaceError as error:
            await self._leave_groups()
            await self.close(code=error.close_code, reason=error.message)
            return False
        self.joined = True
        self.connected_at = time.time()
        await self.send(text_data=frame)
        if self.batched:
            listener_batch().join(
                space_id=self.space_id,
                user_id=self.user.pk,
                key=self.channel_name,
                on_admitted=self._admitted,
                on_refused=self._refused,
            )
        return True

    async def _join_listener(self, ticket) -> str:
        """The fast path (docs/protocol.md, "Join tickets"): no query. The room is the shared
        snapshot of its version; the member's presence is written with the next batch."""
        version = await room_version(space_id=self.space_id)
        shared = await snapshot_cache().get(space_id=self.space_id, version=version)
        if shared.state != Space.State.LIVE:
            raise errors.SpaceStateError(f"the space is {shared.state}")
        you = shared.you(user_id=self.user.pk, fallback=tickets.listener_data(ticket))
        self.space = copy.copy(shared.space)
        self.role, self.is_muted = you["role"], you["is_muted"]
        self.batched = True
        self.written = asyncio.Event()
        return shared.frame(you)

    def _admitted(self) -> None:
        # The batch with this socket's join was written.
        self.written.set()
        if self.joined and self.media is not None:
            self.media.heartbeats.add(self.space_id, self.channel_name, self.user.pk, self._gone)

    def _refused(self, error: Exception) -> None:
        self.written.set()
        if not self.joined:
            return
        if isinstance(error, errors.SpaceError):
            code, reason = error.close_code, error.message
        else:
            code, reason = CLOSE_INTERNAL, "server error; reconnect"
        asyncio.get_running_loop().create_task(self._close_now(code, reason))

    @db_call
    def _join(self) -> str:
        participant = services.participant_join(space_id=self.space_id, user=self.user)
        self.space = participant.space
        self.role, self.is_muted = participant.role, participant.is_muted
        return space_snapshot_shared(space_id=self.space_id).frame(participant_data(participant))

    def _may_publish(self) -> bool:
        # The same rule as Participant.may_publish, on the state this socket was last told.
        if self.superseded:
            return False
        return Participant(role=self.role, is_muted=self.is_muted).may_publish

    async def _refresh_publishing(self) -> None:
        publishing = self.joined and self._may_publish()
        if publishing != self.publishing and self.media is not None:
            self.publishing = publishing
            await self.media.set_publishing(
                self.space_id, self.channel_name, user_id=self.user.pk, publishing=publishing
            )
            if publishing:
                await self._announce_stream()

    async def _announce_stream(self) -> None:
        """This socket starts speaking for the member: the member's older connections to this
        space (another tab, a socket a network drop left half open) give their stream up to it.

        Only sockets that may publish announce: listeners, most sockets of a big room, never
        speak, so a join wave costs no message more. Two tabs promoted or unmuted together both
        announce, and the older one gives way.
        """
        # To the member's sockets with a channel and, through the relays, to their lite ones.
        await send_to_member(
            self.user.pk,
            {
                "type": "user.space_connected",
                "space_id": self.space_id,
                "channel": self.channel_name,
                "connected_at": self.connected_at,
            },
            to_space_sockets=True,
        )

    async def _gone(self) -> None:
        # The sweep removed this participant (e.g. the database was out of reach for too
        # long): the client should reconnect to rejoin.
        if self.joined:
            await self._close_now(errors.CLOSE_PRESENCE_LOST, "no longer in the space; reconnect")

    async def _leave_groups(self) -> None:
        if self.lite:
            room_relay().remove(self)
            return
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.leave_member_group()

    async def disconnect(self, code: int) -> None:
        await self._leave_audio()
        await self._leave_groups()
        if self.joined:
            self.joined = False
            if self.batched:
                listener_batch().leave(
                    space_id=self.space_id, user_id=self.user.pk, key=self.channel_name
                )
                return
            await db_call(services.participant_disconnect)(
                space_id=self.space_id, user_id=self.user.pk
            )

    # --- client → server ----------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if self.refusing:
            return
        if bytes_data is not None:
            await self._audio_frame(bytes_data)
            return
        if self.joined and not self.message_limit.allow():
            # Every command is a transaction on the space row and most are an event to every
            # member: a flood from one socket would slow the room for all of them.
            await self._close_for_abuse(CLOSE_POLICY, "too many messages")
            return
        try:
            content = json.loads(text_data)
        except (TypeError, ValueError, RecursionError):
            # RecursionError: nesting deeper than the decoder's stack ("[[[[...").
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
        if self.written is not None and not self.written.is_set():
            # Raised a hand straight after the snapshot: the batch writes the row within
            # SALON_LISTENER_BATCH_SECONDS, and the batch always ends in _admitted or _refused.
            await self.written.wait()
            if not self.joined or self.refusing:
                return
        arguments = {key: content[key] for key in COMMANDS[kind]}
        if kind == "participant.remove":
            arguments["ban"] = content.get("ban") is True
        try:
            await self.COMMAND_HANDLERS[kind](self, arguments)
        except errors.SpaceError as error:
            await self.send_error(error.code, error.message, request_id)
        except Exception:
            # An outage (database, Redis) or a bug. Escaping, it would end this consumer without
            # disconnect(): its participant would stay counted and its heartbeat keep it alive.
            logger.exception(
                "space %s: %s from member %s failed", self.space_id, kind, self.user.pk
            )
            await self.send_error(
                "internal", "the server could not do that just now; try again", request_id
            )

    async def _audio_frame(self, data: bytes) -> None:
        """A speaker's frame (docs/audio.md): checked here, mixed by the room's mixer."""
        if not self.joined or self.media is None:
            return  # not in the room yet, or audio already cut off while the socket closes
        if len(data) > MAX_AUDIO_MESSAGE:
            await self._close_for_abuse(CLOSE_TOO_BIG, "audio frame too large")
            return
        # Media time, not arrival time (spaces/audio/pacing.py): a backlog of honest frames
        # that a stalled network or event loop delivers at once is not a flood.
        numbers = wire.HEADER.unpack_from(data)[2:] if len(data) >= wire.HEADER_BYTES else ()
        if not self.frame_limit.allow(*numbers):
            await self._close_for_abuse(CLOSE_POLICY, "too many audio frames")
            return
        try:
            frame = wire.unpack(data)
            if frame.kind != wire.FrameKind.SPEAKER_AUDIO:
                raise wire.WireError("clients send speaker audio (kind 1) only")
        except wire.WireError as error:
            self.frames_invalid += 1
            self.media.frames_invalid += 1
            await self._audio_error("bad_audio_frame", error.reason)
            return
        if not self.publishing:
            # Listeners, muted and removed speakers: the server decides, the frame goes nowhere.
            self.frames_dropped += 1
            self.media.frames_dropped += 1
            if self.superseded:
                await self._audio_error(
                    "not_publishing", "you speak from a newer connection; this one only listens"
                )
            else:
                await self._audio_error("not_publishing", "you are not on stage or you are muted")
            return
        self.frames_forwarded += 1
        self.media.speaker_frame(self.space_id, self.channel_name, data)

    async def _close_for_abuse(self, code: int, reason: str) -> None:
        # Unlike _close_now the member is still a participant: disconnect() counts them out.
        logger.warning("space %s: closing %s's socket: %s", self.space_id, self.user.pk, reason)
        self.refusing = True
        await self._leave_audio()
        await self.close(code=code, reason=reason)

    async def _audio_error(self, code: str, message: str) -> None:
        now = time.monotonic()
        if now - self.last_audio_error >= AUDIO_ERROR_INTERVAL:
            self.last_audio_error = now
            await self.send_error(code, message)

    async def _leave_audio(self) -> None:
        media, self.media = self.media, None
        if media is not None:
            media.heartbeats.remove(self.space_id, self.channel_name)
            await media.detach(self.space_id, self.channel_name)

    async def call(self, service, **kwargs):
        return await db_call(service)(**kwargs)

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
        "audio_mode.set": _user_id_command(services.space_set_audio_mode),
        "reaction.send": lambda c, m: c._self(services.reaction_send, **m),
        "space.end": _end,
        "host.take_over": _user_id_command(services.space_host_take_over),
        "leave": _leave,
    }

    # --- server → client: channel-layer events ("space.hand_raised" → space_hand_raised) -------

    async def forward(self, message: dict) -> None:
        if self.lite:
            return  # the relay had the fan-out write it (module docstring)
        await self.send_json(message["event"])

    async def _after_relayed(self) -> None:
        """A lite socket: wait until the fan-out wrote the events handed to it so far, so what
        this consumer writes or closes next comes after them."""
        if self.lite and self.media is not None:
            await self.media.flush_socket(self.space_id, self.channel_name)

    space_participant_joined = forward
    space_hand_raised = forward
    space_hand_lowered = forward
    space_speak_invited = forward
    space_speak_declined = forward
    space_reaction = forward
    space_pin_changed = forward
    space_host_away = forward
    space_host_back = forward

    async def space_recording_changed(self, message: dict) -> None:
        if self.media is not None:  # the room's owner pauses or resumes its recorder
            await self.media.set_recording(self.space_id, message["event"]["is_recording"])
        await self.forward(message)

    async def space_audio_mode_changed(self, message: dict) -> None:
        if self.media is not None:  # the room's owner switches its mix encoders
            await self.media.set_audio_mode(self.space_id, message["event"]["audio_mode"])
        await self.forward(message)

    async def space_role_changed(self, message: dict) -> None:
        event = message["event"]
        if event["user_id"] == self.user.pk:
            self.role = event["role"]
            self.is_muted = event["participant"]["is_muted"]
            await self._refresh_publishing()
        await self.forward(message)

    async def space_mute_changed(self, message: dict) -> None:
        event = message["event"]
        if event["user_id"] == self.user.pk:
            self.is_muted = event["is_muted"]
            await self._refresh_publishing()
        await self.forward(message)

    async def space_participant_left(self, message: dict) -> None:
        await self.forward(message)
        if message["event"]["user_id"] == self.user.pk and message["event"]["reason"] == "left":
            # The member left from another tab: this one goes too.
            await self._close_now(errors.CLOSE_LEFT, "you left the space")

    async def user_disconnect(self, event: dict) -> None:
        # The member was suspended. Cut their audio and stop acting on what they send now: a
        # client that ignores the close would otherwise go on being heard until it answers.
        self.refusing = True
        await self._leave_audio()
        await super().user_disconnect(event)

    async def user_left_space(self, event: dict) -> None:
        # A plain listener left from another tab (their departure is not a room-wide event).
        if event["space_id"] == self.space_id and self.joined:
            await self._close_now(errors.CLOSE_LEFT, "you left the space")

    async def user_space_connected(self, event: dict) -> None:
        """The member opened a socket to a space. If it is this space and newer than this
        socket, that one speaks for the member from now on: this one's stream ends, its frames
        are dropped, and its client is told (``stream.superseded``). Ties (two sockets joining
        within one clock tick) go to the higher channel name, the same on every process."""
        if event["space_id"] != self.space_id or not self.joined or self.superseded:
            return
        theirs = (event["connected_at"], event["channel"])
        if theirs <= (self.connected_at, self.channel_name):
            return  # this socket is the newer one (or it is this socket's own message)
        self.superseded = True
        if self.publishing and self.media is not None:
            self.publishing = False
            await self.media.end_stream(self.space_id, self.channel_name)
        await self._after_relayed()
        await self.send_json({"type": "stream.superseded"})

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
        if self.media is not None:
            await self.media.end_room(self.space_id)
        await self._close_now(errors.CLOSE_ENDED, "the space has ended")

    async def _close_now(self, code: int, reason: str) -> None:
        # The participant row is already gone: nothing to decrement on disconnect. A batched
        # join not written yet must not be written now (a leave of a row gone changes nothing).
        if self.joined and self.batched:
            listener_batch().leave(
                space_id=self.space_id, user_id=self.user.pk, key=self.channel_name
            )
        self.joined = False
        await self._after_relayed()  # e.g. participant.removed before the close
        # Stop this socket's audio at once, before the close handshake completes.
        await self._leave_audio()
        await self.close(code=code, reason=reason)
