"""Room events to this process's *lite* sockets: one channel-layer channel per process.

A listener who joins with a ticket (most sockets of a big room) used to cost a channel-layer
channel of its own (with ``RedisPubSubChannelLayer`` a SUBSCRIBE), membership of the space's
group and of its ``user-{id}`` group (two more), and every room event was then a message to
each listener's consumer, which serialized the same JSON once per socket. Such a socket is now
*lite* (``SpaceConsumer`` explains how it runs without a channel): this relay holds the one
channel of the process, which joins

* the space group (``services.space_group``) of each room with a lite socket here, once per
  room, and leaves it when the room's last lite socket goes;
* ``LIVE_MEMBERS_GROUP`` once, where ``accounts.realtime`` also sends what it sends a member's
  personal group that a space socket obeys (a suspension, "left from another tab") and where a
  socket that starts speaking announces itself (``user.space_connected``), with the member's id.

A room event is serialized once and written to every local lite socket of the room through the
fan-out (``Fanout.deliver_text``, framed once, never dropped for congestion). Events that change
a socket's own state (its member's role, mute, removal, ban or leave; the space's end) are then
handed to the consumers concerned, found through the per-process maps room → sockets and
member → sockets, and run by their usual handlers (whose ``forward`` writes nothing: the
fan-out did), so they act exactly as a consumer with its own channel. The recording and the
audio mode the relay tells the media plane itself, once per process.

Ordering: a lite socket is registered (``add``) before it reads the room's version, so no event
after its snapshot is missed (the services bump the version before they send). Until it has
sent its snapshot and joined the fan-out it is *pending*: events for it wait in its own list,
which it sends itself, in order, before it is marked live (``go_live``); after that every
event goes through the media loop's fan-out, in the order the relay received them. A consumer
that closes or writes itself after a relayed event first waits for the fan-out to have written
what it was handed (``MediaPlane.flush_socket``), so a close never overtakes its event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import defaultdict

from accounts.realtime import LIVE_MEMBERS_GROUP

logger = logging.getLogger(__name__)

# Room events a lite socket's consumer must act on (besides writing them): see the handlers
# in SpaceConsumer. Every other event is only written.
_STATE_EVENTS = frozenset(
    {
        "space.role_changed",
        "space.mute_changed",
        "space.participant_removed",
        "space.participant_left",
    }
)


class RoomRelay:
    """One per process (per event loop); lives on the sockets' loop, next to the consumers."""

    def __init__(self) -> None:
        self.layer = None
        self.channel: str | None = None
        self._reader: asyncio.Task | None = None
        self._started: asyncio.Future | None = None
        # space id → the lite consumers in it (insertion order); member id → their consumers.
        self.rooms: dict[int, dict] = {}
        self.members: dict[int, set] = defaultdict(set)
        # Rooms whose group the relay's channel joined (or is joining).
        self._watching: dict[int, asyncio.Future] = {}
        self.events_relayed = 0
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        started = self._started
        try:
            await asyncio.shield(started)
        except Exception:
            if self._started is started:  # e.g. Redis was out of reach: the next join retries
                self._started = None
            raise

    async def _start(self) -> None:
        from channels.layers import get_channel_layer

        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel("relay.")
        await self.layer.group_add(LIVE_MEMBERS_GROUP, self.channel)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()

    # --- consumers ------------------------------------------------------------------------------

    async def add(self, consumer) -> None:
        """Register a lite socket (pending) before it reads the room: from now on it gets the
        room's events. Returns once the relay's channel is in the room's group."""
        await self.start()
        consumer.relay_pending = []
        self.rooms.setdefault(consumer.space_id, {})[consumer.socket_key] = consumer
        self.members[consumer.user.pk].add(consumer)
        watching = self._watching.get(consumer.space_id)
        if watching is None:
            group = _space_group(consumer.space_id)
            watching = asyncio.ensure_future(self.layer.group_add(group, self.channel))
            self._watching[consumer.space_id] = watching
        try:
            await asyncio.shield(watching)
        except Exception:
            # The consumer closes 1011 and its client reconnects; the next join tries again.
            if self._watching.get(consumer.space_id) is watching:
                del self._watching[consumer.space_id]
            raise

    async def go_live(self, consumer) -> None:
        """The socket sent its snapshot and is in the fan-out: send what came meanwhile, then
        let the fan-out write the rest. Nothing is awaited between the last pending send and
        the switch, so no event falls between the two."""
        while consumer.relay_pending:
            if not consumer.joined or consumer.refusing:
                break  # closing (e.g. a pending space.ended): nothing more to send
            message = consumer.relay_pending.pop(0)
            if "event" in message:
                await consumer.send(text_data=json.dumps(message["event"]))
            await consumer.dispatch(message)
        consumer.relay_pending = None

    def remove(self, consumer) -> None:
        room = self.rooms.get(consumer.space_id)
        if room is None or room.get(consumer.socket_key) is not consumer:
            return
        del room[consumer.socket_key]
        mine = self.members.get(consumer.user.pk)
        if mine is not None:
            mine.discard(consumer)
            if not mine:
                del self.members[consumer.user.pk]
        if not room:
            del self.rooms[consumer.space_id]
            watching = self._watching.pop(consumer.space_id, None)
            if watching is not None:
                asyncio.get_running_loop().create_task(self._unwatch(consumer.space_id, watching))

    async def _unwatch(self, space_id: int, watching: asyncio.Future) -> None:
        try:
            await watching  # (a failed join of the group has nothing to undo: it raises here)
            if space_id not in self._watching:  # nobody came back meanwhile
                await self.layer.group_discard(_space_group(space_id), self.channel)
        except Exception:  # the group expires on its own
            logger.exception("relay: leaving the group of space %s failed", space_id)

    # --- the channel ----------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("relay: receiving failed")
                await asyncio.sleep(1)
                continue
            try:
                self.handle(message)
            except Exception:
                logger.exception("relay: handling %s failed", message.get("type"))

    def handle(self, message: dict) -> None:
        """Never waits: the reader takes the next message at once (with the in-memory layer a
        channel holds at most 100, and every room of the process shares this one)."""
        kind = message.get("type", "")
        if kind.startswith("user."):
            for consumer in list(self.members.get(message.get("user_id"), ())):
                if consumer.relay_pending is not None:
                    consumer.relay_pending.append(message)
                else:
                    self._run(consumer, message)
            return
        space_id = message.get("space_id")  # services._send_now names the room
        room = self.rooms.get(space_id)
        if not room:
            return
        self.events_relayed += 1
        from .media import current_media_plane

        plane = current_media_plane()
        event = message["event"]
        live = []
        for consumer in list(room.values()):
            if consumer.relay_pending is not None:
                consumer.relay_pending.append(message)
            else:
                live.append(consumer)
        if not live:
            return
        if plane is not None:
            plane.deliver_relayed_text(space_id, json.dumps(event))
        if kind == "space.recording_changed" and plane is not None:
            # The room's owner pauses or resumes its recorder (spaces/live/media.py).
            self._spawn(plane.set_recording(space_id, event["is_recording"]))
        elif kind == "space.audio_mode_changed" and plane is not None:
            self._spawn(plane.set_audio_mode(space_id, event["audio_mode"]))
        elif kind == "space.space_ended":
            for consumer in live:
                self._run(consumer, message)
        elif kind in _STATE_EVENTS:
            for consumer in live:
                if consumer.user.pk == event.get("user_id"):
                    self._run(consumer, message)

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("relay: telling the media plane failed", exc_info=task.exception())

    @staticmethod
    def _run(consumer, message: dict) -> None:
        """Hand ``message`` to the consumer's handler, as its own channel would: one at a time
        and in order per socket, without holding up the relay (a close waits for its event to
        be written). A failure closes that socket (``SpaceConsumer.dispatch``)."""
        previous = consumer.relay_task

        async def run() -> None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            await consumer.dispatch(message)

        consumer.relay_task = asyncio.get_running_loop().create_task(run())


def _space_group(space_id: int) -> str:
    from ..services import space_group

    return space_group(space_id)


_relays: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def room_relay() -> RoomRelay:
    """This process's relay (one per event loop, so tests with a loop each start afresh)."""
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None:
        relay = _relays[loop] = RoomRelay()
    return relay
